"""run.model.compile (torch.compile of each encoder and decoder block) against eager: losses and
gradients over a few optimizer steps, for a tiny shape with d_model = heads x d_kv (the case in
which FAT5 saw PyTorch 2.2 compile T5's gradients wrongly) and one without it, like the presets."""
from __future__ import annotations

import copy

import pytest
import torch

from pretrain.config import ModelSettings
from pretrain.model_setup import fresh_model, prepare_for_training
from pretrain.modeling import GBSWT5Config
from tests.test_model import padded_batch
from tests.test_model_attention import assert_grads_close


def test_presets_do_not_have_d_model_equal_to_heads_times_d_kv() -> None:
    for preset in ("small", "base", "large"):
        config = GBSWT5Config.from_preset(preset)
        assert config.d_model != config.num_heads * config.d_kv, preset


# Known, unresolved: on torch 2.13 CPU the compiled blocks' gradients differ from eager by ~7e-4
# relative at the first step for d_kv 16 (3e-4 in float64, so not rounding), and by 1.3e-4 after
# a few steps for d_kv 32. Strict: the test starts failing once the two agree, to lift the mark.
@pytest.mark.xfail(strict=True, reason="compiled T5 blocks' gradients differ from eager (see comment)")
@pytest.mark.parametrize("d_kv", [32, 16], ids=["d_model=heads*d_kv", "d_model!=heads*d_kv"])
def test_compiled_blocks_train_like_eager(d_kv: int) -> None:
    settings = ModelSettings(preset="tiny", overrides={"dropout_rate": 0.0, "d_kv": d_kv}, z_loss=1e-4)
    torch.manual_seed(0)
    eager = prepare_for_training(fresh_model(settings), settings).train()
    compiled = prepare_for_training(copy.deepcopy(eager), settings.model_copy(update={"compile": True})).train()
    assert (eager.config.d_model == eager.config.num_heads * d_kv) == (d_kv == 32)
    assert all(hasattr(block, "_compiled_call_impl") and block._compiled_call_impl is not None
               for block in compiled.encoder.block)
    # SGD with small steps: linear in the gradients, so rounding differences stay rounding (AdamW
    # normalises gradients near zero into full-size steps; large steps from T5's initial loss of
    # ~22 make the trajectory chaotic, and then two eager runs differing in one ulp diverge too).
    optimizers = [torch.optim.SGD(m.parameters(), lr=1e-3) for m in (eager, compiled)]
    for step in range(3):
        ids, mask = padded_batch([90, 57], seed=step)
        labels = torch.randint(3, 259, (2, 20), generator=torch.Generator().manual_seed(step))
        results = []
        for model, optimizer in zip((eager, compiled), optimizers):
            optimizer.zero_grad()
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            results.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
            optimizer.step()
        (eager_loss, eager_grads), (compiled_loss, compiled_grads) = results
        # Inductor fuses and reorders float32 arithmetic: equal up to rounding (see assert_grads_close;
        # T5 init gives logits of ~36 here, so the loss (~22) moves by ~1e-5 relative).
        torch.testing.assert_close(compiled_loss, eager_loss, rtol=1e-4, atol=1e-6)
        assert_grads_close(compiled_grads, eager_grads, 1e-4)  # step {step}

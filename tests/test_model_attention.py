"""T5 relative-position-bias attention paths (SDPA with a float mask, FlexAttention with a
score_mod reading the bias table) against transformers' eager attention, forward and backward."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.attention.flex_attention as flex_module
from transformers import T5Config, T5ForConditionalGeneration

from pretrain.modeling import ATTENTION_FLEX, ATTENTION_SDPA, GBSWT5Config, GBSWT5ForConditionalGeneration, link_bias_tables
from tests.test_model import padded_batch

BIAS_TABLES = ("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
               "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight")


@pytest.fixture
def flex_backward_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch refuses FlexAttention's backward on CPU up front; its uncompiled reference path
    (the same score_mod, differentiated by autograd) runs fine, so the test lifts the guard."""
    monkeypatch.setattr(flex_module, "_validate_device", lambda *tensors: None)


def _loss_and_grads(model: torch.nn.Module, lengths: list[int], target_len: int) -> tuple[torch.Tensor, dict]:
    ids, mask = padded_batch(lengths)
    labels = torch.randint(3, 259, (len(lengths), target_len), generator=torch.Generator().manual_seed(1))
    labels[0, target_len // 2:] = -100
    decoder_mask = (labels != -100).long()
    decoder_mask[:, 0] = 1
    model.zero_grad()
    out = model(input_ids=ids, attention_mask=mask, labels=labels, decoder_attention_mask=decoder_mask)
    loss = out.logits.float().logsumexp(-1).mean() + torch.nn.functional.cross_entropy(
        out.logits.view(-1, out.logits.shape[-1]), labels.view(-1), ignore_index=-100)
    loss.backward()
    return out.logits.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def assert_grads_close(got: dict, expected: dict, rtol: float) -> None:
    """Per tensor, |got - expected| <= rtol |expected| + 1e-6 (Frobenius). Summing in another
    order moves float32 gradients by a few 1e-5 relative here (the byte table's gradient, through
    GBST's softmaxes; 1e-13 in float64, so rounding, not a different function); the floor covers
    gradients that are zero up to rounding (GBST's scorer bias: softmax shift invariance)."""
    assert got.keys() == expected.keys()
    for key, ref in expected.items():
        error = (got[key] - ref).norm().item()
        assert error <= rtol * ref.norm().item() + 1e-6, f"{key}: |error| {error:.2e}, |reference| {ref.norm():.2e}"


def _with_attention(model: torch.nn.Module, name: str) -> torch.nn.Module:
    other = copy.deepcopy(model)
    other.set_attn_implementation(name)
    assert other.encoder.config._attn_implementation == name
    return other


def _tiny_gbswt5() -> GBSWT5ForConditionalGeneration:
    torch.manual_seed(0)
    model = GBSWT5ForConditionalGeneration(GBSWT5Config.from_preset("tiny", dropout_rate=0.0))
    with torch.no_grad():  # T5 initialises the bias tables small; make them matter
        for name in BIAS_TABLES:
            model.get_parameter(name).normal_(0.0, 1.0)
    return model.train()


@pytest.mark.parametrize(("dtype", "rtol"), [(torch.float32, 1e-4), (torch.float64, 1e-10)])
@pytest.mark.parametrize("name", [ATTENTION_SDPA, ATTENTION_FLEX])
def test_attention_matches_eager_forward_and_backward(name: str, dtype: torch.dtype, rtol: float,
                                                      flex_backward_on_cpu: None) -> None:
    eager = _tiny_gbswt5().to(dtype)
    eager.set_attn_implementation("eager")
    other = _with_attention(eager, name)
    # 130 bytes -> 44 encoder positions: relative distances reach the log-spaced buckets.
    logits, grads = _loss_and_grads(eager, [130, 61], 40)
    other_logits, other_grads = _loss_and_grads(other, [130, 61], 40)
    torch.testing.assert_close(other_logits, logits, rtol=rtol / 10, atol=rtol / 10)
    assert set(BIAS_TABLES) <= grads.keys()
    assert_grads_close(other_grads, grads, rtol)
    assert all(grads[key].abs().sum() > 0 for key in BIAS_TABLES)


def test_flex_on_plain_byt5_needs_linked_tables(flex_backward_on_cpu: None) -> None:
    torch.manual_seed(0)
    config = T5Config(vocab_size=384, d_model=32, d_kv=16, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=2,
                      dropout_rate=0.0, decoder_start_token_id=0)
    eager = T5ForConditionalGeneration(config).train()
    eager.set_attn_implementation("eager")
    flex = _with_attention(eager, ATTENTION_FLEX)
    with pytest.raises(ValueError, match="link_bias_tables"):
        _loss_and_grads(flex, [40, 23], 20)
    link_bias_tables(flex)
    logits, grads = _loss_and_grads(eager, [40, 23], 20)
    flex_logits, flex_grads = _loss_and_grads(flex, [40, 23], 20)
    torch.testing.assert_close(flex_logits, logits, rtol=1e-5, atol=1e-5)
    assert_grads_close(flex_grads, grads, 1e-4)


def test_flex_refuses_attention_dropout() -> None:
    model = GBSWT5ForConditionalGeneration(GBSWT5Config.from_preset("tiny", dropout_rate=0.1)).train()
    model.set_attn_implementation(ATTENTION_FLEX)
    ids, mask = padded_batch([20])
    with pytest.raises(ValueError, match="dropout"):
        model(input_ids=ids, attention_mask=mask, labels=ids)

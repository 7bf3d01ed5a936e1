"""The chunked span loss (cross entropy + z-loss from hidden states and lm_head, chunk by chunk)
against span_loss on full logits: value and gradients of the hidden states and the weight."""
from __future__ import annotations

import copy
import types

import pytest
import torch
import torch.nn.functional as F

from pretrain.modeling import GBSWT5Config, GBSWT5ForConditionalGeneration, fused_span_loss, span_loss
from pretrain.trainer import Trainer
from tests.test_model import padded_batch
from tests.test_model_attention import assert_grads_close


def _inputs(tokens: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    hidden = (torch.randn(3, tokens, 48, generator=gen) * 0.5).to(dtype).requires_grad_()
    weight = torch.randn(384, 48, generator=gen).to(dtype).requires_grad_()
    labels = torch.randint(0, 384, (3, tokens), generator=gen)
    labels[0, tokens // 3:] = -100
    labels[2, :5] = -100
    return hidden, weight, labels


@pytest.mark.parametrize("chunk", [7, 64, 10_000])
@pytest.mark.parametrize("z_loss", [0.0, 1e-4, 0.3])
def test_chunked_loss_equals_span_loss(chunk: int, z_loss: float) -> None:
    hidden, weight, labels = _inputs(40, torch.float32)
    expected = span_loss(F.linear(hidden, weight), labels, z_loss)
    expected_grads = torch.autograd.grad(expected * 3.0, (hidden, weight))
    got = fused_span_loss(hidden, weight, labels, z_loss, "chunked", chunk=chunk)
    got_grads = torch.autograd.grad(got * 3.0, (hidden, weight))  # a non-unit upstream gradient
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    for g, e in zip(got_grads, expected_grads):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)


def test_chunked_loss_in_bf16_follows_span_loss() -> None:
    # bf16 hidden states and weight, as under DeepSpeed bf16: logits are rounded to bf16 before the
    # float32 loss in both, so the values agree to float32 rounding.
    hidden, weight, labels = _inputs(40, torch.bfloat16)
    expected = span_loss(F.linear(hidden, weight), labels, 1e-4)
    got = fused_span_loss(hidden, weight, labels, 1e-4, "chunked", chunk=16)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_liger_falls_back_to_chunked_off_cuda() -> None:
    hidden, weight, labels = _inputs(20, torch.float32)
    torch.testing.assert_close(fused_span_loss(hidden, weight, labels, 1e-4, "liger"),
                               span_loss(F.linear(hidden, weight), labels, 1e-4))


def test_model_training_loss_is_the_same_with_the_chunked_path() -> None:
    torch.manual_seed(0)
    model = GBSWT5ForConditionalGeneration(GBSWT5Config.from_preset("tiny", dropout_rate=0.0, z_loss=1e-4)).train()
    chunked = copy.deepcopy(model)
    chunked.loss_implementation = "chunked"
    ids, mask = padded_batch([60, 33])
    labels = torch.randint(3, 259, (2, 15))
    labels[1, 9:] = -100
    results = []
    for m in (model, chunked):
        out = m(input_ids=ids, attention_mask=mask, labels=labels)
        out.loss.backward()
        results.append((out, {n: p.grad for n, p in m.named_parameters()}))
    (plain, plain_grads), (fused, fused_grads) = results
    assert fused.logits is None and plain.logits is not None
    torch.testing.assert_close(fused.loss, plain.loss, rtol=1e-6, atol=1e-6)
    assert_grads_close(fused_grads, plain_grads, 1e-4)
    chunked.eval()  # evaluation keeps its logits
    assert chunked(input_ids=ids, attention_mask=mask, labels=labels).logits is not None


@pytest.mark.parametrize("loss", ["chunked", "liger"])
def test_the_trainer_trains_on_the_chunked_loss_when_set(loss: str) -> None:
    """run.model.loss reaches training: the trainer's loss comes from the model's hidden states
    (lm_head never runs) and equals the logits path's, z-loss included."""
    torch.manual_seed(0)
    model = GBSWT5ForConditionalGeneration(GBSWT5Config.from_preset("tiny", dropout_rate=0.0, z_loss=1e-4)).train()
    ids, mask = padded_batch([60, 33])
    labels = torch.randint(3, 259, (2, 15))
    labels[1, 9:] = -100
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels,
             "decoder_input_ids": model._shift_right(labels), "decoder_attention_mask": torch.ones_like(labels)}
    trainer = object.__new__(Trainer)
    trainer.engine = model  # stands for the DeepSpeed engine: called with the batch, has .device
    losses, heads = {}, []
    model.lm_head.register_forward_hook(lambda *args: heads.append(1))
    for setting in ("logits", loss):
        trainer.run = types.SimpleNamespace(model=types.SimpleNamespace(loss=setting, z_loss=1e-4))
        model.loss_implementation = setting
        heads.clear()
        losses[setting] = trainer.forward_loss(batch)
        assert len(heads) == (1 if setting == "logits" else 0)
    torch.testing.assert_close(losses[loss], losses["logits"], rtol=1e-6, atol=1e-6)

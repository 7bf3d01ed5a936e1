"""Model FLOPs per example (docs/ARCHITECTURE.md, FLOPs and MFU) against a measured count."""
from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import T5Config, T5ForConditionalGeneration

from pretrain.flops import device_peak_tflops, forward_flops, training_flops_per_example
from pretrain.modeling import GBSWT5Config


def byt5_large_config() -> T5Config:
    return T5Config(vocab_size=384, d_model=1536, d_ff=3840, num_layers=36, num_decoder_layers=12, num_heads=16,
                    d_kv=64, feed_forward_proj="gated-gelu")


def test_byt5_large_matches_the_published_count():
    assert training_flops_per_example(byt5_large_config(), 1024, 189) == pytest.approx(6.40e12, rel=0.005)


@pytest.mark.parametrize("ffn", ["gated-gelu", "relu"])
def test_formula_equals_counted_matmul_flops_of_a_t5_forward(ffn):
    config = T5Config(vocab_size=384, d_model=32, d_ff=48, num_layers=3, num_decoder_layers=2, num_heads=2,
                      d_kv=8, feed_forward_proj=ffn, dropout_rate=0.0)
    config._attn_implementation = "eager"  # SDPA kernels on CPU escape the counter
    model = T5ForConditionalGeneration(config).eval()
    inputs, targets = torch.randint(3, 250, (1, 37)), torch.randint(3, 250, (1, 11))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(input_ids=inputs, decoder_input_ids=targets)
    assert forward_flops(config, 37, 11) == counter.get_total_flops()


def test_gbst_config_uses_the_downsampled_encoder_length():
    config = byt5_large_config()
    plain = forward_flops(config, 1024, 189)
    gbst = forward_flops(GBSWT5Config.from_preset("large"), 1024, 189)  # the same T5 dimensions plus GBST
    assert 0.3 * plain < gbst < 0.5 * plain


def test_device_peaks():
    assert device_peak_tflops("NVIDIA H200") == 989.0
    assert device_peak_tflops("NVIDIA A100-SXM4-80GB") == 312.0
    assert device_peak_tflops("cpu") is None

"""Model FLOPs per training example (docs/ARCHITECTURE.md, FLOPs and MFU) and device peaks for MFU.

Counted as the nanoT5/PaLM convention does: matrix multiplies only (2 FLOPs per multiply-add),
the backward pass twice the forward, no recomputation from gradient checkpointing. For ByT5-large
at 1024 input / 189 target ids this gives about 6.40e12 per example; GBST-KEByT5-large 2.30e12.
GBST is counted as the architecture defines it (conv, projection and scoring per byte, consensus
over byte pairs), not as an algebraically cheaper implementation computes it; at D = 1536 it is
under 1% of the total either way.
"""
from __future__ import annotations

import math
from typing import Any

# Dense bf16 peaks in TFLOP/s, matched against torch.cuda.get_device_name() (first hit wins).
DEVICE_PEAK_TFLOPS = (("H200", 989.0), ("H100", 989.0), ("A100", 312.0), ("L40S", 362.0), ("A10", 125.0))


def _ffn_matrices(config: Any) -> int:
    return 3 if str(getattr(config, "feed_forward_proj", "gated-gelu")).startswith("gated") else 2


def gbst_forward_flops(config: Any, byte_length: int) -> float:
    """GBST (a GBSWT5Config) on `byte_length` bytes: positional convolutions, block scoring, consensus, mixing."""
    d = config.d_model
    sizes = config.block_sizes
    kernel, n = max(sizes), len(sizes)
    per_position = 2 * d * kernel + 2 * d * d + 2 * d * n + 2 * d * n  # conv, 1x1 proj, scores, weighted sum
    flops = byte_length * per_position
    if getattr(config, "score_consensus_attn", False):
        flops += 4 * byte_length * byte_length * n  # scores @ scores^T, then its softmax @ scores
    return float(flops)


def forward_flops(config: Any, inputs_length: int, targets_length: int) -> float:
    """Forward FLOPs of one example; GBST configs (with downsample_factor) shorten the encoder."""
    d, d_ff = config.d_model, config.d_ff
    d_attn = config.num_heads * config.d_kv
    n_enc, n_dec = config.num_layers, config.num_decoder_layers
    ffn = _ffn_matrices(config) * d * d_ff
    factor = getattr(config, "downsample_factor", None)
    is_gbst = factor is not None and getattr(config, "model_type", "") == "gbswt5"
    enc_len = math.ceil(inputs_length / factor) if is_gbst else inputs_length
    dec_len = targets_length

    encoder_linear = n_enc * (4 * d * d_attn + ffn)
    decoder_linear = n_dec * (4 * d * d_attn + 2 * d * d_attn + ffn) + d * config.vocab_size
    cross_kv = n_dec * 2 * d * d_attn
    flops = 2 * encoder_linear * enc_len + 2 * decoder_linear * dec_len + 2 * cross_kv * enc_len
    flops += 4 * d_attn * (n_enc * enc_len * enc_len + n_dec * (dec_len * dec_len + dec_len * enc_len))
    if is_gbst:
        flops += gbst_forward_flops(config, inputs_length)
    return float(flops)


def training_flops_per_example(config: Any, inputs_length: int, targets_length: int) -> float:
    return 3.0 * forward_flops(config, inputs_length, targets_length)


def device_peak_tflops(device_name: str) -> float | None:
    """Dense bf16 peak for a CUDA device name, or None when unknown (e.g. CPU)."""
    for key, peak in DEVICE_PEAK_TFLOPS:
        if key in device_name:
            return peak
    return None

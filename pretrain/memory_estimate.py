"""GPU memory a training step needs: model states under each ZeRO stage, plus activations.

Model states come from DeepSpeed's estimators (`estimate_zero2_model_states_mem_needs`,
`estimate_zero3_model_states_mem_needs`), whose accounting per parameter is 2 bytes of bf16
weights plus 18 of bf16 and fp32 gradients, fp32 master weights and Adam's two moments, split
over the ranks as the stage partitions them; stages 0 and 1, which DeepSpeed has no estimator
for, follow the same accounting (stage 0: all 20 bytes on every GPU; stage 1: weights and bf16
gradients whole, the 16 fp32 bytes partitioned).

Activations are what one training sequence keeps for the backward pass, in bf16 elements
(2 bytes; attention scores count double, as eager attention keeps a float32 softmax), with d the
model width, f the feed-forward width, i = heads x d_kv, a the heads, q and k the query and key
lengths (GBSWT5's encoder runs on ceil(input_length / downsample_factor) positions):

    self-attention   4qd + 4qi + 4aqk      (norm in/out, Q K V and context, scores, residual)
    cross-attention  4qd + 2qi + 2ki + 4aqk
    gated FF         4qd + 4qf             (norm in/out, both input projections, GELU, product)
    GBST             16 n d                (n = input bytes: embedding, conv, block means, mixture)
    logits           3 t V                 (bf16 logits and their float32 log-softmax)

summed over the encoder's layers (self-attention + FF), the decoder's (self + cross + FF) and
once for GBST and the logits. Against the tensors a CPU forward pass saved (bf16, eager attention,
1024/189 ids; small 0.44, base 0.74, large 1.51 GiB per sequence) it is within 12%; SDPA on a GPU
keeps no score matrix, so there it is an upper bound. With gradient checkpointing each layer keeps
only its input (qd) and one layer's activations are recomputed at a time. Allocator slack and
temporary buffers come on top: keep about 20% headroom.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

BF16 = 2


@dataclass(frozen=True)
class Shape:
    """What the activation formula needs of a model and a batch geometry."""

    d_model: int
    d_ff: int
    heads: int
    d_kv: int
    encoder_layers: int
    decoder_layers: int
    vocab: int
    encoder_length: int  # positions the encoder stack runs on
    input_bytes: int  # GBST's input length; 0 for a plain ByT5
    target_length: int

    @classmethod
    def of(cls, config, input_length: int, target_length: int) -> "Shape":
        factor = getattr(config, "downsample_factor", None)
        return cls(config.d_model, config.d_ff, config.num_heads, config.d_kv, config.num_layers,
                   config.num_decoder_layers, config.vocab_size,
                   math.ceil(input_length / factor) if factor else input_length,
                   input_length if factor else 0, target_length)


def _attention(shape: Shape, q: int, k: int, cross: bool) -> int:
    i, d = shape.heads * shape.d_kv, shape.d_model
    projections = 2 * q * i + 2 * k * i if cross else 4 * q * i
    return 4 * q * d + projections + 4 * shape.heads * q * k


def _feed_forward(shape: Shape, q: int) -> int:
    return 4 * q * shape.d_model + 4 * q * shape.d_ff


def activation_bytes_per_sequence(shape: Shape, gradient_checkpointing: bool = False) -> int:
    """Bytes of activations one sequence keeps for the backward pass (module docstring's formula)."""
    s, t, d = shape.encoder_length, shape.target_length, shape.d_model
    encoder_layer = _attention(shape, s, s, cross=False) + _feed_forward(shape, s)
    decoder_layer = _attention(shape, t, t, cross=False) + _attention(shape, t, s, cross=True) + _feed_forward(shape, t)
    fixed = 16 * shape.input_bytes * d + 3 * t * shape.vocab
    if gradient_checkpointing:
        layers = shape.encoder_layers * s * d + shape.decoder_layers * t * d + max(encoder_layer, decoder_layer)
    else:
        layers = shape.encoder_layers * encoder_layer + shape.decoder_layers * decoder_layer
    return BF16 * (layers + fixed)


def largest_layer_params(model: torch.nn.Module) -> int:
    """Parameters of the module holding the most parameters directly (ZeRO-3 gathers one at a time)."""
    return max((sum(p.numel() for p in m.parameters(recurse=False)) for m in model.modules()), default=0)


def model_states_bytes(stage: int, params: int, largest_layer: int, gpus_per_node: int, nodes: int,
                       offload_optimizer: bool = False, offload_params: bool = False) -> int:
    """Bytes of weights, gradients and optimizer states per GPU under ZeRO `stage`."""
    gpus = gpus_per_node * nodes
    if stage == 0:
        return 20 * params
    if stage == 1:
        return 4 * params + (0 if offload_optimizer else 16 * params // gpus)
    if stage == 2:
        from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

        return estimate_zero2_model_states_mem_needs(params, gpus_per_node, nodes, cpu_offload=offload_optimizer)[1]
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs

    return estimate_zero3_model_states_mem_needs(params, largest_layer, gpus_per_node, nodes, cpu_offload=offload_optimizer,
                                                 cpu_offload_params=offload_params)[1]

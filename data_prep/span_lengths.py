"""T5 span-corruption length arithmetic (docs/ARCHITECTURE.md, Span corruption): noise and span
counts per raw length, the corrupted inputs/targets lengths, and the raw chunk length for an
inputs length.

Light on purpose (NumPy only) and in data_prep, which must not import `pretrain`: the data prep
uses it to size chunks, the collator to corrupt them, the config validation to check lengths, so
all three agree to the byte.
"""
from __future__ import annotations

import numpy as np


def noise_counts_array(lengths, noise_density: float = 0.15, mean_noise_span_length: float = 20.0
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(num_noise, num_spans) per raw length, exactly as seqio's `random_spans_noise_mask`.

    seqio computes both in float32 with round-half-to-even; float32 is kept here so that the
    rare half-way cases round the same way.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    num_noise = np.round(lengths.astype(np.float32) * np.float32(noise_density)).astype(np.int64)
    num_noise = np.minimum(np.maximum(num_noise, 1), lengths - 1)
    num_spans = np.round(num_noise.astype(np.float32) / np.float32(mean_noise_span_length)).astype(np.int64)
    return num_noise, np.maximum(num_spans, 1)


def noise_counts(length: int, noise_density: float = 0.15, mean_noise_span_length: float = 20.0) -> tuple[int, int]:
    """`noise_counts_array` for one raw length."""
    num_noise, num_spans = noise_counts_array([length], noise_density, mean_noise_span_length)
    return int(num_noise[0]), int(num_spans[0])


def corrupted_lengths(length: int, noise_density: float = 0.15, mean_noise_span_length: float = 20.0) -> tuple[int, int]:
    """(inputs, targets) lengths, EOS included, of a span-corrupted raw segment of `length` bytes."""
    num_noise, num_spans = noise_counts(length, noise_density, mean_noise_span_length)
    return length - num_noise + num_spans + 1, num_noise + num_spans + 1


def raw_length_for_inputs(inputs_length: int, noise_density: float = 0.15, mean_noise_span_length: float = 20.0) -> int:
    """Largest raw length whose corrupted inputs fit `inputs_length` (T5's `random_spans_helper`).

    T5's helper rounds in Python floats and does not clamp; it is mirrored here so that
    1024 -> 1193 (targets 189), ByT5's published setting.
    """

    def inputs_len(tokens: int) -> int:
        num_noise = int(round(tokens * noise_density))
        num_spans = int(round(num_noise / mean_noise_span_length))
        return tokens - num_noise + num_spans + 1

    tokens = inputs_length - 1
    while inputs_len(tokens + 1) <= inputs_length:
        tokens += 1
    return tokens

"""Counter-based randomness: every random number the data path draws is a hash, not a generator state.

A draw is splitmix64 of a key and a counter, and keys are derived from the run seed by hashing in
integers (a stream id, an epoch, a directory, a sample id). So any draw can be recomputed from
its coordinates alone: a batch does not depend on which DataLoader worker or rank made it, and
resuming needs no saved generator. Shuffles are keyed Feistel permutations evaluated on demand,
so no permutation array is ever held in memory.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_FEISTEL_ROUNDS = 4

# Stream ids: the data stream's independent families of draws (the collator's draws are keyed
# by sample id instead). Changing one changes every batch of every run.
MIX_STREAM, PASS_STREAM, VALIDATION_STREAM = 1, 2, 3


def splitmix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, elementwise on a uint64 (or int64) array, wrapping.

    Arrays only: on NumPy scalars the same arithmetic would warn about overflow.
    """
    z = z.astype(np.uint64, copy=False)
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def counter_offsets(counter: np.ndarray) -> np.ndarray:
    """What `keyed_hash` adds to the key for each counter; callers that hash many keys with the
    same counters compute it once."""
    return (counter.astype(np.uint64) + np.uint64(1)) * _GAMMA


def keyed_hash(key: np.ndarray, counter: np.ndarray) -> np.ndarray:
    """Counter-based random uint64s: splitmix64 of key + (counter + 1) * gamma (arrays, broadcasting)."""
    return splitmix64(key + counter_offsets(counter))


def seed_key(seed: int) -> np.ndarray:
    """The uint64 key every counter-based draw of a seed starts from."""
    return splitmix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))


def stream_key(seed: int, *parts: int | np.ndarray) -> np.ndarray:
    """The key of one family of draws: the seed's key with each part (int or array) hashed in."""
    key = seed_key(seed)
    for part in parts:
        key = splitmix64(key ^ np.asarray(part, dtype=np.int64).astype(np.uint64))
    return key


def example_keys(key: np.ndarray, sample_ids: np.ndarray) -> np.ndarray:
    """One key per sample id under a seed's key (the collator's per-example draws)."""
    return splitmix64(key ^ splitmix64(np.asarray(sample_ids, dtype=np.int64)))


def content_ids(chunks: Sequence[bytes | np.ndarray]) -> np.ndarray:
    """A 63-bit BLAKE2b id per chunk: the default sample id, so corruption depends on content only."""
    return np.fromiter(map(_content_id, chunks), dtype=np.int64, count=len(chunks))


def _content_id(chunk: bytes | np.ndarray) -> int:
    return int.from_bytes(hashlib.blake2b(chunk, digest_size=8).digest(), "little") >> 1


def permute(index: np.ndarray, size: int, key: np.ndarray | int) -> np.ndarray:
    """A keyed pseudo-random bijection of [0, size), evaluated at `index` (int64 array).

    A 4-round unbalanced Feistel network on the bit width of size - 1 (so fewer than half of
    its values fall outside [0, size)), with cycle walking for those. `key` may be an array
    (one key per index).
    """
    index = np.asarray(index, dtype=np.int64)
    if size <= 1:
        return np.zeros_like(index)
    bits = int(size - 1).bit_length()
    out = _feistel(index.astype(np.uint64), bits, np.asarray(key, dtype=np.uint64))
    outside = out >= np.uint64(size)
    while outside.any():
        out = np.where(outside, _feistel(out, bits, np.asarray(key, dtype=np.uint64)), out)
        outside = out >= np.uint64(size)
    return out.astype(np.int64)


def _feistel(x: np.ndarray, bits: int, key: np.ndarray) -> np.ndarray:
    """A bijection of [0, 2**bits): rounds swap a `left` and a `right` part of unequal widths."""
    left_bits, right_bits = bits - bits // 2, bits // 2
    left, right = x >> np.uint64(right_bits), x & np.uint64((1 << right_bits) - 1)
    for round_ in range(_FEISTEL_ROUNDS):
        mixed = keyed_hash(key ^ np.uint64(round_), right) & np.uint64((1 << left_bits) - 1)
        left, right = right, left ^ mixed
        left_bits, right_bits = right_bits, left_bits
    return (left << np.uint64(right_bits)) | right


def uniform_below(bits: np.ndarray, span: np.ndarray) -> np.ndarray:
    """Uniform ints in [0, span) from random uint64s, as int64 (Lemire's multiply-shift).

    Uses the top 32 bits, so span must stay below 2**32; the bias is below span / 2**32 relative.
    """
    return (((bits >> np.uint64(32)) * span) >> np.uint64(32)).astype(np.int64)

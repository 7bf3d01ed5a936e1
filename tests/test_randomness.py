"""pretrain.randomness: splitmix64 and keyed hashes against a pure-Python reference, the keyed permutation."""
from __future__ import annotations

import numpy as np

from pretrain.randomness import example_keys, keyed_hash, permute, seed_key, splitmix64, stream_key, uniform_below

MASK = 2**64 - 1
GAMMA = 0x9E3779B97F4A7C15


def reference_mix(z: int) -> int:
    """Vigna's splitmix64 finaliser on Python ints."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def test_splitmix64_matches_the_published_generator():
    # splitmix64 seeded with 0: the state advances by gamma, each output is the finaliser of it.
    published = [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F, 0xF88BB8A8724C81EC]
    assert keyed_hash(np.uint64(0), np.arange(4)).tolist() == published
    rng = np.random.default_rng(0)
    values = rng.integers(0, 2**63, 200, dtype=np.int64).astype(np.uint64) * np.uint64(3)
    assert splitmix64(values).tolist() == [reference_mix(int(v)) for v in values]


def test_keys_are_the_documented_hash_chains():
    for seed in (0, 5, -1, 2**70 + 3):
        start = reference_mix(seed & MASK)
        assert seed_key(seed).tolist() == [start]
        key = start
        for part in (1, 7, -2):
            key = reference_mix(key ^ (part & MASK))
        assert stream_key(seed, 1, 7, -2).tolist() == [key]
        ids = [0, 3, -5, 2**62]
        assert example_keys(seed_key(seed), np.array(ids)).tolist() == [reference_mix(start ^ reference_mix(i & MASK)) for i in ids]
    counters = np.array([0, 1, 2**32 + 4])
    assert keyed_hash(np.uint64(99), counters).tolist() == [reference_mix((99 + (c + 1) * GAMMA) & MASK) for c in counters.tolist()]


def test_uniform_below_stays_in_range_and_covers_it():
    bits = keyed_hash(np.uint64(1), np.arange(20000))
    for span in (1, 2, 7, 1000):
        draws = uniform_below(bits, np.full(bits.shape, span, dtype=np.uint64))
        assert draws.min() == 0 and draws.max() == span - 1
        assert np.allclose(np.bincount(draws, minlength=span) / len(draws), 1 / span, atol=0.02 + 3 / span ** 0.5 / 100)


def test_permute_is_a_keyed_bijection():
    for size in [1, 2, 3, 7, 64, 100, 1000, 4097]:
        for key in [0, 1, 2**63 + 5]:
            assert sorted(permute(np.arange(size), size, key).tolist()) == list(range(size))
    a, b = permute(np.arange(1000), 1000, 1), permute(np.arange(1000), 1000, 2)
    assert not np.array_equal(a, b) and not np.array_equal(a, np.arange(1000))
    keys = np.array([1, 2] * 500)
    np.testing.assert_array_equal(permute(np.arange(1000), 1000, keys)[::2], a[::2])

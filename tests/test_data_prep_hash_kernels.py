"""The compiled kernels of MinHash against slow pure-Python loops written from their definitions:
the shingle hash, one-permutation bins, rotation densification and band hashing."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from data_prep.dedup import doc_hash
from data_prep.minhash import NearDedupOptions, band_keys

MOD = 2 ** 64
POLY = 0x9E3779B97F4A7C15

# Short words of Hangul, Latin, digits and punctuation with spaces and newlines between them: documents
# shorter and longer than a shingle, empty, or only whitespace.
pieces = st.sampled_from(["가나", "다", "라마바사", "ㅋㅋ", "abc", "Z", "12", "-", "…", "漢字", " ", "  ", "\n", "\n\n"])
texts = st.lists(pieces, max_size=60).map("".join)


def mix(h: int) -> int:
    """murmur3's fmix64."""
    for factor in (0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53):
        h = ((h ^ (h >> 33)) * factor) % MOD
    return h ^ (h >> 33)


def reference_band_keys(text: str, shingle: int, bands: int, rows: int) -> list[int]:
    visible = [ord(c) for c in text if c not in " \n"]
    if len(visible) < shingle:  # keys from the exact hash: matches only exact copies
        return [mix(band ^ doc_hash(text.encode("utf-8"))) for band in range(bands)]
    bins, empty = bands * rows, 1 << 32
    sig = [empty] * bins
    for i in range(len(visible) - shingle + 1):
        h = 0
        for c in visible[i:i + shingle]:
            h = (h * POLY + c) % MOD
        h = mix(h)
        b = ((h >> 32) * bins) >> 32
        sig[b] = min(sig[b], h & 0xFFFFFFFF)
    filled = sig[:]
    for j in range(bins):
        if sig[j] == empty:  # the next non-empty bin, circularly, plus (empty + 1) per step
            step = next(d for d in range(1, bins) if sig[(j + d) % bins] != empty)
            filled[j] = (sig[(j + step) % bins] + step * (empty + 1)) % MOD
    keys = []
    for band in range(bands):
        key = mix(band + 1)
        for row in range(rows):
            key = mix(key ^ filled[row * bands + band])
        keys.append(key)
    return keys


@settings(max_examples=200, deadline=None)
@given(batch=st.lists(texts, max_size=6), shingle=st.sampled_from([1, 2, 5, 7]),
       threshold=st.sampled_from([0.01, 0.5, 0.8, 0.95]))
def test_band_keys_match_the_definition_per_document(batch, shingle, threshold):
    options = NearDedupOptions(True, threshold=threshold, shingle=shingle)
    bands, rows = options.bands_rows
    keys = band_keys(batch, options)
    assert keys.shape == (bands, len(batch)) and keys.dtype == np.uint64
    for i, text in enumerate(batch):  # first, last, empty and whitespace-only documents of a batch
        assert keys[:, i].tolist() == reference_band_keys(text, shingle, bands, rows)

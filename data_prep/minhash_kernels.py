"""The compiled loops behind `minhash.band_keys`: shingle hashes, one-permutation bins, rotation
densification and band hashing, one document at a time (the definitions are in minhash.py's docstring).

Kept apart from minhash.py so that importing the command line does not import numba (~0.4 s): only
the workers that compute band keys load this module. All arithmetic is on uint64 and wraps mod 2**64;
every constant and operand is a uint64, because numba turns mixed uint64/int64 arithmetic into floats.
"""
from __future__ import annotations

import numpy as np

from data_prep.jit import kernel

_M1, _M2 = np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)  # murmur3's fmix64
_POLY = np.uint64(0x9E3779B97F4A7C15)  # shingle hash: c0 * POLY**(n-1) + c1 * POLY**(n-2) + ... + c(n-1)
_EMPTY = np.uint64(1 << 32)  # above every low-32-bit value: marks a bin that no shingle fell in
_LOW32 = np.uint64(0xFFFFFFFF)
_SPACE, _NEWLINE = 32, 10  # the only whitespace cleaned text has; not part of any shingle


@kernel
def mix64(h: np.uint64) -> np.uint64:
    """murmur3's fmix64: every input bit affects every output bit."""
    h ^= h >> np.uint64(33)
    h *= _M1
    h ^= h >> np.uint64(33)
    h *= _M2
    h ^= h >> np.uint64(33)
    return h


@kernel
def band_keys_of(codes: np.ndarray, ends: np.ndarray, shingle: int, bands: int,
                 rows: int) -> tuple[np.ndarray, np.ndarray]:
    """uint64 [bands, documents]: the band keys of the documents whose code points are
    codes[ends[d - 1]:ends[d]], and bool [documents]: True for those without a whole shingle, whose
    keys are meaningless (the caller replaces them)."""
    bins = bands * rows
    keys = np.empty((bands, len(ends)), np.uint64)
    short = np.zeros(len(ends), np.bool_)
    sig = np.empty(bins, np.uint64)
    longest, start = 0, 0
    for end in ends:
        longest, start = max(longest, end - start), end
    # One document's code points without spaces and newlines, after `shingle` zeros: a zero that
    # leaves the window takes nothing from the hash, so the loop over the shingles needs no branch
    # for a document's first characters. Sized for the longest document, not the batch: it stays
    # in cache (and below the mmap threshold of data_prep/malloc.py, which a batch's size is not).
    visible = np.zeros(longest + shingle, np.uint64)
    leaving = np.uint64(1)  # POLY**shingle: the weight of the code point that leaves the window
    for _ in range(shingle):
        leaving *= _POLY
    start = 0
    for doc in range(len(ends)):
        # Without a branch per character: spaces are unpredictable (every few syllables in Korean).
        seen = shingle
        for i in range(start, ends[doc]):
            visible[seen] = codes[i]
            seen += (codes[i] != _SPACE) & (codes[i] != _NEWLINE)
        sig[:] = _EMPTY
        h = np.uint64(0)
        first = min(2 * shingle - 1, seen)  # where the first whole shingle ends
        for i in range(shingle, first):
            h = h * _POLY + visible[i]
        for i in range(first, seen):
            # Rolling: the hash of visible[i - shingle + 1 : i + 1].
            h = h * _POLY + visible[i] - visible[i - shingle] * leaving
            # One permutation: the high 32 bits pick the bin, the low 32 bits compete for its minimum.
            m = mix64(h)
            b = ((m >> np.uint64(32)) * np.uint64(bins)) >> np.uint64(32)
            sig[b] = min(sig[b], m & _LOW32)
        start = ends[doc]
        short[doc] = seen < 2 * shingle
        densify(sig)
        for band in range(bands):
            # Rows far apart (band, band + bands, ...): densification copies a bin into its neighbours.
            key = mix64(np.uint64(band + 1))
            for row in range(rows):
                key = mix64(key ^ sig[row * bands + band])
            keys[band, doc] = key
    return keys, short


@kernel
def densify(sig: np.ndarray) -> None:
    """Rotation densification, in place: an empty bin takes the value of the next non-empty bin
    (circularly) plus (EMPTY + 1) per step, so two documents agree there only if they agree on that
    bin and on the distance to it. Scans the bins twice around, backwards, so the nearest filled bin
    at or after each position is known when it is reached; a wholly empty `sig` is left as it is."""
    bins = len(sig)
    nearest = -1  # in 0 .. 2 * bins - 1, the doubled circle
    for j in range(2 * bins - 1, -1, -1):
        here = j - bins if j >= bins else j  # not `%`: a division per bin costs as much as the rest
        if sig[here] != _EMPTY:  # read before this pass writes it: the original
            nearest = j
        elif j < bins and nearest >= 0:
            source = nearest - bins if nearest >= bins else nearest
            sig[j] = sig[source] + np.uint64(nearest - j) * (_EMPTY + np.uint64(1))

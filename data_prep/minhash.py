"""MinHash signatures and LSH band keys of documents, computed in batches by compiled loops
(minhash_kernels.py: one pass over each document's code points, no per-shingle arrays).

Shingles are 5-grams of the characters of the (NFC) text with all whitespace removed: Hangul
syllables are whole characters, and spacing, which Korean writers vary freely, does not count
(the README's Measured figures, the bench_minhash.py row, has the measurement behind this choice).

The signature is one-permutation MinHash (Li, Owen & Zhang 2012) with rotation densification
(Shrivastava & Li 2014): each shingle is hashed once (murmur3's fmix64 of a polynomial in its code
points), its high bits pick one of `bands * rows` bins and its low 32 bits compete for that bin's
minimum; an empty bin borrows the next non-empty one's value. Two documents' bins agree with
probability close to the Jaccard similarity of their shingle sets, as with `bands * rows`
independent permutations, at the cost of one hash per shingle instead of one per shingle and
permutation (bench/bench_minhash.py compares it with datasketch, rensa and k-permutation hashing).
A band key is a 64-bit hash of one band's `rows` bin values.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data_prep.atomic import write_npy
from data_prep.dedup import doc_hash
from data_prep.lazy import lazy_module

minhash_kernels = lazy_module("data_prep.minhash_kernels")  # numba: loaded where keys are first computed
text_stats = lazy_module("data_prep.text_stats")  # code points, encoded once for every step

# Hash count of FineWeb-2's Korean configuration (14 bands of 8 rows); other thresholds use at most as many.
MAX_HASHES = 112
MIN_RECALL_AT_THRESHOLD = 0.9


@dataclass(frozen=True)
class NearDedupOptions:
    enabled: bool = False
    threshold: float = 0.8  # Jaccard of shingle sets
    shingle: int = 5  # characters

    @property
    def bands_rows(self) -> tuple[int, int]:
        return bands_for(self.threshold)


def collision_probability(jaccard: float, bands: int, rows: int) -> float:
    """Chance that two documents at this Jaccard similarity share at least one band key."""
    return 1.0 - (1.0 - jaccard ** rows) ** bands


def bands_for(threshold: float) -> tuple[int, int]:
    """The most selective (bands, rows) with bands * rows <= MAX_HASHES that still catches a pair at
    Jaccard `threshold` with probability >= MIN_RECALL_AT_THRESHOLD: at 0.8 that is FineWeb-2's 14 x 8."""
    for rows in range(MAX_HASHES, 0, -1):
        bands = MAX_HASHES // rows
        if collision_probability(threshold, bands, rows) >= MIN_RECALL_AT_THRESHOLD:
            return bands, rows
    return MAX_HASHES, 1


def shingle_text(text: str) -> str:
    """What the shingles are taken from: the text without any whitespace (the reference definition;
    `band_keys` skips the spaces and newlines, the only whitespace cleaned text has)."""
    return "".join(text.split())


def band_keys(texts: list[str], options: NearDedupOptions) -> np.ndarray:
    """uint64 [bands, len(texts)]: each document's LSH band keys. A document with fewer characters
    than one shingle gets keys from its exact hash, so it matches only its exact copies."""
    codes = np.frombuffer("".join(texts).encode("utf-32-le"), np.uint32)  # the fastest way to code points
    return _band_keys(codes, texts, options)


def _band_keys(codes: np.ndarray, texts: list[str], options: NearDedupOptions) -> np.ndarray:
    """band_keys(texts, options), given `codes`, the texts' code points back to back."""
    bands, rows = options.bands_rows
    ends = np.cumsum(np.fromiter(map(len, texts), np.int64, len(texts)))
    keys, short = minhash_kernels.band_keys_of(codes, ends, options.shingle, bands, rows)
    for i in np.flatnonzero(short).tolist():
        exact = np.uint64(doc_hash(texts[i].encode("utf-8")))
        keys[:, i] = [minhash_kernels.mix64(np.uint64(band) ^ exact) for band in range(bands)]
    return keys


class BandKeySpill:
    """A worker's band keys for one unit, computed in batches and written, per band sorted by key
    (with each document's index in the unit), to `path` when the unit is committed."""

    _BATCH_CHARS = 1 << 18  # big enough to amortise the kernel's per-call cost, small enough for the cache

    def __init__(self, path: Path, options: NearDedupOptions):
        self._path, self._options = path, options
        self._texts: list[str] = []
        self._points: list[np.ndarray] = []
        self._chars = 0
        self._keys: list[np.ndarray] = []
        # Every batch's code points go here: a new block of a batch's size (over malloc.py's mmap
        # threshold) would cost a page fault per 4 KB, more than the copy itself.
        self._codes = np.empty(2 * self._BATCH_CHARS, np.uint32)

    def add(self, text: str) -> None:
        # The last step (PII masking, or the quality filters) has most often just encoded this
        # very text: its code points are still in text_stats' cache, and a batch is joined once.
        self._texts.append(text)
        self._points.append(text_stats.code_points(text))
        self._chars += len(text)
        if self._chars >= self._BATCH_CHARS:
            self._flush()

    def _flush(self) -> None:
        if self._texts:
            codes = self._codes[:self._chars] if self._chars <= len(self._codes) else None
            codes = np.concatenate(self._points, out=codes)
            self._keys.append(_band_keys(codes, self._texts, self._options))
        self._texts, self._points, self._chars = [], [], 0

    def commit(self) -> None:
        self._flush()
        bands = self._options.bands_rows[0]
        keys = np.concatenate(self._keys, axis=1) if self._keys else np.zeros((bands, 0), np.uint64)
        order = np.argsort(keys, axis=1, kind="stable")
        write_npy(self._path, np.stack([np.take_along_axis(keys, order, axis=1), order.astype(np.uint64)]))

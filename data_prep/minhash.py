"""MinHash signatures and LSH band keys of documents, computed in batches with NumPy.

Shingles are 5-grams of the characters of the (NFC) text with all whitespace removed: Hangul
syllables are whole characters, and spacing, which Korean writers vary freely, does not count
(README, Near-duplicates, has the measurement behind this choice).

The signature is one-permutation MinHash (Li, Owen & Zhang 2012) with rotation densification
(Shrivastava & Li 2014): each shingle is hashed once (a 64-bit mix of its code points), its high
bits pick one of `bands * rows` bins and its low 32 bits compete for that bin's minimum; an empty
bin borrows the next non-empty one's value. Two documents' bins agree with probability close to
the Jaccard similarity of their shingle sets, as with `bands * rows` independent permutations,
at the cost of one hash per shingle instead of one per shingle and permutation
(bench/bench_minhash.py compares it with datasketch, rensa and k-permutation hashing).
A band key is a 64-bit hash of one band's `rows` bin values.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data_prep.atomic import write_npy
from data_prep.dedup import doc_hash

_M1, _M2 = np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53)  # murmur3's fmix64
_POLY = np.uint64(0x9E3779B97F4A7C15)
_EMPTY = np.uint64(1 << 32)
_SPACE, _NEWLINE = np.uint32(ord(" ")), np.uint32(ord("\n"))
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


def _mix(h: np.ndarray) -> np.ndarray:
    """murmur3 fmix64, in place on a uint64 array."""
    h ^= h >> np.uint64(33)
    h *= _M1
    h ^= h >> np.uint64(33)
    h *= _M2
    h ^= h >> np.uint64(33)
    return h


def shingle_text(text: str) -> str:
    """What the shingles are taken from: the text without any whitespace (the reference definition;
    `band_keys` removes the spaces and newlines, the only whitespace cleaned text has, in NumPy)."""
    return "".join(text.split())


def band_keys(texts: list[str], options: NearDedupOptions) -> np.ndarray:
    """uint64 [bands, len(texts)]: each document's LSH band keys. A document with fewer characters
    than one shingle gets keys from its exact hash, so it matches only its exact copies."""
    bands, rows = options.bands_rows
    n = options.shingle
    codes = np.frombuffer("".join(texts).encode("utf-32-le"), np.uint32)
    visible = (codes != _SPACE) & (codes != _NEWLINE)
    # str.count is far cheaper than a cumulative sum over every character
    lengths = np.fromiter((len(t) - t.count(" ") - t.count("\n") for t in texts), np.int64, len(texts))
    visible_ends = np.cumsum(lengths)
    codes = codes[visible].astype(np.uint64)
    span = max(len(codes) - n + 1, 0)
    h = codes[:span].copy()
    for k in range(1, n):
        h *= _POLY
        h += codes[k:span + k]
    inside = np.ones(span, bool)  # False where a shingle straddles two documents
    for k in range(1, n):
        starts = visible_ends[:-1] - k
        inside[starts[(starts >= 0) & (starts < span)]] = False
    h = _mix(h[inside])
    counts = np.maximum(lengths - n + 1, 0)
    doc_of = np.repeat(np.arange(len(texts), dtype=np.uint64), counts)
    sig = _one_permutation(h, doc_of, len(texts), bands * rows)
    keys = _band_keys(sig, bands, rows)
    for i in np.flatnonzero(counts == 0).tolist():
        exact = np.uint64(doc_hash(texts[i].encode("utf-8")))
        keys[:, i] = _mix(np.arange(bands, dtype=np.uint64) ^ exact)
    return keys


def _one_permutation(h: np.ndarray, doc_of: np.ndarray, docs: int, bins: int) -> np.ndarray:
    """uint64 [docs, bins]: per document and bin, the smallest low-32-bit value of the shingle hashes
    falling in that bin; empty bins densified by rotation."""
    cell = doc_of * np.uint64(bins) + (((h >> np.uint64(32)) * np.uint64(bins)) >> np.uint64(32))
    sig = np.full(docs * bins, _EMPTY, np.uint64)
    np.minimum.at(sig, cell.astype(np.int64), h & np.uint64(0xFFFFFFFF))
    sig = sig.reshape(docs, bins)
    empty = sig == _EMPTY
    if empty.any():
        sig = _densify(sig, empty)
    return sig


def _densify(sig: np.ndarray, empty: np.ndarray) -> np.ndarray:
    """Rotation densification: an empty bin takes the next non-empty bin's value (circularly) plus
    a constant per step, so that two documents agree there only if they agree on that bin."""
    docs, bins = sig.shape
    cols = np.arange(2 * bins)
    filled = np.where(np.concatenate([~empty, ~empty], axis=1), cols, 2 * bins)
    nearest = np.minimum.accumulate(filled[:, ::-1], axis=1)[:, ::-1][:, :bins]
    whole = np.all(empty, axis=1)
    nearest[whole] = cols[:bins]  # only possible for a document without shingles, whose keys are replaced
    source = np.take_along_axis(np.concatenate([sig, sig], axis=1), np.minimum(nearest, 2 * bins - 1), axis=1)
    steps = (nearest - cols[:bins]).astype(np.uint64)
    return np.where(empty, source + steps * (_EMPTY + np.uint64(1)), sig)


def _band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """Band b hashes bins b, b + bands, b + 2 * bands, ...: densification copies a bin's value into
    its neighbours, so a band's rows are taken far apart."""
    spread = sig[:, :bands * rows].reshape(sig.shape[0], rows, bands)
    keys = _mix(np.broadcast_to(np.arange(1, bands + 1, dtype=np.uint64), (sig.shape[0], bands)).copy())
    for r in range(rows):
        keys ^= spread[:, r, :]
        _mix(keys)
    return np.ascontiguousarray(keys.T)


class BandKeySpill:
    """A worker's band keys for one unit, computed in batches and written, per band sorted by key
    (with each document's index in the unit), to `path` when the unit is committed."""

    _BATCH_CHARS = 1 << 18  # big enough to amortise NumPy's per-call cost, small enough for the cache

    def __init__(self, path: Path, options: NearDedupOptions):
        self._path, self._options = path, options
        self._texts: list[str] = []
        self._chars = 0
        self._keys: list[np.ndarray] = []

    def add(self, text: str) -> None:
        self._texts.append(text)
        self._chars += len(text)
        if self._chars >= self._BATCH_CHARS:
            self._flush()

    def _flush(self) -> None:
        if self._texts:
            self._keys.append(band_keys(self._texts, self._options))
        self._texts, self._chars = [], 0

    def commit(self) -> None:
        self._flush()
        bands = self._options.bands_rows[0]
        keys = np.concatenate(self._keys, axis=1) if self._keys else np.zeros((bands, 0), np.uint64)
        order = np.argsort(keys, axis=1, kind="stable")
        write_npy(self._path, np.stack([np.take_along_axis(keys, order, axis=1), order.astype(np.uint64)]))

"""The compiled loops behind decontamination: N-gram window hashes of evaluation passages and the
lookup of every window of a document line (the definitions are in decontam.py's docstring).

Kept apart from decontam.py so that importing the command line does not import numba (~0.4 s): it
is loaded where passages are hashed or documents checked. The hash of the window of code points
c[i], ..., c[i + N - 1] is sum((c[i + t] + 1) * BASE**t) mod 2**64; all arithmetic is on uint64
(numba turns mixed uint64/int64 arithmetic into floats, so every operand is a uint64).
"""
from __future__ import annotations

import numpy as np

from data_prep.jit import kernel, pairs

# Here, not in decontam.py: numba's disk cache notices an edit of the file a kernel is in only, and a
# constant compiled into a kernel from another file would stay stale in the cache.
NGRAM = 16

_BASE = np.uint64(0x100000001B3)  # odd, so invertible mod 2**64: the window slides by one multiplication
_BASE_INVERSE = np.uint64(pow(int(_BASE), -1, 2**64))
_POWERS = np.array([pow(int(_BASE), t, 2**64) for t in range(NGRAM)], np.uint64)  # BASE**t, t < N
_SPACE, _NEWLINE = 32, 10


@kernel
def _slide(h: np.uint64, run: int, entering: np.uint64, leaving: np.uint64) -> np.uint64:
    """The hash of the last N code points after `entering` follows `run` code points of one line
    (`leaving`: the code point N before it, which drops out of the window once the line has N)."""
    if run < NGRAM:
        return h + (entering + np.uint64(1)) * _POWERS[run]
    return (h - (leaving + np.uint64(1))) * _BASE_INVERSE + (entering + np.uint64(1)) * _POWERS[NGRAM - 1]


@kernel
def _is_letter(c: np.uint32) -> bool:
    """Latin, Hangul jamo, CJK ideographs, Hangul syllables."""
    lower = c | 0x20  # ASCII upper case to lower case
    return 0x61 <= lower <= 0x7A or 0x3131 <= c <= 0x318E or 0x4E00 <= c <= 0x9FFF or 0xAC00 <= c <= 0xD7A3


@kernel
def passage_grams(points: np.ndarray) -> np.ndarray:
    """The hashes of the N-code-point windows of a passage (without whitespace) that hold at least
    N/2 letters: a row of dashes or digits in a passage would match every table rule and number
    list of the corpus."""
    grams = np.empty(max(len(points) - NGRAM + 1, 0), np.uint64)
    kept = 0
    h = np.uint64(0)
    letters = 0  # in the current window
    for i in range(len(points)):
        leaving = points[i - NGRAM] if i >= NGRAM else np.uint32(0)
        h = _slide(h, i, np.uint64(points[i]), np.uint64(leaving))
        letters += 1 if _is_letter(points[i]) else 0
        if i >= NGRAM and _is_letter(leaving):
            letters -= 1
        if i >= NGRAM - 1 and letters >= NGRAM // 2:
            grams[kept] = h
            kept += 1
    return grams[:kept]


def overlapping_lines(points: np.ndarray, table: np.ndarray, bits: int, hashes: np.ndarray,
                      origin: np.ndarray) -> list[list[int]]:
    """[line number, origin of its first matching window] of each line of a document (code points,
    lines split at newlines, spaces ignored) with a window whose hash is in `hashes` (sorted;
    `table` has a bit set for each value of their top `bits` bits). A window never spans a
    newline: an evaluation passage's N-gram lies within one line."""
    return pairs(_overlapping_lines, points, table, bits, hashes, origin)[0]


@kernel
def _overlapping_lines(points: np.ndarray, table: np.ndarray, bits: int, hashes: np.ndarray, origin: np.ndarray,
                       found: np.ndarray) -> tuple[int]:
    """How many lines overlap; the first len(found) are written to `found`."""
    # Spaces out first, without a branch per character (they come every few syllables, unpredictably).
    visible = np.empty(len(points), np.uint32)
    count = 0
    for c in points:
        visible[count] = c
        count += c != _SPACE
    bad = 0
    last = -1  # the last line found
    shift = np.uint64(64 - bits)
    line, run, h = 0, 0, np.uint64(0)
    for i in range(count):
        c = visible[i]
        if c == _NEWLINE:
            line, run, h = line + 1, 0, np.uint64(0)
            continue
        h = _slide(h, run, np.uint64(c), np.uint64(visible[i - NGRAM] if run >= NGRAM else 0))
        run += 1
        if run < NGRAM or last == line:
            continue
        # The bit table (small enough for the cache) rejects nearly every window with one load;
        # the rare rest are settled by bisection.
        top = h >> shift
        if not (table[top >> np.uint64(3)] >> (top & np.uint64(7))) & 1:
            continue
        k = np.searchsorted(hashes, h)
        if k < len(hashes) and hashes[k] == h:
            if bad < len(found):
                found[bad, 0], found[bad, 1] = line, origin[k]
            bad += 1
            last = line
    return (bad,)

"""Compiled loops (data_prep.jit) over one document's code points that look at characters one by
one: the character classes of the quality filters (Hangul, Latin junk), their counts, and the
cutting of repeated-character runs. Exact ids of lines and words are in span_kernels.

Documents average a few KB, so a NumPy call per measure costs more in call overhead than in
arithmetic; a loop over the code points does all of one measure's work in one call. A kernel
calls kernels and reads constants of its own file only: numba's disk cache notices an edit of the
file a kernel is in, not of another file whose code it compiled in. Imported on first use only
(data_prep.lazy): numba costs 0.4 s to import.
"""
from __future__ import annotations

import re

import numpy as np

from data_prep.jit import kernel

# Hangul syllables, jamo and compatibility jamo (the characters of ㅋㅋㅋ and ㅠㅠ, too).
HANGUL_RANGES = ((0xAC00, 0xD7A3), (0x1100, 0x11FF), (0x3130, 0x318F))
# Latin-junk tokens: runs of JUNK_RUN or more Latin letters, digits and URL/base64 symbols without
# a space (URLs, hashes, base64, keyboard mashing). Prose never has a 25-character token.
JUNK_CHARS = r"[A-Za-z0-9+/=_\-.:%&?#@~]"
JUNK_RUN = 25
_JUNK = np.array([re.fullmatch(JUNK_CHARS, chr(point)) is not None for point in range(128)])
# str.isspace() of every code point up to U+3000 (ideographic space), the last one it is true for.
_SPACE = np.array([chr(point).isspace() for point in range(0x3001)])


@kernel
def is_hangul(point: int) -> bool:
    for low, high in HANGUL_RANGES:
        if low <= point <= high:
            return True
    return False


@kernel
def char_counts(points: np.ndarray) -> tuple[int, int, int]:
    """(Hangul characters, spaces and newlines, characters in Latin-junk tokens)."""
    hangul = blanks = 0
    for i in range(len(points)):  # no branch: the compiler vectorises this loop
        hangul += is_hangul(points[i])
        blanks += (points[i] == 0x20) | (points[i] == 0x0A)
    junk = run = 0
    for i in range(len(points)):
        # A junk token is a maximal run of JUNK_RUN or more. DEL (0x7F) is no junk character and
        # stands for every non-ASCII one: a lookup instead of a branch that mispredicts.
        if _JUNK[min(points[i], 0x7F)]:
            run += 1
        else:
            if run >= JUNK_RUN:
                junk += run
            run = 0
    return hangul, blanks, junk + (run if run >= JUNK_RUN else 0)


@kernel
def _cut(point: int, run: int, hangul_keep: int, any_keep: int) -> bool:
    """Whether `point`, the run-th of a run of one character, is cut."""
    if point < len(_SPACE) and _SPACE[point]:
        return False
    return run > (hangul_keep if hangul_keep and is_hangul(point) else any_keep)


@kernel
def first_cut(points: np.ndarray, hangul_keep: int, any_keep: int) -> int:
    """The first point `squeeze` cuts, or -1 (most documents: they are not copied, and a kernel
    that returns an int costs a microsecond less to call than one that returns an array)."""
    # Only a run longer than the smaller limit can be cut: the character is classified just then.
    shortest = min(any_keep, hangul_keep) if hangul_keep else any_keep
    run = 1
    for i in range(1, len(points)):
        run = run + 1 if points[i] == points[i - 1] else 1
        if run > shortest and _cut(points[i], run, hangul_keep, any_keep):
            return i
    return -1


@kernel
def squeeze(points: np.ndarray, hangul_keep: int, any_keep: int) -> np.ndarray:
    """`points` with each run of one repeated non-space character cut to its first `hangul_keep`
    (Hangul; 0: no limit) or `any_keep` (any other character)."""
    out = np.empty(len(points), np.uint32)
    size = run = 0
    for i in range(len(points)):
        run = run + 1 if i and points[i] == points[i - 1] else 1
        if not _cut(points[i], run, hangul_keep, any_keep):
            out[size] = points[i]
            size += 1
    return out[:size]

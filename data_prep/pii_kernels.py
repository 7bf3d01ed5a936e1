"""The compiled loop behind `pii.mask_pii`'s first pass: where in a document digit runs long enough
for a number pattern are. Python's `re` scans Hangul at ~150 MB/s even for one character class;
a loop over the code points does it several times faster, and `re` then sees only those spans.
The same pass notes whether there is an "@": the e-mail pattern runs only on documents that have one.

Kept apart from pii.py so that importing the command line does not import numba (~0.4 s).
"""
from __future__ import annotations

import sys

import numpy as np

from data_prep.jit import kernel, pairs

MIN_RUN = 7  # one opening character, then at least 6 more
# Unicode has no decimal digit from plane 2 on (CJK ideographs, tags, private use; a test checks
# this Python's tables), so the table is built from planes 0 and 1 only: 8x fewer lookups at import.
DIGITS_END = 0x20000
_SEPARATORS = "-. ()+"  # may be inside a number beside digits
_OPENERS = "+("  # may also open one


def _bits(digits: list[int], extra: str) -> np.ndarray:
    """Bit c % 8 of byte c // 8 set for each code point c among `digits` and `extra`. 139 KB."""
    points = np.array(digits + [ord(c) for c in extra], np.uint32)
    bits = np.zeros((sys.maxunicode + 1) // 8, np.uint8)
    np.bitwise_or.at(bits, points >> 3, np.left_shift(1, points & 7).astype(np.uint8))
    return bits


# Every Unicode decimal digit, since `\\d` of a str pattern is any of them (category Nd: fullwidth
# and other scripts' digits too); built in ~0.02 s.
_DECIMALS = [c for c in range(DIGITS_END) if chr(c).isdecimal()]
_CONTINUING = _bits(_DECIMALS, _SEPARATORS)  # what may be inside a number
_OPENING = _bits(_DECIMALS, _OPENERS)  # what may open one
_AT = 0x40


def candidate_spans(points: np.ndarray) -> tuple[list[list[int]], bool]:
    """[start, end] of each match of `[\\d+(][\\d\\-. ()+]{6,}` in the code points, as `re.finditer`
    finds them, and whether there is an "@" (which every e-mail address has), in one pass."""
    spans, (at,) = pairs(_candidate_spans, points, _CONTINUING, _OPENING)
    return spans, at


@kernel
def _candidate_spans(points: np.ndarray, continuing: np.ndarray, opening: np.ndarray,
                     found: np.ndarray) -> tuple[int, bool]:
    """The number of spans, of which the first len(found) are written to `found`, and whether an
    "@" is among the code points."""
    # A match starts at the first opening character of a maximal run of continuing characters and
    # runs to the run's end (greedy) if that leaves at least MIN_RUN characters: a later start in
    # the same run would leave fewer, so there is at most one match per run. A run's characters
    # before its first opening one count for nothing, so until a match has started only an opening
    # character is looked for: the spaces between words (continuing, unpredictable) then take no
    # branch. One table load per character, not a branch per class.
    count = 0
    start = -1  # the first opening character of the current run, or -1 before one
    at = False
    for i in range(len(points) + 1):
        c = points[i] if i < len(points) else 0  # a sentinel that ends the last run
        at |= c == _AT
        if start < 0:
            if (opening[c >> 3] >> (c & 7)) & 1:
                start = i
        elif not (continuing[c >> 3] >> (c & 7)) & 1:
            if i - start >= MIN_RUN:
                if count < len(found):
                    found[count, 0], found[count, 1] = start, i
                count += 1
            start = -1
    return count, at

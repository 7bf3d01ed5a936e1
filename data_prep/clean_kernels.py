"""clean.normalize's rewrite as one compiled loop (data_prep.jit) over a document's code points, for
the runs that load numba kernels anyway (clean.normalize_compiled says why both exist).

Each character's class comes from a table built once from clean's own rewrite table (char_classes)
and passed as an argument: numba's disk cache notices an edit of this file only, so a table frozen
into the compiled code from clean.py could go stale. Imported on first use only (data_prep.lazy):
numba costs 0.4 s to import.
"""
from __future__ import annotations

import numpy as np

from data_prep.jit import kernel

# What a character of the input becomes: kept (in NFC_SAFE or not), a space or a newline (as it
# stands, or rewritten to one), a newline unless a \n follows (\r), or removed.
KEEP, UNPROVEN, SPACE, NEWLINE, TO_SPACE, TO_NEWLINE, CR, DROP = range(8)
# Code points of canonical combining class 0 and NFC quick check Yes (UAX #15): a text made of them
# only is NFC, so no other character of a document means unicodedata has nothing to do. The long
# runs of them (unassigned code points, class 0 and Yes today, included) that cover what Korean web
# text uses: Latin, Greek and Cyrillic, punctuation and symbols, CJK, Hangul syllables and
# compatibility jamo (conjoining jamo are not: they compose), fullwidth forms, emoji. A character
# outside them only costs a document unicodedata's own check (tests check every one of them).
NFC_SAFE = ((0x0000, 0x02FF), (0x0388, 0x0482), (0x2002, 0x20CF), (0x2100, 0x2125), (0x212C, 0x2328),
            (0x232B, 0x2ADB), (0x2ADD, 0x2CEE), (0x2E00, 0x3029), (0x3030, 0x3098), (0x309B, 0xA66E),
            (0xABEE, 0xD7FF), (0xE000, 0xF8FF), (0xFB4F, 0xFE1F), (0xFE30, 0x101FC), (0x1E94B, 0x1FFFF))
_FIXES = {"": DROP, " ": TO_SPACE, "\n": TO_NEWLINE}


def char_classes(fixes: dict[str, str]) -> np.ndarray:
    """uint8 class of every code point below the first one past NFC_SAFE (UNPROVEN beyond), with
    `fixes` (character: "", " " or "\\n") applied over NFC_SAFE: NFC comes after them."""
    classes = np.full(NFC_SAFE[-1][1] + 1, UNPROVEN, np.uint8)
    for low, high in NFC_SAFE:
        classes[low:high + 1] = KEEP
    classes[[ord(" "), ord("\n"), ord("\r")]] = SPACE, NEWLINE, CR
    for ch, new in fixes.items():
        classes[ord(ch)] = _FIXES[new]
    return classes


@kernel
def rewrite(points: np.ndarray, classes: np.ndarray, out: np.ndarray) -> tuple[int, bool]:
    """`points` rewritten into `out` (as long): \r\n and \r to \n, each character as its class says,
    each run of blanks (spaces and newlines) squeezed to one space, or to one or two newlines where
    it holds any, none at the ends. Returns (the rewritten length, -1 where it is `points` as they
    are; whether every character kept is KEEP, i.e. the result is NFC)."""
    size = 0
    word = False  # whether the last point written is no blank
    changed = unproven = False
    for i in range(len(points)):
        point = points[i]
        kind = classes[point] if point < len(classes) else UNPROVEN
        if kind <= SPACE:
            # Without a branch (a space every few characters would mispredict one): a space is
            # written only after a character that is not a blank, which ends a run of blanks.
            out[size] = point
            is_word = kind != SPACE
            size += is_word | word
            word = is_word
            unproven |= kind == UNPROVEN
            continue
        changed |= kind != NEWLINE
        if kind == TO_SPACE:
            out[size] = 0x20
            size += word
            word = False
        elif kind == NEWLINE or kind == TO_NEWLINE or (kind == CR and (i + 1 == len(points) or points[i + 1] != 0x0A)):
            if size and out[size - 1] == 0x20:  # no space before a newline
                size -= 1
            if size and not (size > 1 and out[size - 1] == 0x0A and out[size - 2] == 0x0A):  # at most two
                out[size] = 0x0A
                size += 1
            word = False
    while size and (out[size - 1] == 0x20 or out[size - 1] == 0x0A):  # no blank at the end
        size -= 1
    return (-1 if size == len(points) and not changed else size), not unproven

"""Character and line counts of one document for the quality filters (compiled loops over its
code points in char_kernels and span_kernels), and the code points themselves, encoded once for
every filter."""
from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np

from data_prep import char_kernels, span_kernels


@lru_cache(maxsize=1)
def code_points(text: str) -> np.ndarray:
    """The document's code points: UTF-32 is the cheapest encoding of a str (a third of the cost of
    UTF-8) and needs no decoding in the kernels. Cached: decontamination, the quality filters and
    PII masking look at one document in turn, most often unchanged between them (an encoding is
    ~5% of their cost)."""
    return np.frombuffer(text.encode("utf-32-le"), np.uint32)


class TextCounts(NamedTuple):
    hangul: int  # Hangul syllables and jamo (char_kernels.HANGUL_RANGES)
    blanks: int  # spaces and newlines
    latin_junk: int  # characters in Latin-junk tokens (char_kernels.JUNK_CHARS)
    lines: int  # non-empty lines (split at newlines)
    duplicate_lines: int  # lines equal to an earlier one, as datatrove's find_duplicates counts them
    duplicate_line_chars: int  # their characters
    line_chars: int  # characters of all non-empty lines
    sentence_ends: int  # lines whose last character is one of span_kernels.SENTENCE_ENDS


@lru_cache(maxsize=1)
def text_counts(text: str) -> TextCounts:
    """Cached: the Hangul, Latin-noise and line filters look at the same document one after another."""
    points = code_points(text)
    return TextCounts(*char_kernels.char_counts(points), *span_kernels.line_counts(points))

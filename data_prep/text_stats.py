"""The measures of one document that the quality filters test (compiled loops over its code points
in char_kernels and span_kernels, two calls per document for all of them), and the code points
themselves, encoded once for every step."""
from __future__ import annotations

import codecs
from typing import NamedTuple

import numpy as np

from data_prep import char_kernels, span_kernels


_last: tuple[str, np.ndarray] = ("", np.frombuffer(b"", np.uint32))


def code_points(text: str) -> np.ndarray:
    """The document's code points (read-only): UTF-32 is the cheapest encoding of a str (a third of
    the cost of UTF-8) and needs no decoding in the kernels. Cached for the last document asked for
    or made by `text_of`: normalization, decontamination, the quality filters and PII masking look at one
    document in turn, most often unchanged between them (an encoding is ~5% of their cost)."""
    global _last
    last, points = _last
    if text is not last and text != last:
        points = np.frombuffer(text.encode("utf-32-le"), np.uint32)
        _last = text, points
    return points


def text_of(points: np.ndarray) -> str:
    """The str of `points`, uint32 code points that a rewrite built in memory of its own (callers
    of code_points may keep what it returns), made read-only and what code_points returns for it:
    the next step does not encode the rewritten text again."""
    global _last
    points.flags.writeable = False
    text = codecs.utf_32_le_decode(points)[0]
    _last = text, points
    return text


class Measures(NamedTuple):
    """The character counts of char_kernels.char_counts, then span_kernels.measure's line and word
    measures (repetition.py reads the n-gram ones)."""
    chars: int
    hangul: int  # Hangul syllables and jamo (char_kernels.HANGUL_RANGES)
    blanks: int  # spaces and newlines
    latin_junk: int  # characters in Latin-junk tokens (char_kernels.JUNK_CHARS)
    lines: int  # non-empty lines (split at newlines)
    duplicate_lines: int  # lines equal to an earlier one, as datatrove's find_duplicates counts them
    duplicate_line_chars: int  # their characters
    line_chars: int  # characters of all non-empty lines
    sentence_ends: int  # lines whose last character is one of span_kernels.SENTENCE_ENDS
    newlines: int
    words: int  # whitespace-separated, as bytes.split() splits the UTF-8 text
    repeated_word_bytes: int  # UTF-8 bytes of the words that repeat an earlier one
    size: int  # UTF-8 bytes of the text
    longest: int  # the longest chain of repeated bigrams (0 where the n-grams were not measured)
    top: list[int]  # by n: bytes of the most frequent repeated word n-gram's occurrences
    covered: list[int]  # by n: bytes of the words covered by a repeated word n-gram


def hangul_share(text: str) -> float:
    """Share of Hangul (syllables and jamo) among the characters other than spaces and newlines."""
    hangul, blanks, _ = char_kernels.char_counts(code_points(text))
    return hangul_ratio(hangul, blanks, len(text))


def hangul_ratio(hangul: int, blanks: int, chars: int) -> float:
    """Hangul over the characters that are not blanks (0 for a document of blanks only)."""
    letters = chars - blanks
    return hangul / letters if letters else 0.0


# Where the n-gram byte counts start among measure's values: after len(text), char_counts and
# span_kernels.measure's other fields.
_NGRAMS = 4 + span_kernels.MEASURE_FIELDS


def measure(text: str, most: int, gate: float) -> Measures:
    """All the measures of `text`, its word n-grams for n up to `most` where the repeated words'
    share of its bytes is above `gate` (span_kernels.measure)."""
    points = code_points(text)
    values = [len(text), *char_kernels.char_counts(points), *span_kernels.measure(points, most, gate).tolist()]
    top = _NGRAMS + most + 1
    values[_NGRAMS:] = values[_NGRAMS:top], values[top:]
    return Measures._make(values)

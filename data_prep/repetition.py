"""Repetition measures of one document: repeated-character runs and the Gopher word n-gram
fractions (Rae et al. 2021, table A1, as datatrove's GopherRepetitionFilter computes them), from
the counts of compiled loops over its code points (char_kernels, span_kernels.measure).

Words are whitespace-separated eojeol, as bytes.split() splits (datatrove splits Korean into
kiwipiepy morphemes, about 2.3 per eojeol on Korean Wikipedia): an eojeol n-gram spans more text
than a morpheme n-gram, so the same thresholds are somewhat more lenient here. The n-gram
fractions are measured in UTF-8 bytes, what the model reads, where Gopher counts characters (the
same for all-Hangul text). Words and n-grams are compared exactly: each word gets a dense id, and
each n-gram the id of the pair (its (n-1)-gram, its last word), so no hash collision can merge two.
"""
from __future__ import annotations

from data_prep import char_kernels
from data_prep.text_stats import Measures, code_points, text_of


def squeeze_runs(text: str, hangul_keep: int | None, any_keep: int) -> str:
    """Cut runs of one repeated character: Hangul to `hangul_keep` (None: left alone), any other
    non-space character to `any_keep`, as soynlp's repeat_normalize does for ㅋㅋㅋㅋ -> ㅋㅋ.
    A document without such a run is returned as it is (the same object)."""
    points = code_points(text)
    if char_kernels.first_cut(points, hangul_keep or 0, any_keep) < 0:
        return text
    return text_of(char_kernels.squeeze(points, hangul_keep or 0, any_keep))


def top_fraction(measures: Measures, n: int) -> float:
    """Bytes of the most frequent word n-gram (all its occurrences, joined by spaces) over the
    document's bytes. Only an n-gram that occurs twice or more counts (datatrove's counts a
    unique one too, which drops every document of fewer than about 1/limit n-grams)."""
    if n - 1 > measures.longest:
        return 0.0
    return measures.top[n] / measures.size


def duplicate_fraction(measures: Measures, n: int) -> float:
    """Bytes of the words covered by a word n-gram that already occurred earlier in the document,
    over the document's bytes: Gopher's duplicate n-gram character fraction
    (the union of the repeated n-grams, which datatrove approximates with a greedy skip)."""
    if n - 1 > measures.longest:
        return 0.0
    return measures.covered[n] / measures.size

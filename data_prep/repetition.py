"""Repetition measures of one document: repeated-character runs and the Gopher word n-gram
fractions (Rae et al. 2021, table A1, as datatrove's GopherRepetitionFilter computes them), as
compiled loops over its code points (char_kernels, span_kernels). Duplicate lines are counted in text_stats.

Words are whitespace-separated eojeol, as bytes.split() splits (datatrove splits Korean into
kiwipiepy morphemes, about 2.3 per eojeol on Korean Wikipedia): an eojeol n-gram spans more text
than a morpheme n-gram, so the same thresholds are somewhat more lenient here. The n-gram
fractions are measured in UTF-8 bytes, what the model reads, where Gopher counts characters (the
same for all-Hangul text). Words and n-grams are compared exactly: each word gets a dense id, and
each n-gram the id of the pair (its (n-1)-gram, its last word), so no hash collision can merge two.
"""
from __future__ import annotations

from functools import lru_cache

from data_prep import char_kernels, span_kernels
from data_prep.text_stats import code_points


def squeeze_runs(text: str, hangul_keep: int | None, any_keep: int) -> str:
    """Cut runs of one repeated character: Hangul to `hangul_keep` (None: left alone), any other
    non-space character to `any_keep`, as soynlp's repeat_normalize does for ㅋㅋㅋㅋ -> ㅋㅋ.
    A document without such a run is returned as it is (the same object)."""
    points = code_points(text)
    if char_kernels.first_cut(points, hangul_keep or 0, any_keep) < 0:
        return text
    return char_kernels.squeeze(points, hangul_keep or 0, any_keep).tobytes().decode("utf-32-le")


class WordNgrams:
    """The word n-gram statistics of one document (span_kernels.word_ngrams), for n up to MOST
    measured in one call (the presets ask for 2 to 10)."""

    MOST = 10

    def __init__(self, text: str):
        self._points = code_points(text)
        # longest: the longest chain of repeated bigrams; no n-gram with n > longest + 1 repeats
        self.words, self.longest, self.size, measures = span_kernels.word_ngrams(self._points, self.MOST)
        self._top, self._covered = measures.tolist()  # lists: nine filters read them in turn

    def _measure(self, n: int) -> None:
        """Measure the n-grams up to n too (span_kernels.ngram_bytes)."""
        self._top, self._covered = span_kernels.word_ngrams(self._points, n)[3].tolist()

    def top_fraction(self, n: int) -> float:
        """Bytes of the most frequent word n-gram (all its occurrences, joined by spaces) over the
        document's bytes. Only an n-gram that occurs twice or more counts (datatrove's counts a
        unique one too, which drops every document of fewer than about 1/limit n-grams)."""
        if n - 1 > self.longest:
            return 0.0
        if n >= len(self._top):
            self._measure(n)
        return self._top[n] / self.size

    def duplicate_fraction(self, n: int) -> float:
        """Bytes of the words covered by a word n-gram that already occurred earlier in the document,
        over the document's bytes: Gopher's duplicate n-gram character fraction
        (the union of the repeated n-grams, which datatrove approximates with a greedy skip)."""
        if n - 1 > self.longest:
            return 0.0
        if n >= len(self._covered):
            self._measure(n)
        return self._covered[n] / self.size


@lru_cache(maxsize=1)
def word_ngrams(text: str) -> WordNgrams:
    """Cached: the n-gram filters look at the same document one after the other."""
    return WordNgrams(text)


@lru_cache(maxsize=1)
def repeated_word_share(text: str) -> float:
    """Bytes of the words that are not the first occurrence of their word, over the document's bytes:
    an upper bound of every duplicate n-gram fraction (a word covered by a repeated n-gram repeats a
    word of its first occurrence), measured without the n-grams: most documents need no more."""
    repeated, size = span_kernels.repeated_words(code_points(text))
    return repeated / size if size else 0.0

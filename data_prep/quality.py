"""Corpus-quality presets (`--quality off|curated|web`) as cleaning steps.

`web` starts from FineWeb-2's Korean configuration (huggingface/fineweb-2, configs/kor_Hang.yml,
applied by fineweb-2-pipeline.py through datatrove's GopherRepetitionFilter and
FineWebQualityFilter); `curated` keeps only limits that edited prose never reaches. Line-based
filters look at documents of two or more lines only: a one-line document (a comment, a sentence)
has no line statistics worth the name.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from data_prep.lazy import lazy_module
from data_prep.steps import Step, measured

# Compiled measures: numba loads in the workers that filter only, when a first document is measured.
repetition = lazy_module("data_prep.repetition")
text_stats = lazy_module("data_prep.text_stats")


@dataclass(frozen=True)
class Thresholds:
    """A document is dropped when a measure passes its limit (None: that filter is off)."""
    hangul_keep: int | None  # runs of one Hangul character longer than this are cut to it
    any_keep: int  # runs of any other non-space character likewise
    min_chars: int = 0
    min_hangul_ratio: float | None = None  # Hangul share of the non-space characters
    max_latin_junk: float | None = None  # share of characters in Latin-junk tokens (char_kernels)
    dup_line_frac: float | None = None  # lines repeating an earlier line / lines
    dup_line_char_frac: float | None = None  # their characters / characters (newlines excluded)
    min_line_punct: float | None = None  # lines ending a sentence / lines
    max_newline_per_word: float | None = None  # newlines / words (list-like pages)
    top_ngrams: tuple[tuple[int, float], ...] = ()
    dup_ngrams: tuple[tuple[int, float], ...] = ()


WEB = Thresholds(
    hangul_keep=2,  # soynlp repeat_normalize(num_repeats=2), as KcBERT's preprocessing uses
    any_keep=10,  # ours: "!!!!!!!!!!" is as far as emphasis goes; a 400-character ===== line is not text
    min_chars=10,  # ours: shorter comments carry no context for a 1024-byte chunk
    min_hangul_ratio=0.3,  # ours, standing in for FineWeb-2's GlotLID language_score 0.842 (kor_Hang.yml)
    max_latin_junk=0.2,  # ours
    dup_line_frac=0.374,  # kor_Hang.yml dup_line_frac (GopherRepetitionFilter)
    dup_line_char_frac=0.1,  # fineweb-2-pipeline.py: FineWebQualityFilter char_duplicates_ratio=0.1
    min_line_punct=0.062,  # kor_Hang.yml line_punct_thr (FineWebQualityFilter drops ratio < thr)
    # kor_Hang.yml new_line_ratio 0.196 counts kiwipiepy morphemes; x 2.29 morphemes per eojeol
    # (measured on Korean Wikipedia) gives the same limit per whitespace word.
    max_newline_per_word=0.449,
    top_ngrams=((2, 0.282), (3, 0.228), (4, 0.185)),  # kor_Hang.yml top_n_grams
    dup_ngrams=((5, 0.201), (6, 0.184), (7, 0.168), (8, 0.154), (9, 0.14), (10, 0.127)),  # kor_Hang.yml dup_n_grams
)

CURATED = Thresholds(
    hangul_keep=None,  # dialogue in books and articles quotes ㅋㅋㅋ and 하하하 as written
    any_keep=10,  # as for web
    max_latin_junk=0.5,  # ours: half the text in 25-character tokens is a dump, not prose
    dup_line_frac=0.5,  # ours: above Gopher's 0.30 and kor_Hang's 0.374, for templated pages only
    dup_ngrams=((10, 0.5),),  # ours: half the text in repeated 10-grams is a pasted-twice page
)

PRESETS: dict[str, Thresholds | None] = {"off": None, "curated": CURATED, "web": WEB}


def quality_steps(preset: str) -> list[Step]:
    """The steps of one preset, cheapest first (the pipeline stops at the first drop). The filters
    test one set of measures per document (text_stats.measure), taken after the runs are cut."""
    limits = PRESETS[preset]
    if limits is None:
        return []
    measure = _measurer(limits)
    tests = _char_tests(limits) + _line_tests(limits) + _ngram_tests(limits)
    return [Step("repeated_chars", _squeezer(limits))] + [measured(name, measure, keep) for name, keep in tests]


# A filter: its name and its test of a document's measures. Each test is a Python call per document:
# it reads its limit from a name of its own, not from `limits` (an attribute lookup more).
Test = tuple[str, Callable[["text_stats.Measures"], bool]]


def _measurer(limits: Thresholds) -> Callable[[str], text_stats.Measures]:
    """The preset's measure of a document: its n-grams up to the longest its filters test, where
    a duplicate n-gram filter can drop it (without top n-gram filters: where the repeated words'
    share passes the lowest duplicate limit, an upper bound of every duplicate n-gram fraction)."""
    most = max((n for n, _ in limits.top_ngrams + limits.dup_ngrams), default=0)
    gate = -1.0 if limits.top_ngrams else min((limit for _, limit in limits.dup_ngrams), default=1.0)

    def measure(text: str) -> text_stats.Measures:
        return text_stats.measure(text, most, gate)
    return measure


def _char_tests(limits: Thresholds) -> list[Test]:
    tests = []
    if min_chars := limits.min_chars:
        tests.append(("min_length", lambda m: m.chars >= min_chars))
    if (min_hangul := limits.min_hangul_ratio) is not None:
        tests.append(("hangul_ratio", lambda m: text_stats.hangul_ratio(m.hangul, m.blanks, m.chars) >= min_hangul))
    if (max_junk := limits.max_latin_junk) is not None:
        tests.append(("latin_noise", lambda m: m.latin_junk <= max_junk * m.chars))
    return tests


def _line_tests(limits: Thresholds) -> list[Test]:
    """The line-based filters: a document of fewer than two non-empty lines passes them."""
    tests = []
    if (dup_lines := limits.dup_line_frac) is not None:
        tests.append(("dup_lines", lambda m: m.lines < 2 or m.duplicate_lines / m.lines <= dup_lines))
    if (dup_chars := limits.dup_line_char_frac) is not None:
        tests.append(("dup_line_chars", lambda m: m.lines < 2 or m.duplicate_line_chars / m.line_chars <= dup_chars))
    if (min_punct := limits.min_line_punct) is not None:
        tests.append(("line_punct", lambda m: m.lines < 2 or m.sentence_ends / m.lines >= min_punct))
    if (max_newlines := limits.max_newline_per_word) is not None:
        tests.append(("list_like", lambda m: m.lines < 2 or m.newlines / (m.words or 1) <= max_newlines))
    return tests


def _ngram_tests(limits: Thresholds) -> list[Test]:
    """The n-gram filters. Where the repeated bigrams chain to fewer than n - 1, no n-gram repeats
    and the fraction is 0: the test passes without reading it (most tests of most documents: of the
    bench corpus's 6112, 1566 repeat no bigram, 2233 more no trigram). Below _measurer's gate no
    bigram counts as repeated, which passes the duplicate filters likewise."""
    tests = [(f"top_{n}_gram", lambda m, n=n, limit=limit: m.longest < n - 1 or repetition.top_fraction(m, n) <= limit)
             for n, limit in limits.top_ngrams]
    return tests + [(f"dup_{n}_gram", lambda m, n=n, limit=limit: m.longest < n - 1 or
                     repetition.duplicate_fraction(m, n) <= limit) for n, limit in limits.dup_ngrams]


def _squeezer(limits: Thresholds) -> Callable[[str, Counter], str]:
    hangul_keep, any_keep = limits.hangul_keep, limits.any_keep

    def squeeze(text: str, edits: Counter) -> str:
        squeezed = repetition.squeeze_runs(text, hangul_keep, any_keep)
        if squeezed is not text:
            edits["repeated_chars"] += 1
        return squeezed
    return squeeze

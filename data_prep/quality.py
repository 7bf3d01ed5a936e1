"""Corpus-quality presets (`--quality off|curated|web`) as cleaning steps.

`web` starts from FineWeb-2's Korean configuration (huggingface/fineweb-2, configs/kor_Hang.yml,
applied by fineweb-2-pipeline.py through datatrove's GopherRepetitionFilter and
FineWebQualityFilter); `curated` keeps only limits that edited prose never reaches. Line-based
filters look at documents of two or more lines only: a one-line document (a comment, a sentence)
has no line statistics worth the name.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from data_prep.clean import hangul_ratio
from data_prep.lazy import lazy_module
from data_prep.steps import Step, check

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
    """The steps of one preset, cheapest first (the pipeline stops at the first drop)."""
    limits = PRESETS[preset]
    if limits is None:
        return []
    steps = [Step("repeated_chars", lambda text, edits: _squeeze(text, edits, limits))]
    if limits.min_chars:
        steps.append(check("min_length", lambda text: len(text) >= limits.min_chars))
    if limits.min_hangul_ratio is not None:
        steps.append(check("hangul_ratio", lambda text: hangul_ratio(text) >= limits.min_hangul_ratio))
    if limits.max_latin_junk is not None:
        steps.append(check("latin_noise", lambda text: _little_latin_junk(text, limits.max_latin_junk)))
    steps += _line_steps(limits)
    for n, limit in limits.top_ngrams:
        steps.append(check(f"top_{n}_gram", lambda text, n=n, limit=limit:
                           repetition.word_ngrams(text).top_fraction(n) <= limit))
    # Without top n-gram filters (curated) the n-grams are rarely needed: a cheap bound decides first.
    steps += [check(f"dup_{n}_gram", _duplicate_ngrams(n, limit, gated=not limits.top_ngrams))
              for n, limit in limits.dup_ngrams]
    return steps


def _duplicate_ngrams(n: int, limit: float, gated: bool):
    def keep(text: str) -> bool:
        if gated and repetition.repeated_word_share(text) <= limit:
            return True
        return repetition.word_ngrams(text).duplicate_fraction(n) <= limit
    return keep


def _line_steps(limits: Thresholds) -> list[Step]:
    steps = []
    if limits.dup_line_frac is not None:
        steps.append(check("dup_lines", lambda text: _multiline(
            text, lambda counts: counts.duplicate_lines / counts.lines <= limits.dup_line_frac)))
    if limits.dup_line_char_frac is not None:
        steps.append(check("dup_line_chars", lambda text: _multiline(
            text, lambda counts: counts.duplicate_line_chars / counts.line_chars <= limits.dup_line_char_frac)))
    if limits.min_line_punct is not None:
        steps.append(check("line_punct", lambda text: _multiline(
            text, lambda counts: counts.sentence_ends / counts.lines >= limits.min_line_punct)))
    if limits.max_newline_per_word is not None:
        steps.append(check("list_like", lambda text: _multiline(
            text, lambda counts: text.count("\n") / max(repetition.word_ngrams(text).words, 1)
            <= limits.max_newline_per_word)))
    return steps


def _squeeze(text: str, edits: Counter, limits: Thresholds) -> str:
    squeezed = repetition.squeeze_runs(text, limits.hangul_keep, limits.any_keep)
    if squeezed is not text:
        edits["repeated_chars"] += 1
    return squeezed


def _multiline(text: str, keep) -> bool:
    """`keep(text_stats.TextCounts)` for a document of two or more non-empty lines; a one-line
    document passes."""
    if "\n" not in text:
        return True
    counts = text_stats.text_counts(text)
    return counts.lines < 2 or keep(counts)


def _little_latin_junk(text: str, limit: float) -> bool:
    """Whether at most `limit` of the characters are in Latin-junk tokens (char_kernels)."""
    return text_stats.text_counts(text).latin_junk <= limit * len(text)

"""Corpus-quality presets (`--quality off|curated|web`) as cleaning steps.

`web` starts from FineWeb-2's Korean configuration (huggingface/fineweb-2, configs/kor_Hang.yml,
applied by fineweb-2-pipeline.py through datatrove's GopherRepetitionFilter and
FineWebQualityFilter); `curated` keeps only limits that edited prose never reaches. Line-based
filters look at documents of two or more lines only: a one-line document (a comment, a sentence)
has no line statistics worth the name.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from data_prep.clean import hangul_ratio
from data_prep.repetition import duplicate_lines, repeated_word_share, squeeze_runs, word_ngrams
from data_prep.steps import Step, check

# A line "ends a sentence" if it ends in terminal punctuation (datatrove's FineWebQualityFilter
# stop characters, plus the CJK and closing-quote forms) or in a Korean sentence-final syllable
# without punctuation, common in comments and notes: ~다, ~요, ~죠, ~까, ~네, ~음, ~함, ~임.
SENTENCE_ENDS = tuple(".!?…。？！\"'”’」』)") + tuple("다요죠까네음함임")
# Long runs of Latin letters, digits and URL/base64 symbols without a space: URLs, hashes, base64,
# keyboard mashing. Prose never has a 25-character token.
_LATIN_JUNK = re.compile(r"[A-Za-z0-9+/=_\-.:%&?#@~]{25,}")
_NOT_ASCII = bytes(range(0x80, 0x100))


@dataclass(frozen=True)
class Thresholds:
    """A document is dropped when a measure passes its limit (None: that filter is off)."""
    hangul_keep: int | None  # runs of one Hangul character longer than this are cut to it
    any_keep: int  # runs of any other non-space character likewise
    min_chars: int = 0
    min_hangul_ratio: float | None = None  # Hangul share of the non-space characters
    max_latin_junk: float | None = None  # share of characters in _LATIN_JUNK tokens
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
        steps.append(check(f"top_{n}_gram", lambda text, n=n, limit=limit: word_ngrams(text).top_fraction(n) <= limit))
    # Without top n-gram filters (curated) the n-gram pass is rarely needed: a cheap bound decides first.
    gate = repeated_word_share if not limits.top_ngrams else lambda text: 1.0
    for n, limit in limits.dup_ngrams:
        steps.append(check(f"dup_{n}_gram", lambda text, n=n, limit=limit: gate(text) <= limit
                           or word_ngrams(text).duplicate_fraction(n) <= limit))
    return steps


def _line_steps(limits: Thresholds) -> list[Step]:
    steps = []
    if limits.dup_line_frac is not None:
        steps.append(check("dup_lines", lambda text: _multiline(text, lambda lines: duplicate_lines(lines)[0]
                                                                / len(lines) <= limits.dup_line_frac)))
    if limits.dup_line_char_frac is not None:
        steps.append(check("dup_line_chars", lambda text: _multiline(
            text, lambda lines: duplicate_lines(lines)[1] / sum(map(len, lines)) <= limits.dup_line_char_frac)))
    if limits.min_line_punct is not None:
        steps.append(check("line_punct", lambda text: _multiline(
            text, lambda lines: sum(line.endswith(SENTENCE_ENDS) for line in lines) / len(lines)
            >= limits.min_line_punct)))
    if limits.max_newline_per_word is not None:
        steps.append(check("list_like", lambda text: _multiline(
            text, lambda lines: text.count("\n") / max(word_ngrams(text).words, 1) <= limits.max_newline_per_word)))
    return steps


def _squeeze(text: str, edits: Counter, limits: Thresholds) -> str:
    squeezed = squeeze_runs(text, limits.hangul_keep, limits.any_keep)
    if squeezed is not text:
        edits["repeated_chars"] += 1
    return squeezed


def _multiline(text: str, keep) -> bool:
    """`keep(lines)` for a document of two or more non-empty lines; a one-line document passes."""
    if "\n" not in text:
        return True
    lines = _lines(text)
    return len(lines) < 2 or keep(lines)


@lru_cache(maxsize=1)
def _lines(text: str) -> list[str]:
    """The non-empty lines, split once for the line filters that look at one document in turn."""
    return [line for line in text.split("\n") if line]


def _little_latin_junk(text: str, limit: float) -> bool:
    """Whether at most `limit` of the characters are in _LATIN_JUNK tokens. Those are non-space
    ASCII characters: a document with too few of them (most Korean text) passes without the regex."""
    ascii_chars = len(text.encode("utf-8").translate(None, _NOT_ASCII)) - text.count(" ") - text.count("\n")
    if ascii_chars < 25 or ascii_chars <= limit * len(text):
        return True
    return sum(map(len, _LATIN_JUNK.findall(text))) <= limit * len(text)

"""Document cleaning steps: per-format tag stripping, control characters, NFC, whitespace, filters.

NFC, never NFKC: NFKC rewrites compatibility jamo (ㅋ) and symbols (①, ㈜) that Korean text uses.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache

import numpy as np

from data_prep.lazy import lazy_module
from data_prep.steps import Pipeline, Step, check, rewrite

text_stats = lazy_module("data_prep.text_stats")  # numba kernels: loaded by a first --min-hangul-ratio check
clean_kernels = lazy_module("data_prep.clean_kernels")

# Every character the cleaner rewrites one by one, and its replacement: a single regex scan
# finds them (they are rare), a dict lookup per match replaces them.
_CHAR_FIXES = {**{chr(c): "" for c in [*range(0x00, 0x09), *range(0x0E, 0x20), *range(0x7F, 0x85), *range(0x86, 0xA0)]},
               **{ch: "\n" for ch in "\x0b\x0c\x85\u2028\u2029"},
               **{ch: " " for ch in "\t\u00a0\u1680\u202f\u205f\u3000" + "".join(map(chr, range(0x2000, 0x200B)))},
               "\u00ad": "", "\u200b": "", "\ufeff": ""}
_SUSPECT = re.compile("[" + "".join(re.escape(ch) for ch in _CHAR_FIXES) + "]")
# The regex scans Hangul at ~100 MB/s; str.isprintable at several times that, and every character
# the cleaner rewrites is unprintable (Unicode's Other and Separator categories, as a newline is):
# the regex runs only on the few documents that hold one. The no-break space, common in web text
# (a quarter of documents), is replaced by str.replace first so that it does not send them there.
_NBSP = "\u00a0"
# Where a newline needs whitespace squeezing (" \n", "\n ", "\n\n\n"): one pass finds all three, and
# a pattern that starts with a literal newline scans at memchr speed (the "\n " scan of `in` is slow).
_NEWLINE_SQUEEZE = re.compile(r"\n(?= |\n\n)|\n(?<= \n)")
# Modu spoken/messenger transcription marks: {laughing}, {clearing} ..., (()) for unintelligible
# speech, ((word)) for an uncertain transcription (the word is kept).
_MODU_SPEECH = re.compile(r"\{[a-z_ ]+\}|\(\(\s*\)\)")
_MODU_UNSURE = re.compile(r"\(\(([^()]*)\)\)")
# NIKL de-identification placeholders: &name&, &name2&, &address&, &tel-num& ...
_DEID = re.compile(r"&[a-z][a-z0-9\-]*&")


@dataclass(frozen=True)
class CleanOptions:
    min_chars: int = 1
    min_hangul_ratio: float = 0.0
    deid_tags: str = "keep"  # or "remove"
    quality: str = "off"  # preset of every source not in quality_for: off | curated | web
    quality_for: tuple[tuple[str, str], ...] = ()  # (source, preset) pairs
    pii: str = "keep"  # or "mask"
    decontaminate: tuple[str, ...] = ()  # evaluation files
    decontaminate_digest: str = ""  # of their N-grams: an edited evaluation file changes the fingerprint
    keep_samples: int = 0  # dropped or edited documents kept per step (--keep-dropped)

    def quality_of(self, source: str) -> str:
        return dict(self.quality_for).get(source, self.quality)


def normalize(text: str) -> str:
    """Format-independent cleaning: newlines, control characters, NFC, whitespace.

    Python's `re` on Hangul strings runs at 70-100 MB/s, str.replace/`in` at GB/s: each regex
    runs only when a fast scan shows it has something to change. Runs with numba kernels use
    normalize_compiled instead, which must give the same text.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if _NBSP in text:
        text = text.replace(_NBSP, _CHAR_FIXES[_NBSP])
    if not text.replace("\n", " ").isprintable():
        text = _SUSPECT.sub(_fix_char, text)
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    text = _squeeze(text, "  ", " ")
    if _NEWLINE_SQUEEZE.search(text):
        text = _squeeze(text, " \n", "\n")
        text = _squeeze(text, "\n ", "\n")
        text = _squeeze(text, "\n\n\n", "\n\n")
    return text.strip()


def normalize_compiled(text: str) -> str:
    """`normalize(text)`, as one compiled loop over its code points, where numba is loaded anyway.

    Two implementations on purpose (tests hold them equal): importing numba costs 0.4 s, more than
    `normalize` costs a run without other kernels, while in a run with them this one is several times
    cheaper, and leaves the result's code points in text_stats.code_points' cache for the next steps.
    """
    try:
        points = text_stats.code_points(text)
    except UnicodeEncodeError:  # a lone surrogate (the readers replace them), which UTF-32 cannot hold
        return normalize(text)
    out = np.empty_like(points)
    size, proven = clean_kernels.rewrite(points, _char_classes(), out)
    if size >= 0:
        text = text_stats.text_of(out[:size])
    # NFC last, not between the fixes and the squeezing of blanks as in `normalize`: the same, since
    # it never makes or takes a blank (after the fixes only spaces and newlines, which compose with
    # nothing, are blanks) and so rewrites each stretch between blanks on its own.
    return text if proven else unicodedata.normalize("NFC", text)


@cache
def _char_classes() -> np.ndarray:
    return clean_kernels.char_classes(_CHAR_FIXES)


def _fix_char(match: re.Match) -> str:
    return _CHAR_FIXES[match.group()]


def _squeeze(text: str, pair: str, single: str) -> str:
    """Replace runs of `pair` until none is left (a run of n halves per pass)."""
    while pair in text:
        text = text.replace(pair, single)
    return text


def strip_modu_tags(text: str, deid_tags: str) -> str:
    text = _MODU_UNSURE.sub(r"\1", _MODU_SPEECH.sub("", text))
    return _DEID.sub("", text) if deid_tags == "remove" else text


def cleaning_steps(fmt: str, options: CleanOptions, kernels: bool = False) -> list[Step]:
    """The format-dependent cleaning every document gets, in order; `kernels`: the run loads numba
    kernels anyway (normalize_compiled)."""
    steps = [rewrite("modu_tags", lambda text: strip_modu_tags(text, options.deid_tags))] if fmt == "modu" else []
    steps += [rewrite("normalize", normalize_compiled if kernels else normalize), check("empty", bool)]
    if options.min_chars > 1:
        steps.append(check("too_short", lambda text: len(text) >= options.min_chars))
    if options.min_hangul_ratio > 0:
        steps.append(check("low_hangul", lambda text: text_stats.hangul_share(text) >= options.min_hangul_ratio))
    return steps


def clean(text: str, fmt: str, options: CleanOptions) -> tuple[str | None, str]:
    """(clean text, "") or (None, drop reason): one document through `cleaning_steps`."""
    pipeline = Pipeline.of(cleaning_steps(fmt, options))
    cleaned = pipeline(text)
    return cleaned, next(iter(pipeline.counts.dropped), "")

"""clean.normalize and its compiled twin clean.normalize_compiled against a slow reference that
rewrites every character and squeezes to a fixpoint, and against each other: normalize's fast
pre-checks (str.isprintable, the no-break space) must never skip work that is needed, and the
compiled loop must give the very same text (also on the real corpora in ../shared, where present).
The facts the compiled path relies on (which characters are blanks, what NFC can change, the code
points clean_kernels proves NFC) are checked here for every code point."""
from __future__ import annotations

import os
import unicodedata
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_prep import clean, clean_kernels, text_stats
from data_prep.clean import _CHAR_FIXES, CleanOptions, cleaning_steps, normalize, normalize_compiled
from data_prep.steps import Pipeline

CORPORA = Path(os.environ.get("KOREAN_CORPORA", Path(__file__).resolve().parents[2] / "shared" / "corpora"))
BOTH = pytest.mark.parametrize("normalizer", [normalize, normalize_compiled], ids=["python", "compiled"])


def reference_normalize(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(_CHAR_FIXES.get(ch, ch) for ch in text)
    text = unicodedata.normalize("NFC", text)
    while "  " in text:
        text = text.replace("  ", " ")
    while any(pair in text for pair in (" \n", "\n ", "\n\n\n")):
        text = text.replace(" \n", "\n").replace("\n ", "\n").replace("\n\n\n", "\n\n")
    return text.strip()


def test_every_rewritten_character_is_unprintable():
    """What normalize's isprintable pre-check relies on."""
    assert [hex(ord(ch)) for ch in _CHAR_FIXES if ch.isprintable()] == []


@BOTH
@pytest.mark.parametrize("ch", sorted(_CHAR_FIXES))
def test_each_rewritten_character_alone_and_beside_a_no_break_space(normalizer, ch):
    for text in (f"가{ch}나", f"가\u00a0나{ch}다\n라", f"{ch}\u00a0{ch}", f"가\n{ch}\n\n\n{ch} 나", f"\r{ch}\n", ch):
        assert normalizer(text) == reference_normalize(text)


# Hangul (composed, and as conjoining jamo that NFC composes, also onto a syllable), every
# rewritten character, unprintable characters that are not rewritten (ZWNJ, private use,
# unassigned), combining marks (one that reorders), characters NFC replaces (a CJK compatibility
# ideograph, the Angstrom sign, a musical symbol), astral ones inside and past clean_kernels' table.
_ALPHABET = st.sampled_from(["가", "힣", "a", "1", "e", " ", "\n", "\r", "\u1100", "\u1161", "\u11a8", "\u200c",
                             "\ue000", "\u0378", "\u00a0", "\u0301", "\u0323", "\u302e", "\uf967", "\u212b",
                             "😀", "\U0001d15e", "\U00020000", "\U000f0854", *_CHAR_FIXES])


@BOTH
@settings(max_examples=400, deadline=None)
@given(st.lists(_ALPHABET, max_size=40).map("".join))
def test_normalize_matches_the_reference(normalizer, text):
    assert normalizer(text) == reference_normalize(text)


@settings(max_examples=500, deadline=None)
@given(st.lists(_ALPHABET | st.characters(blacklist_categories=["Cs"]), max_size=60).map("".join))
def test_the_compiled_normalize_is_the_python_one(text):
    assert normalize_compiled(text) == normalize(text)


@pytest.mark.skipif(not CORPORA.is_dir(), reason="../shared/corpora not present")
def test_the_compiled_normalize_is_the_python_one_on_the_corpora():
    """Raw text cut at fixed offsets (between \\r and \\n, a letter and its mark ...); boddari's
    files hold text that is not NFC."""
    files = [*sorted((CORPORA / "boddari").glob("*.txt")), *sorted((CORPORA / "kowiki_wikiextractor").rglob("wiki_*")),
             *sorted((CORPORA / "namuwiki_dump_json").glob("*.json"))]
    changed = 0
    for path in files:
        text = path.read_text("utf-8", errors="replace")
        for start in range(0, len(text), 3000):
            piece = text[start:start + 3000]
            expected = normalize(piece)
            assert normalize_compiled(piece) == expected, (path.name, start)
            changed += expected != piece
    assert changed > 100  # the comparison saw rewrites, not only untouched text


def test_a_lone_surrogate_gets_the_python_normalize():
    """UTF-32 cannot hold it (the readers replace lone surrogates, ReadContext.repair_surrogates,
    so only a caller of its own hands one to normalize)."""
    assert normalize_compiled("a\ud800  b\u00a0") == normalize("a\ud800  b\u00a0") == "a\ud800 b"


def test_the_result_code_points_are_cached_and_an_untouched_text_is_returned_as_is():
    text = "이미 깨끗한 문서.\n둘째 줄"
    assert normalize_compiled(text) is text
    out = normalize_compiled(text + "\u00a0 \r\n")
    points = text_stats.code_points(out)
    assert out == text and out is not text and not points.flags.writeable
    assert points.dtype == np.uint32 and points.tolist() == [ord(ch) for ch in out]


def test_runs_with_kernels_get_the_compiled_normalize(monkeypatch):
    calls = []
    monkeypatch.setattr(clean, "normalize_compiled", lambda text: calls.append(text) or normalize(text))
    for kernels in (False, True):
        Pipeline.of(cleaning_steps("text", CleanOptions(), kernels))(f"문서 {kernels}")
    assert calls == ["문서 True"]


def test_blanks_left_after_the_fixes_are_spaces_and_newlines():
    """So the compiled path's strip (of spaces and newlines) is str.strip's."""
    blanks = [point for point in range(0x110000) if chr(point).isspace()]
    assert [hex(p) for p in blanks if chr(p) not in _CHAR_FIXES and chr(p) not in " \n\r"] == []


def test_nfc_never_makes_a_blank_nor_composes_one():
    """So NFC after the squeezing of blanks gives what NFC before it gives: no character left after
    the fixes decomposes to any blank, and none composes with a space or newline."""
    kept = [point for point in range(0x110000) if chr(point) not in _CHAR_FIXES and chr(point) not in " \n\r"
            and not 0xD800 <= point < 0xE000]
    assert [hex(p) for p in kept if any(ch.isspace() for ch in unicodedata.normalize("NFD", chr(p)))] == []
    assert {ord(" "), ord("\n")}.isdisjoint(_second_of_compositions()) and unicodedata.combining(" ") == 0


@cache
def _second_of_compositions() -> frozenset[int]:
    """Characters NFC may compose with the one before (quick check Maybe, UAX #15): the second of
    each canonical pair that NFC recomposes, and the Hangul vowel and trailing jamo."""
    second = {*range(0x1161, 0x1176), *range(0x11A8, 0x11C3)}
    for point in range(0x110000):
        parts = unicodedata.decomposition(chr(point)).split()
        if len(parts) == 2 and not parts[0].startswith("<") and unicodedata.normalize("NFC", chr(point)) == chr(point):
            second.add(int(parts[1], 16))
    return frozenset(second)


def test_every_character_the_kernel_proves_nfc_is_of_class_0_and_quick_check_yes():
    maybe = _second_of_compositions()
    bad = [hex(point) for low, high in clean_kernels.NFC_SAFE for point in range(low, high + 1)
           if unicodedata.combining(chr(point)) or unicodedata.normalize("NFC", chr(point)) != chr(point)
           or point in maybe or 0xD800 <= point < 0xE000]
    assert bad == []
    classes = clean_kernels.char_classes(_CHAR_FIXES)
    assert classes[ord("가")] == clean_kernels.KEEP and classes[0x302E] == classes[0x1161] == clean_kernels.UNPROVEN


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([chr(low) for low, _ in clean_kernels.NFC_SAFE] + [chr(high) for _, high in
                                 clean_kernels.NFC_SAFE] + ["가", "a", "é", "ㄱ", "い", "ヴ", "Ω"]), max_size=20).map("".join))
def test_text_of_proven_characters_is_nfc(text):
    assert unicodedata.is_normalized("NFC", text)

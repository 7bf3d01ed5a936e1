"""clean.normalize against a slow reference that rewrites every character and squeezes to a fixpoint:
its fast pre-checks (str.isprintable, the no-break space) must never skip work that is needed."""
from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_prep.clean import _CHAR_FIXES, normalize


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


@pytest.mark.parametrize("ch", sorted(_CHAR_FIXES))
def test_each_rewritten_character_alone_and_beside_a_no_break_space(ch):
    for text in (f"가{ch}나", f"가\u00a0나{ch}다\n라", f"{ch}\u00a0{ch}", f"가\n{ch}\n\n\n{ch} 나"):
        assert normalize(text) == reference_normalize(text)


# Hangul (composed, and as conjoining jamo that NFC composes), every rewritten character, and
# unprintable characters that are not rewritten (ZWNJ, private use, unassigned): they fail the
# pre-check and must come through the regex unchanged.
_ALPHABET = st.sampled_from(["가", "힣", "a", "1", " ", "\n", "\r", "\u1100", "\u1161", "\u11a8", "\u200c",
                             "\ue000", "\u0378", "\u00a0", *_CHAR_FIXES])


@settings(max_examples=400, deadline=None)
@given(st.lists(_ALPHABET, max_size=40).map("".join))
def test_normalize_matches_the_reference(text):
    assert normalize(text) == reference_normalize(text)

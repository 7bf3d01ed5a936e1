"""Cleaning rules, packing invariants and dedup of data_prep, checked against slow reference
implementations written here."""
from __future__ import annotations

import re
import unicodedata

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from data_prep.clean import _CHAR_FIXES, CleanOptions, clean, normalize
from data_prep.dedup import HashSet, first_occurrences
from data_prep.pack import Packer, find_cut
from data_prep.text_stats import hangul_share

# Korean syllables, jamo, ASCII incl. separators, 4-byte emoji: every UTF-8 length.
KOREAN_TEXT = st.text(alphabet=st.sampled_from(list("가나다라한국어ㅋㅎ abc.?!\n,") + ["😀", "é", "①"]), max_size=400)


# ---------------------------------------------------------------- cleaning


def test_normalize_rules():
    nfd = unicodedata.normalize("NFD", "한국어")
    assert len(nfd) > 3 and normalize(nfd) == "한국어"  # NFC
    assert normalize("ㅋㅋ ① ㈜") == "ㅋㅋ ① ㈜"  # never NFKC
    assert normalize("\ufeff앞\r\n뒤\r끝") == "앞\n뒤\n끝"  # BOM, CRLF, CR
    assert normalize("a\x00b\x07c\x9fd\u200be") == "abcde"  # control and zero-width characters
    assert normalize("  a \t b\u3000\u00a0c  \n  d   \n\n\n\n e ") == "a b c\nd\n\ne"
    assert normalize("줄\x0b바꿈\u2028끝") == "줄\n바꿈\n끝"


@given(KOREAN_TEXT.map(lambda s: unicodedata.normalize("NFD", s) + "\t\r\n \x01"))
@settings(max_examples=200, deadline=None)
def test_normalize_properties(text):
    out = normalize(text)
    assert unicodedata.is_normalized("NFC", out)
    assert normalize(out) == out  # idempotent
    assert "  " not in out and "\n\n\n" not in out and "\r" not in out and "\t" not in out
    assert out == out.strip()
    assert not any(unicodedata.category(ch) == "Cc" and ch != "\n" for ch in out)


def reference_normalize(text: str) -> str:
    """Slow restatement of the cleaning rules, character by character and line by line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = unicodedata.normalize("NFC", "".join(_CHAR_FIXES.get(ch, ch) for ch in text))
    lines = [" ".join(word for word in line.split(" ") if word) for line in text.split("\n")]
    return re.sub("\n{3,}", "\n\n", "\n".join(lines)).strip()


@given(st.lists(st.sampled_from(list("가한ㅋa. \n\r\t\x00\x0b\x85\xa0\u3000\u200b\u2028\ufeff\u0301") + ["\u1100\u1161"]),
                max_size=60).map("".join))
@settings(max_examples=500, deadline=None)
def test_normalize_matches_reference(text):
    assert normalize(text) == reference_normalize(text)


def test_filters_and_drop_reasons():
    options = CleanOptions(min_chars=5, min_hangul_ratio=0.5)
    assert clean("  \n ", "text", options) == (None, "empty")
    assert clean("가나", "text", options) == (None, "too_short")
    assert clean("hello world 가", "text", options) == (None, "low_hangul")
    assert clean("안녕하세요 world", "text", options) == ("안녕하세요 world", "")
    assert clean("hello world", "text", CleanOptions()) == ("hello world", "")  # ratio filter off by default
    assert hangul_share("가나 ab") == 0.5


def test_modu_tags_only_for_modu():
    text = "{laughing} 네 &name2& 씨 ((음)) (())"
    assert clean(text, "modu", CleanOptions())[0] == "네 &name2& 씨 음"
    assert clean(text, "modu", CleanOptions(deid_tags="remove"))[0] == "네 씨 음"
    assert clean(text, "text", CleanOptions())[0] == text


# ---------------------------------------------------------------- packing


def reference_cut(buf: bytes, start: int, size: int, window: int) -> int:
    """Slow restatement of the cut rule: the latest newline, else sentence end, else space within
    the window (the cut goes after it), else the latest character boundary."""
    end = start + size
    candidates = range(end, max(end - window, start + 1), -1)  # possible cut positions, latest first
    for rule in (lambda c: buf[c - 1:c] == b"\n",
                 lambda c: buf[c - 2:c] in (b". ", b"? ", b"! ") and c - 2 >= max(end - window, start + 1),
                 lambda c: buf[c - 1:c] == b" "):
        for cut in candidates:
            if rule(cut):
                return cut
    cut = end
    while (buf[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut


@given(st.lists(KOREAN_TEXT, min_size=1, max_size=30), st.sampled_from([16, 64, 100, 1024]),
       st.sampled_from([None, 0, 8, 30]), st.sampled_from([b"\n", b"", b" || "]))
@settings(max_examples=300, deadline=None)
def test_packer_invariants(docs, size, window, separator):
    packer = Packer(size, window, separator)
    encoded = [d.encode() for d in docs]
    chunks = []
    for i in range(0, len(encoded), 7):  # feeding in batches must not change anything
        chunks += packer.feed(encoded[i:i + 7]).to_list()
    chunks += packer.finish().to_list()
    assert b"".join(chunks) == separator.join(encoded)  # lossless, in order
    slack = max(packer.window, 3)
    for i, chunk in enumerate(chunks):
        chunk.decode("utf-8")  # never starts or ends inside a character
        assert 0 < len(chunk) <= size
        if i < len(chunks) - 1:
            assert len(chunk) >= size - slack
    if size == 1024 and window is None:
        assert all(len(c) >= 0.99 * size for c in chunks[:-1])


@given(st.binary(min_size=80, max_size=300).map(lambda b: b.decode("utf-8", "ignore").encode()).filter(lambda b: len(b) > 70)
       | KOREAN_TEXT.map(str.encode).filter(lambda b: len(b) > 70),
       st.integers(8, 60), st.integers(0, 40))
@settings(max_examples=400, deadline=None)
def test_find_cut_matches_reference(buf, size, window):
    size = min(size, len(buf) - 1)
    assert find_cut(buf, 0, size, window) == reference_cut(buf, 0, size, window)


def test_cut_preferences():
    text = "가" * 300 + ". 나다 " + "라" * 10 + "\n" + "마" * 20
    buf = text.encode()
    cut = find_cut(buf, 0, 960, window=60)
    assert buf[:cut].endswith("라\n".encode())  # newline beats the sentence end and space before it
    cut = find_cut(buf, 0, 935, window=60)  # newline out of reach; sentence end beats the later space
    assert buf[:cut].endswith(b". ")
    assert find_cut(buf, 0, 100, window=0) == 99  # no preference: last character boundary


# ---------------------------------------------------------------- dedup


@given(st.lists(st.lists(st.integers(0, 40), max_size=30), max_size=12))
@settings(max_examples=200, deadline=None)
def test_first_occurrences_match_a_set(batches):
    seen = HashSet()
    reference: set[int] = set()
    for batch in batches:
        hashes = np.array(batch, dtype=np.uint64)
        keep = first_occurrences(hashes, seen)
        expected = []
        for value in batch:
            expected.append(value not in reference)
            reference.add(value)
        assert keep.tolist() == expected
    assert len(seen) == len(reference)
    assert sorted(seen.values().tolist()) == sorted(reference)


def test_hashset_large_values():
    seen = HashSet()
    big = np.array([2**64 - 1, 2**63, 0, 12345], dtype=np.uint64)
    assert first_occurrences(big, seen).all()
    assert seen.contains(big).all() and not seen.contains(np.array([1, 2**64 - 2], dtype=np.uint64)).any()

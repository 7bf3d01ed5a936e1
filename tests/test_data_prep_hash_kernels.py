"""The compiled kernels of decontamination and MinHash against slow pure-Python loops written from
their definitions: the polynomial window hash, the letter filter, the per-line lookup, the shingle
hash, one-permutation bins, rotation densification and band hashing."""
from __future__ import annotations

import re

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from data_prep.decontam import presence_bits
from data_prep.decontam_kernels import NGRAM, overlapping_lines, passage_grams
from data_prep.dedup import doc_hash
from data_prep.minhash import NearDedupOptions, band_keys

MOD = 2 ** 64
BASE = 0x100000001B3
POLY = 0x9E3779B97F4A7C15
LETTER = re.compile("[a-zA-Z가-힣ㄱ-ㆎ一-鿿]")

# Short words of Hangul, Latin, digits and punctuation with spaces and newlines between them, so that
# lines are shorter and longer than a window, empty, or only spaces, and windows cross newlines.
pieces = st.sampled_from(["가나", "다", "라마바사", "ㅋㅋ", "abc", "Z", "12", "-", "…", "漢字", " ", "  ", "\n", "\n\n"])
texts = st.lists(pieces, max_size=60).map("".join)


def window_hash(chars: str) -> int:
    return sum((ord(c) + 1) * pow(BASE, t, MOD) for t, c in enumerate(chars)) % MOD


def points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), np.uint32)


@settings(max_examples=300, deadline=None)
@given(text=texts)
def test_passage_grams_are_the_hashes_of_windows_with_half_letters(text):
    compact = "".join(text.split())
    windows = [compact[i:i + NGRAM] for i in range(len(compact) - NGRAM + 1)]
    expected = [window_hash(w) for w in windows if len(LETTER.findall(w)) >= NGRAM // 2]
    assert passage_grams(points(compact)).tolist() == expected


def reference_lines(text: str, origin_of: dict[int, int]) -> list[list[int]]:
    """[line, origin] of each line (spaces ignored) with a window in `origin_of`, first window's origin."""
    found = []
    for number, line in enumerate(text.split("\n")):
        compact = line.replace(" ", "")
        for i in range(len(compact) - NGRAM + 1):
            if window_hash(compact[i:i + NGRAM]) in origin_of:
                found.append([number, origin_of[window_hash(compact[i:i + NGRAM])]])
                break
    return found


@settings(max_examples=300, deadline=None)
@given(text=texts, data=st.data(), bits=st.sampled_from([3, 5, 16]))
def test_overlapping_lines_matches_a_per_line_loop(text, data, bits):
    # Evaluation hashes: some windows of the text's lines, windows that cross a newline (which must
    # not match), neighbours of line windows (the same table bit, settled by the bisection) and
    # random ones; with few table bits most lookups need the bisection.
    lines = [line.replace(" ", "") for line in text.split("\n")]
    inside = [window_hash(line[i:i + NGRAM]) for line in lines for i in range(len(line) - NGRAM + 1)]
    joined = "".join(text.split(" "))
    across = [window_hash(joined[i:i + NGRAM]) for i in range(len(joined) - NGRAM + 1)
              if "\n" in joined[i:i + NGRAM]]
    chosen = data.draw(st.lists(st.sampled_from(inside), max_size=5)) if inside else []
    chosen += [h ^ 1 for h in data.draw(st.lists(st.sampled_from(inside), max_size=5))] if inside else []
    chosen += across + data.draw(st.lists(st.integers(0, MOD - 1), max_size=20))
    origin_of = {h: data.draw(st.integers(0, 3)) for h in chosen}
    hashes = np.array(sorted(origin_of), np.uint64)
    origin = np.array([origin_of[h] for h in sorted(origin_of)], np.int64)
    found = overlapping_lines(points(text), presence_bits(hashes, bits), bits, hashes, origin)
    assert found == reference_lines(text, origin_of)


def test_overlapping_lines_beyond_the_kernels_first_buffer():
    lines = [f"{i:04d}번째 줄은 평가 문장과 같은 글자를 담는다" for i in range(1000)]
    origin_of = {window_hash(line.replace(" ", "")[:NGRAM]): i % 3 for i, line in enumerate(lines) if i % 3}
    hashes = np.array(sorted(origin_of), np.uint64)
    origin = np.array([origin_of[h] for h in sorted(origin_of)], np.int64)
    text = "\n".join(lines)
    found = overlapping_lines(points(text), presence_bits(hashes, 16), 16, hashes, origin)
    assert len(found) == 666 and found == reference_lines(text, origin_of)


def mix(h: int) -> int:
    """murmur3's fmix64."""
    for factor in (0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53):
        h = ((h ^ (h >> 33)) * factor) % MOD
    return h ^ (h >> 33)


def reference_band_keys(text: str, shingle: int, bands: int, rows: int) -> list[int]:
    visible = [ord(c) for c in text if c not in " \n"]
    if len(visible) < shingle:  # keys from the exact hash: matches only exact copies
        return [mix(band ^ doc_hash(text.encode("utf-8"))) for band in range(bands)]
    bins, empty = bands * rows, 1 << 32
    sig = [empty] * bins
    for i in range(len(visible) - shingle + 1):
        h = 0
        for c in visible[i:i + shingle]:
            h = (h * POLY + c) % MOD
        h = mix(h)
        b = ((h >> 32) * bins) >> 32
        sig[b] = min(sig[b], h & 0xFFFFFFFF)
    filled = sig[:]
    for j in range(bins):
        if sig[j] == empty:  # the next non-empty bin, circularly, plus (empty + 1) per step
            step = next(d for d in range(1, bins) if sig[(j + d) % bins] != empty)
            filled[j] = (sig[(j + step) % bins] + step * (empty + 1)) % MOD
    keys = []
    for band in range(bands):
        key = mix(band + 1)
        for row in range(rows):
            key = mix(key ^ filled[row * bands + band])
        keys.append(key)
    return keys


@settings(max_examples=200, deadline=None)
@given(batch=st.lists(texts, max_size=6), shingle=st.sampled_from([1, 2, 5, 7]),
       threshold=st.sampled_from([0.01, 0.5, 0.8, 0.95]))
def test_band_keys_match_the_definition_per_document(batch, shingle, threshold):
    options = NearDedupOptions(True, threshold=threshold, shingle=shingle)
    bands, rows = options.bands_rows
    keys = band_keys(batch, options)
    assert keys.shape == (bands, len(batch)) and keys.dtype == np.uint64
    for i, text in enumerate(batch):  # first, last, empty and whitespace-only documents of a batch
        assert keys[:, i].tolist() == reference_band_keys(text, shingle, bands, rows)

"""The compiled quality kernels (data_prep.char_kernels, span_kernels) against slow pure-Python references, on
generated text with the edge cases they branch on: empty text, one word, only spaces and newlines,
words longer than 24 bytes, runs at the start and end, Hangul and other runs, every UTF-8 width;
and numba stays out of the CLI's and an unfiltered run's imports."""
from __future__ import annotations

import itertools
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_data_prep_quality import is_hangul, ref_duplicate_fraction, ref_text_counts, ref_top_fraction

from data_prep import char_kernels, span_kernels
from data_prep.repetition import duplicate_fraction, squeeze_runs, top_fraction
from data_prep.text_stats import code_points, hangul_share, measure

REPO = Path(__file__).resolve().parents[1]
# Hangul syllables, jamo (U+1100) and compatibility jamo, ASCII, 2- and 4-byte characters, a
# sentence end, and whitespace that str.split() splits at and bytes.split() does not (U+3000).
CHARS = "가힣ᄀㅋㅠa1Z.다?é😀/=-_ \n\t\r\x0b\u3000"
TEXTS = st.text(alphabet=CHARS, max_size=120)
# Long words agree in their first, middle and last 8 bytes: only an exact comparison tells them apart.
LONG = ["A" * 12 + tail + "A" * 27 for tail in "bc"]
WORDS = st.lists(st.sampled_from(["가", "나다", "a", "12", "ㅋㅋ", "😀", *LONG]), max_size=200)
SEPARATORS = st.lists(st.sampled_from([" ", "\n", "  ", "\t", " \n "]), min_size=1, max_size=3)


def ref_squeeze(text: str, hangul_keep: int | None, any_keep: int) -> str:
    pieces = []
    for char, run in itertools.groupby(text):
        length = len(list(run))
        keep = length if char.isspace() else hangul_keep if hangul_keep and is_hangul(char) else any_keep
        pieces.append(char * min(length, keep))
    return "".join(pieces)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=CHARS, max_size=60).map(lambda t: t * 3), st.sampled_from([None, 1, 2, 3]), st.integers(1, 10))
@example("", 2, 10)
@example("ㅋㅋㅋㅋ가나다!!!!!!!!!!!!", 2, 10)  # runs at the start and at the end
@example("\u3000" * 30 + "ᄀ" * 5 + "é" * 12 + "😀" * 12, 2, 10)  # a space run is never cut
def test_squeeze_matches_a_groupby_reference(text, hangul_keep, any_keep):
    squeezed = squeeze_runs(text, hangul_keep, any_keep)
    assert squeezed == ref_squeeze(text, hangul_keep, any_keep)
    assert (squeezed is text) == (squeezed == text)  # an unchanged document is not rebuilt


@settings(max_examples=300, deadline=None)
@given(st.one_of(TEXTS, st.lists(st.sampled_from(["가나다.", "ab", "", "ㅋ", "x" * 30, "다요"]), max_size=12)
                 .map("\n".join), st.text(alphabet="ab1/=.:가 ", max_size=200)))
@example("")
@example(" \n\n  \n")
@example("a" * 25 + "가" + "b" * 24 + "\n" + "c" * 26)  # junk runs at the start and end, one too short
def test_text_counts_match_line_and_regex_references(text):
    assert tuple(char_kernels.char_counts(code_points(text))) == ref_text_counts(text)[:3]
    assert tuple(measure(text, 10, -1.0)[:10]) == (len(text), *ref_text_counts(text), text.count("\n"))
    letters = len(text) - text.count(" ") - text.count("\n")
    assert hangul_share(text) == (sum(map(is_hangul, text)) / letters if letters else 0.0)


def ngram_text(words: list[str], separators: list[str]) -> str:
    return "".join(word + separators[i % len(separators)] for i, word in enumerate(words))


@settings(max_examples=300, deadline=None)
@given(WORDS, SEPARATORS, st.integers(2, 10))
@example([], [" "], 2)
@example(["가"], ["\n"], 2)
@example(LONG * 3, [" "], 2)
def test_word_ngrams_match_loop_references(words, separators, n):
    text = ngram_text(words, separators)
    data = text.encode()
    split = data.split()
    measures = measure(text, 10, -1.0)
    assert (measures.words, measures.size) == (len(split), len(data))
    seen, repeated = set(), 0
    for word in split:
        repeated += len(word) if word in seen else 0
        seen.add(word)
    assert measures.repeated_word_bytes == repeated
    if data:
        assert top_fraction(measures, n) == ref_top_fraction(split, n, len(data))
        assert duplicate_fraction(measures, n) == ref_duplicate_fraction(split, n, len(data))
    bigrams = list(zip(split, split[1:]))
    counts = [bigrams.count(pair) for pair in bigrams]
    chain = [len(list(itertools.takewhile(lambda c: c > 1, counts[i:]))) for i in range(len(counts))]
    assert measures.longest == max(chain, default=0)
    # Below the gate the n-grams are not measured (zeros); above it, measured as without one.
    gate = repeated / len(data) if data else 0.0
    for gated, measured in ((gate, False), (gate - 1e-9, True)):
        expected = measures if measured else measures._replace(longest=0, top=[0] * 11, covered=[0] * 11)
        assert measure(text, 10, gated) == expected


def test_long_words_differing_between_the_hashed_bytes_are_told_apart():
    """word_hashes (the NumPy version) saw only a word's first, middle and last 8 bytes, so in a
    document of 2000 bytes or more LONG[0] x and LONG[1] x were one repeated bigram."""
    text = " ".join([LONG[0], "x", LONG[1], "x"] + [f"w{i}" for i in range(500)])
    assert top_fraction(measure(text, 2, -1.0), 2) == 0.0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), max_size=60))
def test_pair_ids_number_pairs_in_order_of_first_occurrence(pairs):
    left, right = (np.array([pair[side] for pair in pairs], np.int64) for side in (0, 1))
    ids, counts, first = span_kernels.pair_ids(left, right)
    order = list(dict.fromkeys(pairs))
    assert ids.tolist() == [order.index(pair) for pair in pairs]
    assert counts.tolist() == [pairs.count(pair) for pair in order]
    assert first.tolist() == [pairs.index(pair) for pair in order]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="가a😀 ", max_size=6), max_size=40))
def test_span_ids_compare_spans_exactly(spans):
    lengths = np.array([len(span) for span in spans], np.int64)
    ends = np.cumsum(lengths)
    ids, first = span_kernels.span_ids(code_points("".join(spans)), ends - lengths, ends)
    order = list(dict.fromkeys(spans))
    assert ids.tolist() == [order.index(span) for span in spans]
    assert first.tolist() == [spans.index(span) for span in order]


@pytest.mark.parametrize("code", [
    "import data_prep.cli",
    "from data_prep.quality import quality_steps; quality_steps('off')",
    "from data_prep.clean import clean, CleanOptions; clean('가나다', 'text', CleanOptions())",
])
def test_numba_is_not_imported_without_a_quality_filter(code):
    probe = f"import sys; {code}; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

"""The cleaning-step pipeline (drops counted per step name, samples kept) and the typed counters
that add themselves and round-trip through the manifest's JSON."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from data_prep.clean import CleanOptions, clean, cleaning_steps
from data_prep.stats import PackStats, SourceStats, SplitCounts, UnitStats
from data_prep.steps import Pipeline, Step, check, measured, rewrite

ROOT = Path(__file__).resolve().parents[1]


def test_pipeline_counts_each_drop_under_its_step_name():
    def count_digits(text: str, edits: Counter) -> str:
        edits["digits.seen"] += sum(ch.isdigit() for ch in text)
        return text

    pipeline = Pipeline.of([rewrite("upper", str.upper), Step("digits", count_digits),
                            check("short", lambda t: len(t) >= 3), check("no_x", lambda t: "X" not in t)],
                           keep_samples=1)
    results = [pipeline(t) for t in ["ab", "abc1", "xyz", "de", "hello22"]]
    assert results == [None, "ABC1", None, None, "HELLO22"]
    assert pipeline.counts.dropped == {"short": 2, "no_x": 1}
    assert pipeline.counts.docs_clean == 2 and pipeline.counts.edits == {"digits.seen": 3}
    # One sample per step: the first drop of each filter, the first document the counting step edited.
    assert [(s.step, s.text) for s in pipeline.samples] == [("short", "AB"), ("digits", "ABC1"), ("no_x", "XYZ")]


def test_measured_steps_measure_each_document_once_and_count_each_drop_by_name():
    measured_texts = []

    def length(text: str) -> int:
        measured_texts.append(text)
        return len(text)

    steps = [rewrite("strip", str.strip), measured("long", length, lambda n: n >= 3),
             measured("short", length, lambda n: n <= 5), check("no_x", lambda t: "x" not in t),
             measured("odd", length, lambda n: n % 2 == 1)]
    pipeline = Pipeline.of(steps, keep_samples=1)
    texts = [" ab ", "abcde", "abcdefg", "xyz", "abcd", "abc"]
    assert [pipeline(t) for t in texts] == [None, "abcde", None, None, None, "abc"]
    assert pipeline.counts.dropped == {"long": 1, "short": 1, "no_x": 1, "odd": 1}
    # one measure for the two consecutive steps, one more for "odd" after the check
    assert measured_texts == ["ab", "abcde", "abcde", "abcdefg", "xyz", "abcd", "abcd", "abc", "abc"]
    assert [(s.step, s.text) for s in pipeline.samples] == [("long", "ab"), ("short", "abcdefg"),
                                                             ("no_x", "xyz"), ("odd", "abcd")]
    # a step run alone gives the pipeline's answer
    alone = [next((s.name for s in steps if s.run(t.strip(), Counter()) is None), None) for t in texts]
    assert alone == ["long", None, "short", "no_x", "odd", None]


def test_clean_is_the_default_steps():
    options = CleanOptions(min_chars=3, min_hangul_ratio=0.5)
    assert [s.name for s in cleaning_steps("modu", options)] == ["modu_tags", "normalize", "empty", "too_short",
                                                                 "low_hangul"]
    assert [s.name for s in cleaning_steps("text", CleanOptions())] == ["normalize", "empty"]
    assert clean("  가나다라  ", "text", options) == ("가나다라", "")


counts = st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(1, 9))
unit_stats = st.builds(UnitStats, docs_clean=st.integers(0, 9), dropped=counts.map(Counter),
                       edits=counts.map(Counter), docs_read=st.integers(0, 9), clean_bytes=st.integers(0, 99),
                       bytes_in=st.integers(0, 99), problems=counts.map(Counter))


@given(st.lists(unit_stats, max_size=5))
def test_stats_add_field_by_field_like_a_loop(units):
    total = UnitStats.total(units)
    for name in ("docs_clean", "docs_read", "clean_bytes", "bytes_in"):
        assert getattr(total, name) == sum(getattr(u, name) for u in units)
    for name in ("dropped", "edits", "problems"):
        expected: dict = {}
        for u in units:
            for k, v in getattr(u, name).items():
                expected[k] = expected.get(k, 0) + v
        assert dict(getattr(total, name)) == expected
    assert UnitStats.from_json(total.to_json()) == total


def test_source_entry_keeps_the_manifest_keys():
    unit = UnitStats(docs_clean=5, dropped=Counter(empty=1), docs_read=6, bytes_in=100)
    pack = PackStats(duplicate=2, docs=SplitCounts(2, 1), chunks=SplitCounts(4, 1), bytes_out=80)
    entry = (SourceStats.of_unit(unit) + SourceStats.of_packing(pack)).to_json()
    assert entry == {"files": 1, "docs_read": 6, "dropped": {"duplicate": 2, "empty": 1}, "bytes_in": 100,
                     "problems": {}, "edits": {}, "docs_kept": 3, "docs_validation": 1, "bytes_out": 80,
                     "chunks": {"train": 4, "validation": 1}}
    old_manifest_entry = {k: v for k, v in entry.items() if k != "edits"}  # written before edits existed
    assert SourceStats.from_json(old_manifest_entry).to_json() == entry

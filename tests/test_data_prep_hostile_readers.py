"""Hostile records for the readers: values of the wrong type or size, layouts a writer may leave.
Each test reproduces a failure of an earlier version (a record, or the rest of its unit, lost)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from data_prep.inputs import InputSpec, plan_units
from data_prep.problems import Problems
from data_prep.cli import main
from data_prep.readers import READERS, ReadContext, ReadOptions, UnknownFormat, detect_format

# More digits than Python converts to an int (sys.get_int_max_str_digits(): 4300).
HUGE_INT = "1" + "0" * 5000


def read(path: Path, fmt: str | None = None, **options) -> tuple[list[tuple[str, str]], ReadContext]:
    problems = Problems()
    units = plan_units([InputSpec("t", str(path))], fmt, "line", 1 << 30, problems)
    ctx = ReadContext(ReadOptions(**options), problems)
    return [doc for unit in units for doc in READERS[unit.fmt](unit, ctx)], ctx


def texts(docs: list[tuple[str, str]]) -> list[str]:
    return [text for text, _ in docs]


# ---------------------------------------------------------------- numbers Python will not convert


def test_a_jsonl_integer_too_long_for_python_costs_nothing(tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_text('{"text": "첫째"}\n'
                    f'{{"text": "둘째", "id": {HUGE_INT}}}\n'
                    f'{{"text": {HUGE_INT}}}\n'
                    '{"text": "셋째"}\n', "utf-8")
    docs, ctx = read(path)
    assert [(t, loc.rsplit(":", 1)[1]) for t, loc in docs if t] == [("첫째", "1"), ("둘째", "2"), ("셋째", "4")]
    assert ctx.problems.counts == {"bad_field": 1}  # the record whose text is that number
    assert f"{path}:3: bad_field" in ctx.problems.samples[0]


def test_a_whole_file_json_integer_too_long_for_python_costs_nothing(tmp_path):
    path = tmp_path / "modu.json"
    path.write_text(f'{{"document": [{{"id": {HUGE_INT}, "paragraph": [{{"form": "가"}}]}}, '
                    '{"paragraph": [{"form": "나"}]}]}', "utf-8")
    docs, ctx = read(path)
    assert texts(docs) == ["가", "나"] and not ctx.problems.counts


# Numbers that yajl's fast parsing (ijson use_float) fails on, each with a parse error that ended the file.
OVERFLOWS = {"int64": str(2**63), "negative": str(-2**63 - 1), "double": "1e400", "python": HUGE_INT}


PAD = " 가나다" * 4000


def namuwiki_records(overflow: str) -> bytes:
    records = [json.dumps({"namespace": "0", "title": f"문서{i}", "text": f"본문 {i}{PAD}"}, ensure_ascii=False)
               for i in range(6)]
    records[2] = records[2][:-1] + f', "id": {overflow}}}'
    # invalid UTF-8 before and after the number, in other reads of ijson's (64 KiB): each reported
    # once, though the file is read twice
    return ("[" + ",\n".join(records) + "]").encode().replace("본문 1".encode(), b"\xff 1").replace(
        "본문 4".encode(), b"\xfe 4")


@pytest.mark.parametrize("name", sorted(OVERFLOWS))
def test_a_number_past_64_bits_in_a_streamed_dump_costs_nothing(tmp_path, name):
    path = tmp_path / "namu.json"
    path.write_bytes(namuwiki_records(OVERFLOWS[name]))
    limit = sys.get_int_max_str_digits()
    docs, ctx = read(path, fmt="namuwiki")
    assert texts(docs) == [f"{text}{PAD}" for text in ["본문 0", "\ufffd 1", "본문 2", "본문 3", "\ufffd 4", "본문 5"]]
    assert ctx.problems.counts == {"invalid_utf8": 2}, ctx.problems.samples
    assert sys.get_int_max_str_digits() == limit


def test_a_number_past_64_bits_in_a_streamed_json_document_costs_nothing(tmp_path):
    path = tmp_path / "modu.json"
    documents = [{"id": i, "paragraph": [{"form": f"문단 {i}"}]} for i in range(5)]
    path.write_text(json.dumps({"document": documents}, ensure_ascii=False).replace('"id": 3', f'"id": {2**64}'),
                    "utf-8")
    docs, ctx = read(path, max_doc_bytes=100)  # the file is bigger: streamed
    assert texts(docs) == [f"문단 {i}" for i in range(5)] and not ctx.problems.counts


def test_a_bom_before_a_namuwiki_dump_costs_nothing(tmp_path):
    path = tmp_path / "namu.json"
    path.write_bytes(b"\xef\xbb\xbf" + namuwiki_records("0"))
    docs, ctx = read(path, fmt="namuwiki")
    assert len(docs) == 6 and ctx.problems.counts == {"invalid_utf8": 2}


@pytest.mark.parametrize("fmt", ["modu", "aihub"])
def test_a_bom_before_a_whole_file_json_document_costs_nothing(tmp_path, fmt):
    path = tmp_path / "doc.json"
    body = {"document": [{"paragraph": [{"form": "가"}]}]} if fmt == "modu" else {"text": "가"}
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(body).encode())
    docs, ctx = read(path)
    assert texts(docs) == ["가"] and not ctx.problems.counts


# ---------------------------------------------------------------- CSV layouts


def test_blank_lines_before_a_csv_header_are_skipped(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("\n\r\ntext,label\n가나다,1\n라마바,0\n", "utf-8")
    docs, ctx = read(path)
    assert texts(docs) == ["가나다", "라마바"] and not ctx.problems.counts
    assert docs[0][1] == f"{path}#row0"


def test_spaces_around_csv_column_names_are_not_part_of_them(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("\ufeff text , label\n가나다,1\n", "utf-8")
    docs, ctx = read(path, text_field="text")
    assert texts(docs) == ["가나다"] and not ctx.problems.counts


# ---------------------------------------------------------------- Parquet and Arrow column types


def write_arrow(path: Path, table: pa.Table) -> Path:
    with ipc.new_file(path, table.schema) as writer:
        writer.write_table(table)
    return path


NOT_TEXT = {"int64": pa.array([1, 2, 3]), "list": pa.array([["가", "나"], None, ["다"]]),
            "struct": pa.array([{"x": "가"}, {"x": "나"}, None]), "bool": pa.array([True, False, None])}


@pytest.mark.parametrize("kind", ["parquet", "arrow"])
@pytest.mark.parametrize("name", sorted(NOT_TEXT))
def test_a_text_column_that_holds_no_text_is_one_problem_naming_its_type(tmp_path, kind, name):
    table = pa.table({"text": NOT_TEXT[name], "other": ["a", "b", "c"]})
    path = tmp_path / f"t.{kind}"
    pq.write_table(table, path) if kind == "parquet" else write_arrow(path, table)
    docs, ctx = read(path)
    assert docs == []  # no str(1) or "['가', '나']" posing as a document
    assert ctx.problems.counts == {"bad_field": 1}
    sample = ctx.problems.samples[0]
    assert sample.startswith(f"{path}: bad_field: column 'text' holds {name}") and sample.endswith("not text; file skipped")


@pytest.mark.parametrize("kind", [pa.string_view(), pa.binary_view()])
def test_a_view_column_is_read_and_keeps_the_size_limit(tmp_path, kind):
    values = ["가나", "x" * 200, "다라"]
    path = write_arrow(tmp_path / "v.arrow",
                       pa.table({"text": pa.array([v.encode() if kind == pa.binary_view() else v for v in values],
                                                  kind)}))
    docs, ctx = read(path, max_doc_bytes=100)
    assert texts(docs) == ["가나", "다라"]
    assert ctx.problems.counts == {"oversized_record": 1} and f"{path}#row1" in ctx.problems.samples[0]


# ---------------------------------------------------------------- CR-only line ends (classic Mac)


CR_FILES = {"t.txt": "첫째 줄\r둘째 줄\r\r셋째 줄\r", "t.jsonl": '{"text": "첫째 줄"}\r{"text": "둘째 줄"}\r\r{"text": "셋째 줄"}',
            "t.csv": 'text,n\r첫째 줄,1\r"둘째 줄",2\r셋째 줄,3\r', "t.tsv": "text\tn\r첫째 줄\t1\r둘째 줄\t2\r셋째 줄\t3\r"}


@pytest.mark.parametrize("name", sorted(CR_FILES))
def test_lines_ending_in_cr_alone_are_lines(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(CR_FILES[name].encode())
    docs, ctx = read(path)
    assert texts(docs) == ["첫째 줄\n", "둘째 줄\n", "셋째 줄\n"] if name == "t.txt" else ["첫째 줄", "둘째 줄", "셋째 줄"]
    assert not ctx.problems.counts


def test_a_cr_only_file_bigger_than_the_limit_is_read_line_by_line_in_byte_ranges(tmp_path):
    lines = [f"{i}번째 줄입니다" for i in range(3000)]
    path = tmp_path / "mac.txt"
    path.write_bytes("\r".join(lines).encode())
    problems = Problems()
    units = plan_units([InputSpec("t", str(path))], None, "line", 4096, problems)
    ctx = ReadContext(ReadOptions(max_doc_bytes=1000), problems)
    assert len(units) > 10  # ranges of 4 KiB, a file of 70 KB of one "line" before
    docs = [doc for unit in units for doc in READERS[unit.fmt](unit, ctx)]
    assert [text.rstrip("\n") for text in texts(docs)] == lines and not problems.counts


def test_a_stray_cr_in_a_file_of_lf_lines_stays_text(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("가\r나\n다\n".encode())
    docs, _ = read(path)
    assert texts(docs) == ["가\r나\n", "다\n"]


# ---------------------------------------------------------------- a CSV quote never closed


def test_a_csv_quote_never_closed_costs_only_its_row(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('text,n\n첫째,1\n"둘째,2\n셋째,3\n넷째,4\n', "utf-8")
    docs, ctx = read(path)
    assert texts(docs) == ["첫째", "셋째", "넷째"]
    assert ctx.problems.counts == {"bad_row": 1}
    assert ctx.problems.samples[0].startswith(f"{path}#row1: bad_row: a quote opened here is never closed")


def test_the_rows_a_runaway_quote_ran_past_the_limit_over_are_read_again(tmp_path):
    rows = [f"{i}번째 행" for i in range(200)]
    path = tmp_path / "t.csv"
    path.write_text("text,n\n" + '"깨진 행,0\n' + "".join(f"{r},{i}\n" for i, r in enumerate(rows)) + '"끝\n', "utf-8")
    docs, ctx = read(path, max_doc_bytes=1000)  # the runaway field reaches the limit after ~60 rows
    assert texts(docs) == rows + ["끝\n"]
    assert ctx.problems.counts == {"bad_row": 1} and "field larger than field limit" in ctx.problems.samples[0]



# ---------------------------------------------------------------- UTF-16 text


@pytest.mark.parametrize("name", ["notes.txt", "corpus.jsonl", "table.csv.gz", "dump.json"])
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_utf16_text_is_named_as_such(name, encoding):
    head = ("\ufeff" + '{"text": "안녕하세요"}\n').encode(encoding)
    with pytest.raises(UnknownFormat, match="UTF-16 text .*iconv -f utf-16 -t utf-8"):
        detect_format(name, head)


def test_utf16_jsonl_stops_the_run_in_one_line(tmp_path, caplog):
    path = tmp_path / "corpus.jsonl"  # read as UTF-8, each of its lines was an invalid_utf8 and a malformed_json
    path.write_bytes('{"text": "안녕하세요"}\n{"text": "반갑습니다"}\n'.encode("utf-16"))
    assert main([str(path), "-o", str(tmp_path / "out")]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and f"{path.name}: UTF-16 text" in errors[0]

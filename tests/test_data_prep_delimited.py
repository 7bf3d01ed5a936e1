"""CSV and TSV inputs: columns chosen by --text-field, RFC 4180 quoting for CSV, literal TSV,
detection by extension, and the real Korean CSV/TSV corpora in ../shared/corpora when present."""
from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import pytest

from data_prep.cli import main
from data_prep.inputs import InputSpec, plan_units
from data_prep.problems import Problems
from data_prep.readers import READERS, ReadContext, ReadOptions, detect_format
from data_prep.shard_format import MANIFEST

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"
needs_corpora = pytest.mark.skipif(not CORPORA.is_dir(), reason="../shared/corpora not present")


def read(path: Path, **options) -> tuple[list[tuple[str, str]], ReadContext]:
    problems = Problems()
    units = plan_units([InputSpec("t", str(path))], None, "line", 1 << 30, problems)
    ctx = ReadContext(ReadOptions(**options), problems)
    return [doc for unit in units for doc in READERS[unit.fmt](unit, ctx)], ctx


ROWS = [["1", "첫 질문, 쉼표 포함", "첫 답"], ["2", "여러 줄\n질문입니다", '"따옴표" 답'], ["3", "", "답만 있음"]]


def csv_bytes(rows: list[list[str]], header=("id", "Q", "A")) -> bytes:
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator="\r\n").writerows([list(header), *rows])
    return b"\xef\xbb\xbf" + buffer.getvalue().encode()


def test_csv_columns_quoted_newlines_bom_crlf_and_gzip(tmp_path):
    for name, data in (("qa.csv", csv_bytes(ROWS)), ("qa.csv.gz", gzip.compress(csv_bytes(ROWS)))):
        path = tmp_path / name
        path.write_bytes(data)
        assert detect_format(name, b"") == "csv"
        docs, ctx = read(path, text_field="Q, A")
        assert docs == [("첫 질문, 쉼표 포함\n첫 답", f"{path}#row0"), ("여러 줄\n질문입니다\n\"따옴표\" 답", f"{path}#row1"),
                        ("답만 있음", f"{path}#row2")]
        assert ctx.problems.total == 0
        docs, _ = read(path, text_field="id")
        assert [t for t, _ in docs] == ["1", "2", "3"]


def test_csv_without_the_column_is_reported_with_its_columns(tmp_path):
    path = tmp_path / "qa.csv"
    path.write_bytes(csv_bytes(ROWS))
    docs, ctx = read(path)
    assert docs == [] and ctx.problems.counts == {"missing_field": 1}
    assert "no column 'text' (columns: id, Q, A)" in ctx.problems.samples[0]


def test_tsv_fields_are_literal(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text('sentence1\tsentence2\tgold_label\n"인용" 문장\t두 번째 "문장\tentailment\n짧다\t길다\tneutral\n')
    docs, ctx = read(path, text_field="sentence1")
    assert [t for t, _ in docs] == ['"인용" 문장', "짧다"] and ctx.problems.total == 0


def test_bad_and_oversized_rows_are_skipped(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text('id,text\n1,좋은 행\n2\n3,"' + "긴 " * 1000 + '\n계속"\n4,마지막 행\n')
    docs, ctx = read(path, max_doc_bytes=1000)
    assert [t for t, _ in docs] == ["좋은 행", "마지막 행"]
    assert ctx.problems.counts["bad_row"] >= 2


def test_csv_end_to_end_and_text_field_on_a_text_file_is_refused(tmp_path, caplog):
    path = tmp_path / "chat.csv"
    path.write_bytes(csv_bytes(ROWS))
    out = tmp_path / "out"
    assert main([str(path), "-o", str(out), "--text-field", "Q,A", "--val-fraction", "0"]) == 0
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["inputs"][0]["format"] == "csv" and manifest["sources"]["chat"]["docs_kept"] == 3
    text = tmp_path / "plain.txt"
    text.write_text("한 줄\n")
    caplog.clear()
    assert main([str(text), "-o", str(tmp_path / "o2"), "--text-field", "body"]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "--text-field applies to jsonl, csv, tsv, parquet, arrow" in errors[0]
    assert f"{text} is read as text" in errors[0]


REAL = [("chatbot_data/ChatbotData.csv", "Q,A", ["Q", "A"], 11823),
        ("question_pair/kor_pair_train.csv", "question1,question2", ["question1", "question2"], 6888),
        ("question_pair/kor_Pair_test.csv", "question1", ["question1"], 688),
        ("kor_nlu/KorNLI/xnli.dev.ko.tsv", "sentence1,sentence2", ["sentence1", "sentence2"], 2490),
        ("kor_nlu/KorSTS/sts-dev.tsv", "sentence1,sentence2", ["sentence1", "sentence2"], 1500)]


@needs_corpora
@pytest.mark.parametrize("name,field,columns,rows", REAL)
def test_real_korean_tables(name, field, columns, rows):
    path = CORPORA / name
    docs, ctx = read(path, text_field=field)
    assert ctx.problems.total == 0 and len(docs) == rows
    # The reference: the whole file parsed at once by the csv module (TSV: split at tabs).
    text = path.read_text("utf-8-sig")
    table = list(csv.reader(io.StringIO(text, newline=""))) if name.endswith(".csv") else \
        [line.split("\t") for line in text.splitlines()]
    expected = ["\n".join(row[table[0].index(c)] for c in columns if row[table[0].index(c)]) for row in table[1:]]
    assert [t for t, _ in docs] == expected

"""Readers, format detection and decompression of data_prep, on hand-made fixtures written here
(formats with no public sample) and on the real Korean data in ../shared/corpora when present."""
from __future__ import annotations

import bz2
import gzip
import json
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from data_prep.clean import CleanOptions, clean
from data_prep.inputs import InputError, InputSpec, expand, parse_input, plan_units
from data_prep.problems import Problems
from data_prep.readers import READERS, ReadContext, ReadOptions, UnknownFormat, detect_format
from data_prep.sample import konlpy_corpus_dir

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"
needs_corpora = pytest.mark.skipif(not CORPORA.is_dir(), reason="../shared/corpora not present")


def read(path: Path | str, fmt: str | None = None, **options) -> tuple[list[tuple[str, str]], ReadContext]:
    """All (text, location) documents of every unit under `path`, and the context with the problems."""
    problems = Problems()
    units = plan_units([InputSpec("t", str(path))], fmt, options.get("text_mode", "line"), 1 << 30, problems)
    ctx = ReadContext(ReadOptions(**options), problems)
    docs = [doc for unit in units for doc in READERS[unit.fmt](unit, ctx)]
    return docs, ctx


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


# ---------------------------------------------------------------- jsonl


def test_jsonl_dotted_field_and_locations(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [{"meta": {"body": "첫 문서"}}, {"meta": {"body": "둘째"}}])
    docs, ctx = read(path, text_field="meta.body")
    assert docs == [("첫 문서", f"{path}:1"), ("둘째", f"{path}:2")]
    assert ctx.problems.total == 0


def test_jsonl_bad_lines_are_reported_and_skipped(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"text": "good one"}\n{"text": broken\n\n{"title": "no text"}\n{"text": 5}\n'
                     b'{"text": "bad \xff byte"}\n{"text": "last"}\n')
    docs, ctx = read(path)
    assert [d[0] for d in docs] == ["good one", "", "bad \ufffd byte", "last"]
    counts = ctx.problems.counts
    assert counts["malformed_json"] == 1 and counts["missing_field"] == 1 and counts["invalid_utf8"] == 1
    assert counts["bad_field"] == 1
    joined = "\n".join(ctx.problems.samples)
    assert f"{path}:2: malformed_json" in joined
    assert f"{path}:4: missing_field" in joined and "'text'" in joined
    assert f"{path}:6: invalid_utf8" in joined


def test_jsonl_with_bom_and_raw_control_characters(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"text": "first"}\r\n{"text": "tab\there nul\x00"}\r\n')
    docs, ctx = read(path)
    assert [t for t, _ in docs] == ["first", "tab\there nul\x00"] and ctx.problems.total == 0


def test_invalid_utf8_drop_mode(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"text": "ok"}\n{"text": "bad \xc3\x28"}\n')
    docs, ctx = read(path, invalid_utf8="drop")
    assert [d[0] for d in docs] == ["ok"]
    assert ctx.dropped["invalid_utf8"] == 1 and ctx.problems.counts["invalid_utf8"] == 1


@pytest.mark.parametrize("mode", ["replace", "drop"])
def test_an_escaped_lone_surrogate_is_repaired_or_dropped_and_the_rest_is_read(tmp_path, mode):
    # The standard parser (which reads the lines orjson refuses) decodes "\ud800" into a str that
    # no step could encode: the rest of the unit used to be lost as a read_error.
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"text": "a\\ud800b"}\n{"text": "\\ud83d\\ude00 paired"}\n{"text": "\xc3\x28 \\udfff"}\n'
                     b'{"text": "ok"}\n')
    docs, ctx = read(path, invalid_utf8=mode)
    if mode == "replace":  # the third line has both faults, each reported
        assert [t for t, _ in docs] == ["a\ufffdb", "\U0001F600 paired", "\ufffd( \ufffd", "ok"]
        assert ctx.problems.counts == {"lone_surrogate": 2, "invalid_utf8": 1}
    else:
        assert [t for t, _ in docs] == ["\U0001F600 paired", "ok"]
        assert ctx.dropped == {"lone_surrogate": 1, "invalid_utf8": 1}
        assert ctx.problems.counts == {"lone_surrogate": 1, "invalid_utf8": 1}
    assert f"{path}:1: lone_surrogate: 1 escaped lone surrogate(s)" in "\n".join(ctx.problems.samples)
    for text, _ in docs:
        text.encode("utf-8")


def test_a_lone_surrogate_in_a_whole_file_json_document_is_repaired(tmp_path):
    path = tmp_path / "NWRW1800000001.json"
    document = {"document": [{"paragraph": [{"form": "첫 문서 \\ud800 끝"}]}, {"paragraph": [{"form": "둘째"}]}]}
    path.write_text(json.dumps(document, ensure_ascii=False).replace("\\\\ud800", "\\ud800"), encoding="utf-8")
    docs, ctx = read(path, fmt="modu")
    assert docs == [("첫 문서 \ufffd 끝", f"{path}#doc0"), ("둘째", f"{path}#doc1")]
    assert ctx.problems.counts == {"lone_surrogate": 1}


def test_wikiextractor_json_is_jsonl(tmp_path):
    path = write_jsonl(tmp_path / "wiki_00", [{"id": "5", "revid": "1", "url": "u", "title": "지미 카터",
                                                "text": "지미 카터\n\n제임스 얼 카터 주니어는 미국의 제39대 대통령이다."}])
    assert detect_format("wiki_00", path.read_bytes()) == "jsonl"
    docs, _ = read(path)
    assert docs[0][0].startswith("지미 카터")


# ---------------------------------------------------------------- text


def test_text_modes_crlf_and_bom(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes("\ufeff첫 줄\r\n둘째 줄\r\n\r\n셋째 블록\r\n".encode())
    lines, _ = read(path, text_mode="line")
    assert len(lines) == 3
    blocks, _ = read(path, text_mode="block")
    assert [clean(t, "text", CleanOptions())[0] for t, _ in blocks] == ["첫 줄\n둘째 줄", "셋째 블록"]
    whole, _ = read(path, text_mode="file")
    assert len(whole) == 1 and clean(whole[0][0], "text", CleanOptions())[0] == "첫 줄\n둘째 줄\n\n셋째 블록"


def test_konlpy_sample_is_available_and_read():
    corpus = konlpy_corpus_dir()
    docs, ctx = read(corpus / "kolaw", text_mode="block")
    assert docs[0][0].strip() == "대한민국헌법"
    assert any("제1조" in text for text, _ in docs)
    assert ctx.problems.total == 0


@needs_corpora
def test_real_boddari_blocks_and_crlf_bom_csv():
    docs, ctx = read(CORPORA / "boddari" / "wikinews.txt", text_mode="block")
    assert 600 <= len(docs) <= 700 and ctx.problems.total == 0
    # A CSV is a table now (tests/test_data_prep_delimited.py), its header and commas no text.
    rows, ctx = read(CORPORA / "question_pair" / "kor_pair_train.csv")
    assert rows == [] and ctx.problems.counts == {"missing_field": 1}
    rows, ctx = read(CORPORA / "question_pair" / "kor_pair_train.csv", text_field="question1")
    cleaned = [clean(text, "text", CleanOptions())[0] for text, _ in rows]
    assert len(rows) == 6888  # CRLF, BOM, no final newline
    assert not any("\r" in c or "\ufeff" in c for c in cleaned)
    assert cleaned[0] == "1000일 만난 여자친구와 이별"


# ---------------------------------------------------------------- modu (NIKL)

MODU_NEWSPAPER = {"id": "NWRW1800000001", "metadata": {"title": "신문"}, "document": [
    {"id": "NWRW1800000001.1", "metadata": {}, "paragraph": [
        {"id": "p1", "form": "경제 성장률 발표"}, {"id": "p2", "form": "정부는 올해 성장률을 발표했다."}]},
    {"id": "NWRW1800000001.2", "metadata": {}, "paragraph": [{"id": "p1", "form": "두 번째 기사"}]}]}
MODU_SPOKEN = {"id": "SARW1800000001", "document": [{"id": "SARW1800000001.1", "utterance": [
    {"id": "u1", "form": "안녕하세요 {laughing} &name1& 씨", "original_form": "안녕하세요 &name1& 씨", "speaker_id": "1"},
    {"id": "u2", "form": "((예)) 그래요 (())", "original_form": "예 그래요", "speaker_id": "2"}]}]}


def test_modu_zip_paragraphs_and_utterances(tmp_path):
    path = tmp_path / "NIKL_NEWSPAPER.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("NIKL/NWRW1800000001.json", json.dumps(MODU_NEWSPAPER, ensure_ascii=False, indent=1))
        archive.writestr("NIKL/SARW1800000001.json", json.dumps(MODU_SPOKEN, ensure_ascii=False))
        archive.writestr("NIKL/readme/", "")
    docs, ctx = read(path)
    assert ctx.problems.total == 0
    texts = [t for t, _ in docs]
    assert texts[:2] == ["경제 성장률 발표\n정부는 올해 성장률을 발표했다.", "두 번째 기사"]
    assert docs[0][1] == f"{path}::NIKL/NWRW1800000001.json#doc0"
    kept = clean(texts[2], "modu", CleanOptions(deid_tags="keep"))[0]
    removed = clean(texts[2], "modu", CleanOptions(deid_tags="remove"))[0]
    assert kept == "안녕하세요 &name1& 씨\n예 그래요"
    assert removed == "안녕하세요 씨\n예 그래요"


def test_modu_missing_layout_names_file(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"id": "X", "document": [{"id": "d", "paragraph": "not a list"}]}))
    docs, ctx = read(path, fmt="modu")
    assert docs == [] and ctx.problems.counts["missing_field"] == 1
    assert str(path) in ctx.problems.samples[0] and "paragraph[].form" in ctx.problems.samples[0]


# ---------------------------------------------------------------- aihub and other whole-file JSON

AIHUB_LAYOUTS = {
    "sjml": {"SJML": {"header": {}, "text": [{"title": "t", "content": "첫 본문"}, {"content": "둘째 본문"}]}},
    "rows": {"data": [{"rows": [{"text": "행 하나"}, {"text": "행 둘"}]}]},
    "documents": {"documents": [{"id": "1", "text": [[{"sentence": "문장 하나."}, {"sentence": "문장 둘."}], [{"sentence": "셋."}]]}]},
    "utterance": {"utterance": [{"original_form": "발화 하나"}, {"original_form": "발화 둘"}]},
}
AIHUB_EXPECTED = {"sjml": ["첫 본문", "둘째 본문"], "rows": ["행 하나\n행 둘"], "documents": ["문장 하나.\n문장 둘.\n셋."],
                  "utterance": ["발화 하나\n발화 둘"]}


@pytest.mark.parametrize("layout", sorted(AIHUB_LAYOUTS))
def test_aihub_layouts_are_detected(tmp_path, layout):
    path = tmp_path / f"{layout}.json"
    path.write_text(json.dumps(AIHUB_LAYOUTS[layout], ensure_ascii=False, indent=2), encoding="utf-8")
    docs, ctx = read(path)
    assert [t for t, _ in docs] == AIHUB_EXPECTED[layout] and ctx.problems.total == 0


def test_aihub_explicit_paths_and_invalid_json(tmp_path):
    good = tmp_path / "c.json"
    good.write_text(json.dumps({"corpus": {"items": [{"body": "가"}, {"body": "나"}]}}))
    docs, _ = read(good, fmt="aihub", doc_path="corpus.items[]", text_path="body")
    assert [t for t, _ in docs] == ["가", "나"]
    tsv = tmp_path / "fake.json"
    tsv.write_text("id\ttext\n1\t가나다\n")  # one AIHub "JSON" corpus is really TSV
    docs, ctx = read(tsv, fmt="aihub")
    assert docs == [] and ctx.problems.counts["malformed_json"] == 1 and f"{tsv}:1:1" in ctx.problems.samples[0]


@needs_corpora
def test_real_korquad_unicode_escapes():
    path = CORPORA / "korquad" / "KorQuAD_v1.0_dev.json"
    assert not any(0xEA <= b <= 0xED for b in path.read_bytes()[:200000])  # raw bytes hold no Hangul
    docs, ctx = read(path)
    assert len(docs) == 964 and ctx.problems.total == 0  # one document per context paragraph
    assert all(any("\uac00" <= ch <= "\ud7a3" for ch in text) for text, _ in docs[:50])


# ---------------------------------------------------------------- parquet / arrow


def test_parquet_and_arrow(tmp_path):
    table = pa.table({"id": [1, 2, 3], "content": ["가나", None, "다라"]})
    pq.write_table(table, tmp_path / "t.parquet")
    with pa.OSFile(str(tmp_path / "s.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    with pa.OSFile(str(tmp_path / "f.arrow"), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    for name in ("t.parquet", "s.arrow", "f.arrow"):
        docs, ctx = read(tmp_path / name, text_field="content")
        assert docs == [("가나", f"{tmp_path / name}#row0"), ("다라", f"{tmp_path / name}#row2")]
    docs, ctx = read(tmp_path / "t.parquet")
    assert docs == [] and "no column 'text'" in ctx.problems.samples[0]


@pytest.mark.parametrize("kind", ["string", "large_string", "dictionary"])
@pytest.mark.parametrize("name", ["t.parquet", "s.arrow"])
def test_invalid_utf8_in_a_text_column_costs_its_row_only(tmp_path, kind, name):
    # Neither Parquet nor Arrow validates UTF-8 on reading: a bad value used to end the file.
    raw = pa.array([b"\xea\xb0\x80\xeb\x82\x98", b"bad \xff", b"\xeb\x8b\xa4"], pa.binary())
    column = raw.cast(pa.large_binary()).view(pa.large_string()) if kind == "large_string" else raw.view(pa.string())
    if kind == "dictionary":
        column = column.dictionary_encode()
    table = pa.table({"text": column})
    if name.endswith(".parquet"):
        pq.write_table(table, tmp_path / name)
    else:
        with pa.OSFile(str(tmp_path / name), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
    docs, ctx = read(tmp_path / name)
    assert docs == [("가나", f"{tmp_path / name}#row0"), ("bad \ufffd", f"{tmp_path / name}#row1"),
                    ("다", f"{tmp_path / name}#row2")]
    assert ctx.problems.counts == {"invalid_utf8": 1} and f"{tmp_path / name}#row1" in ctx.problems.samples[0]
    docs, ctx = read(tmp_path / name, invalid_utf8="drop")
    assert [t for t, _ in docs] == ["가나", "다"] and ctx.dropped == {"invalid_utf8": 1}


# ---------------------------------------------------------------- compression, expansion, detection

RECORDS = [{"text": f"문서 {i} 내용"} for i in range(50)]


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, zstandard.ZstdCompressor().compress])
def test_transparent_decompression(tmp_path, compress):
    raw = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in RECORDS).encode()
    path = tmp_path / "data.jsonl.z"
    path.write_bytes(compress(raw))
    docs, _ = read(path)
    assert [t for t, _ in docs] == [r["text"] for r in RECORDS]


def test_truncated_gzip_raises_for_the_worker_to_report(tmp_path):
    raw = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in RECORDS * 40).encode()
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(gzip.compress(raw)[:-200])
    with pytest.raises(EOFError):
        read(path)


def test_expand_dirs_globs_and_missing(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ("d/b.txt", "d/a.txt", "d/sub/c.txt", "d/.hidden"):
        (tmp_path / name).write_text("x")
    assert [p.name for p in expand(str(tmp_path / "d"))] == ["a.txt", "b.txt", "c.txt"]
    assert [p.name for p in expand(str(tmp_path / "d" / "*.txt"))] == ["a.txt", "b.txt"]
    with pytest.raises(InputError, match="input not found: .*nope"):
        expand(str(tmp_path / "nope"))
    assert parse_input(f"kcbert={tmp_path}/d") == InputSpec("kcbert", f"{tmp_path}/d")
    assert parse_input(f"{tmp_path}/d/a.txt").source == "a"


def test_line_files_split_into_ranges_that_tile(tmp_path):
    path = write_jsonl(tmp_path / "big.jsonl", [{"text": f"줄 {i} " + "가" * (i % 37)} for i in range(2000)])
    problems = Problems()
    units = plan_units([InputSpec("s", str(path))], None, "line", 4096, problems)
    assert len(units) > 10 and units[0].start == 0 and units[-1].end == path.stat().st_size
    ctx = ReadContext(ReadOptions())
    texts = [t for u in units for t, _ in READERS[u.fmt](u, ctx)]
    assert texts == [json.loads(line)["text"] for line in path.read_text("utf-8").splitlines()]


def test_detection_rules():
    assert detect_format("x.parquet", b"PAR1") == "parquet"
    assert detect_format("x.xml.bz2", b"") == "wiki-xml"
    assert detect_format("x.jsonl.gz", b"") == "jsonl"
    assert detect_format("wiki_00", b'<doc id="1" url="u" title="t">\n') == "wikiextractor"
    assert detect_format("dump", b"<mediawiki xmlns=") == "wiki-xml"
    assert detect_format("n.json", b'[{"namespace":0,"title":"a","text":"b"') == "namuwiki"
    assert detect_format("m.json", b'{"id":"X","document":[{"paragraph":[') == "modu"
    assert detect_format("l.json", b'{"text":"a"}\n{"text":"b"}\n') == "jsonl"
    assert detect_format("a.json", b'{\n  "SJML": {\n') == "aihub"
    assert detect_format("k.txt", "한국어 텍스트\n".encode()) == "text"
    with pytest.raises(UnknownFormat, match="--format"):
        detect_format("x.bin", bytes(range(256)) * 4 + b"\x00" * 512)
    # Stray NULs across 64 KiB of text (901 of them, one in the first 4 KiB) are the cleaner's
    # business, not a reason to reject the file.
    line = "한국어 문장입니다. ".encode()
    sparse = line * 5 + b"\x00" + line * 160 + (line * 2 + b"\x00") * 900
    assert len(sparse) <= 1 << 16 and sparse[:4096].count(b"\x00") == 1
    assert detect_format("t.txt", sparse) == "text"


def test_many_problems_are_all_counted_but_few_logged(tmp_path, caplog):
    path = tmp_path / "bad.jsonl"
    path.write_text("not json\n" * 30 + '{"text": "ok"}\n')
    docs, ctx = read(path)
    assert [t for t, _ in docs] == ["ok"]
    assert ctx.problems.counts["malformed_json"] == 30 and len(ctx.problems.samples) == 20
    logged = [r for r in caplog.records if r.name == "data_prep"]
    assert len(logged) == 6 and "counted but not logged" in logged[-1].getMessage()

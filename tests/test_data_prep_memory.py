"""Memory bounds of data_prep: flat memory on a big JSON array, and --max-doc-bytes, which bounds
every line, record and document whatever the input (compression bombs, endless lines), measured
as the peak RSS of a fresh process."""
from __future__ import annotations

import bz2
import gzip
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from data_prep.cli import main
from data_prep.inputs import InputSpec, plan_units
from data_prep.shard_format import MANIFEST
from data_prep.problems import Problems
from data_prep.readers import READERS, ReadContext, ReadOptions
from data_prep.readers.base import MAX_DOC_BYTES

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def manifest(out: Path) -> dict:
    return json.loads((out / MANIFEST).read_text("utf-8"))


def peak_rss_kb(args: list[str]) -> int:
    """Peak RSS of a fresh `python -m data_prep` process (measured by a wrapper process)."""
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, "
            "stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    result = subprocess.run([PYTHON, "-c", code, PYTHON, "-m", "data_prep", *args], cwd=REPO, capture_output=True,
                            text=True, check=True)
    return int(result.stdout.strip())


def write_namuwiki(path: Path, records: int) -> int:
    paragraph = "나무위키는 [[위키]] 문서이다. '''굵게''' 쓴 글과 [* 각주] 표 ||<#fff> 셀 || 가 있다.\n" * 120
    with open(path, "w", encoding="utf-8") as f:
        f.write("[")
        for i in range(records):
            f.write(("," if i else "") + json.dumps({"namespace": 0, "title": f"문서 {i}", "contributors": ["x"],
                                                      "text": f"{i}번 문서\n{paragraph}"}, ensure_ascii=False))
        f.write("]")
    return path.stat().st_size


def test_peak_memory_stays_flat_on_a_big_json_array(tmp_path):
    small = write_namuwiki(tmp_path / "small.json", 20)
    big = write_namuwiki(tmp_path / "big.json", 4000)
    assert big > 40e6
    # Each record repeats one paragraph 120 times, which the default quality preset drops.
    base = peak_rss_kb([str(tmp_path / "small.json"), "-o", str(tmp_path / "o1"), "--quality", "off", "--no-near-dedup"])
    peak = peak_rss_kb([str(tmp_path / "big.json"), "-o", str(tmp_path / "o2"), "--quality", "off", "--no-near-dedup"])
    # A reader that loads the array would need well over the file size (bytes + str + objects).
    assert (peak - base) * 1024 < 0.5 * (big - small), (base, peak, big)
    assert manifest(tmp_path / "o2")["sources"]["big"]["docs_kept"] == 4000


# ---------------------------------------------------------------- --max-doc-bytes

BOMB_BYTES = 200 << 20


def gzip_bomb(path: Path, first_line: bytes, byte: bytes) -> Path:
    """`first_line`, then BOMB_BYTES of `byte` with no newline, as concatenated gzip members
    (a 200 KB file: written at once, decompressed like one stream)."""
    path.write_bytes(gzip.compress(first_line) + gzip.compress(byte * (1 << 20)) * (BOMB_BYTES >> 20))
    return path


def long_line(path: Path, first_line: bytes) -> Path:
    path.write_bytes(first_line + "가".encode() * (20 << 20) + b"\n" + "마지막 줄\n".encode())
    return path


HOSTILE = {"one_char.txt.gz": lambda p: gzip_bomb(p, "첫 줄\n".encode(), b"a"),
           "zeros.jsonl.gz": lambda p: gzip_bomb(p, '{"text": "첫 기록"}\n'.encode(), b"0"),
           "long_line.txt": lambda p: long_line(p, "첫 줄\n".encode())}


@pytest.fixture(scope="module")
def base_rss(tmp_path_factory) -> int:
    small = tmp_path_factory.mktemp("small") / "small.txt.gz"
    small.write_bytes(gzip.compress("작은 파일\n".encode()))
    return peak_rss_kb([str(small), "-o", str(small.parent / "out")])


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_an_endless_line_costs_bounded_memory(tmp_path, base_rss, name):
    path = HOSTILE[name](tmp_path / name)
    out = tmp_path / "out"
    peak = peak_rss_kb([str(path), "-o", str(out), "--val-fraction", "0"])  # the default --max-doc-bytes
    # Reading the line whole costs at least its 200 MB (20 M characters: 60 MB); pieces of at
    # most --max-doc-bytes cost a few of them (the README's bound: 4).
    assert (peak - base_rss) * 1024 < 4 * MAX_DOC_BYTES, (base_rss, peak)
    m = manifest(out)
    assert m["problems"] == {"oversized_record": 1}
    sample = m["problem_samples"][0]
    assert sample.startswith(str(path)) and "oversized_record: the line at byte " in sample, sample
    assert m["splits"]["validation"]["rows"] == 0 and m["splits"]["train"]["rows"] >= 1
    assert m["sources"][name.split(".")[0]]["docs_kept"] == 1 + name.endswith(".txt") * name.startswith("long")


def read(path: Path, fmt: str | None = None, unit_bytes: int = 1 << 30, **options) -> tuple[list[str], ReadContext]:
    problems = Problems()
    units = plan_units([InputSpec("t", str(path))], fmt, options.get("text_mode", "line"), unit_bytes, problems)
    ctx = ReadContext(ReadOptions(max_doc_bytes=1000, **options), problems)
    return [text for unit in units for text, _ in READERS[unit.fmt](unit, ctx)], ctx


def test_line_over_the_limit_in_byte_ranges_is_reported_once(tmp_path):
    path = tmp_path / "r.jsonl"
    lines = [json.dumps({"text": f"줄 {i}"}) for i in range(300)]
    lines[100] = json.dumps({"text": "x" * 5000})  # spans several 1 KB ranges
    path.write_text("\n".join(lines) + "\n")
    texts, ctx = read(path, unit_bytes=1024)
    assert texts == [f"줄 {i}" for i in range(300) if i != 100]
    assert ctx.problems.counts == {"oversized_record": 1}


def test_documents_over_the_limit_are_dropped_in_every_reader(tmp_path):
    text = tmp_path / "blocks.txt"
    text.write_text("짧은 블록\n\n" + "긴 줄입니다\n" * 200 + "\n끝 블록\n")
    texts, ctx = read(text, text_mode="block")
    assert texts == ["짧은 블록\n", "끝 블록\n"] and ctx.problems.counts == {"oversized_record": 1}
    assert "blocks.txt:3: oversized_record: the document starting here" in ctx.problems.samples[0]
    extracted = tmp_path / "wiki_00"
    extracted.write_text('<doc id="1">\n' + "본문\n" * 400 + '</doc>\n<doc id="2">\n짧은 문서\n</doc>\n')
    texts, ctx = read(extracted)
    assert texts == ["짧은 문서\n"] and ctx.problems.counts == {"oversized_record": 1}
    namu = tmp_path / "namu.json"
    namu.write_text(json.dumps([{"namespace": 0, "title": "가", "text": "짧다"},
                                {"namespace": 0, "title": "나", "text": "길다" * 3000},
                                {"namespace": 0, "title": "다", "text": "뒤"}], ensure_ascii=False))
    texts, ctx = read(namu)
    assert texts == ["짧다"] and ctx.problems.counts == {"oversized_record": 1}
    assert f"{namu}[1]: oversized_record" in ctx.problems.samples[0]
    xml = tmp_path / "dump.xml.bz2"
    page = "<page><title>{}</title><ns>0</ns><revision><text>{}</text></revision></page>"
    xml.write_bytes(bz2.compress(f"<mediawiki>{page.format('가', '짧은 글')}{page.format('나', '긴 글 ' * 2000)}"
                                 f"</mediawiki>".encode()))
    texts, ctx = read(xml)
    assert texts == ["짧은 글"] and ctx.problems.counts == {"oversized_record": 1}
    # Whole-file JSON bigger than the limit is streamed: the limit bounds each document.
    modu = tmp_path / "m.json"
    forms = ["첫 문서 " * 40, "둘째 문서 " * 40, "문단 " * 1000, "넷째"]
    modu.write_text(json.dumps({"id": "X", "document": [{"paragraph": [{"form": f}]} for f in forms]}, ensure_ascii=False))
    assert modu.stat().st_size > 3000
    texts, ctx = read(modu)
    assert texts == forms[:2] and ctx.problems.counts == {"oversized_record": 1}
    assert f"{modu}#doc2: oversized_record" in ctx.problems.samples[0]
    aihub = tmp_path / "a.json"
    aihub.write_bytes(b"\xef\xbb\xbf" + json.dumps({"documents": [{"text": [[{"sentence": f"문장 {i} " * 30}]]}
                                                                 for i in range(6)]}, ensure_ascii=False).encode())
    texts, ctx = read(aihub)
    assert len(texts) == 6 and texts[5].startswith("문장 5") and ctx.problems.total == 0
    broken = tmp_path / "b.json"
    broken.write_text('{"document": [' + '{"paragraph": [{"form": "가나다"}]},' * 200)
    texts, ctx = read(broken, fmt="modu")
    assert len(texts) == 200 and ctx.problems.counts == {"malformed_json": 1}


def test_a_big_document_is_never_the_forced_validation_document(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("큰 문서 " * 200_000 + "\n")  # 2 MB: under the limit, 2,000 chunks
    (src / "b.txt").write_text("".join(f"작은 문서 {i}\n" for i in range(50)))
    out = tmp_path / "out"
    # the default --val-fraction forces one document; "큰 문서 " * 200_000 is what --quality drops
    assert main([str(src), "-o", str(out), "--quality", "off"]) == 0
    m = manifest(out)
    assert m["splits"]["validation"]["rows"] == 1 and m["splits"]["train"]["rows"] > 1900
    with pa.ipc.open_stream(out / "validation" / m["splits"]["validation"]["shards"][0]["file"]) as reader:
        assert reader.read_all().column("chunk")[0].as_py().decode().startswith("작은 문서")


def test_parquet_batches_follow_the_limit_and_long_values_are_dropped(tmp_path):
    import pyarrow.parquet as pq

    from data_prep.readers.columnar import _batch_rows

    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"id": [1, 2, 3], "text": ["짧은 값", "긴 값 " * 500, "끝 값"]}), path)
    texts, ctx = read(path)
    assert texts == ["짧은 값", "끝 값"] and ctx.problems.counts == {"oversized_record": 1}
    assert f"{path}#row1: oversized_record" in ctx.problems.samples[0]
    wide = tmp_path / "wide.parquet"
    pq.write_table(pa.table({"text": [f"{i}" + "가" * 100_000 for i in range(50)]}), wide, compression="zstd")
    assert _batch_rows(pq.ParquetFile(wide).metadata, "text", 1 << 20) in range(3, 5)  # 300 KB rows, 1 MiB
    small = tmp_path / "small.parquet"
    pq.write_table(pa.table({"text": [f"짧은 행 {i}" for i in range(100)]}), small)
    assert _batch_rows(pq.ParquetFile(small).metadata, "text", 8 << 20) == 4096


def test_a_dictionary_encoded_column_is_never_decoded_past_the_limit(tmp_path):
    """2,000 rows naming one 600 KB value: a 28 KB Parquet file that decodes to 1.2 GB (2.25 GB of
    peak RSS before this reader kept dictionaries encoded). Over --max-doc-bytes, every row is
    dropped without being decoded; under it, the rows come through in bounded runs."""
    import pyarrow.parquet as pq

    flags = ["--max-doc-bytes", "300000", "--quality", "off", "--no-near-dedup"]
    small = tmp_path / "small.parquet"
    pq.write_table(pa.table({"text": ["작은 값"] * 10}), small)
    base = peak_rss_kb([str(small), "-o", str(tmp_path / "small_out"), *flags])
    path = tmp_path / "dict.parquet"
    pq.write_table(pa.table({"text": ["가" * 200_000] * 2000}), path)
    assert path.stat().st_size < 100_000
    peak = peak_rss_kb([str(path), "-o", str(tmp_path / "out"), *flags])
    assert (peak - base) * 1024 < 64 << 20, (base, peak)
    m = manifest(tmp_path / "out")
    assert m["sources"]["dict"]["docs_kept"] == 0 and m["problems"]["oversized_record"] == 2000
    arrow = tmp_path / "dict.arrow"
    table = pa.table({"text": pa.array(["짧은 값", None, "가" * 2000, "짧은 값"]).dictionary_encode()})
    with pa.ipc.new_stream(arrow, table.schema) as writer:
        writer.write_table(table)
    texts, ctx = read(arrow)
    assert texts == ["짧은 값", "짧은 값"] and ctx.problems.counts == {"oversized_record": 1}
    assert f"{arrow}#row2: oversized_record" in ctx.problems.samples[0]


@pytest.mark.parametrize("lengths, limit", [([], 5), ([1, 2, 3], 5), ([6, 1, 9, 2, 2, 1, 5, 0], 5), ([0] * 4, 0)])
def test_rows_are_decoded_in_runs_of_at_most_the_limit(lengths, limit):
    from data_prep.readers.columnar import _runs

    runs = list(_runs(lengths, limit))
    assert [i for start, stop in runs for i in range(start, stop)] == list(range(len(lengths)))
    for start, stop in runs:
        assert sum(lengths[start:stop]) <= limit or stop - start == 1

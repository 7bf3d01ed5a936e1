"""End-to-end behaviour of `python -m data_prep`: output layout, determinism across workers and
splits, merge, resume after kill -9, bad input, progress, inspect (memory: test_data_prep_memory.py)."""
from __future__ import annotations

import gzip
import json
import logging
import random
import re
import subprocess
import sys
import unicodedata
import zipfile
from pathlib import Path

import datasets
import pyarrow as pa
import pytest

from data_prep.cli import main
from data_prep.progress import Progress
from data_prep.sample import konlpy_corpus_dir, sample_paragraphs
from data_prep.shard_format import DATASET_DICT, MANIFEST, sha256_file
from data_prep.span_lengths import raw_length_for_inputs
from data_prep_kill import kill_after_units

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def write_corpus(directory: Path, files: int = 3, docs_per_file: int = 150, seed: int = 0) -> Path:
    """JSONL files of unique documents made of real Korean paragraphs."""
    rng = random.Random(seed)
    blocks = sample_paragraphs()
    directory.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        with open(directory / f"part{f}.jsonl", "w", encoding="utf-8") as out:
            for i in range(docs_per_file):
                text = f"문서 {f}-{i}\n" + "\n".join(rng.sample(blocks, rng.randint(1, 6)))
                out.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    return directory


def load_split(out: Path, split: str) -> list[tuple[bytes, str, str]]:
    """(chunk, source, shard file) rows of a split, in order."""
    rows = []
    state = json.loads((out / split / "state.json").read_text())
    for entry in state["_data_files"]:
        with pa.ipc.open_stream(out / split / entry["filename"]) as reader:
            table = reader.read_all()
        rows += [(c, s, entry["filename"]) for c, s in zip(table.column("chunk").to_pylist(), table.column("source").to_pylist())]
    return rows


def output_files(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file() and p.name != MANIFEST}


def manifest(out: Path) -> dict:
    return json.loads((out / MANIFEST).read_text("utf-8"))


def check_chunks(out: Path, chunk_bytes: int) -> None:
    """Every interface invariant of the chunk rows."""
    for split in ("train", "validation"):
        rows = load_split(out, split)
        for i, (chunk, source, shard) in enumerate(rows):
            text = chunk.decode("utf-8")  # whole characters only
            assert unicodedata.is_normalized("NFC", text)
            assert 0 < len(chunk) <= chunk_bytes
            last_of_shard = i + 1 == len(rows) or rows[i + 1][2] != shard
            if not last_of_shard:
                assert len(chunk) >= 0.99 * chunk_bytes, (split, i, len(chunk))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus") / "news")


def run(*args) -> int:
    return main([str(a) for a in args])


# ---------------------------------------------------------------- output layout


def test_sample_end_to_end_layout_and_manifest(tmp_path):
    out = tmp_path / "out"
    assert run("--konlpy-sample", "--text-mode", "block", "--val-fraction", "0.1", "-o", out) == 0
    assert sorted(p.name for p in out.iterdir()) == [DATASET_DICT, MANIFEST, "train", "validation"]
    check_chunks(out, 1024)
    m = manifest(out)
    assert m["format_version"] == 1 and m["chunk_bytes"] == 1024 and m["cut_window"] == 10
    assert m["command"][:3] == ["data_prep", "prepare", "--konlpy-sample"]
    assert set(m["sources"]) == {"kolaw", "kobill"}
    for name, s in m["sources"].items():
        assert s["docs_read"] == s["docs_kept"] + sum(s["dropped"].values()), name
        assert s["chunks"]["train"] > 0
    for split in ("train", "validation"):
        ds = datasets.load_from_disk(str(out / split))
        assert ds.column_names == ["chunk", "source"]
        assert ds.features["chunk"].dtype == "binary" and ds.features["source"].dtype == "string"
        assert len(ds) == m["splits"][split]["rows"] > 0
        for shard in m["splits"][split]["shards"]:
            assert sha256_file(out / split / shard["file"]) == shard["sha256"]
    assert {r[1] for r in load_split(out, "train")} == {"kolaw", "kobill"}
    assert not (out / ".work").exists()
    whole = datasets.load_from_disk(str(out))  # OUT itself loads, as a DatasetDict
    assert isinstance(whole, datasets.DatasetDict) and list(whole) == ["train", "validation"]
    assert [len(whole[split]) for split in whole] == [m["splits"][split]["rows"] for split in ("train", "validation")]


def test_input_length_sets_chunk_bytes(tmp_path, corpus):
    out = tmp_path / "out"
    assert run(corpus, "--input-length", 1024, "-o", out) == 0
    assert manifest(out)["chunk_bytes"] == raw_length_for_inputs(1024) == 1193
    check_chunks(out, 1193)


# ---------------------------------------------------------------- determinism, splits, merge


def test_workers_give_identical_output(tmp_path, corpus):
    outs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        assert run(corpus, "-o", out, "--workers", workers, "--unit-mb", 0.05, "--shard-rows", 40,
                   "--val-fraction", 0.05) == 0
        outs.append(out)
    assert len(manifest(outs[0])["inputs"]) > 6  # several units per file
    assert output_files(outs[0]) == output_files(outs[1])
    assert manifest(outs[0])["sources"] == manifest(outs[1])["sources"]
    assert len(manifest(outs[0])["splits"]["train"]["shards"]) > 3
    check_chunks(outs[0], 1024)


def test_dedup_and_exact_validation_docs(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    docs = [f"고유한 문서 {i} " + "내용 " * 50 for i in range(40)]
    (src / "a.jsonl").write_text("".join(json.dumps({"text": d}, ensure_ascii=False) + "\n" for d in docs), "utf-8")
    # b repeats every a document (with different whitespace, which cleaning removes) plus new ones
    again = [d.replace(" ", "  ") + "\r\n" for d in docs[:25]] + [f"새 문서 {i}" for i in range(5)]
    (src / "b.jsonl").write_text("".join(json.dumps({"text": d}, ensure_ascii=False) + "\n" for d in again), "utf-8")
    out = tmp_path / "out"
    # "내용 " * 50 is the repetition the default quality preset drops: off, to see dedup alone.
    assert run(f"s={src}", "-o", out, "--val-docs", 7, "--quality", "off") == 0
    s = manifest(out)["sources"]["s"]
    assert s["dropped"] == {"duplicate": 25} and s["docs_kept"] == 45 and s["docs_validation"] == 7
    text = b"".join(r[0] for r in load_split(out, "train") + load_split(out, "validation")).decode()
    assert all(text.count(d.strip()) == 1 for d in docs)


def test_num_splits_partition_and_merge(tmp_path, corpus):
    full, parts = tmp_path / "full", [tmp_path / "p0", tmp_path / "p1"]
    common = [corpus, "--unit-mb", 0.05, "--val-fraction", 0.05, "--no-near-dedup"]  # the plain merge: see test_near_dedup
    assert run(*common, "-o", full) == 0
    for i, part in enumerate(parts):
        assert run(*common, "-o", part, "--num-splits", 2, "--split-index", i) == 0
    units = [{(u["path"], u["range"][0] if u["range"] else None) for u in manifest(p)["inputs"]} for p in parts]
    assert not units[0] & units[1]
    assert units[0] | units[1] == {(u["path"], u["range"][0] if u["range"] else None) for u in manifest(full)["inputs"]}
    merged = tmp_path / "merged"
    assert run("merge", merged, *parts) == 0
    m = manifest(merged)
    for split in ("train", "validation"):
        assert m["splits"][split]["rows"] == sum(manifest(p)["splits"][split]["rows"] for p in parts)
        assert len(datasets.load_from_disk(str(merged / split))) == m["splits"][split]["rows"]
        assert [r[0] for r in load_split(merged, split)] == [r[0] for p in parts for r in load_split(p, split)]
    assert m["sources"]["news"]["docs_kept"] == manifest(full)["sources"]["news"]["docs_kept"]
    assert len(m["merged_from"]) == 2
    whole = datasets.load_from_disk(str(merged))
    assert {split: len(whole[split]) for split in whole} == {split: m["splits"][split]["rows"] for split in ("train", "validation")}
    assert run("inspect", merged) == 0


def test_merge_rejects_a_corrupt_part(tmp_path, corpus):
    part = tmp_path / "p"
    assert run(corpus, "-o", part) == 0
    shard = next((part / "train").glob("data-*.arrow"))
    shard.write_bytes(shard.read_bytes()[:-10])
    assert run("merge", tmp_path / "m", part) == 2
    assert not (tmp_path / "m" / MANIFEST).exists()


# ---------------------------------------------------------------- resume and atomicity


def test_resume_after_kill_gives_identical_output(tmp_path):
    corpus = write_corpus(tmp_path / "big", files=2, docs_per_file=2500, seed=1)
    args = [str(corpus), "--unit-mb", "0.08", "--shard-rows", "200", "--val-fraction", "0.01"]  # ~30 units
    reference = tmp_path / "ref"
    assert run(*args, "-o", reference) == 0
    out = tmp_path / "out"
    # Kill twice at different points (the second time with pool workers, which outlive their
    # parent for a moment), then finish with yet another worker count.
    for wait_units, workers in ((3, "1"), (10, "2")):
        proc = subprocess.Popen([PYTHON, "-m", "data_prep", *args, "-o", str(out), "--workers", workers], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kill_after_units(proc, out, wait_units)
        if not (out / MANIFEST).exists():  # killed before publishing: nothing under a final name
            assert not (out / "train").exists() and not (out / "validation").exists()
    assert run(*args, "-o", out, "--workers", 2) == 0
    assert output_files(out) == output_files(reference)
    assert manifest(out)["sources"] == manifest(reference)["sources"]
    assert run(*args, "-o", out) == 0  # a finished run is recognised and left alone


def _worker_rate_line(log: str) -> tuple[float, float, float]:
    line = next(line for line in log.splitlines() if "extraction: " in line)
    megabytes, seconds, rate = re.search(r"extraction: ([0-9.]+) MB in ([0-9.]+) worker CPU s, ([0-9.]+) MB/s", line).groups()
    return float(megabytes), float(seconds), float(rate)


def test_the_workers_rate_is_logged_for_the_units_extracted(tmp_path, corpus, caplog):
    # The rate that scales with --workers: the units' input MB over their extraction CPU seconds.
    with caplog.at_level(logging.INFO, logger="data_prep"):
        assert run(corpus, "-o", tmp_path / "a", "--unit-mb", "0.05", "--workers", 2) == 0
    size = sum(s["bytes_in"] for s in manifest(tmp_path / "a")["sources"].values()) / 1e6
    megabytes, seconds, rate = _worker_rate_line(caplog.text)  # as printed: to 0.1 MB, 0.01 s, 0.1 MB/s
    assert megabytes == pytest.approx(size, abs=0.05) and seconds > 0 and rate * seconds == pytest.approx(size, abs=0.1)
    # A resumed run counts only what it extracted itself.
    out = tmp_path / "b"
    args = [str(corpus), "--unit-mb", "0.05", "-o", str(out), "--keep-work"]
    assert run(*args) == 0
    (out / "manifest.json").unlink()
    done = sorted((out / ".work").glob("u*.json"))
    assert len(done) > 2
    done[0].unlink()  # one unit to redo
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="data_prep"):
        assert run(*args) == 0
    assert _worker_rate_line(caplog.text)[0] < megabytes / 2


def test_different_command_into_same_output_is_refused(tmp_path, corpus, caplog):
    out = tmp_path / "out"
    assert run(corpus, "-o", out) == 0
    assert run(corpus, "-o", out, "--chunk-bytes", 512) == 2
    assert "--overwrite" in caplog.text
    assert run(corpus, "-o", out, "--chunk-bytes", 512, "--overwrite") == 0
    assert manifest(out)["chunk_bytes"] == 512


# ---------------------------------------------------------------- bad input


def bad_inputs(directory: Path) -> Path:
    directory.mkdir()
    (directory / "a_good.jsonl").write_text('{"text": "좋은 문서 하나"}\n', "utf-8")
    (directory / "b_mixed.jsonl").write_bytes(
        b'{"text": "\xec\xa2\x8b\xec\x9d\x80 \xeb\x91\x98"}\n{"text": oops\n{"body": "no text field"}\n'
        b'{"text": "bad \xff utf8"}\n{"text": "nul\x00 inside"}\n{"text": "\\u0000escaped nul"}\n')
    (directory / "c_empty.jsonl").write_bytes(b"")
    (directory / "d_broken.json").write_text('{"SJML": {"text": [', "utf-8")
    data = gzip.compress(("".join(json.dumps({"text": f"압축 {i}"}) + "\n" for i in range(3000))).encode())
    (directory / "e_cut.jsonl.gz").write_bytes(data[: len(data) // 2])
    buffer = directory / "f_cut.zip"
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("x.jsonl", '{"text": "zip"}\n' * 100)
    buffer.write_bytes(buffer.read_bytes()[:60])
    return directory


def test_bad_input_is_reported_counted_and_the_rest_kept(tmp_path, caplog):
    src = bad_inputs(tmp_path / "bad")
    out = tmp_path / "out"
    assert run(f"bad={src}", "-o", out, "--val-fraction", 0) == 0
    m = manifest(out)
    assert m["problems"] == {"empty_file": 1, "invalid_utf8": 1, "malformed_json": 2, "missing_field": 1,
                             "nul_bytes": 2, "truncated_archive": 2}
    samples = "\n".join(m["problem_samples"])
    assert f"{src / 'b_mixed.jsonl'}:2: malformed_json" in samples
    assert f"{src / 'b_mixed.jsonl'}:3: missing_field" in samples and "'text'" in samples
    assert f"{src / 'b_mixed.jsonl'}:4: invalid_utf8" in samples
    assert f"{src / 'd_broken.json'}:1:" in samples and f"{src / 'c_empty.jsonl'}: empty_file" in samples
    assert f"{src / 'e_cut.jsonl.gz'}" in samples and f"{src / 'f_cut.zip'}" in samples
    text = b"\n".join(r[0] for r in load_split(out, "train")).decode()
    for kept in ("좋은 문서 하나", "좋은 둘", "bad \ufffd utf8", "nul inside", "escaped nul", "압축 0"):
        assert kept in text
    assert "\x00" not in text
    assert m["sources"]["bad"]["problems"]["malformed_json"] == 2
    assert "b_mixed.jsonl:2" in caplog.text  # reported while running, too


def test_strict_fails_without_output(tmp_path):
    out = tmp_path / "out"
    assert run(bad_inputs(tmp_path / "bad"), "-o", out, "--strict") == 2
    assert not (out / MANIFEST).exists() and not (out / "train").exists()


def test_missing_input_and_unknown_format_fail_at_once(tmp_path, caplog, capsys):
    assert run(tmp_path / "nowhere.jsonl", "-o", tmp_path / "out") == 2
    assert f"input not found: {tmp_path / 'nowhere.jsonl'}" in caplog.text
    with pytest.raises(SystemExit) as exc:
        run(tmp_path, "-o", tmp_path / "out", "--format", "docx")
    assert exc.value.code == 2 and "invalid choice: 'docx'" in capsys.readouterr().err
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 8 + b"\x00" * 2048)
    assert run(binary, "-o", tmp_path / "out") == 2
    assert "blob.bin: looks binary" in caplog.text
    assert not (tmp_path / "out" / "train").exists()


# ---------------------------------------------------------------- progress, summary, inspect


def test_progress_bar_on_a_terminal_and_log_lines_otherwise(capsys, caplog):
    bar = Progress(10_000_000, "prepare", tty=True)
    bar.update(5_000_000, 100)
    bar.close()
    err = capsys.readouterr().err
    assert "prepare" in err and "docs/s" in err and "B/s" in err
    caplog.set_level(logging.INFO, logger="data_prep")
    plain = Progress(10_000_000, "prepare", interval_s=0, tty=False)
    plain.update(5_000_000, 100)
    assert "prepare: 5.0/10.0 MB (50%)" in caplog.text and "MB/s" in caplog.text and "docs/s" in caplog.text


def test_cli_prints_summary_and_inspect_shows_chunks(tmp_path, corpus, capsys):
    out = tmp_path / "out"
    assert run(corpus, "-o", out) == 0
    err = capsys.readouterr().err
    assert "docs read" in err and "news" in err  # end-of-run summary table
    assert run("inspect", out) == 0
    shown = capsys.readouterr().out
    assert "format_version 1" in shown and "news" in shown
    assert "--- train[0] source=news" in shown and "문서" in shown


def test_small_corpus_still_gets_a_validation_split(tmp_path):
    out = tmp_path / "out"
    law = konlpy_corpus_dir() / "kolaw"
    assert run(f"kolaw={law}", "--text-mode", "block", "-o", out) == 0  # default --val-fraction 0.001
    m = manifest(out)
    assert m["sources"]["kolaw"]["docs_validation"] == 1 and m["splits"]["validation"]["rows"] >= 1
    assert run(f"kolaw={law}", "--text-mode", "block", "-o", tmp_path / "none", "--val-fraction", 0) == 0
    assert manifest(tmp_path / "none")["splits"]["validation"]["rows"] == 0
    assert len(datasets.load_from_disk(str(tmp_path / "none" / "validation"))) == 0


def test_separator_escapes(tmp_path, corpus):
    out = tmp_path / "out"
    # Escapes are decoded and other characters kept as typed, non-ASCII ones included.
    assert run(corpus, "-o", out, "--separator", "\\n—\\n", "--val-fraction", 0, "--no-near-dedup") == 0
    assert manifest(out)["separator"] == "\n—\n"
    text = b"".join(r[0] for r in load_split(out, "train")).decode()
    assert text.count("\n—\n문서 0-") == 149  # every document but the first starts after the separator


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_failing_step_stops_the_run_naming_the_document(tmp_path, monkeypatch, workers):
    # A step's failure is a bug of data_prep's, the same on every unit (a kernel that does not
    # load): reported per unit as a read_error, it made a run of 0 documents that exited 0.
    from data_prep import clean

    def normalize(text: str) -> str:
        if "문서 1-7\n" in text:
            raise ValueError("a step's bug")
        return text
    monkeypatch.setattr(clean, "normalize", normalize)
    corpus = write_corpus(tmp_path / "corpus", files=2, docs_per_file=20)
    with pytest.raises(ValueError, match="a step's bug") as failure:
        main([str(corpus), "-o", str(tmp_path / "out"), "--no-near-dedup", "--quality", "off", "--pii", "keep", "--workers", workers])
    assert failure.value.__notes__ == [f"data_prep: this failed on {corpus / 'part1.jsonl'}:8, after reading it: "
                                       "a bug of data_prep's, not the input's"]
    assert not (tmp_path / "out" / MANIFEST).exists()

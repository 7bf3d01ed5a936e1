"""Hostile and damaged inputs: truncated archives, binary files posing as text, pathological
records, path tricks. Each test reproduces a failure of an earlier version."""
from __future__ import annotations

import hashlib
import json
import os
import select
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import datasets
import pytest
import zstandard

from data_prep import prepare, spill
from data_prep.cli import main
from data_prep.inputs import InputError, InputSpec, expand, parse_input, plan_units
from data_prep.shard_format import MANIFEST
from data_prep.problems import Problems
from data_prep.readers import READERS, ReadContext, ReadOptions, UnknownFormat, detect_format
from data_prep_kill import kill_after_units


REPO = Path(__file__).resolve().parents[1]


def run(*args) -> int:
    return main([str(a) for a in args])


def manifest(out: Path) -> dict:
    return json.loads((out / MANIFEST).read_text("utf-8"))


def read(path: Path) -> tuple[list[tuple[str, str]], ReadContext]:
    problems = Problems()
    units = plan_units([InputSpec("t", str(path))], None, "line", 1 << 30, problems)
    ctx = ReadContext(ReadOptions(), problems)
    return [doc for unit in units for doc in READERS[unit.fmt](unit, ctx)], ctx


def jsonl_bytes(n: int, first: int = 0) -> bytes:
    return "".join(json.dumps({"text": f"기록 {i} 번째 문서입니다"}, ensure_ascii=False) + "\n"
                   for i in range(first, first + n)).encode()


# ---------------------------------------------------------------- truncated zstd


@pytest.mark.parametrize("frames", [1, 3])
def test_truncated_zstd_is_reported_and_strict_fails(tmp_path, frames):
    compressor = zstandard.ZstdCompressor()
    parts = [compressor.compress(jsonl_bytes(100, 100 * f)) for f in range(frames)]
    cut = sum(map(len, parts[:-1])) + len(parts[-1]) // 2  # inside the last frame
    path = tmp_path / "cut.jsonl.zst"
    path.write_bytes(b"".join(parts)[:cut])
    out = tmp_path / "out"
    assert run(path, "-o", out, "--val-fraction", 0) == 0
    m = manifest(out)
    assert m["problems"] == {"truncated_archive": 1}
    assert any(str(path) in s and "truncated_archive" in s for s in m["problem_samples"])
    assert m["sources"]["cut"]["docs_kept"] >= 100 * (frames > 1)  # what was read before the cut is kept
    assert run(path, "-o", tmp_path / "strict", "--strict") == 2


# ---------------------------------------------------------------- zip members


def test_zip_member_failing_its_crc_loses_all_its_records(tmp_path):
    path = tmp_path / "z.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        # 110 KB: the damage lies beyond the 64 KiB that format detection reads
        # every tenth record too short for --min-chars, every seventh with an e-mail for --pii mask
        archive.writestr("a_bad.jsonl", "".join(
            '{"text": "%s"}\n' % ("ok" if i % 10 == 0 else f"ok {i} record" + (f" a{i}@example.com" * (i % 7 == 0)))
            for i in range(5000)))
        archive.writestr("b_good.jsonl", '{"text": "good member"}\n')
    data = path.read_bytes()
    path.write_bytes(data.replace(b"ok 4001 record", b"XX 4001 record"))  # stored: the CRC now fails
    out = tmp_path / "out"
    assert run(path, "-o", out, "--val-fraction", 0, "--min-chars", 5, "--pii", "mask") == 0
    m = manifest(out)
    assert m["problems"] == {"corrupt_member": 1}
    assert m["problem_samples"][0].startswith(f"{path}::a_bad.jsonl: corrupt_member: ")
    assert "Bad CRC-32" in m["problem_samples"][0] and "of its document(s) discarded" in m["problem_samples"][0]
    source = m["sources"]["z"]
    # The error surfaces at the member's end, after most (not all: read-ahead) records were yielded.
    # Its documents dropped by a step or edited are discarded with it: no too_short, no PII counts.
    assert source["docs_kept"] == 1 and source["dropped"] == {"corrupt_member": source["docs_read"] - 1}
    assert source["docs_read"] > 4000 and not source["edits"]
    text = b"".join(datasets.load_from_disk(str(out / "train"))["chunk"])
    assert text == b"good member"
    small = tmp_path / "small.zip"  # damage within the first 64 KiB: found while listing
    with zipfile.ZipFile(small, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("m.jsonl", '{"text": "ok 1 record"}\n')
    small.write_bytes(small.read_bytes().replace(b"ok 1 record", b"XX 1 record"))
    _, ctx = read(small)
    assert ctx.problems.counts == {"corrupt_member": 1} and f"{small}::m.jsonl" in ctx.problems.samples[0]


def test_line_locations_in_zip_members_name_the_member(tmp_path):
    path = tmp_path / "y.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("inner.jsonl", '{"text": "fine"}\n{"text": broken\n')
    _, ctx = read(path)
    assert ctx.problems.samples[0].startswith(f"{path}::inner.jsonl:2: malformed_json")


# ---------------------------------------------------------------- paths


def test_each_real_file_is_listed_once(tmp_path):
    root = tmp_path / "d"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "x.txt").write_text("가\n")
    (root / "y.txt").write_text("나\n")
    (root / "a" / "loop").symlink_to(root, target_is_directory=True)  # a directory symlink loop
    (root / "alias.txt").symlink_to(root / "y.txt")
    for pattern in (str(root), f"{root}/**", f"{root}/**/*.txt"):
        files = expand(pattern)
        assert sorted(os.path.realpath(f) for f in files) == sorted({str((root / "a" / "b" / "x.txt").resolve()),
                                                                    str((root / "y.txt").resolve())}), pattern
    docs, _ = read(root)
    assert sorted(t for t, _ in docs) == ["가\n", "나\n"]


def test_problems_found_while_listing_count_for_their_source(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.jsonl").write_bytes(jsonl_bytes(3))
    (src / "b_empty.jsonl").write_bytes(b"")
    (src / "c_bad.zip").write_bytes(b"PK\x03\x04" + b"not really a zip" * 10)
    out = tmp_path / "out"
    assert run(f"mine={src}", "-o", out) == 0
    m = manifest(out)
    assert m["sources"]["mine"]["problems"] == {"empty_file": 1, "truncated_archive": 1} == m["problems"]


def test_hangul_source_name_and_a_bad_name(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("한국어 문장\n", "utf-8")
    assert parse_input(f"나무위키={path}") == InputSpec("나무위키", str(path))
    out = tmp_path / "out"
    assert run(f"나무위키={path}", "-o", out) == 0
    assert list(manifest(out)["sources"]) == ["나무위키"]
    with pytest.raises(InputError, match="NAME may hold only letters"):
        parse_input(f"나무 위키={path}")


# ---------------------------------------------------------------- pathological records


def test_deeply_nested_jsonl_record_is_one_problem(tmp_path):
    path = tmp_path / "deep.jsonl"
    depth = 100_000
    path.write_bytes(b'{"text": "before"}\n' + b"[" * depth + b"]" * depth + b'\n{"text": "after"}\n')
    docs, ctx = read(path)
    assert [t for t, _ in docs] == ["before", "after"]
    assert ctx.problems.counts == {"malformed_json": 1} and f"{path}:2" in ctx.problems.samples[0]


# ---------------------------------------------------------------- binary detection


def png_bytes() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    pixels = bytes(range(256)) * 3000
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 256, 3000, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(pixels)) + chunk(b"IEND", b""))


BINARY_HEADS = {"PNG": png_bytes()[:4096], "JPEG": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 100,
                "PDF": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\n",
                "ELF": b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + b"\x02\x00>\x00",
                "zip": b"PK\x03\x04\x14\x00\x00\x00\x08\x00",  # e.g. a zip inside a zip member
                "GIF": b"GIF89a\x01\x00\x01\x00"}


@pytest.mark.parametrize("kind", sorted(BINARY_HEADS))
def test_binary_magic_numbers_are_not_text(kind):
    with pytest.raises(UnknownFormat, match=f"looks binary \\({kind} data\\)"):
        detect_format("file.txt", BINARY_HEADS[kind])


def test_legacy_encoding_is_not_text_but_korean_text_is():
    korean = "MZ세대는 새로운 소비 문화를 만든다. BMW 차량도 있다.\n" * 80
    assert detect_format("a.txt", korean.encode()) == "text"
    assert detect_format("b.txt", korean.encode()[:4095]) == "text"  # cut inside a character
    with pytest.raises(UnknownFormat, match="not UTF-8"):
        detect_format("c.txt", korean.encode("cp949"))


def test_png_named_txt_stops_the_run(tmp_path, caplog):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("좋은 문장\n", "utf-8")
    (src / "photo.txt").write_bytes(png_bytes())
    assert run(src, "-o", tmp_path / "out") == 2
    assert "photo.txt: looks binary (PNG data)" in caplog.text
    assert not (tmp_path / "out" / MANIFEST).exists()


# ---------------------------------------------------------------- inputs changed between runs


def edit_in_place(path: Path, offset: int, keep_mtime: bool) -> None:
    """Change one byte of `path` (same size), optionally restoring its mtime as `cp -p` would."""
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[offset] = ord("X") if data[offset] != ord("X") else ord("Y")
    path.write_bytes(bytes(data))
    if keep_mtime:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.mark.parametrize("keep_mtime", [False, True])
def test_an_input_edited_in_place_is_noticed(tmp_path, caplog, keep_mtime):
    path = tmp_path / "c.jsonl"
    path.write_bytes(jsonl_bytes(2000))  # 80 KB: its middle lies in no sampled block, its start does
    out = tmp_path / "out"
    assert run(path, "-o", out) == 0
    edit_in_place(path, 0 if keep_mtime else len(path.read_bytes()) // 2 + 11, keep_mtime)
    assert run(path, "-o", out) == 2  # not "already complete"
    assert "different command or inputs" in caplog.text
    assert run(path, "-o", out, "--overwrite") == 0


def test_a_killed_run_does_not_resume_over_changed_inputs(tmp_path, caplog):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.jsonl").write_bytes(jsonl_bytes(50))
    (src / "b.jsonl").write_bytes(b'{"text": "old text here"}\n{"text": broken\n')
    out = tmp_path / "out"
    assert run(src, "-o", out, "--strict") == 2  # stops after extracting every unit, as a kill would
    assert (out / ".work").is_dir()
    (src / "b.jsonl").write_bytes(b'{"text": "new text here"}\n{"text": broken\n')  # same size
    assert run(src, "-o", out) == 2
    assert "unfinished run of a different command or inputs" in caplog.text
    assert run(src, "-o", out, "--overwrite", "--val-fraction", 0, "--no-near-dedup") == 0  # a's 50 are near copies
    assert manifest(out)["sources"]["src"]["docs_kept"] == 51
    text = b"".join(datasets.load_from_disk(str(out / "train"))["chunk"])
    assert b"new text here" in text and b"old text" not in text


def test_a_killed_run_of_a_version_with_another_document_hash_is_not_resumed(tmp_path, caplog, monkeypatch):
    """Exact dedup and the validation draw compare the spills' hashes: spills hashed by another
    version's doc_hash (BLAKE2b before xxh3_64) must not be mixed with this version's."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.jsonl").write_bytes(jsonl_bytes(50))
    (src / "b.jsonl").write_bytes(b'{"text": "old text here"}\n{"text": broken\n')
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    with monkeypatch.context() as m:  # the older version: its hash, under its name
        m.setattr(prepare, "DOC_HASH", "blake2b-64")
        m.setattr(spill, "doc_hash", lambda data: int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little"))
        assert run(src, "-o", out, "--strict") == 2  # stops after extracting every unit, as a kill would
    assert (out / ".work" / "u000000.json").exists()
    assert run(src, "-o", out) == 2
    assert "unfinished run of a different command or inputs (or data_prep version)" in caplog.text
    assert run(src, "-o", out, "--overwrite") == 0
    assert run(src, "-o", fresh) == 0
    for split in ("train", "validation"):
        assert datasets.load_from_disk(str(out / split))["chunk"] == datasets.load_from_disk(str(fresh / split))["chunk"]
    assert manifest(out)["doc_hash"] == "xxh3_64"


# ---------------------------------------------------------------- kill -9


def test_orphaned_workers_exit_quietly_after_kill_9(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for f in range(2):
        (src / f"p{f}.jsonl").write_bytes(jsonl_bytes(20000, 20000 * f))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "data_prep", str(src), "-o", str(out), "--workers", "2",
                             "--unit-mb", "0.05"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = kill_after_units(proc, out, 3)
    # The workers hold the stderr pipe too: it ends when the last of them has exited.
    err = b""
    while chunk := _read_until(proc.stderr, deadline):
        err += chunk
    assert b"Traceback" not in err and b"BrokenPipeError" not in err, err.decode()


def _read_until(pipe, deadline: float) -> bytes:
    ready, _, _ = select.select([pipe], [], [], max(0.0, deadline - time.monotonic()))
    assert ready, "orphaned workers still running"
    return os.read(pipe.fileno(), 65536)

"""Archive and directory inputs: tar members read like zip members (plain, gzip, bz2), damaged and
unsupported tars reported, directory include/exclude globs, and the formats summary."""
from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest
import zstandard

from data_prep.cli import main
from data_prep.inputs import InputSpec, expand, plan_units
from data_prep.problems import Problems
from data_prep.readers import READERS, ReadContext, ReadOptions
from data_prep.shard_format import MANIFEST

MEMBERS = {"corpus/a.jsonl": "".join(json.dumps({"text": f"제이슨 문서 {i}"}, ensure_ascii=False) + "\n"
                                     for i in range(3)).encode(),
           "corpus/b.txt": "첫 줄 텍스트\n둘째 줄 텍스트\n".encode(),
           "corpus/c.jsonl.gz": gzip.compress('{"text": "압축된 멤버"}\n'.encode()),
           "corpus/.hidden.txt": b"hidden\n", "corpus/empty.txt": b""}
EXPECTED = ["제이슨 문서 0", "제이슨 문서 1", "제이슨 문서 2", "첫 줄 텍스트\n", "둘째 줄 텍스트\n", "압축된 멤버"]


def write_tar(path: Path, mode: str) -> Path:
    with tarfile.open(path, mode) as archive:
        for name, data in MEMBERS.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def read(path: Path, **options) -> tuple[list[tuple[str, str]], ReadContext]:
    problems = Problems()
    units = plan_units([InputSpec("t", str(path))], None, "line", 1 << 30, problems)
    ctx = ReadContext(ReadOptions(**options), problems)
    return [doc for unit in units for doc in READERS[unit.fmt](unit, ctx)], ctx


@pytest.mark.parametrize("name,mode", [("c.tar", "w"), ("c.tar.gz", "w:gz"), ("c.tgz", "w:gz"), ("c.tar.bz2", "w:bz2")])
def test_tar_members_are_read_like_zip_members(tmp_path, name, mode):
    path = write_tar(tmp_path / name, mode)
    docs, ctx = read(path)
    assert [t for t, _ in docs] == EXPECTED
    assert docs[0][1] == f"{path}::corpus/a.jsonl:1" and docs[5][1] == f"{path}::corpus/c.jsonl.gz:1"
    assert ctx.problems.counts == {"empty_file": 1} and f"{path}::corpus/empty.txt" in ctx.problems.samples[0]


def test_damaged_and_zstd_tars_are_reported(tmp_path):
    big = {f"m{i}.txt": f"멤버 {i} 문장\n".encode() * 2000 for i in range(4)}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in big.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) * 2 // 3])
    out = tmp_path / "out"
    assert main([str(cut), "-o", str(out), "--val-fraction", "0"]) == 0
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["problems"].get("truncated_archive", 0) >= 1 and manifest["sources"]["cut"]["docs_kept"] >= 2
    assert all(u["member"].startswith("m") for u in manifest["inputs"])
    zst = tmp_path / "c.tar.zst"
    zst.write_bytes(zstandard.ZstdCompressor().compress(write_tar(tmp_path / "plain.tar", "w").read_bytes()))
    docs, ctx = read(zst)
    assert docs == [] and ctx.problems.counts == {"unsupported_archive": 1} and "unpack it" in ctx.problems.samples[0]


def test_directory_include_exclude_and_the_formats_summary(tmp_path, capsys):
    src = tmp_path / "namu"
    (src / "sub").mkdir(parents=True)
    for path in (src / "t1.json", src / "sub" / "t2.json"):
        path.write_text(json.dumps({"namespace": 0, "title": path.stem, "text": f"{path.stem} 본문"}, ensure_ascii=False))
    (src / "t1.gold.txt").write_text("정답 문장\n")
    (src / "notes.md").write_text("메모\n")
    (src / "sub" / "extra.csv").write_text("text\n표 행\n")
    names = [p.name for p in expand(str(src), ("*.json", "sub/*.csv"), ("*.gold.txt",))]
    assert names == ["extra.csv", "t2.json", "t1.json"]
    assert [p.name for p in expand(str(src), (), ("*.gold.txt", "*.md"))] == ["extra.csv", "t2.json", "t1.json"]
    out = tmp_path / "out"
    assert main([str(src), "-o", str(out), "--include", "*.json", "--include", "*.csv", "--exclude", "t1.*"]) == 0
    assert "formats: csv 1 file, namuwiki 1 file" in capsys.readouterr().err
    assert {u["path"] for u in json.loads((out / MANIFEST).read_text())["inputs"]} == {
        str(src / "sub" / "extra.csv"), str(src / "sub" / "t2.json")}

"""The shard contract's checks: a truncated, reshaped or altered shard is refused, naming the file,
by every reader (training's ShardStream, config validation, the launcher, `data_prep inspect`)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import datasets
import pyarrow as pa
import pytest
from config_fixtures import tiny_doc
from shard_fixtures import write_shard_dir

from data_prep.cli import main as data_prep_main
from data_prep.shard_format import MANIFEST, ShardFormatError, check_shards, load_manifest, read_split
from pretrain.collator import SpanCorruptionCollator
from pretrain.config import ConfigError, parse_document, validate
from pretrain.data import ShardStream

REPO = Path(__file__).resolve().parents[1]
COLLATOR = SpanCorruptionCollator(seed=0)
ROWS = [f"{i:03d} 한국어 청크".encode() * 3 for i in range(40)]


def shard_dir(path: Path) -> tuple[Path, Path]:
    """A two-shard output and the path of its second train shard."""
    out = write_shard_dir(path, ROWS, chunk_bytes=64, val_chunks=ROWS[:8], num_shards=2)
    return out, out / "train" / load_manifest(out)["splits"]["train"]["shards"][1]["file"]


def tiny_config(shards: Path):
    doc = tiny_doc()
    doc["run"]["data"]["train"] = [str(shards)]
    return parse_document(doc)


def launch(tmp_path: Path, shards: Path, *flags: str) -> subprocess.CompletedProcess:
    """launch/pretrain.py as a user starts it (stops before anything heavy when the shards are bad)."""
    return subprocess.run([sys.executable, str(REPO / "launch" / "pretrain.py"), "--config", str(REPO / "ds_configs" / "tiny.json"),
                           "--data", str(shards), "--output_dir", str(tmp_path / "run"), *flags], capture_output=True, text=True, timeout=300)


def drop_file_sizes(out: Path) -> None:
    """Make the manifest look like one written before manifests recorded file sizes."""
    manifest = load_manifest(out)
    for split in manifest["splits"].values():
        for record in split["shards"]:
            del record["file_bytes"]
    (out / MANIFEST).write_text(json.dumps(manifest))


def refused_everywhere(out: Path, shard: Path, message: str) -> None:
    """ShardStream, validation and `data_prep inspect` each refuse `out`, naming `shard`."""
    pattern = f"{shard}: {message}"
    with pytest.raises(ShardFormatError, match=pattern):
        ShardStream([out], batch_size=2, collator=COLLATOR)
    with pytest.raises(ConfigError, match=r"run.data.train\[0\]: " + pattern):
        validate(tiny_config(out), world_size=1)
    assert data_prep_main(["inspect", str(out)]) == 2


def test_intact_output_loads_everywhere(tmp_path):
    out, _ = shard_dir(tmp_path / "ok")
    check_shards(out, load_manifest(out), verify=True)
    assert ShardStream([out], batch_size=2, collator=COLLATOR).rows == [40]
    validate(tiny_config(out), world_size=1)
    whole = datasets.load_from_disk(str(out))  # dataset_dict.json: OUT is a DatasetDict
    assert isinstance(whole, datasets.DatasetDict) and {s: len(whole[s]) for s in whole} == {"train": 40, "validation": 8}
    assert whole["train"]["chunk"] == ROWS


@pytest.mark.parametrize("cut", [8, 10, 200])
def test_truncated_shard_is_named(tmp_path, cut):
    """8 bytes is exactly the stream's end marker: Arrow still reads every row, only the size shows it."""
    out, shard = shard_dir(tmp_path / "cut")
    data = shard.read_bytes()
    shard.write_bytes(data[:-cut])
    refused_everywhere(out, shard, f"{len(data) - cut} bytes, but {MANIFEST} records {len(data)}")


def test_truncated_shard_stops_the_launcher_in_one_line(tmp_path):
    out, shard = shard_dir(tmp_path / "cut")
    shard.write_bytes(shard.read_bytes()[:-8])
    done = launch(tmp_path, out)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and f"{shard}: " in done.stderr and "Traceback" not in done.stderr


def test_shard_with_other_rows_is_named_even_in_an_old_manifest(tmp_path):
    out, shard = shard_dir(tmp_path / "rows")
    other = write_shard_dir(tmp_path / "other", ROWS[:7], chunk_bytes=64)
    shard.write_bytes(next((other / "train").glob("data-*.arrow")).read_bytes())
    drop_file_sizes(out)
    refused_everywhere(out, shard, f"7 rows, but {MANIFEST} records 20")


def test_old_manifest_without_file_sizes_still_loads_and_catches_a_cut_stream(tmp_path):
    out, shard = shard_dir(tmp_path / "old")
    drop_file_sizes(out)
    assert ShardStream([out], batch_size=2, collator=COLLATOR).rows == [40]
    shard.write_bytes(shard.read_bytes()[:-200])
    refused_everywhere(out, shard, "not an Arrow IPC stream")


def test_shard_with_other_columns_is_named(tmp_path):
    out, shard = shard_dir(tmp_path / "cols")
    table = pa.table({"text": [row.decode() for row in ROWS[20:]]})
    with pa.OSFile(str(shard), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    manifest = load_manifest(out)
    manifest["splits"]["train"]["shards"][1]["file_bytes"] = shard.stat().st_size
    (out / MANIFEST).write_text(json.dumps(manifest))
    refused_everywhere(out, shard, r"columns \['text'\], expected chunk, source")


def test_file_list_must_match_the_manifest(tmp_path):
    out, shard = shard_dir(tmp_path / "list")
    state = out / "train" / "state.json"
    doc = json.loads(state.read_text())
    doc["_data_files"] = doc["_data_files"][:1]
    state.write_text(json.dumps(doc))
    with pytest.raises(ShardFormatError, match=f"{state} lists .* but .*{MANIFEST} records"):
        read_split(out, "train", load_manifest(out))


def test_flipped_byte_is_caught_by_verification_only(tmp_path, caplog):
    out, shard = shard_dir(tmp_path / "flip")
    data = bytearray(shard.read_bytes())
    position = data.index("한국어".encode())  # inside a chunk: the stream stays well-formed
    data[position] ^= 0x01
    shard.write_bytes(bytes(data))
    manifest = load_manifest(out)
    check_shards(out, manifest)  # same size and rows: the cheap check passes
    ShardStream([out], batch_size=2, collator=COLLATOR)
    with pytest.raises(ShardFormatError, match=f"{shard}: sha256 does not match {MANIFEST}"):
        check_shards(out, manifest, verify=True)
    assert data_prep_main(["inspect", str(out)]) == 0
    assert data_prep_main(["inspect", "--verify", str(out)]) == 2
    assert f"{shard}: sha256 does not match" in caplog.text
    done = launch(tmp_path, out, "--verify-shards")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and f"run.data.train[0]: {shard}: sha256 does not match" in done.stderr


def test_a_damaged_output_is_not_reported_complete(tmp_path, caplog):
    corpus = tmp_path / "news.txt"
    corpus.write_text("".join(f"{i}번째 문장은 한국어로 쓴 시험 문장입니다.\n" for i in range(300)), encoding="utf-8")
    out = tmp_path / "out"
    assert data_prep_main([str(corpus), "-o", str(out)]) == 0
    shard = out / "train" / load_manifest(out)["splits"]["train"]["shards"][0]["file"]
    intact = shard.read_bytes()
    shard.write_bytes(intact[:-8])
    assert data_prep_main([str(corpus), "-o", str(out)]) == 2  # not "already complete"
    assert f"{shard}: {len(intact) - 8} bytes" in caplog.text and "--overwrite" in caplog.text
    assert data_prep_main([str(corpus), "-o", str(out), "--overwrite"]) == 0
    assert shard.read_bytes() == intact

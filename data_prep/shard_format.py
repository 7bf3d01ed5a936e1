"""The shard contract: what `python -m data_prep` writes and everything else reads.

A finished output directory OUT holds

- OUT/train and OUT/validation (`SPLITS`): each one a `datasets.Dataset.save_to_disk` layout,
  `data-00000-of-0000N.arrow` files in the Arrow IPC *stream* format with the columns of
  `SCHEMA`, plus `state.json` (the file list) and `dataset_info.json`;
- OUT/dataset_dict.json, so that `datasets.load_from_disk(OUT)` gives a DatasetDict;
- OUT/manifest.json, written last: its presence means complete. It records `format_version`,
  `chunk_bytes` and, per split, every shard's file name, rows, chunk bytes, file size and sha256.

`load_manifest` is the one manifest loader, `read_split` the one reader of a split, and both
check what they read against the manifest (`check_shards` adds sha256 on request). The format
and the checks are described in docs/ARCHITECTURE.md, "Shard format".
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from data_prep.atomic import write_json

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATASET_DICT = "dataset_dict.json"
STATE = "state.json"
TRAIN, VALIDATION = "train", "validation"
SPLITS = (TRAIN, VALIDATION)

FEATURES = {"chunk": {"dtype": "binary", "_type": "Value"}, "source": {"dtype": "string", "_type": "Value"}}
SCHEMA = pa.schema([("chunk", pa.binary()), ("source", pa.string())],
                   metadata={"huggingface": json.dumps({"info": {"features": FEATURES}})})
DATASET_INFO = {"citation": "", "description": "", "features": FEATURES, "homepage": "", "license": ""}


class ShardFormatError(ValueError):
    """A shard directory that breaks the contract; the message names the file."""


def shard_name(index: int, count: int) -> str:
    return f"data-{index:05d}-of-{count:05d}.arrow"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def split_summary(shards: list[dict]) -> dict:
    """A split's entry in the manifest, from its shards' records."""
    return {"rows": sum(s["rows"] for s in shards), "bytes": sum(s["bytes"] for s in shards), "shards": shards}


def load_manifest(directory: str | os.PathLike) -> dict:
    """The manifest of a finished output, after checking the fields every reader relies on."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not directory.is_dir():
        raise ShardFormatError(f"shard directory {directory} does not exist")
    try:
        manifest = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ShardFormatError(f"{path} is missing (not a `python -m data_prep` output?)") from None
    except (ValueError, OSError) as err:
        raise ShardFormatError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(manifest, dict):
        raise ShardFormatError(f"{path}: expected a JSON object")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ShardFormatError(f"{path} has format_version {manifest.get('format_version')!r}, "
                               f"expected {FORMAT_VERSION}")
    chunk = manifest.get("chunk_bytes")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 2:
        raise ShardFormatError(f"{path} has no valid integer 'chunk_bytes' (got {chunk!r})")
    for split in SPLITS:
        if not (directory / split).is_dir():
            raise ShardFormatError(f"{directory / split} is missing")
        entry = manifest.get("splits")
        entry = entry.get(split) if isinstance(entry, dict) else None
        shards = entry.get("shards") if isinstance(entry, dict) else None
        if not isinstance(shards, list) or not all(isinstance(s, dict) and {"file", "rows"} <= s.keys() for s in shards):
            raise ShardFormatError(f"{path} has no shard list (file, rows) for split {split!r}")
    return manifest


@dataclass(frozen=True)
class Shard:
    """One memory-mapped shard file: `table` is a zero-copy view of `buffer`, the whole file."""

    path: Path
    buffer: pa.Buffer
    table: pa.Table


def read_split(directory: str | os.PathLike, split: str, manifest: dict) -> list[Shard]:
    """Every shard of one split, memory-mapped, in order, each checked against the manifest:
    the file list, each file's size (when recorded) and rows, and the columns."""
    split_dir = Path(directory) / split
    records = manifest["splits"][split]["shards"]
    listed = _state_files(split_dir)
    if listed != [s["file"] for s in records]:
        raise ShardFormatError(f"{split_dir / STATE} lists {listed}, but {Path(directory) / MANIFEST} records "
                               f"{[s['file'] for s in records]}")
    return [_open_shard(split_dir / record["file"], record) for record in records]


def check_shards(directory: str | os.PathLike, manifest: dict, verify: bool = False) -> None:
    """Check both splits as `read_split` does; `verify` also compares each file's sha256 (reads
    every byte, so only on request)."""
    for split in SPLITS:
        for shard, record in zip(read_split(directory, split, manifest), manifest["splits"][split]["shards"]):
            if verify and sha256_file(shard.path) != record.get("sha256"):
                raise ShardFormatError(f"{shard.path}: sha256 does not match {MANIFEST} (corrupt or modified shard)")


def _state_files(split_dir: Path) -> list[str]:
    path = split_dir / STATE
    try:
        return [f["filename"] for f in json.loads(path.read_text())["_data_files"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ShardFormatError(f"{path}: not a datasets.save_to_disk split ({err!r})") from None


def _open_shard(path: Path, record: dict) -> Shard:
    try:
        size = path.stat().st_size
    except OSError as err:
        raise ShardFormatError(f"{path}: cannot be read ({err.strerror})") from None
    if "file_bytes" in record and size != record["file_bytes"]:  # older manifests lack file_bytes
        raise ShardFormatError(f"{path}: {size} bytes, but {MANIFEST} records {record['file_bytes']} "
                               "(truncated or replaced shard)")
    buffer = pa.memory_map(str(path)).read_buffer()  # zero-copy view of the whole mapping
    try:
        table = pa.ipc.open_stream(buffer).read_all()
    except (pa.ArrowInvalid, OSError) as err:  # a stream cut inside a message is an OSError
        raise ShardFormatError(f"{path}: not an Arrow IPC stream ({err})") from None
    if table.schema.names[:2] != ["chunk", "source"]:
        raise ShardFormatError(f"{path}: columns {table.schema.names}, expected chunk, source")
    kind = table.schema.field("chunk").type
    if kind not in (pa.binary(), pa.large_binary()):
        raise ShardFormatError(f"{path}: field chunk has type {kind}, expected binary")
    if table.column("chunk").null_count:
        raise ShardFormatError(f"{path}: field chunk has {table.column('chunk').null_count} null rows")
    if table.num_rows != record["rows"]:
        raise ShardFormatError(f"{path}: {table.num_rows} rows, but {MANIFEST} records {record['rows']}")
    return Shard(path, buffer, table)


def write_split_metadata(directory: Path, shards: list[dict]) -> None:
    """state.json and dataset_info.json for shards already in place under their final names."""
    write_json(directory / "dataset_info.json", DATASET_INFO)
    fingerprint = hashlib.sha256("".join(s["sha256"] for s in shards).encode()).hexdigest()[:16]
    write_json(directory / STATE, {
        "_data_files": [{"filename": s["file"]} for s in shards], "_fingerprint": fingerprint,
        "_format_columns": None, "_format_kwargs": {}, "_format_type": None,
        "_output_all_columns": False, "_split": None})


def publish(out: Path, stage: Path, manifest: dict) -> None:
    """Move the staged splits into place, then write dataset_dict.json and, last, the manifest:
    its presence means complete."""
    for split in SPLITS:
        shutil.rmtree(out / split, ignore_errors=True)
        (stage / split).replace(out / split)
    write_json(out / DATASET_DICT, {"splits": list(SPLITS)})
    write_json(out / MANIFEST, manifest)

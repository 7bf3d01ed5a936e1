"""Arrow IPC *stream* shards in exactly the layout `datasets.Dataset.save_to_disk` writes
(`data-00000-of-0000N.arrow`, `state.json`, `dataset_info.json`), so `datasets.load_from_disk`
reads them. Shards are written under temporary names in a staging directory and renamed once N
is known.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa

from data_prep.atomic import write_json

FEATURES = {"chunk": {"dtype": "binary", "_type": "Value"}, "source": {"dtype": "string", "_type": "Value"}}
SCHEMA = pa.schema([("chunk", pa.binary()), ("source", pa.string())],
                   metadata={"huggingface": json.dumps({"info": {"features": FEATURES}})})
DATASET_INFO = {"citation": "", "description": "", "features": FEATURES, "homepage": "", "license": ""}
_BATCH_ROWS = 1024


def shard_name(index: int, count: int) -> str:
    return f"data-{index:05d}-of-{count:05d}.arrow"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()


def _binary_array(values: list[bytes], kind: pa.DataType) -> pa.Array:
    """Arrow binary/string array straight from buffers: pa.array() on Python objects costs more
    and, on first use, imports pandas (about 0.7 s)."""
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum([len(v) for v in values], out=offsets[1:])
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(values))])


def write_split_metadata(directory: Path, shards: list[dict]) -> None:
    """state.json and dataset_info.json for shards already in place under their final names."""
    write_json(directory / "dataset_info.json", DATASET_INFO)
    fingerprint = hashlib.sha256("".join(s["sha256"] for s in shards).encode()).hexdigest()[:16]
    write_json(directory / "state.json", {
        "_data_files": [{"filename": s["file"]} for s in shards], "_fingerprint": fingerprint,
        "_format_columns": None, "_format_kwargs": {}, "_format_type": None,
        "_output_all_columns": False, "_split": None})


class _HashingFile:
    """A binary file that hashes what is written to it: a shard's sha256 is ready when it closes,
    instead of re-reading every shard at the end of the run, in serial time that caps worker scaling."""

    def __init__(self, path: Path):
        self._file = open(path, "wb")
        self.sha256 = hashlib.sha256()

    def write(self, data) -> int:
        self.sha256.update(data)
        return self._file.write(data)

    def close(self) -> None:
        self._file.close()

    @property
    def closed(self) -> bool:
        return self._file.closed


class ShardWriter:
    """Writes one split: rows go to the open shard, which is closed every `shard_rows` rows
    (or on `end_shard`, so that a short final chunk of a source is the last row of its shard)."""

    def __init__(self, directory: Path, shard_rows: int):
        self.directory = directory
        self.shard_rows = shard_rows
        directory.mkdir(parents=True, exist_ok=True)
        self.shards: list[dict] = []
        self._writer: pa.RecordBatchStreamWriter | None = None
        self._rows_in_shard = 0
        self._bytes_in_shard = 0
        self._chunks: list[bytes] = []
        self._sources: list[bytes] = []

    def add(self, chunks: list[bytes], source: str) -> None:
        encoded_source = source.encode("utf-8")
        while chunks:
            room = self.shard_rows - self._rows_in_shard - len(self._chunks)
            taken, chunks = chunks[:room], chunks[room:]
            self._chunks += taken
            self._sources += [encoded_source] * len(taken)
            if len(taken) == room:
                self.end_shard()
            elif len(self._chunks) >= _BATCH_ROWS:
                self._write_batch()

    def end_shard(self) -> None:
        self._write_batch()
        if self._writer is None:
            return
        self._writer.close()
        self._sink.close()
        self.shards.append({"rows": self._rows_in_shard, "bytes": self._bytes_in_shard,
                            "sha256": self._hashing.sha256.hexdigest()})
        self._writer = None
        self._rows_in_shard = self._bytes_in_shard = 0

    def finish(self) -> list[dict]:
        """Close the split; rename shards to their final names; return per-shard rows, bytes, sha256."""
        self.end_shard()
        if not self.shards:  # an empty split still needs one (empty) shard for load_from_disk
            self._open()
            self.end_shard()
        count = len(self.shards)
        for i, shard in enumerate(self.shards):
            final = self.directory / shard_name(i, count)
            os.replace(self._temp_path(i), final)
            shard["file"] = final.name
        write_split_metadata(self.directory, self.shards)
        return self.shards

    def _temp_path(self, index: int) -> Path:
        return self.directory / f"shard-{index:05d}.arrow.tmp"

    def _open(self) -> None:
        self._hashing = _HashingFile(self._temp_path(len(self.shards)))
        self._sink = pa.PythonFile(self._hashing, mode="w")
        self._writer = pa.ipc.new_stream(self._sink, SCHEMA)

    def _write_batch(self) -> None:
        if not self._chunks:
            return
        if self._writer is None:
            self._open()
        batch = pa.record_batch([_binary_array(self._chunks, pa.binary()), _binary_array(self._sources, pa.string())],
                                 schema=SCHEMA)
        self._writer.write_batch(batch)
        self._rows_in_shard += len(self._chunks)
        self._bytes_in_shard += sum(map(len, self._chunks))
        self._chunks, self._sources = [], []

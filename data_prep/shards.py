"""The shard writer: one split's rows into Arrow IPC stream shards in the layout of
`data_prep.shard_format` (which `datasets.load_from_disk` reads). Shards are written under
temporary names in a staging directory and renamed once their count N is known.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pyarrow as pa

from data_prep.pack import Chunks
from data_prep.shard_format import SCHEMA, shard_name, write_split_metadata

_BATCH_ROWS = 1024


def _binary_array(kind: pa.DataType, buffer: bytes, offsets: np.ndarray) -> pa.Array:
    """Arrow binary/string array straight from a buffer and int32 offsets starting at 0: no Python
    object per row (pa.array() on a list also imports pandas on first use, about 0.7 s)."""
    return pa.Array.from_buffers(kind, len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(buffer)])


def _chunk_column(pieces: list[Chunks]) -> pa.Array:
    lengths = np.concatenate([np.diff(np.asarray(piece.bounds, dtype=np.int64)) for piece in pieces])
    views = [memoryview(piece.buffer)[piece.bounds[0]:piece.bounds[-1]] for piece in pieces]
    # One piece (one packer batch, the common case) is passed on without a copy.
    return _binary_array(pa.binary(), views[0] if len(views) == 1 else b"".join(views), _offsets(lengths))


def _source_column(pieces: list[Chunks], sources: list[bytes]) -> pa.Array:
    counts = [len(piece) for piece in pieces]
    lengths = np.repeat([len(source) for source in sources], counts)
    return _binary_array(pa.string(), b"".join(source * count for source, count in zip(sources, counts)),
                         _offsets(lengths))


def _offsets(lengths: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return offsets


class _HashingFile:
    """A binary file that hashes what is written to it: a shard's sha256 is ready when it closes,
    instead of re-reading every shard at the end of the run, in serial time that caps worker scaling."""

    def __init__(self, path: Path):
        self._file = open(path, "wb")
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data) -> int:
        self.sha256.update(data)
        written = self._file.write(data)
        self.size += written
        return written

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
        self._pieces: list[Chunks] = []  # rows not yet written, with their sources
        self._sources: list[bytes] = []
        self._pending_rows = 0

    def add(self, chunks: Chunks, source: str) -> None:
        encoded_source = source.encode("utf-8")
        while len(chunks):
            room = self.shard_rows - self._rows_in_shard - self._pending_rows
            taken, chunks = chunks.split(room)
            self._pieces.append(taken)
            self._sources.append(encoded_source)
            self._pending_rows += len(taken)
            if len(taken) == room:
                self.end_shard()
            elif self._pending_rows >= _BATCH_ROWS:
                self._write_batch()

    def end_shard(self) -> None:
        self._write_batch()
        if self._writer is None:
            return
        self._writer.close()
        self._sink.close()
        self.shards.append({"rows": self._rows_in_shard, "bytes": self._bytes_in_shard,
                            "file_bytes": self._hashing.size, "sha256": self._hashing.sha256.hexdigest()})
        self._writer = None
        self._rows_in_shard = self._bytes_in_shard = 0

    def finish(self) -> list[dict]:
        """Close the split; rename shards to their final names; return per-shard records (file,
        rows, chunk bytes, file size, sha256)."""
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
        if not self._pending_rows:
            return
        if self._writer is None:
            self._open()
        batch = pa.record_batch([_chunk_column(self._pieces), _source_column(self._pieces, self._sources)],
                                schema=SCHEMA)
        self._writer.write_batch(batch)
        self._rows_in_shard += self._pending_rows
        self._bytes_in_shard += sum(piece.nbytes for piece in self._pieces)
        self._pieces, self._sources, self._pending_rows = [], [], 0

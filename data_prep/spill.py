"""Per-unit spill files: the cleaned documents of one unit, written by a worker, read back in
unit order by the assembler. A unit is done once its `.json` (written last, atomically) exists,
which is what makes phase 1 resumable after kill -9.

Layout in the work directory: `uNNNNNN.bin` (UTF-8 documents back to back), `uNNNNNN.npy`
(int64 [2, n]: lengths, hashes as bit patterns), `uNNNNNN.json` (the unit's counts).
"""
from __future__ import annotations

import json
import os
from array import array
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from data_prep.atomic import temp_path, write_json
from data_prep.dedup import doc_hash

# The assembler reads documents in batches of about this many bytes, so memory stays flat.
READ_BATCH_BYTES = 1 << 20
_WRITE_BLOCK = 1 << 20


def _stem(workdir: Path, index: int) -> Path:
    return workdir / f"u{index:06d}"


class SpillWriter:
    def __init__(self, workdir: Path, index: int):
        self._stem = _stem(workdir, index)
        self._tmp_bin = temp_path(self._stem.with_suffix(".bin"))
        # A 1 MB buffer: with the default 8 KB one, a write per document costs more.
        self._file = open(self._tmp_bin, "wb", buffering=_WRITE_BLOCK)
        self._lengths = array("q")
        self._hashes = array("Q")

    def add(self, data: bytes) -> None:
        self._file.write(data)
        self._lengths.append(len(data))
        self._hashes.append(doc_hash(data))

    def discard(self) -> int:
        """Forget every document added so far; return how many there were."""
        count = len(self._lengths)
        self._file.seek(0)
        self._file.truncate()
        self._lengths, self._hashes = array("q"), array("Q")
        return count

    def commit(self, meta: dict) -> None:
        self._file.close()
        index = np.stack([np.frombuffer(self._lengths, np.int64), np.frombuffer(self._hashes, np.int64)])
        tmp_npy = temp_path(self._stem.with_suffix(".npy"))
        with open(tmp_npy, "wb") as f:
            np.save(f, index)
        os.replace(self._tmp_bin, self._stem.with_suffix(".bin"))
        os.replace(tmp_npy, self._stem.with_suffix(".npy"))
        write_json(self._stem.with_suffix(".json"), meta)


def load_meta(workdir: Path, index: int) -> dict | None:
    path = _stem(workdir, index).with_suffix(".json")
    return json.loads(path.read_text("utf-8")) if path.exists() else None


def load_index(workdir: Path, index: int) -> tuple[np.ndarray, np.ndarray]:
    """(lengths int64, hashes uint64) of a finished unit."""
    both = np.load(_stem(workdir, index).with_suffix(".npy"))
    return both[0], both[1].view(np.uint64)


def iter_doc_batches(workdir: Path, index: int, lengths: np.ndarray) -> Iterator[tuple[int, list[bytes]]]:
    """(index of the first document, documents) in batches of about READ_BATCH_BYTES."""
    ends = np.cumsum(lengths)
    with open(_stem(workdir, index).with_suffix(".bin"), "rb") as f:
        first = 0
        while first < len(lengths):
            base = int(ends[first - 1]) if first else 0
            last = max(int(np.searchsorted(ends, base + READ_BATCH_BYTES, side="right")), first + 1)
            data = f.read(int(ends[last - 1]) - base)
            cuts = (ends[first:last] - base).tolist()
            yield first, [data[a:b] for a, b in zip([0] + cuts[:-1], cuts)]
            first = last

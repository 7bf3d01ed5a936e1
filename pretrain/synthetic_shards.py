"""Shard directories written straight through the shard contract (`data_prep.shard_format`),
as `python -m data_prep` writes them: OUT/{train,validation}, dataset_dict.json, manifest.json;
and synthetic Korean chunks for throughput checks.

Nothing of data prep's readers, cleaning or quality filters is imported here, so a machine that
only trains (launch/gpu_check.sh on a GPU without network) needs none of their dependencies.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from data_prep.pack import Chunks
from data_prep.shard_format import FORMAT_VERSION, TRAIN, VALIDATION, publish, split_summary
from data_prep.shards import ShardWriter

HANGUL_FIRST, HANGUL_END = 0xAC00, 0xD7A4  # the precomposed syllables, 3 UTF-8 bytes each
SPACE_SHARE = 0.2


def write_shard_dir(path: str | os.PathLike, chunks: Sequence[bytes], source: str = "test", chunk_bytes: int = 1024,
                    val_chunks: Sequence[bytes] = (), num_shards: int = 1) -> Path:
    """Write chunks as OUT/train and val_chunks as OUT/validation (each split over up to
    `num_shards` shards of nearly equal size, as `datasets.Dataset.save_to_disk` splits), and a
    manifest with no per-source counts."""
    out = Path(path)
    stage = out / ".stage"
    splits = {}
    for split, rows in ((TRAIN, chunks), (VALIDATION, val_chunks)):
        writer = ShardWriter(stage / split, shard_rows=max(len(rows), 1))
        count = min(num_shards, max(len(rows), 1))
        size, extra = divmod(len(rows), count)
        for i in range(count):
            start = i * size + min(i, extra)
            part = rows[start : start + size + (i < extra)]
            bounds = [0]
            for row in part:
                bounds.append(bounds[-1] + len(row))
            writer.add(Chunks(b"".join(part), bounds), source)
            writer.end_shard()
        splits[split] = split_summary(writer.finish())
    publish(out, stage, {"format_version": FORMAT_VERSION, "chunk_bytes": chunk_bytes, "command": ["synthetic_shards"],
                         "sources": {}, "dropped": {}, "problems": {}, "problem_samples": [], "splits": splits})
    shutil.rmtree(stage)
    return out


def synthetic_chunks(count: int, chunk_bytes: int, seed: int = 0) -> list[bytes]:
    """`count` chunks of exactly `chunk_bytes` bytes of valid UTF-8: random Hangul syllables with
    a fifth spaces (about Korean text's byte statistics), space-padded to the length."""
    rng = np.random.default_rng(seed)
    per_chunk = chunk_bytes // 3
    codes = np.where(rng.random((count, per_chunk)) < SPACE_SHARE, 0x20,
                     rng.integers(HANGUL_FIRST, HANGUL_END, (count, per_chunk)))
    # chunk_bytes // 3 characters of at most 3 bytes each always fit.
    return ["".join(map(chr, row)).encode("utf-8").ljust(chunk_bytes, b" ") for row in codes]


def write_synthetic_shards(path: str | os.PathLike, rows: int, chunk_bytes: int, seed: int = 0) -> Path:
    """A shard directory of `rows` synthetic training chunks (no validation split)."""
    return write_shard_dir(path, synthetic_chunks(rows, chunk_bytes, seed), source="synthetic",
                           chunk_bytes=chunk_bytes)

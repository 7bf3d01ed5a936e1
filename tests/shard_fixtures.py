"""Small shard directories written through the shard contract (`data_prep.shard_format`), as
`python -m data_prep` writes them: OUT/{train,validation}, dataset_dict.json, manifest.json."""
from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from data_prep.pack import Chunks
from data_prep.shard_format import FORMAT_VERSION, TRAIN, VALIDATION, publish, split_summary
from data_prep.shards import ShardWriter


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
    publish(out, stage, {"format_version": FORMAT_VERSION, "chunk_bytes": chunk_bytes, "command": ["shard_fixtures"],
                         "sources": {}, "dropped": {}, "problems": {}, "problem_samples": [], "splits": splits})
    shutil.rmtree(stage)
    return out

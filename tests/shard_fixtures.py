"""Small shard directories in the agreed layout (interfaces: OUT/{train,validation}, manifest.json)."""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from datasets import Dataset, Features, Value

FEATURES = Features({"chunk": Value("binary"), "source": Value("string")})


def write_shard_dir(path: str | os.PathLike, chunks: Sequence[bytes], source: str = "test", chunk_bytes: int = 1024,
                    val_chunks: Sequence[bytes] = (), num_shards: int = 1) -> Path:
    """Write chunks as OUT/train and val_chunks as OUT/validation, plus a minimal manifest.json."""
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    for split, rows in (("train", chunks), ("validation", val_chunks)):
        data = Dataset.from_dict({"chunk": list(rows), "source": [source] * len(rows)}, features=FEATURES)
        data.save_to_disk(str(out / split), num_shards=min(num_shards, max(len(rows), 1)))
    manifest = {"format_version": 1, "chunk_bytes": chunk_bytes, "sources": {source: {"train": len(chunks), "validation": len(val_chunks)}}}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out

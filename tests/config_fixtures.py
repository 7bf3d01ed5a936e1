"""Config documents and shard directories the config tests share."""
from __future__ import annotations

import json
from pathlib import Path

from shard_fixtures import write_shard_dir

from pretrain.config import TrainConfig, parse_document

CONFIGS = Path(__file__).resolve().parents[1] / "ds_configs"


def fake_shards(path: Path, chunk_bytes: int = 256) -> Path:
    """A small shard directory whose manifest says `chunk_bytes`."""
    return write_shard_dir(path, [b"x" * 16] * 4, chunk_bytes=chunk_bytes)


def tiny_doc(**run_changes) -> dict:
    doc = json.loads((CONFIGS / "tiny.json").read_text())
    doc["run"].update(run_changes)
    return doc


def write(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc))
    return path


def valid_config(tmp_path: Path, chunk_bytes: int = 256, **run_changes) -> TrainConfig:
    shards = fake_shards(tmp_path / "shards", chunk_bytes)
    doc = tiny_doc(**run_changes)
    doc["run"]["data"]["train"] = [str(shards)]
    return parse_document(doc)

"""`data_prep inspect DIR`: the manifest summary and a few decoded chunks."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from data_prep.manifest import MANIFEST, summary_table


def inspect(directory: Path, samples: int = 3, width: int = 300) -> str:
    manifest_path = directory / MANIFEST
    if not manifest_path.exists():
        raise FileNotFoundError(f"{manifest_path} not found: not a finished data_prep output")
    manifest = json.loads(manifest_path.read_text("utf-8"))
    lines = [f"{directory}: format_version {manifest['format_version']}, command: {' '.join(manifest['command'])}",
             summary_table(manifest)]
    if manifest["problems"]:
        lines.append("problems: " + ", ".join(f"{k} {v}" for k, v in manifest["problems"].items()))
    for split in ("train", "validation"):
        shards = manifest["splits"][split]["shards"]
        if not shards or not shards[0]["rows"]:
            continue
        with pa.ipc.open_stream(directory / split / shards[0]["file"]) as reader:
            table = reader.read_all().slice(0, samples)
        for i, (chunk, source) in enumerate(zip(table.column("chunk").to_pylist(), table.column("source").to_pylist())):
            text = chunk.decode("utf-8")
            shown = text[:width].replace("\n", "\\n") + ("..." if len(text) > width else "")
            lines.append(f"--- {split}[{i}] source={source} bytes={len(chunk)}\n{shown}")
    return "\n".join(lines)

"""`data_prep inspect DIR`: the manifest summary and a few decoded chunks, after checking every
shard against the manifest (sizes and rows; sha256 too with --verify)."""
from __future__ import annotations

from pathlib import Path

from data_prep.audit import show_samples
from data_prep.manifest import summary_table
from data_prep.shard_format import SPLITS, check_shards, load_manifest, read_split


def inspect(directory: Path, samples: int = 3, width: int = 300, verify: bool = False) -> str:
    manifest = load_manifest(directory)
    if verify:
        check_shards(directory, manifest, verify=True)
    lines = [f"{directory}: format_version {manifest['format_version']}, command: {' '.join(manifest['command'])}",
             summary_table(manifest)]
    if manifest["problems"]:
        lines.append("problems: " + ", ".join(f"{k} {v}" for k, v in manifest["problems"].items()))
    if verify:
        lines.append("sha256 of every shard matches the manifest")
    for split in SPLITS:
        shards = read_split(directory, split, manifest)  # checks each shard's size and rows
        if not shards:
            continue
        table = shards[0].table.slice(0, samples)
        for i, (chunk, source) in enumerate(zip(table.column("chunk").to_pylist(), table.column("source").to_pylist())):
            text = chunk.decode("utf-8")
            shown = text[:width].replace("\n", "\\n") + ("..." if len(text) > width else "")
            lines.append(f"--- {split}[{i}] source={source} bytes={len(chunk)}\n{shown}")
    dropped = show_samples(directory, samples, width)
    if dropped:
        lines += [f"dropped or edited documents (first {samples} per step):", *dropped]
    return "\n".join(lines)

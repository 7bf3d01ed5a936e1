"""`data_prep merge OUT PART...`: combine finished outputs (e.g. one per machine of a
--num-splits run) into one dataset. Each part's shards are first checked against its manifest
(sizes, rows, sha256), then hard-linked (copied across file systems) in the order the parts are
given. Counts are summed. Documents are not deduplicated across parts: each part deduplicated
its own share of the inputs; except near-duplicates of --num-splits --near-dedup parts, which are
removed across the parts (merge_near.py) unless `near_dedup` is False.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from data_prep.manifest import sum_counts, versions
from data_prep.merge_near import merge_near, wants_near_merge
from data_prep.shard_format import (FORMAT_VERSION, SPLITS, check_shards, load_manifest, publish, shard_name,
                                    split_summary, write_split_metadata)
from data_prep.stats import SourceStats


# Identify where a part came from (a part may itself be a merge, which has none of these).
_PART_KEYS = ("fingerprint", "num_splits", "split_index")


class MergeError(ValueError):
    pass


def merge(out: Path, parts: list[Path], command: list[str], near_dedup: bool = True) -> dict:
    manifests = [load_manifest(part) for part in parts]
    if near_dedup and wants_near_merge(manifests):
        return merge_near(out, parts, manifests, command)
    for part, manifest in zip(parts, manifests):
        check_shards(part, manifest, verify=True)
    chunk_sizes = {m["chunk_bytes"] for m in manifests}
    if len(chunk_sizes) != 1:
        raise MergeError(f"parts have different chunk_bytes {sorted(chunk_sizes)}; they cannot be one dataset")
    stage = out / ".merge"
    shutil.rmtree(stage, ignore_errors=True)
    splits = {split: _merge_split(stage / split, split, parts, manifests) for split in SPLITS}
    merged = {
        "format_version": FORMAT_VERSION,
        "chunk_bytes": chunk_sizes.pop(),
        "separator": manifests[0]["separator"],
        "command": command,
        "versions": versions(),
        "merged_from": [{"path": str(p), "command": m["command"], **{k: m.get(k) for k in _PART_KEYS}}
                        for p, m in zip(parts, manifests)],
        "sources": _sum_sources([m["sources"] for m in manifests]),
        "dropped": sum_counts([m["dropped"] for m in manifests]),
        "edits": sum_counts([m.get("edits", {}) for m in manifests]),
        "problems": sum_counts([m["problems"] for m in manifests]),
        "problem_samples": [s for m in manifests for s in m["problem_samples"]][:200],
        "splits": splits,
    }
    publish(out, stage, merged)
    shutil.rmtree(stage, ignore_errors=True)
    return merged


def _merge_split(stage: Path, split: str, parts: list[Path], manifests: list[dict]) -> dict:
    stage.mkdir(parents=True)
    found = [(part / split / s["file"], s) for part, m in zip(parts, manifests) for s in m["splits"][split]["shards"]]
    nonempty = [(path, shard) for path, shard in found if shard["rows"]] or found[:1]
    shards = []
    for i, (path, shard) in enumerate(nonempty):
        target = stage / shard_name(i, len(nonempty))
        _link_or_copy(path, target)
        shards.append({**shard, "file": target.name})
    write_split_metadata(stage, shards)
    return split_summary(shards)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _sum_sources(all_sources: list[dict]) -> dict:
    merged: dict[str, SourceStats] = {}
    for sources in all_sources:
        for name, entry in sources.items():
            merged[name] = merged.get(name, SourceStats()) + SourceStats.from_json(entry)
    return {name: entry.to_json() for name, entry in sorted(merged.items())}

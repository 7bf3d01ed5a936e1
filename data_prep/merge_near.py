"""`data_prep merge OUT PART...` for the parts of a `--num-splits K --near-dedup` run: near-dedup
across machines.

Each part keeps its work directory (spills and band keys; prepare keeps it for such runs). The
merge links every part's unit files into OUT/.work in global unit order, runs one clustering pass
over all of them, and assembles the spills again, so a document on machine 0 and its near copy
on machine 1 are one cluster, and the shards are byte-identical to those of one machine running
the whole job.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from data_prep.assemble import assemble, kept_hashes, validation_threshold
from data_prep.manifest import source_counts, sum_counts, versions
from data_prep.near_dedup import lsh_path, near_duplicates
from data_prep.pack import PackOptions
from data_prep.prepare import WORK
from data_prep.readers import Unit
from data_prep.shard_format import FORMAT_VERSION, SPLITS, publish, split_summary

# What must agree between the parts for them to be shares of one run.
_SAME = ("chunk_bytes", "cut_window", "separator", "num_splits", "doc_hash")  # doc_hash: absent before xxh3_64
_UNIT_FILES = (".bin", ".npy", ".json")


class NearMergeError(ValueError):
    pass


def wants_near_merge(manifests: list[dict]) -> bool:
    return all(m.get("near_dedup") for m in manifests) and any(m.get("num_splits", 1) > 1 for m in manifests)


def merge_near(out: Path, parts: list[Path], manifests: list[dict], command: list[str]) -> dict:
    _check_shares(parts, manifests)
    work = out / WORK
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    units, metas = _link_units(parts, manifests, work)
    first = manifests[0]
    options = first["options"]
    pack = PackOptions(first["chunk_bytes"], first["cut_window"], first["separator"].encode("utf-8"),
                       options["val_fraction"], options["val_docs"], options["shard_rows"],
                       options.get("min_val_docs", 0))
    near_drop, stats = near_duplicates(units, metas, work)
    # the whole job's input size, as one machine running it would see it
    threshold = validation_threshold(pack, lambda: kept_hashes(units, work, near_drop), sum(u.size for u in units))
    shards, assembled = assemble(units, work, work / "stage", pack, threshold, near_drop)
    ordered = [metas[u.index] for u in units]
    sources = source_counts(ordered, assembled)
    near = {k: v for k, v in first["near_dedup"].items() if k in ("enabled", "threshold", "shingle", "bands", "rows")}
    merged = {
        "format_version": FORMAT_VERSION,
        "chunk_bytes": first["chunk_bytes"],
        "cut_window": first["cut_window"],
        "separator": first["separator"],
        "command": command,
        "versions": versions(),
        "merged_from": [{"path": str(p), "command": m["command"], "fingerprint": m.get("fingerprint"),
                         "num_splits": m["num_splits"], "split_index": m["split_index"]}
                        for p, m in zip(parts, manifests)],
        "options": options,
        "sources": sources,
        "dropped": sum_counts([entry["dropped"] for entry in sources.values()]),
        "edits": sum_counts([entry.get("edits", {}) for entry in sources.values()]),
        "problems": sum_counts([m["problems"] for m in manifests]),
        "problem_samples": [s for m in manifests for s in m["problem_samples"]][:200],
        "splits": {split: split_summary(shards[split]) for split in SPLITS},
        "near_dedup": {**near, **stats},
    }
    publish(out, work / "stage", merged)
    shutil.rmtree(work, ignore_errors=True)
    return merged


def _check_shares(parts: list[Path], manifests: list[dict]) -> None:
    for key in _SAME:
        if len({json.dumps(m.get(key)) for m in manifests}) != 1:
            raise NearMergeError(f"the parts differ in {key}; they are not the shares of one --num-splits run")
    for key in ("threshold", "shingle"):
        if len({m["near_dedup"][key] for m in manifests}) != 1:
            raise NearMergeError(f"the parts differ in near-dedup {key}; they are not the shares of one run")
    shares = sorted(m["split_index"] for m in manifests)
    if shares != list(range(manifests[0]["num_splits"])):
        raise NearMergeError(f"near-dedup across parts needs every share 0..{manifests[0]['num_splits'] - 1} once; "
                             f"got split indices {shares}")
    for part in parts:
        if not (part / WORK).is_dir():
            raise NearMergeError(f"{part} has no {WORK} (its spills and band keys, which prepare keeps for "
                                 "--num-splits --near-dedup runs); rerun its command, or merge with --no-near-dedup")


def _link_units(parts: list[Path], manifests: list[dict], work: Path) -> tuple[list[Unit], dict[int, dict]]:
    """Symlink every part's unit files into `work`; return the units in global order and their counts."""
    units, metas = [], {}
    for part, manifest in zip(parts, manifests):
        found = sorted(int(p.name[1:7]) for p in (part / WORK).glob("u??????.json"))
        if len(found) != len(manifest["inputs"]):
            raise NearMergeError(f"{part}/{WORK} holds {len(found)} extracted units, its manifest "
                                 f"{len(manifest['inputs'])}")
        for index, entry in zip(found, manifest["inputs"]):
            for suffix in _UNIT_FILES:
                name = f"u{index:06d}{suffix}"
                os.symlink((part / WORK / name).resolve(), work / name)
            lsh = lsh_path(part / WORK, index)
            if not lsh.exists():
                raise NearMergeError(f"{lsh} is missing: {part} was not made with --near-dedup's band keys")
            os.symlink(lsh.resolve(), lsh_path(work, index))
            metas[index] = json.loads((work / f"u{index:06d}.json").read_text("utf-8"))
            start, end = entry["range"] or (None, None)
            units.append(Unit(index, entry["path"], entry["source"], entry["format"], entry["bytes"], entry["member"],
                              start, end))
    return sorted(units, key=lambda u: u.index), metas

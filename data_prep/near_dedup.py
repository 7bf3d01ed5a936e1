"""Near-duplicate clustering over a whole run, after extraction and before assembly.

Input: each unit's band keys (`uNNNNNN.lsh.npy`, written by the workers: per band, the keys sorted
with each document's index in the unit). Documents are numbered globally in input order (units in
order, documents in order within a unit), so the result is the same for any worker count.

For each band, the key space is cut into ranges holding at most CHUNK_KEYS keys in all; each
range is read from every unit's memory-mapped, sorted keys (a binary search finds the slice),
sorted once, and every run of equal keys links its documents to the run's first one. Links are
applied at once to a union-find array (memory-mapped, one int64 per document) whose roots are
always the smallest index of their set, so each cluster keeps its first document in input
order. Memory is bounded by CHUNK_KEYS whatever the corpus size; the disk holds 8 bytes per
document for the union-find array and 1 for the result.

The result, one drop flag per document, is written atomically (`near/drop.npy`, then
`near/stats.json`, whose presence means done): a run killed while clustering redoes it from
the unit files and gets the same flags.
"""
from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from data_prep.atomic import temp_path, write_json
from data_prep.readers import Unit

log = logging.getLogger("data_prep")
CHUNK_KEYS = 1 << 22  # keys sorted at once: ~100 MB with the sort's temporaries
_RESOLVE_BLOCK = 1 << 22
# Cluster sizes are reported in these buckets (the upper bounds, inclusive).
_SIZE_BUCKETS = (2, 3, 4, 8, 16, 64, 256, 1024)


def lsh_path(workdir: Path, index: int) -> Path:
    return workdir / f"u{index:06d}.lsh.npy"


def result_dir(workdir: Path) -> Path:
    return workdir / "near"


def cluster(key_files: Sequence[Path], doc_counts: Sequence[int], workdir: Path,
            groups: Sequence[str] | None = None) -> tuple[np.ndarray, dict]:
    """(drop flags as a read-only memmap over all documents in input order, cluster statistics, also
    per group of units (`groups`, one name per unit: the sources; a cluster counts for the group of
    its kept document, a removed document for its own). Reuses a finished result in `workdir/near`; otherwise computes and publishes it."""
    out = result_dir(workdir)
    done = out / "stats.json"
    if done.exists():
        return np.load(out / "drop.npy", mmap_mode="r"), json.loads(done.read_text("utf-8"))
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    total = int(sum(doc_counts))
    parent = np.lib.format.open_memmap(out / "parent.npy", "w+", np.int64, (max(total, 1),))
    for start in range(0, total, _RESOLVE_BLOCK):
        parent[start:start + _RESOLVE_BLOCK] = np.arange(start, min(start + _RESOLVE_BLOCK, total))
    offsets = np.concatenate([[0], np.cumsum(doc_counts)]).astype(np.int64)
    keys = [np.load(path, mmap_mode="r") for path in key_files]
    bands = keys[0].shape[1] if keys else 0
    parts = max(1, -(-total // CHUNK_KEYS))
    edges = 0
    for band in range(bands):
        for part in range(parts):
            lo, hi = _links(keys, offsets, band, part, parts)
            edges += len(lo)
            _union(parent, lo, hi)
    tmp = temp_path(out / "drop.npy")
    drop = np.lib.format.open_memmap(tmp, "w+", np.bool_, (total,))
    sizes = _resolve(parent, drop, out / "sizes.npy", offsets, groups or [""] * len(doc_counts))
    drop.flush()
    del drop
    tmp.replace(out / "drop.npy")
    stats = {"documents": total, "linked_pairs": edges, **sizes}
    (out / "parent.npy").unlink()
    write_json(done, stats)
    return np.load(out / "drop.npy", mmap_mode="r"), stats


def _links(keys: list[np.ndarray], offsets: np.ndarray, band: int, part: int, parts: int) -> tuple[np.ndarray,
                                                                                                  np.ndarray]:
    """(first document, other document) of every run of equal keys in one key range of one band."""
    lo_key = np.uint64((part << 64) // parts)
    hi_key = None if part == parts - 1 else np.uint64(((part + 1) << 64) // parts)
    found_keys, found_docs = [], []
    for unit_keys, offset in zip(keys, offsets.tolist()):
        sorted_keys = unit_keys[0, band]
        a = int(np.searchsorted(sorted_keys, lo_key, "left")) if part else 0
        b = len(sorted_keys) if hi_key is None else int(np.searchsorted(sorted_keys, hi_key, "left"))
        if b > a:
            found_keys.append(np.asarray(sorted_keys[a:b]))
            found_docs.append(unit_keys[1, band, a:b].astype(np.int64) + offset)
    if not found_keys:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    all_keys = np.concatenate(found_keys)
    # Stable: equal keys keep unit order, and within a unit document order, so a run's first
    # document is its smallest global index.
    order = np.argsort(all_keys, kind="stable")
    all_keys, docs = all_keys[order], np.concatenate(found_docs)[order]
    same = all_keys[1:] == all_keys[:-1]
    if not same.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    run_start = np.flatnonzero(np.concatenate([[True], ~same]))
    first_of = np.repeat(docs[run_start], np.diff(np.append(run_start, len(docs))))
    member = np.concatenate([[False], same])
    return first_of[member], docs[member]


def _find(parent: np.ndarray, x: np.ndarray) -> np.ndarray:
    root = parent[x]
    while True:
        up = parent[root]
        if np.array_equal(up, root):
            return root
        root = up


def _union(parent: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """Join the sets of a[i] and b[i] for every i; the smaller root becomes the parent, so a root is
    always its set's smallest index."""
    while len(a):
        ra, rb = _find(parent, a), _find(parent, b)
        differ = ra != rb
        lo, hi = np.minimum(ra[differ], rb[differ]), np.maximum(ra[differ], rb[differ])
        np.minimum.at(parent, hi, lo)  # several links to one root: the smallest wins, the rest go round again
        a, b = lo, hi


def _resolve(parent: np.ndarray, drop: np.ndarray, scratch: Path, offsets: np.ndarray, groups: Sequence[str]) -> dict:
    """Point every document at its root, in blocks in index order (a root is never above its
    members, so earlier blocks are final); set drop for every non-root; return cluster statistics,
    overall and per group of units."""
    total = len(drop)
    size_of_root = np.lib.format.open_memmap(scratch, "w+", np.int32, (max(total, 1),))
    for start in range(0, total, _RESOLVE_BLOCK):
        end = min(start + _RESOLVE_BLOCK, total)
        roots = np.asarray(parent[start:end])
        while True:
            up = parent[roots]
            if np.array_equal(up, roots):
                break
            roots = up
        parent[start:end] = roots
        members = roots != np.arange(start, end)
        drop[start:end] = members
        np.add.at(size_of_root, roots[members], 1)
    per_group: dict[str, dict] = {}
    for group, a, b in zip(groups, offsets[:-1].tolist(), offsets[1:].tolist()):
        sizes = np.asarray(size_of_root[a:b])
        found = _summary(sizes[sizes > 0] + 1, int(np.count_nonzero(drop[a:b])))  # the kept document counts too
        per_group[group] = _merge(per_group[group], found) if group in per_group else found
    del size_of_root
    scratch.unlink()
    overall = _summary(np.zeros(0, np.int64), 0)
    for found in per_group.values():
        overall = _merge(overall, found)
    if len(per_group) > 1:
        overall["sources"] = dict(sorted(per_group.items()))
    return overall


def _summary(sizes: np.ndarray, removed: int) -> dict:
    counts = np.bincount(np.searchsorted(_SIZE_BUCKETS, sizes), minlength=len(_SIZE_BUCKETS) + 1)
    return {"clusters": len(sizes), "docs_removed": removed, "largest_cluster": int(sizes.max(initial=0)),
            "cluster_sizes": {_bucket_name(i): int(c) for i, c in enumerate(counts) if c}}


def _merge(a: dict, b: dict) -> dict:
    names = [_bucket_name(i) for i in range(len(_SIZE_BUCKETS) + 1)]
    both = {k: a["cluster_sizes"].get(k, 0) + b["cluster_sizes"].get(k, 0) for k in names}
    return {"clusters": a["clusters"] + b["clusters"], "docs_removed": a["docs_removed"] + b["docs_removed"],
            "largest_cluster": max(a["largest_cluster"], b["largest_cluster"]),
            "cluster_sizes": {k: v for k, v in both.items() if v}}


def _bucket_name(i: int) -> str:
    if i == len(_SIZE_BUCKETS):
        return f">{_SIZE_BUCKETS[-1]}"
    low = _SIZE_BUCKETS[i - 1] + 1 if i else 2
    return str(low) if low == _SIZE_BUCKETS[i] else f"{low}-{_SIZE_BUCKETS[i]}"


def near_duplicates(units: Sequence[Unit], metas: Mapping[int, dict], workdir: Path) -> tuple[dict[int, np.ndarray],
                                                                                              dict]:
    """Cluster the extracted units of one run: (unit index -> drop flags of its documents, statistics)."""
    counts = [metas[u.index]["docs_clean"] for u in units]
    start = time.perf_counter()
    drop, stats = cluster([lsh_path(workdir, u.index) for u in units], counts, workdir, [u.source for u in units])
    seconds = max(time.perf_counter() - start, 1e-9)
    megabytes = sum(metas[u.index]["clean_bytes"] for u in units) / 1e6
    log.info("near-dedup: %d of %d documents in %d clusters; clustering %.2f s (%.0f MB/s, %.0f docs/s)",
             stats["docs_removed"], stats["documents"], stats["clusters"], seconds, megabytes / seconds,
             stats["documents"] / seconds)
    offsets = np.cumsum([0, *counts])
    return {u.index: drop[a:b] for u, a, b in zip(units, offsets[:-1].tolist(), offsets[1:].tolist())}, stats

"""The manifest's report: versions, per-source counts, and the end-of-run summary table printed
from it (the manifest's file name, version and shard records: `data_prep.shard_format`)."""
from __future__ import annotations

import platform
from collections import Counter

import numpy as np
import pyarrow as pa

from data_prep.shard_format import TRAIN, VALIDATION
from data_prep.stats import PackStats, SourceStats, UnitStats


def versions() -> dict:
    from data_prep import __version__

    return {"data_prep": __version__, "python": platform.python_version(), "pyarrow": pa.__version__,
            "numpy": np.__version__}


def sum_counts(counts: list[dict[str, int]]) -> dict[str, int]:
    """Per-key totals of several count dicts, sorted by key."""
    total: Counter = Counter()
    for c in counts:
        total.update(c)
    return dict(sorted(total.items()))


def source_counts(metas: list[dict], assembled: dict[str, PackStats],
                  listing: dict[str, Counter] | None = None) -> dict[str, dict]:
    """Per source: documents read / kept / dropped by reason, bytes in and out, chunks per split,
    and problems, those found while listing the inputs (`listing`) included."""
    sources = {name: SourceStats(problems=Counter(found)) for name, found in (listing or {}).items() if found}
    for meta in metas:
        unit = SourceStats.of_unit(UnitStats.from_json(meta))
        sources[meta["source"]] = sources.get(meta["source"], SourceStats()) + unit
    return {name: (entry + SourceStats.of_packing(assembled.get(name, PackStats()))).to_json()
            for name, entry in sorted(sources.items())}


def format_counts(inputs: list[dict]) -> str:
    """Which readers the inputs went through: `jsonl 3 files, csv 1 file` (files and archive
    members, not byte ranges)."""
    files = Counter(fmt for fmt, _, _ in {(i["format"], i["path"], i["member"]) for i in inputs})
    return ", ".join(f"{fmt} {n} file{'s' * (n != 1)}" for fmt, n in sorted(files.items()))


def summary_table(manifest: dict) -> str:
    header = f"{'source':<16} {'files':>6} {'docs read':>10} {'kept':>10} {'dropped':>9} {'MB in':>9} {'MB out':>9} " \
             f"{'train':>9} {'valid':>7} {'problems':>8}"
    lines = [header, "-" * len(header)]
    for name, s in manifest["sources"].items():
        lines.append(f"{name[:16]:<16} {s['files']:>6} {s['docs_read']:>10} {s['docs_kept']:>10} "
                     f"{sum(s['dropped'].values()):>9} {s['bytes_in'] / 1e6:>9.1f} {s['bytes_out'] / 1e6:>9.1f} "
                     f"{s['chunks'][TRAIN]:>9} {s['chunks'][VALIDATION]:>7} {sum(s['problems'].values()):>8}")
    if "inputs" in manifest:  # a merge's manifest lists its parts instead
        lines.append(f"formats: {format_counts(manifest['inputs'])}")
    splits = manifest["splits"]
    lines.append(f"chunks: {TRAIN} {splits[TRAIN]['rows']} in {len(splits[TRAIN]['shards'])} shard(s), "
                 f"{VALIDATION} {splits[VALIDATION]['rows']}; chunk_bytes {manifest['chunk_bytes']}; "
                 f"problems {sum(manifest['problems'].values())}")
    if near := manifest.get("near_dedup"):
        lines.append(f"near-duplicates (Jaccard {near['threshold']}, {near['bands']}x{near['rows']}): {near['docs_removed']} "
                     f"of {near['documents']} documents in {near['clusters']} clusters, largest {near['largest_cluster']}")
    return "\n".join(lines)


"""`data_prep prepare`: plan units, extract them in parallel (phase 1, resumable per unit),
assemble shards (phase 2), publish atomically.

Work directory OUT/.work holds the spills and the run's fingerprint. The published output is
OUT/train, OUT/validation, OUT/dataset_dict.json and, written last, OUT/manifest.json
(`data_prep.shard_format`): a directory without a manifest is incomplete and is replaced by the
next run.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from data_prep.assemble import assemble, kept_hashes, validation_threshold
from data_prep.audit import SAMPLES, write_samples
from data_prep.clean import CleanOptions
from data_prep.dedup import DOC_HASH
from data_prep.extract import CPU_SECONDS, ExtractJob, die_with_parent, extract_unit, load_kernels, uses_kernels
from data_prep.inputs import InputError, InputSpec, check_text_field, file_identity, plan_units, select_split
from data_prep.manifest import source_counts, sum_counts, summary_table, versions
from data_prep.minhash import NearDedupOptions
from data_prep.near_dedup import near_duplicates
from data_prep.pack import PackOptions, default_window
from data_prep.problems import Problems
from data_prep.progress import Progress
from data_prep.readers import ReadOptions, Unit
from data_prep.shard_format import (FORMAT_VERSION, MANIFEST, SPLITS, VALIDATION, ShardFormatError, check_shards,
                                    load_manifest, publish, split_summary)
from data_prep.spill import load_meta
from data_prep.validation_size import T5_NOISE_DENSITY, applies_minimum, small_validation_warning

log = logging.getLogger("data_prep")
WORK = ".work"


@dataclass(frozen=True)
class PrepareConfig:
    inputs: list[InputSpec]
    output: Path
    format: str | None = None
    read: ReadOptions = field(default_factory=ReadOptions)
    clean: CleanOptions = field(default_factory=CleanOptions)
    pack: PackOptions = field(default_factory=PackOptions)
    near: NearDedupOptions = field(default_factory=NearDedupOptions)
    workers: int = 1
    num_splits: int = 1
    split_index: int = 0
    unit_bytes: int = 16 << 20
    strict: bool = False
    overwrite: bool = False
    keep_work: bool = False
    command: list[str] = field(default_factory=list)

    @property
    def keeps_work(self) -> bool:
        """--keep-work, or a share of a --num-splits --near-dedup run, whose merge clusters all shares."""
        return self.keep_work or (self.near.enabled and self.num_splits > 1)


class OutputConflict(RuntimeError):
    pass


class WorkerDied(RuntimeError):
    """A worker process ended without a result: the run stops, resumable, with one line saying so."""


def fingerprint(config: PrepareConfig, units: list[Unit]) -> str:
    """Hash of everything that decides the output, each input file's identity included (size,
    mtime, sampled content): a rerun resumes only if it matches."""
    decisive = {"read": asdict(config.read), "clean": asdict(config.clean),
                "pack": {**asdict(config.pack), "separator": config.pack.separator.hex()},
                "splits": [config.num_splits, config.split_index], "units": [asdict(u) for u in units],
                "files": {path: file_identity(path) for path in sorted({u.path for u in units})},
                "doc_hash": DOC_HASH}  # the spills' hashes: a work dir of another version's is not resumed
    if config.near.enabled:  # absent when off, so runs from before near-dedup existed still resume
        decisive["near"] = asdict(config.near)
    return hashlib.sha256(json.dumps(decisive, sort_keys=True).encode()).hexdigest()


def prepare(config: PrepareConfig) -> int:
    """Run the whole job; return the process exit code."""
    problems = Problems()
    listing: dict[str, Counter] = {}  # per source: problems found while listing its files
    units = select_split(plan_units(config.inputs, config.format, config.read.text_mode, config.unit_bytes, problems,
                                    per_source=listing), config.num_splits, config.split_index)
    if not units:
        raise InputError("no input units to process (empty inputs or split)")
    check_text_field(units, config.read)
    key = fingerprint(config, units)
    out, work = config.output, config.output / WORK
    if _already_done(out, key, config.overwrite):
        log.info("%s is already complete for this command; nothing to do", out)
        if not config.keeps_work:
            shutil.rmtree(work, ignore_errors=True)
        return 0
    _claim_work_dir(work, key, config.overwrite)
    stage = work / "stage"
    shutil.rmtree(stage, ignore_errors=True)
    metas: dict[int, dict] = {}
    ready = _extract(units, config, work, metas)
    input_bytes = sum(u.size for u in units)
    pack = config.pack
    if config.strict or pack.val_docs is not None or config.near.enabled or \
            applies_minimum(pack, input_bytes):
        # every unit first: --strict checks for problems, --val-docs and --min-val-docs need every
        # hash, near-dedup every signature
        ready = iter(list(ready))
    if config.strict:
        found = problems.total + sum(sum(meta["problems"].values()) for meta in metas.values())
        if found:
            log.error("--strict: %d input problem(s); no output written. The extracted units are kept in %s, "
                      "so a rerun resumes.", found, work)
            return 2
    near_drop, near_stats = near_duplicates(units, metas, work) if config.near.enabled else (None, None)
    threshold = validation_threshold(pack, lambda: kept_hashes(units, work, near_drop), input_bytes)
    shards, assembled = assemble(ready, work, stage, config.pack, threshold, near_drop)
    ordered = [metas[u.index] for u in units]
    for meta in ordered:
        problems.add_counts(meta["problems"])
    manifest = _manifest(config, units, key, ordered, problems, shards, assembled, listing)
    if config.clean.keep_samples:
        count = write_samples(out, ordered, config.clean.keep_samples)
        manifest["samples"] = {"file": SAMPLES, "per_step": config.clean.keep_samples, "count": count}
    else:
        (out / SAMPLES).unlink(missing_ok=True)
    if near_stats is not None:
        manifest["near_dedup"] = {**asdict(config.near), "bands": config.near.bands_rows[0],
                                  "rows": config.near.bands_rows[1], **near_stats}
    publish(out, stage, manifest)
    if config.keeps_work:
        log.info("kept %s%s", work, " for `data_prep merge` (near-dedup across the parts)" if not config.keep_work else "")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(summary_table(manifest), file=sys.stderr)
    _warn_if_small_validation(manifest["splits"][VALIDATION])
    return 0


def _warn_if_small_validation(split: dict) -> None:
    targets = round(split["bytes"] * T5_NOISE_DENSITY)
    warning = small_validation_warning(targets, f"the validation split ({split['rows']} chunks, {split['bytes']:,} bytes)",
                                       "hold out more with --val-fraction, --val-docs or --min-val-docs")
    if warning:
        log.warning("%s", warning)


def _already_done(out: Path, key: str, overwrite: bool) -> bool:
    manifest_path = out / MANIFEST
    if not manifest_path.exists():
        return False
    try:
        manifest = load_manifest(out)
        check_shards(out, manifest)
    except ShardFormatError as err:
        if not overwrite:
            raise OutputConflict(f"{out} holds a damaged or unreadable dataset ({err}); pass --overwrite to "
                                 "replace it or choose another output directory") from None
        manifest = {}
    if manifest.get("fingerprint") == key:
        return not overwrite
    if not overwrite:
        raise OutputConflict(f"{out} already holds a dataset made by a different command or inputs (or data_prep "
                             "version); pass --overwrite to replace it or choose another output directory")
    manifest_path.unlink()
    return False


def _claim_work_dir(work: Path, key: str, overwrite: bool) -> None:
    stamp = work / "fingerprint"
    if stamp.exists() and stamp.read_text().strip() != key:
        if not overwrite:
            raise OutputConflict(f"{work} holds an unfinished run of a different command or inputs (or data_prep "
                                 "version); rerun that command to resume it, or pass --overwrite to discard it")
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    for tmp in work.glob("*.tmp"):  # left by a killed run
        tmp.unlink()
    stamp.write_text(key + "\n")


def _extract(units: list[Unit], config: PrepareConfig, work: Path, metas: dict[int, dict]) -> Iterator[Unit]:
    """Yield the units in order as their spills become available (already done ones at once),
    recording each unit's counts in `metas`."""
    done = {u.index: meta for u in units if (meta := load_meta(work, u.index)) is not None}
    pending = [ExtractJob(u, config.read, config.clean, work, config.near) for u in units if u.index not in done]
    if done:
        log.info("resuming: %d of %d units already extracted", len(done), len(units))
    progress = Progress(sum(u.size for u in units), "prepare")
    if pending and uses_kernels(config.clean, config.near):  # numba, only for a run whose steps are compiled
        load_kernels([job.unit for job in pending], config.clean, config.near)
    with contextlib.ExitStack() as stack:
        if config.workers > 1 and len(pending) > 1:
            # An executor, not a multiprocessing.Pool: a Pool replaces a worker that died (killed for
            # lack of memory, crashed in a C extension) and waits forever for its unit's result.
            pool = ProcessPoolExecutor(config.workers, multiprocessing.get_context("fork"),
                                       initializer=die_with_parent, initargs=(os.getpid(),))
            stack.callback(pool.shutdown, wait=False, cancel_futures=True)
            results = pool.map(extract_unit, pending)
        else:
            results = map(extract_unit, pending)
        for unit in units:
            try:
                meta = done.get(unit.index) or next(results)
            except BrokenProcessPool:
                raise WorkerDied(f"a worker process died (killed, e.g. for lack of memory, or crashed) while "
                                 f"extracting {unit.name} or a unit after it; the units extracted before are kept "
                                 f"in {work}, so a rerun resumes (try fewer --workers, or a smaller "
                                 "--max-doc-bytes)") from None
            metas[unit.index] = meta
            progress.update(meta["bytes_in"], meta["docs_read"])
            yield unit
    progress.close()
    _log_worker_rate([metas[u.index] for u in units if u.index not in done])


def _log_worker_rate(extracted: list[dict]) -> None:
    """The workers' own rate, the one that scales with --workers: input MB per CPU second of
    extraction, without the run's start-up and the serial clustering and assembly."""
    seconds = sum(meta[CPU_SECONDS] for meta in extracted)
    if extracted and seconds > 0:
        megabytes = sum(meta["bytes_in"] for meta in extracted) / 1e6
        log.info("extraction: %.1f MB in %.2f worker CPU s, %.1f MB/s per worker", megabytes, seconds,
                 megabytes / seconds)


def _manifest(config: PrepareConfig, units: list[Unit], key: str, metas: list[dict], problems: Problems,
              shards: dict, assembled: dict, listing: dict[str, Counter]) -> dict:
    samples = problems.samples + [s for meta in metas for s in meta["problem_samples"]]
    sources = source_counts(metas, assembled, listing)
    return {
        "format_version": FORMAT_VERSION,
        "chunk_bytes": config.pack.chunk_bytes,
        "cut_window": default_window(config.pack.chunk_bytes) if config.pack.cut_window is None
        else config.pack.cut_window,
        "separator": config.pack.separator.decode("utf-8"),
        "command": config.command,
        "versions": versions(),
        "fingerprint": key,
        "doc_hash": DOC_HASH,
        "num_splits": config.num_splits,
        "split_index": config.split_index,
        "options": {"read": asdict(config.read), "clean": asdict(config.clean),
                    "val_fraction": config.pack.val_fraction, "val_docs": config.pack.val_docs,
                    "min_val_docs": config.pack.min_val_docs,
                    "shard_rows": config.pack.shard_rows},
        "inputs": [{"path": u.path, "member": u.member, "range": None if u.start is None else [u.start, u.end],
                    "source": u.source, "format": u.fmt, "bytes": u.size} for u in units],
        "sources": sources,
        "dropped": sum_counts([entry["dropped"] for entry in sources.values()]),
        "edits": sum_counts([entry["edits"] for entry in sources.values()]),
        "problems": dict(sorted(problems.counts.items())),
        "problem_samples": samples[:200],
        "splits": {split: split_summary(shards[split]) for split in SPLITS},
    }

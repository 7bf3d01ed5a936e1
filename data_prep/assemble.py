"""Phase 2, in the main process: dedup, validation draw, packing and shard writing, in unit order.

It reads only the spills (several workers' worth: README, Measured figures), overlapping the workers'
extraction, and simply restarts from the spills if killed: its output is a pure function of the
spills.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np

from data_prep.dedup import HashSet, first_occurrences
from data_prep.pack import Chunks, Packer, PackOptions
from data_prep.readers import Unit
from data_prep.shard_format import SPLITS, TRAIN, VALIDATION
from data_prep.shards import ShardWriter
from data_prep.spill import iter_doc_batches, load_index
from data_prep.stats import PackStats
from data_prep.validation_size import applies_minimum, minimum_threshold

# The document forced into validation (see `validation_threshold`) is one of at most this many
# chunks: one giant document must not become the whole validation split.
_FORCED_DOC_MAX_CHUNKS = 64


def validation_threshold(options: PackOptions, kept_hashes: Callable[[], np.ndarray], input_bytes: int = 0) -> int:
    """Documents whose hash is below the threshold go to validation. The hash decides, so the draw
    is the same whatever the workers, and duplicates can never straddle the two splits.
    --val-docs needs every kept hash first (`kept_hashes`), --val-fraction does not (so packing can
    overlap extraction) unless a small corpus's draw is topped up to `min_val_docs` documents
    (`applies_minimum`); with --val-fraction > 0, `assemble` also sends the smallest-hash document
    of the first unit with an ordinary-sized one (_FORCED_DOC_MAX_CHUNKS) to validation, so that a
    small corpus still gets a validation split."""
    if options.val_docs is None:
        threshold = min(int(options.val_fraction * 2**64), 2**64)
        if applies_minimum(options, input_bytes):
            threshold = max(threshold, minimum_threshold(kept_hashes(), options.min_val_docs))
        return threshold
    kept = kept_hashes()
    if options.val_docs >= len(kept):
        return 2**64
    return int(np.partition(kept, options.val_docs)[options.val_docs]) if options.val_docs else 0


def kept_hashes(units: list[Unit], workdir: Path, near_drop: Mapping[int, np.ndarray] | None = None) -> np.ndarray:
    """Hashes of every document dedup keeps, across all (already extracted) units."""
    seen = HashSet()
    kept = []
    for unit in units:
        hashes = load_index(workdir, unit.index)[1]
        keep = first_occurrences(hashes, seen)
        kept.append(hashes[keep & ~near_drop[unit.index]] if near_drop is not None else hashes[keep])
    return np.concatenate(kept) if kept else np.zeros(0, np.uint64)


def assemble(ready: Iterable[Unit], workdir: Path, stage: Path, options: PackOptions,
             threshold: int, near_drop: Mapping[int, np.ndarray] | None = None) -> tuple[dict, dict[str, PackStats]]:
    """Write both splits under `stage` from the units in `ready` (in unit order; each is yielded
    once its spill exists, so packing overlaps extraction); return (shard lists, per-source counts).
    `near_drop` (unit index -> flags) removes near-duplicates; an exact duplicate counts as such."""
    seen = HashSet()
    need_validation_doc = options.val_docs is None and options.val_fraction > 0
    writers = {split: ShardWriter(stage / split, options.shard_rows) for split in SPLITS}
    packers: dict[tuple[str, str], Packer] = {}
    stats: dict[str, PackStats] = defaultdict(PackStats)
    for unit in ready:
        lengths, hashes = load_index(workdir, unit.index)
        keep = first_occurrences(hashes, seen)
        source = stats[unit.source]
        source.duplicate += int((~keep).sum())
        if near_drop is not None:
            near = near_drop[unit.index]
            source.near_duplicate += int((keep & near).sum())
            keep &= ~near
        ordinary = keep & (lengths <= _FORCED_DOC_MAX_CHUNKS * options.chunk_bytes)
        to_validation = _validation_mask(hashes, ordinary, threshold, need_validation_doc)
        need_validation_doc &= not ordinary.any()
        for first, docs in iter_doc_batches(workdir, unit.index, lengths):
            in_batch = slice(first, first + len(docs))
            for split, mask in ((TRAIN, keep[in_batch] & ~to_validation[in_batch]),
                                (VALIDATION, keep[in_batch] & to_validation[in_batch])):
                chosen = [doc for doc, take in zip(docs, mask.tolist()) if take]
                if not chosen:
                    continue
                source.docs.add(split, len(chosen))
                packer = packers.get((split, unit.source))
                if packer is None:
                    packer = Packer(options.chunk_bytes, options.cut_window, options.separator)
                    packers[split, unit.source] = packer
                _emit(writers[split], packer.feed(chosen), unit.source, source, split)
    for (split, name), packer in sorted(packers.items()):
        _emit(writers[split], packer.finish(), name, stats[name], split)
        writers[split].end_shard()  # the short last chunk of a source ends its shard
    return {split: writers[split].finish() for split in SPLITS}, stats


def _validation_mask(hashes: np.ndarray, eligible: np.ndarray, threshold: int, force_one: bool) -> np.ndarray:
    """Which documents of a unit go to validation; `force_one` adds the eligible one with the smallest hash."""
    mask = (hashes < np.uint64(threshold)) if threshold < 2**64 else np.ones(len(hashes), bool)
    if force_one and eligible.any():
        mask[np.flatnonzero(eligible)[np.argmin(hashes[eligible])]] = True
    return mask


def _emit(writer: ShardWriter, chunks: Chunks, source: str, stats: PackStats, split: str) -> None:
    if len(chunks):
        writer.add(chunks, source)
        stats.chunks.add(split, len(chunks))
        stats.bytes_out += chunks.nbytes

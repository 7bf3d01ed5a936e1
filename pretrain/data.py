"""The training data stream: memory-mapped Arrow shards -> mixed, shuffled, span-corrupted batches.

Batch k of a rank is a pure function of (seed, k, rank, world_size): every shuffle is a keyed
permutation evaluated on demand (`pretrain.randomness`), so resuming is restoring k, and
DataLoader workers can each compute every num_workers-th batch exactly.

Sample layout of epoch e (E samples, a multiple of the global batch B * W):
  slot t in [0, E) -> u = perm_e(t) -> source directory d and occurrence m of that directory
  (directory d owns c_d consecutive values of u, c_d ~ weight_d * E) -> a row of the
  directory's own sequence of shuffled passes over its rows (see ShardStream._pass_position).
Rank r's batch j of the epoch takes slots [(j * W + r) * B, (j * W + r + 1) * B), so the ranks
split every global step and the global sequence depends only on B * W.
"""
from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from data_prep.shard_format import TRAIN, VALIDATION, Shard, load_manifest, read_split
from pretrain.collator import SpanCorruptionCollator, pad_rows, to_tensors
from pretrain.mixture import mixing_counts
from pretrain.randomness import MIX_STREAM, PASS_STREAM, VALIDATION_STREAM, permute, stream_key

STATE_VERSION = 1
PLAN_WINDOW = 64  # batches planned per call


class ShardIndex:
    """One split of one or more shard directories, memory-mapped, addressed by (directory, row).

    Rows are read straight from the mapped files: the `chunk` column's offsets and data buffers
    are located inside each file once, so fetching rows is index arithmetic plus one gather per
    file touched.
    """

    def __init__(self, dirs: Sequence[str | os.PathLike], split: str) -> None:
        self.dirs = [Path(d) for d in dirs]
        self.split = split
        manifests = [load_manifest(d) for d in self.dirs]
        self.chunk_bytes = [m["chunk_bytes"] for m in manifests]
        self._bytes: list[np.ndarray] = []  # per file: the mapped file as uint8
        self._offsets: list[np.ndarray] = []  # per file: the same mapping as the offsets' integer type
        batches: list[tuple[int, int, int, int]] = []  # (rows, file, first offset element, data byte position)
        self.rows = []
        for directory, manifest in zip(self.dirs, manifests):
            before = len(batches)
            for shard in read_split(directory, split, manifest):  # checked against the manifest
                batches += self._map_shard(shard)
            self.rows.append(sum(b[0] for b in batches[before:]))
        counts = np.array([b[0] for b in batches], dtype=np.int64)
        self._first_row = np.concatenate([[0], np.cumsum(counts)])
        self._file = np.array([b[1] for b in batches], dtype=np.int64)
        self._offset_pos = np.array([b[2] for b in batches], dtype=np.int64)
        self._data_pos = np.array([b[3] for b in batches], dtype=np.int64)
        self.dir_first_row = np.concatenate([[0], np.cumsum(self.rows)]).astype(np.int64)

    def _map_shard(self, shard: Shard) -> list[tuple[int, int, int, int]]:
        file_index = len(self._bytes)
        buffer = shard.buffer
        offset_type = np.int32 if shard.table.schema.field("chunk").type == pa.binary() else np.int64
        width = np.dtype(offset_type).itemsize
        self._bytes.append(np.frombuffer(buffer, dtype=np.uint8))
        self._offsets.append(np.frombuffer(buffer, dtype=offset_type, count=buffer.size // width))
        batches = []
        for array in shard.table.column("chunk").chunks:
            if len(array) == 0:
                continue
            _, offsets, data = array.buffers()
            offset_byte = offsets.address - buffer.address
            if offset_byte % width:
                raise ValueError(f"{shard.path}: misaligned offsets buffer in the Arrow stream")
            batches.append((len(array), file_index, offset_byte // width + array.offset, data.address - buffer.address))
        return batches

    @property
    def total_rows(self) -> int:
        return int(self.dir_first_row[-1])

    def gather(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Chunks at these global row numbers (directory-major) as a zero-padded uint8 array + lengths."""
        rows = np.asarray(rows, dtype=np.int64)
        batch = np.searchsorted(self._first_row, rows, side="right") - 1
        element = self._offset_pos[batch] + rows - self._first_row[batch]
        file = self._file[batch]
        order = np.argsort(file, kind="stable")  # rows grouped by file
        touched, first = np.unique(file[order], return_index=True)
        bounds = [*first, len(rows)]
        starts = np.empty(len(rows), dtype=np.int64)
        lengths = np.empty(len(rows), dtype=np.int64)
        for i, f in enumerate(touched):  # one vectorised step per file, not per row
            sel = order[bounds[i] : bounds[i + 1]]
            begin = self._offsets[f][element[sel]]
            starts[sel] = begin
            lengths[sel] = self._offsets[f][element[sel] + 1] - begin
        starts += self._data_pos[batch]
        byte_bounds = np.concatenate([[0], np.cumsum(lengths[order])])[bounds]
        flat_index = _ranges(starts[order], lengths[order])
        flat = np.concatenate([self._bytes[f].take(flat_index[byte_bounds[i] : byte_bounds[i + 1]])
                               for i, f in enumerate(touched)]) if len(rows) else np.zeros(0, np.uint8)
        raw = np.empty((len(rows), int(lengths.max(initial=0))), dtype=np.uint8)
        raw[order] = pad_rows(flat, lengths[order])
        return raw, lengths


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(start, start + length) for each pair, without a Python loop."""
    ends = np.cumsum(lengths)
    return np.repeat(starts - (ends - lengths), lengths) + np.arange(ends[-1] if len(ends) else 0)


class ShardStream(IterableDataset):
    """Endless stream of collated batches for one rank of a (possibly distributed) run."""

    def __init__(self, dirs: Sequence[str | os.PathLike], *, batch_size: int, collator: SpanCorruptionCollator,
                 split: str = TRAIN, seed: int = 0, rank: int = 0, world_size: int = 1,
                 weights: Sequence[float] | None = None, temperature_alpha: float | None = None,
                 num_workers: int = 0) -> None:
        if isinstance(dirs, (str, os.PathLike)):
            dirs = [dirs]
        if not dirs:
            raise ValueError("ShardStream needs at least one shard directory")
        if batch_size < 1 or world_size < 1 or not 0 <= rank < world_size or num_workers < 0:
            raise ValueError(f"bad batch_size={batch_size}, rank={rank}, world_size={world_size}, num_workers={num_workers}")
        self.dirs = [str(d) for d in dirs]
        self.batch_size, self.collator, self.split, self.seed = batch_size, collator, split, seed
        self.rank, self.world_size, self.num_workers = rank, world_size, num_workers
        self._index: ShardIndex | None = ShardIndex(self.dirs, split)
        collator.check_lengths([max(self._index.chunk_bytes)])
        global_batch = batch_size * world_size
        self.epoch_samples = self._index.total_rows // global_batch * global_batch
        if self.epoch_samples == 0:
            raise ValueError(f"{split} split of {self.dirs} has {self._index.total_rows} rows, fewer than one "
                             f"global batch ({batch_size} x {world_size} ranks)")
        self.rows = [int(n) for n in self._index.rows]
        self.counts = mixing_counts(self.rows, self.epoch_samples, weights, temperature_alpha)
        self._count_starts = np.concatenate([[0], np.cumsum(self.counts)[:-1]])
        self.batches_per_epoch = self.epoch_samples // global_batch
        self._batches = 0
        self._plan_window = -1

    @property
    def index(self) -> ShardIndex:
        if self._index is None:  # reopened after pickling (spawned DataLoader workers)
            self._index = ShardIndex(self.dirs, self.split)
        return self._index

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_index": None}

    @property
    def epoch(self) -> int:
        """Epoch of the next batch."""
        return self._batches // self.batches_per_epoch

    def sample_plan(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(global rows, sample ids) of batch k on this rank."""
        window, i = divmod(k, PLAN_WINDOW)
        if self._plan_window != window:  # planning many batches per call amortises NumPy overhead
            self._plan_window = window
            self._plan_rows, self._plan_ids = self._plan(np.arange(window * PLAN_WINDOW, (window + 1) * PLAN_WINDOW))
        return self._plan_rows[i], self._plan_ids[i]

    def _plan(self, ks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rows, sample ids), each (len(ks), batch_size), of batches ks on this rank."""
        epoch, step = np.divmod(ks, self.batches_per_epoch)
        slots = ((step * self.world_size + self.rank) * self.batch_size)[:, None] + np.arange(self.batch_size)
        epoch = np.broadcast_to(epoch[:, None], slots.shape)
        drawn = permute(slots, self.epoch_samples, stream_key(self.seed, MIX_STREAM, epoch))
        source = np.searchsorted(self._count_starts, drawn, side="right") - 1
        occurrence = drawn - self._count_starts[source]
        rows = np.empty_like(occurrence)
        for d in np.unique(source):
            sel = source == d
            passes, within = self._pass_position(d, epoch[sel], occurrence[sel])
            rows[sel] = self.index.dir_first_row[d] + permute(within, self.rows[d], stream_key(self.seed, PASS_STREAM, d, passes))
        return rows, epoch * self.epoch_samples + slots

    def _pass_position(self, d: int, epoch: np.ndarray, occurrence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(pass, position in that pass) over directory d's rows for its occurrences in these epochs.

        A directory drawn at most once per row per epoch uses disjoint windows of one pass for
        consecutive epochs (no row twice in an epoch; the pass's remainder is skipped); one
        drawn more often walks through back-to-back passes.
        """
        count, rows = int(self.counts[d]), self.rows[d]
        if count <= rows:
            windows = rows // count
            return epoch // windows, (epoch % windows) * count + occurrence
        return np.divmod(epoch * count + occurrence, rows)

    def batch(self, k: int) -> dict[str, torch.Tensor]:
        """Batch k of this rank (a pure function of seed, k, rank and world size)."""
        return to_tensors(self.arrays(k))

    def arrays(self, k: int) -> dict[str, np.ndarray]:
        """Batch k as NumPy arrays."""
        rows, sample_ids = self.sample_plan(k)
        raw, lengths = self.index.gather(rows)
        return self.collator.corrupt_padded(raw, lengths, sample_ids)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        worker = get_worker_info()
        if worker is not None:  # inside a DataLoader worker: every num_workers-th batch, in order
            yield from map(self._worker_batch, itertools.count(self._batches + worker.id, worker.num_workers))
            return
        if self.num_workers:
            # DataLoader takes batches from its workers round-robin, so the order is unchanged.
            # Workers send NumPy arrays (one pickled copy through the pipe), which is several times
            # faster than torch's per-tensor shared-memory handover (bench/bench_collator.py).
            loader = DataLoader(self, batch_size=None, num_workers=self.num_workers, collate_fn=_unchanged)
            batches = map(to_tensors, loader)
        else:
            batches = map(self.batch, itertools.count(self._batches))
        for batch in batches:
            self._batches += 1  # counted when handed out: a checkpoint after it resumes after it
            yield batch

    def _worker_batch(self, k: int) -> dict[str, torch.Tensor] | dict[str, np.ndarray]:
        """What a DataLoader worker hands over: arrays for the stream's own loader, else tensors."""
        return self.arrays(k) if self.num_workers else self.batch(k)

    def state_dict(self) -> dict:
        """JSON-serialisable position; restoring it continues the exact batch sequence."""
        return {"version": STATE_VERSION, "batches": self._batches, "seed": self.seed,
                "global_batch": self.batch_size * self.world_size, "rows": self.rows,
                "counts": [int(c) for c in self.counts]}

    def load_state_dict(self, state: dict) -> None:
        """Continue after state["batches"] batches; any world size with the same global batch works."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"stream state version {state.get('version')!r}, expected {STATE_VERSION}")
        mine = self.state_dict()
        for field in ("seed", "global_batch", "rows", "counts"):
            if state.get(field) != mine[field]:
                raise ValueError(f"stream state was saved with {field}={state.get(field)!r}, this stream has "
                                 f"{mine[field]!r}; the batch sequence would differ")
        self._batches = int(state["batches"])


def _unchanged(batch: dict) -> dict:
    """DataLoader collate_fn that leaves the worker's NumPy batch as it is."""
    return batch


def validation_batches(dirs: Sequence[str | os.PathLike], *, batch_size: int, collator: SpanCorruptionCollator,
                       rank: int = 0, world_size: int = 1, max_batches: int | None = None) -> list[dict[str, torch.Tensor]]:
    """The held-out split as batches: the same at every call, a disjoint equal-sized share per rank.

    Rows are shuffled once by a fixed key (so max_batches keeps a mix of all directories); the
    rows left over after an equal split between ranks are not used. A row's corruption depends
    only on the collator seed and its row number, not on the world size.
    """
    if isinstance(dirs, (str, os.PathLike)):
        dirs = [dirs]
    index = ShardIndex(dirs, VALIDATION)
    collator.check_lengths([max(index.chunk_bytes)])
    total = index.total_rows
    per_rank = total // world_size
    order = permute(np.arange(rank, per_rank * world_size, world_size), total, stream_key(0, VALIDATION_STREAM))
    count = math.ceil(per_rank / batch_size)
    if max_batches is not None:
        count = min(count, max_batches)
    out = []
    for start in range(0, count * batch_size, batch_size):
        rows = order[start : start + batch_size]
        raw, lengths = index.gather(rows)
        out.append(collator.collate_padded(raw, lengths, rows))
    return out

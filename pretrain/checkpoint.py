"""Training checkpoints: save through the DeepSpeed engine, keep the last K, resume with fallback.

Layout under the run directory::

    checkpoints/latest                  # written by DeepSpeed: the newest tag
    checkpoints/global_step{N}/         # DeepSpeed's model/optimizer files for step N
    checkpoints/global_step{N}/complete.json   # ours: step, config hash, ranks, size and checksum of every file

``complete.json`` is written last, after every rank has finished saving, so a checkpoint without
it (a kill during the save) or whose files no longer have the recorded sizes (truncation, a
missing partition) or checksums (bit flips) is damaged; resumption then falls back to the
previous one with a warning. Sizes are checked wherever a checkpoint is looked at, checksums
(a read of every file) only where one is about to be loaded.
"""
from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from deepspeed.accelerator import get_accelerator

from data_prep.atomic import write_json
from pretrain import checkpoint_engine
from pretrain.checkpoint_engine import CHECKSUM, UnsafeCheckpointError, file_checksum
from pretrain.config import CheckpointSettings

LOG = logging.getLogger(__name__)
CHECKPOINT_DIR = "checkpoints"  # under the run directory
MARKER = "complete.json"
_TAG = re.compile(r"^global_step(\d+)$")
# ZeRO partition files: zero_pp_rank_{data-parallel rank}_mp_rank_{model-parallel rank}_...
_PARTITION = re.compile(r"zero_pp_rank_(\d+)_mp_rank_\d+_(?:optim|model)_states\.pt$")


class ResumeError(RuntimeError):
    """The output directory's checkpoints cannot continue with this configuration."""


def tag_for(step: int) -> str:
    return f"global_step{step}"


def rng_state() -> dict:
    """Python, NumPy and torch RNG states of this process, JSON-serialisable."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [version, list(internal), gauss],
        "numpy": [name, keys.tolist(), pos, has_gauss, cached],
        "torch": torch.get_rng_state().tolist(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state().tolist()
    return state


def set_rng_state(state: dict) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(torch.tensor(state["cuda"], dtype=torch.uint8))


def list_tags(ckpt_dir: Path) -> list[tuple[int, str]]:
    """(step, tag) of every checkpoint directory, newest first."""
    if not ckpt_dir.is_dir():
        return []
    found = [(int(m.group(1)), p.name) for p in ckpt_dir.iterdir() if p.is_dir() and (m := _TAG.match(p.name))]
    return sorted(found, reverse=True)


def _file_sizes(directory: Path) -> dict[str, int]:
    # The marker and its temporary copies (another node may be writing one; data_prep.atomic names
    # them MARKER.<pid>.tmp) are not checkpoint files.
    return {
        str(p.relative_to(directory)): p.stat().st_size
        for p in sorted(directory.rglob("*")) if p.is_file() and not p.name.startswith(MARKER)
    }


def _read_marker(directory: Path) -> tuple[dict | None, str | None]:
    """(the checkpoint's complete.json, None) or (None, why it cannot be used)."""
    try:
        return json.loads((directory / MARKER).read_text(encoding="utf-8")), None
    except FileNotFoundError:
        return None, f"{directory} has no {MARKER} (the save did not finish)"
    except json.JSONDecodeError:
        return None, f"{directory / MARKER} is not valid JSON"


def _local_share(names: list[str]) -> list[str]:
    """This rank's part of a node's work: each local rank takes every LOCAL_WORLD_SIZE-th name
    (torchrun sets it; DeepSpeed's launcher sets LOCAL_SIZE). Unknown: all of them."""
    size = int(os.environ.get("LOCAL_WORLD_SIZE") or os.environ.get("LOCAL_SIZE") or 1)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    return names[local::size] if local < size else names


def damage(ckpt_dir: Path, tag: str, *, verify_checksums: bool = False) -> str | None:
    """Why the checkpoint `tag` cannot be trusted, or None when it looks complete.

    With `verify_checksums`, this rank also reads its local share of the files (all of them in a
    single process) and compares their recorded checksums, if the marker has them.
    """
    directory = ckpt_dir / tag
    marker, problem = _read_marker(directory)
    if marker is None:
        return problem
    sizes = _file_sizes(directory)
    for name, size in marker["files"].items():
        if name not in sizes:
            return f"{directory / name} is missing"
        if sizes[name] != size:
            return f"{directory / name} has {sizes[name]} bytes, {size} were written"
    recorded = marker.get(CHECKSUM, {}) if verify_checksums else {}
    for name in _local_share(sorted(recorded)):
        if file_checksum(directory / name) != recorded[name]:
            return f"{directory / name} does not match the {CHECKSUM} checksum recorded when it was written"
    return None


def written_world_size(ckpt_dir: Path, tag: str) -> int | None:
    """How many ranks wrote checkpoint `tag`: recorded in complete.json, else (older markers)
    the number of ZeRO partitions; None when neither tells (ZeRO-0 without bf16)."""
    marker, _ = _read_marker(ckpt_dir / tag)
    if marker is None:
        return None
    if "world_size" in marker:
        return marker["world_size"]
    ranks = {int(m.group(1)) for name in marker["files"] if (m := _PARTITION.search(name))}
    return max(ranks) + 1 if ranks else None


def _keeps_the_books(engine: Any) -> bool:
    """Whether this rank marks and prunes: rank 0 in the one shared checkpoint directory; each
    node's first rank with DeepSpeed's `checkpoint.use_node_local_storage` (a disk per node)."""
    if engine.use_node_local_storage():
        return int(os.environ.get("LOCAL_RANK", "0")) == 0
    return dist.get_rank() == 0


def _checksums(directory: Path, written: dict[str, str]) -> dict[str, str]:
    """Checksum of every file of the checkpoint: as hashed while written (by any rank), else
    (files DeepSpeed copies in, not through its engine) read now."""
    return {name: written.get(os.path.abspath(directory / name)) or file_checksum(directory / name)
            for name in _file_sizes(directory)}


def save(engine: Any, ckpt_dir: Path, step: int, client_state: dict, settings: CheckpointSettings) -> str:
    """Save on every rank (DeepSpeed needs all of them), then mark complete and prune old ones
    (`settings.keep_last`); with `settings.checksums` the marker has every file's checksum."""
    files = checkpoint_engine.install(engine, checksums=settings.checksums)
    tag = tag_for(step)
    books = _keeps_the_books(engine)
    if books:
        # A step saved again (after a fallback) must not look complete while it is being rewritten.
        (ckpt_dir / tag / MARKER).unlink(missing_ok=True)
    dist.barrier()
    engine.save_checkpoint(str(ckpt_dir), tag=tag, client_state=client_state)
    written: list[dict[str, str]] = [{}] * dist.get_world_size()
    dist.all_gather_object(written, files.take_written())  # also the barrier: every rank has saved
    if books:
        directory = ckpt_dir / tag
        marker = {"step": step, "config_hash": client_state.get("config_hash"), "world_size": dist.get_world_size(),
                  "files": _file_sizes(directory)}
        if settings.checksums:
            marker[CHECKSUM] = _checksums(directory, {k: v for w in written for k, v in w.items()})
        write_json(directory / MARKER, marker)
        prune(ckpt_dir, step, settings.keep_last)
    dist.barrier()
    return tag


def prune(ckpt_dir: Path, step: int, keep_last: int) -> None:
    """Keep the newest `keep_last` complete checkpoints up to `step` (the one just saved).

    Damaged checkpoints never take a place among the kept ones. Those after `step` are left over
    from before a fallback (this run rewrites that history) and go, damaged or not, as do damaged
    ones before it, which can never be resumed.
    """
    kept = 0
    for tag_step, tag in list_tags(ckpt_dir):
        usable = tag_step <= step and damage(ckpt_dir, tag) is None
        if usable and kept < keep_last:
            kept += 1
        else:
            shutil.rmtree(ckpt_dir / tag, ignore_errors=True)


def _all_reduce_int(number: int, op: dist.ReduceOp) -> int:
    # on the accelerator: NCCL reduces device tensors only
    value = torch.tensor([number], dtype=torch.int64, device=get_accelerator().current_device_name())
    dist.all_reduce(value, op=op)
    return int(value.item())


def _all_reduce_flag(flag: bool, op: dist.ReduceOp) -> bool:
    return bool(_all_reduce_int(1 if flag else 0, op))


def _agreed(flag: bool) -> bool:
    """True only when `flag` holds on every rank."""
    return _all_reduce_flag(flag, dist.ReduceOp.MIN)


def resumable(ckpt_dir: Path) -> bool:
    """Whether some rank sees a complete checkpoint to resume from (collective).

    With none, e.g. after a kill during the very first save, the run starts afresh. If only some
    ranks see one, the run still resumes, and `load_latest` then fails loudly instead of a new run
    pruning the checkpoints that other nodes still hold.
    """
    found = any(damage(ckpt_dir, tag) is None for _, tag in list_tags(ckpt_dir))
    return _all_reduce_flag(found, dist.ReduceOp.MAX)


def _first_problem(problem: str | None) -> str | None:
    """The lowest rank's problem, on every rank (collective): all ranks decide alike."""
    problems: list[str | None] = [None] * dist.get_world_size()
    dist.all_gather_object(problems, problem)
    return next((p for p in problems if p), None)


def _world_size_mismatch(ckpt_dir: Path, tag: str) -> str | None:
    written, world = written_world_size(ckpt_dir, tag), dist.get_world_size()
    if written is None or written == world:
        return None
    ranks = f"{written} rank" + ("s" if written > 1 else "")
    return (f"{ckpt_dir / tag} was written by {ranks}, this run has {world}; resume with {ranks} (DeepSpeed "
            "cannot repartition the ZeRO states), or give another output_dir to start a new run")


def load_latest(engine: Any, ckpt_dir: Path, *, verify_checksums: bool = True) -> dict | None:
    """Load the newest undamaged checkpoint into `engine`; return its client state (None: none).

    A damaged checkpoint, or one whose loading raises, is skipped with a warning and the previous
    one is tried, so a run killed while saving loses at most one checkpoint interval. A checkpoint
    written by another number of ranks, or a file naming code to run, stops the resume
    (ResumeError): falling back could not help, or would hide the tampering. `verify_checksums`
    reads every file first (shared among a node's ranks) to compare the recorded checksums.
    """
    checkpoint_engine.install(engine)
    for step, tag in list_tags(ckpt_dir):
        problem = _first_problem(damage(ckpt_dir, tag, verify_checksums=verify_checksums))
        if problem:
            LOG.warning("checkpoint %s is damaged (%s); falling back to the previous one", tag, problem)
            continue
        if mismatch := _first_problem(_world_size_mismatch(ckpt_dir, tag)):
            raise ResumeError(mismatch)
        refused = None
        try:
            load_path, client_state = engine.load_checkpoint(str(ckpt_dir), tag=tag)
            ok = load_path is not None
        except UnsafeCheckpointError as exc:
            refused, ok = str(exc), False
        except Exception as exc:  # a corrupt file surfaces as any of torch's unpickling errors
            LOG.warning("loading checkpoint %s failed: %s", tag, exc)
            ok = False
        if refused := _first_problem(refused):
            raise ResumeError(refused)
        if _agreed(ok):
            return client_state
        LOG.warning("checkpoint %s could not be loaded; falling back to the previous one", tag)
    return None


def finished_step(ckpt_dir: Path, config_hash: str, end: int, *, verify_checksums: bool = True) -> int | None:
    """The step of the newest complete checkpoint if it was written with `config_hash` at step
    `end` or later on every rank (collective), else None: then a rerun has nothing to do.

    `verify_checksums` reads the final checkpoint as resuming would: a finished run whose last
    checkpoint has rotted is not "done" but resumes from the previous one and writes it again."""
    step = -1
    for tag_step, tag in list_tags(ckpt_dir):
        if damage(ckpt_dir, tag) is None:
            marker, _ = _read_marker(ckpt_dir / tag)
            # Read the files only for a tag that would end the run: a resume reads them in load_latest.
            if tag_step >= end and marker.get("config_hash") == config_hash and \
                    damage(ckpt_dir, tag, verify_checksums=verify_checksums) is None:
                step = tag_step
            break
    agreed = _all_reduce_int(step, dist.ReduceOp.MIN)
    return agreed if agreed >= 0 else None

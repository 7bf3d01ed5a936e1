"""Training checkpoints: save through the DeepSpeed engine, keep the last K, resume with fallback.

Layout under the run directory::

    checkpoints/latest                  # written by DeepSpeed: the newest tag
    checkpoints/global_step{N}/         # DeepSpeed's model/optimizer files for step N
    checkpoints/global_step{N}/complete.json   # ours: step, config hash, size of every file

``complete.json`` is written last, after every rank has finished saving, so a checkpoint without
it (a kill during the save) or whose files no longer have the recorded sizes (truncation, a
missing partition) is damaged; resumption then falls back to the previous one with a warning.
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

LOG = logging.getLogger(__name__)
CHECKPOINT_DIR = "checkpoints"  # under the run directory
MARKER = "complete.json"
_TAG = re.compile(r"^global_step(\d+)$")


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


def damage(ckpt_dir: Path, tag: str) -> str | None:
    """Why the checkpoint `tag` cannot be trusted, or None when it looks complete."""
    directory = ckpt_dir / tag
    try:
        marker = json.loads((directory / MARKER).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"{directory} has no {MARKER} (the save did not finish)"
    except json.JSONDecodeError:
        return f"{directory / MARKER} is not valid JSON"
    sizes = _file_sizes(directory)
    for name, size in marker["files"].items():
        if name not in sizes:
            return f"{directory / name} is missing"
        if sizes[name] != size:
            return f"{directory / name} has {sizes[name]} bytes, {size} were written"
    return None


def _is_local_leader() -> bool:
    return int(os.environ.get("LOCAL_RANK", "0")) == 0


def save(engine: Any, ckpt_dir: Path, step: int, client_state: dict, keep_last: int) -> str:
    """Save on every rank (DeepSpeed needs all of them), then mark complete and prune old ones."""
    tag = tag_for(step)
    if _is_local_leader():
        # A step saved again (after a fallback) must not look complete while it is being rewritten.
        (ckpt_dir / tag / MARKER).unlink(missing_ok=True)
    dist.barrier()
    engine.save_checkpoint(str(ckpt_dir), tag=tag, client_state=client_state)
    dist.barrier()
    # Each node's first rank marks and prunes: node-local disks then work as well as shared ones.
    if _is_local_leader():
        directory = ckpt_dir / tag
        write_json(directory / MARKER, {
            "step": step, "config_hash": client_state.get("config_hash"), "files": _file_sizes(directory),
        })
        prune(ckpt_dir, step, keep_last)
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


def _all_reduce_flag(flag: bool, op: dist.ReduceOp) -> bool:
    # on the accelerator: NCCL reduces device tensors only
    value = torch.tensor([1 if flag else 0], dtype=torch.int64, device=get_accelerator().current_device_name())
    dist.all_reduce(value, op=op)
    return bool(value.item())


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


def load_latest(engine: Any, ckpt_dir: Path) -> dict | None:
    """Load the newest undamaged checkpoint into `engine`; return its client state (None: none).

    A damaged checkpoint, or one whose loading raises, is skipped with a warning and the previous
    one is tried, so a run killed while saving loses at most one checkpoint interval.
    """
    for step, tag in list_tags(ckpt_dir):
        problem = damage(ckpt_dir, tag)
        if not _agreed(problem is None):
            LOG.warning("checkpoint %s is damaged (%s); falling back to the previous one", tag,
                        problem or "damaged on another rank")
            continue
        try:
            load_path, client_state = engine.load_checkpoint(str(ckpt_dir), tag=tag)
            ok = load_path is not None
        except Exception as exc:  # a corrupt file surfaces as any of torch's unpickling errors
            LOG.warning("loading checkpoint %s failed: %s", tag, exc)
            ok = False
        if _agreed(ok):
            return client_state
        LOG.warning("checkpoint %s could not be loaded; falling back to the previous one", tag)
    return None

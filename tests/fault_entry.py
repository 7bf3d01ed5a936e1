"""What the launcher tests start: launch/pretrain.py with faults injected at chosen steps.

Environment (comma-separated optimizer steps, 1-based):
  FAULT_NONFINITE_ONCE    the faulting rank's loss is NaN on the first attempt of these steps
  FAULT_NONFINITE_ALWAYS  the faulting rank's loss is NaN on every attempt of these steps
  FAULT_SIGTERM_AT        the faulting rank sends SIGTERM to the whole process group (launcher and
                          ranks, as a cluster scheduler does) during this step
  FAULT_SIGKILL_AT        the faulting rank SIGKILLs its launcher and itself during this step (its
                          node dies; ranks of other launchers live on)
  FAULT_RANK              the faulting rank (default 0)
  TRACE_DIR               each rank appends what it writes to the run directory's shared state
                          (checkpoint markers, `latest`, pruned checkpoints, metrics records) to
                          TRACE_DIR/rank{R}.txt, and its pid to TRACE_DIR/pids
"""
from __future__ import annotations

import os
import runpy
import signal
import sys
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)

from pretrain.trainer import Trainer  # noqa: E402


def _steps(name: str) -> set[int]:
    return {int(s) for s in os.environ.get(name, "").split(",") if s}


NONFINITE_ONCE, NONFINITE_ALWAYS, SIGTERM_AT, SIGKILL_AT = (
    _steps("FAULT_NONFINITE_ONCE"), _steps("FAULT_NONFINITE_ALWAYS"), _steps("FAULT_SIGTERM_AT"),
    _steps("FAULT_SIGKILL_AT"))
FAULT_RANK = int(os.environ.get("FAULT_RANK", "0"))
_fired: set[tuple[str, int]] = set()
_forward_loss = Trainer.forward_loss


def _first_time(kind: str, step: int) -> bool:
    if (kind, step) in _fired:
        return False
    _fired.add((kind, step))
    return True


def faulty_forward_loss(self: Trainer, batch):
    loss = _forward_loss(self, batch)
    step = self.engine.global_steps + 1
    if self.rank != FAULT_RANK:
        return loss
    if step in SIGKILL_AT:
        os.kill(os.getppid(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)
    if step in SIGTERM_AT and _first_time("sigterm", step):
        os.killpg(os.getpgid(0), signal.SIGTERM)
    if step in NONFINITE_ALWAYS or (step in NONFINITE_ONCE and _first_time("nan", step)):
        return loss * float("nan")
    return loss


def trace_writes(directory: Path) -> None:
    """Record this rank's writes of shared run state (see TRACE_DIR above)."""
    import shutil

    import deepspeed.runtime.engine as ds_engine

    from pretrain import checkpoint
    from pretrain.metrics import MetricsLogger

    rank = os.environ["RANK"]
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "pids").open("a") as handle:
        handle.write(f"{os.getpid()}\n")

    def note(what: str, detail: object) -> None:
        with (directory / f"rank{rank}.txt").open("a") as handle:
            handle.write(f"{what} {detail}\n")

    def traced(function, what, describe):
        def wrapper(*args, **kwargs):
            detail = describe(*args, **kwargs)
            if detail is not None:
                note(what, detail)
            return function(*args, **kwargs)
        return wrapper

    checkpoint.write_json = traced(checkpoint.write_json, "marker", lambda path, *_: Path(path).parent.name)
    checkpoint.shutil = types.SimpleNamespace(rmtree=traced(shutil.rmtree, "prune", lambda path, **_: Path(path).name))
    # DeepSpeed writes `latest` with open(); this name shadows the builtin in its engine module only.
    ds_engine.open = traced(open, "latest", lambda path, mode="r", *_, **__: (
        "written" if Path(path).name == "latest" and "w" in mode else None))
    MetricsLogger.log = traced(MetricsLogger.log, "metrics", lambda self, record: (
        f"{record['kind']} {record['step']}" if self.enabled else None))


if os.environ.get("TRACE_DIR"):
    trace_writes(Path(os.environ["TRACE_DIR"]))
Trainer.forward_loss = faulty_forward_loss
sys.argv = [str(REPO / "launch" / "pretrain.py"), *sys.argv[1:]]
runpy.run_path(str(REPO / "launch" / "pretrain.py"), run_name="__main__")

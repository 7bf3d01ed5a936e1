"""What the deepspeed tests launch: launch/pretrain.py with faults injected at chosen steps.

Environment (comma-separated optimizer steps, 1-based):
  FAULT_NONFINITE_ONCE    rank 0's loss is NaN on the first attempt of these steps
  FAULT_NONFINITE_ALWAYS  rank 0's loss is NaN on every attempt of these steps
  FAULT_SIGTERM_AT        rank 0 sends SIGTERM to the whole process group (launcher and ranks,
                          as a cluster scheduler does) during this step
"""
from __future__ import annotations

import os
import runpy
import signal
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)

from pretrain.trainer import Trainer  # noqa: E402


def _steps(name: str) -> set[int]:
    return {int(s) for s in os.environ.get(name, "").split(",") if s}


NONFINITE_ONCE, NONFINITE_ALWAYS, SIGTERM_AT = (
    _steps("FAULT_NONFINITE_ONCE"), _steps("FAULT_NONFINITE_ALWAYS"), _steps("FAULT_SIGTERM_AT"))
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
    if self.rank != 0:
        return loss
    if step in SIGTERM_AT and _first_time("sigterm", step):
        os.killpg(os.getpgid(0), signal.SIGTERM)
    if step in NONFINITE_ALWAYS or (step in NONFINITE_ONCE and _first_time("nan", step)):
        return loss * float("nan")
    return loss


Trainer.forward_loss = faulty_forward_loss
sys.argv = [str(REPO / "launch" / "pretrain.py"), *sys.argv[1:]]
runpy.run_path(str(REPO / "launch" / "pretrain.py"), run_name="__main__")

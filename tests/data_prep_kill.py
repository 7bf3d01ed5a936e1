"""kill -9 of a running `python -m data_prep` once it has finished a given number of units: the
one place the kill-and-resume tests wait for that point."""
from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path


def kill_after_units(proc: subprocess.Popen, out: Path, units: int, timeout: float = 120) -> float:
    """SIGKILL `proc` once `units` unit spills exist under OUT/.work (or it has ended); check that
    the kill is what ended it; return the deadline, for waits that follow."""
    deadline = time.monotonic() + timeout
    while len(list((out / ".work").glob("u*.json"))) < units and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL  # it really was killed mid-run
    return deadline

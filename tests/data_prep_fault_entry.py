"""`python -m data_prep` with a kill -9 injected at a chosen point of near-dedup.

Environment FAULT_KILL_AT (one of):
  keys:N     the N-th band-key file this process writes is cut in half, then the process kills itself
  cluster:N  the clustering stage kills itself at its N-th batch of links
  resolve    the clustering stage kills itself after writing its result, before publishing it
"""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[0] = str(REPO)

import numpy as np  # noqa: E402

from data_prep import minhash, near_dedup  # noqa: E402
from data_prep.atomic import temp_path  # noqa: E402
from data_prep.cli import main  # noqa: E402

KIND, _, COUNT = os.environ.get("FAULT_KILL_AT", "").partition(":")
_calls = 0


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _due() -> bool:
    global _calls
    _calls += 1
    return _calls == int(COUNT)


def half_written_npy(path: Path, array) -> None:
    if _due():
        tmp = temp_path(path)
        with open(tmp, "wb") as f:
            np.save(f, array)
        tmp.write_bytes(tmp.read_bytes()[: tmp.stat().st_size // 2])
        _die()
    _write_npy(path, array)


def dying_union(parent, a, b) -> None:
    if _due():
        _die()
    _union(parent, a, b)


def dying_resolve(parent, drop, *rest):
    result = _resolve(parent, drop, *rest)
    drop.flush()
    _die()
    return result


_write_npy, _union, _resolve = minhash.write_npy, near_dedup._union, near_dedup._resolve
if KIND == "keys":
    minhash.write_npy = half_written_npy
elif KIND == "cluster":
    near_dedup._union = dying_union
elif KIND == "resolve":
    near_dedup._resolve = dying_resolve
sys.exit(main(sys.argv[1:]))

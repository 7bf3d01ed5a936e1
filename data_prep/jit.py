"""The compiler for data prep's per-document loops: numba's `njit`, with one set of options.

The corpus-quality measures (repetition, decontamination N-grams, MinHash shingles) look at every
byte of 220 GB one document at a time. As NumPy calls, their cost is a few microseconds of call
overhead per array operation and document, not the arithmetic (bench/bench_corpus_quality.py);
as compiled loops it is the arithmetic. Kernels are compiled on first use and cached on disk
(`cache=True`: beside the module, or in numba's user cache directory where that is read-only),
so a later run and every worker of it load them in milliseconds. `nogil` lets a thread pool run
them in parallel; setting NUMBA_DISABLE_JIT=1 runs them as plain Python, for debugging.
"""
from __future__ import annotations

import threading
from collections.abc import Callable

import numba
import numpy as np

# `pairs`' output buffer: one per thread, as the kernels run in threads too (nogil).
_buffers = threading.local()


def kernel(fn: Callable) -> Callable:
    """`fn` compiled to machine code (integer arithmetic wraps as in NumPy's uint64)."""
    return numba.njit(cache=True, nogil=True)(fn)


def pairs(fn: Callable, *args) -> tuple[list[list[int]], list]:
    """Call kernel `fn(*args, out)`, which writes int64 pairs (as many as fit) to `out` [k, 2] and
    returns (how many it found, *more); return the pairs, as lists, and `more`. `out` is reused:
    most documents have none, and a new array per document costs more than the scan of a short one."""
    out = getattr(_buffers, "out", None)
    if out is None:
        out = _buffers.out = np.empty((256, 2), np.int64)
    count, *more = fn(*args, out)
    if count > len(out):
        out = _buffers.out = np.empty((count, 2), np.int64)
        count, *more = fn(*args, out)
    return (out[:count].tolist() if count else []), more

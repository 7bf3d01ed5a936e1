"""A fixed glibc mmap threshold, so that large buffers go back to the operating system when freed.

glibc's malloc serves a block of at least M_MMAP_THRESHOLD bytes with its own mmap, and raises the
threshold to the size of any such block that is freed (up to 32 MB). From then on blocks up to that
size come from the heap, where a freed one stays resident while anything allocated after it lives.
Once something has freed a large block (numba loading its compiled kernels is enough), reading a
huge line in --max-doc-bytes pieces costs one piece more of peak RSS (8 MB more than the 4 pieces
the README promises; tests/test_data_prep_memory.py). Setting the threshold fixes it where it is.
"""
from __future__ import annotations

import ctypes

_M_MMAP_THRESHOLD = -3  # glibc's malloc.h
_THRESHOLD = 1 << 20  # below one piece of a document, above the per-document arrays of most documents


def fix_mmap_threshold() -> None:
    """Keep blocks of 1 MiB or more in their own mappings for the rest of the process (and its
    forked workers). Without glibc (macOS, musl) there is no such threshold and nothing to do."""
    try:
        ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, _THRESHOLD)
    except (OSError, AttributeError):
        pass

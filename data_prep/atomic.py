"""Atomic file writes: readers only ever see a complete file under its final name."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


def temp_path(path: Path) -> Path:
    """Unique per process: a worker orphaned by kill -9 may still be finishing the same file."""
    return path.with_name(f"{path.name}.{os.getpid()}.tmp")


def write_bytes(path: Path, data: bytes) -> None:
    tmp = temp_path(path)
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_json(path: Path, obj) -> None:
    write_bytes(path, (json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))


def write_npy(path: Path, array) -> None:
    tmp = temp_path(path)
    with open(tmp, "wb") as f:
        np.save(f, array)
    os.replace(tmp, path)

"""Forming this process's place in the process group, for every entry point that trains
(launch/pretrain.py, launch/gpu_check.py): single-process defaults, the DeepSpeed process group,
the device, DeepSpeed's op build cache and its CPU shared-memory segment."""
from __future__ import annotations

import hashlib
import importlib.util
import os
import socket
import sysconfig
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def single_process_defaults() -> None:
    """Without a launcher, become rank 0 of a world of one (DeepSpeed would look for MPI)."""
    if "RANK" not in os.environ:
        os.environ.update(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1",
                          MASTER_PORT=str(_free_port()))


def _unlink_cpu_allreduce_segment(rank: int) -> None:
    """DeepSpeed's shared-memory allreduce on CPU (ops/csrc/cpu/comm/shm.cpp) gives each rank a
    66 MB /dev/shm segment and never unlinks it: every CPU run left one per rank behind (14 GB of
    RAM after a day of test runs here). Once every rank has mapped every segment, which the
    barrier guarantees, the name is no longer needed; unlinking it now lets the memory go when the
    processes end, however they end."""
    import torch.distributed as dist

    dist.barrier()
    name = "_".join(["deepspeed_allreduce_buffer", str(os.getuid()), os.environ.get("MASTER_ADDR", ""),
                     os.environ.get("MASTER_PORT", ""), str(rank)])
    Path("/dev/shm", name).unlink(missing_ok=True)


def op_cache_per_environment() -> None:
    """Point TORCH_EXTENSIONS_DIR at a directory of this environment's own (unless it is set).

    DeepSpeed JIT-builds its CPU communication op with torch's cpp_extension, whose default
    cache is one directory per Python version (~/.cache/torch_extensions/py311_cpu) shared by every
    environment. The compile command names the environment's paths (torch and DeepSpeed headers,
    Python's include directory) and $CXX, and ninja rebuilds whenever the command differs from the
    last build's, so two environments, or one reached by two paths (launch/gpu_check.sh runs
    $ROOT/.venv/bin/python, a direct launch whatever is on PATH), rebuilt the op (about 22 s)
    at every switch. Keyed by those inputs, each keeps its one build.
    """
    if "TORCH_EXTENSIONS_DIR" in os.environ:
        return
    from torch.utils.cpp_extension import get_default_build_root

    inputs = [sysconfig.get_paths()["include"], os.environ.get("CXX", "c++"),
              *(importlib.util.find_spec(name).origin for name in ("torch", "deepspeed"))]
    key = hashlib.sha256("\0".join(inputs).encode()).hexdigest()[:12]
    os.environ["TORCH_EXTENSIONS_DIR"] = str(Path(get_default_build_root()) / f"gbst-kebyt5-{key}")


def start_process_group() -> None:
    """DeepSpeed's process group, and this rank's device picked before any collective runs."""
    import deepspeed
    from deepspeed.accelerator import get_accelerator

    op_cache_per_environment()  # before init_distributed, which JIT-builds DeepSpeed's CPU op
    deepspeed.init_distributed()
    # Collectives run before DeepSpeed's engine picks the device (the resume check), so pick it now.
    get_accelerator().set_device(int(os.environ["LOCAL_RANK"]))
    if get_accelerator().device_name() == "cpu":
        _unlink_cpu_allreduce_segment(int(os.environ["RANK"]))

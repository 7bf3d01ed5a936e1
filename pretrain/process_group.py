"""Forming this process's place in the process group, for every entry point that trains
(launch/pretrain.py, launch/gpu_check.py): single-process defaults, the DeepSpeed process group,
the device, and DeepSpeed's CPU shared-memory segment."""
from __future__ import annotations

import os
import socket
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


def start_process_group() -> None:
    """DeepSpeed's process group, and this rank's device picked before any collective runs."""
    import deepspeed
    from deepspeed.accelerator import get_accelerator

    from pretrain.train_setup import op_cache_per_environment

    op_cache_per_environment()  # before init_distributed, which JIT-builds DeepSpeed's CPU op
    deepspeed.init_distributed()
    # Collectives run before DeepSpeed's engine picks the device (the resume check), so pick it now.
    get_accelerator().set_device(int(os.environ["LOCAL_RANK"]))
    if get_accelerator().device_name() == "cpu":
        _unlink_cpu_allreduce_segment(int(os.environ["RANK"]))

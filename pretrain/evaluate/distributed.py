"""Data parallelism for the evaluation when a launcher (`deepspeed --module`, `torchrun -m`) starts
one process per device: the rank, the process group, DDP, and gathering what the ranks decoded.

Plain torch.distributed, not DeepSpeed's comm: fine-tuning a checkpoint needs no ZeRO, and
DeepSpeed's CPU allreduce would leave a /dev/shm segment per rank behind. Without a launcher (or
with a world of one) nothing here forms a group and every function is the identity.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def world_from_env() -> World:
    """The launcher's RANK / WORLD_SIZE / LOCAL_RANK; rank 0 of one without a launcher."""
    env = os.environ
    return World(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))


def device_for(spec: str, world: World) -> torch.device:
    """--device as given in one process; under a launcher each process takes cuda:LOCAL_RANK (or the CPU)."""
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(spec)
    if world.size > 1 and device.type == "cuda":
        if device.index is not None:
            raise ValueError(f"--device {spec} names one GPU, but under a launcher each process uses cuda:LOCAL_RANK")
        device = torch.device("cuda", world.local_rank)
    return device


def start(world: World, device: torch.device) -> None:
    """Join the launcher's process group: nccl between GPUs, gloo between CPU processes."""
    if world.size == 1:
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=world.rank, world_size=world.size)


def stop(world: World) -> None:
    if world.size > 1 and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, world: World, device: torch.device) -> torch.nn.Module:
    """DDP (gradients averaged over the ranks in backward) under a launcher, else the model itself."""
    if world.size == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def mean(value: float, world: World, device: torch.device) -> float:
    """The ranks' mean of a logged number (each rank's loss is over its own slice of the batch)."""
    if world.size == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.item() / world.size


def gather(local: dict[int, str], world: World) -> dict[int, str]:
    """Every rank's {example index: prediction}, merged, on every rank."""
    if world.size == 1:
        return local
    parts: list[dict[int, str] | None] = [None] * world.size
    dist.all_gather_object(parts, local)
    return {i: text for part in parts for i, text in part.items()}

"""Entry point of a pretraining run; what `deepspeed`, `torchrun` or plain `python` starts.

    deepspeed launch/pretrain.py --config ds_configs/large.json --data shards/kowiki shards/namu
    deepspeed --hostfile launch/hostfile.example launch/pretrain.py --config ds_configs/large.json ...
    torchrun --nproc_per_node 8 launch/pretrain.py --config ds_configs/large.json ...
    python launch/pretrain.py --config ds_configs/tiny.json --data shards/kolaw   # one process
    python launch/pretrain.py --config ds_configs/large.json --data shards/ko --dry-run   # the plan only

The whole configuration is validated before the process group is formed or anything is built,
including each shard's size and row count against its manifest (`--verify-shards` adds sha256);
with --dry-run the plan (pretrain/plan.py) is printed instead of training.
"""
from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path

# Run as a script, this file's folder is sys.path[0] and the file itself would shadow the
# `pretrain` package; the repository root takes its place.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from data_prep.shard_format import ShardFormatError
from pretrain.config import (ConfigError, TrainConfig, build_arg_parser, check_deepspeed_keys, load_config, read_manifest,
                             validate)
from pretrain.model_path import ModelPathError

EXIT_CONFIG = 2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _single_process_defaults() -> None:
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


def _check_warm_start(config: TrainConfig) -> None:
    """A new run's init_from must be loadable (a resumed one reads its checkpoint instead): fail
    here, in one line, rather than after the process group forms."""
    from pretrain.checkpoint import CHECKPOINT_DIR, list_tags

    from pretrain.model_setup import init_from_source

    if not list_tags(Path(config.run.output_dir) / CHECKPOINT_DIR):
        init_from_source(config.run.model)


def _verify_shards(config: TrainConfig) -> None:
    """--verify-shards: every shard's sha256 against its manifest (validation checked sizes and rows)."""
    for i, directory in enumerate(config.run.data.train):
        read_manifest(directory, f"run.data.train[{i}]", verify=True)


def main(argv: list[str] | None = None) -> int:
    _single_process_defaults()
    rank = int(os.environ["RANK"])
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING,
        format=f"%(asctime)s [rank {rank}] %(levelname)s %(name)s: %(message)s",
    )
    world = int(os.environ["WORLD_SIZE"])
    try:
        config = load_config(argv)
        shards = validate(config, world_size=world)
        flags = build_arg_parser().parse_args(argv)
        if flags.verify_shards:
            _verify_shards(config)
        check_deepspeed_keys(config.deepspeed)
        _check_warm_start(config)
        from pretrain import plan

        data = plan.plan_data(config, world)
        if rank == 0 and (warning := plan.small_eval_warning(config, data)):
            logging.getLogger("pretrain").warning("%s", warning)
        if flags.dry_run:
            if rank == 0:
                print("\n".join(plan.plan_lines(config, shards, data, int(os.environ.get("LOCAL_WORLD_SIZE", world)))))
            return 0
    except (ConfigError, ModelPathError) as exc:
        if rank == 0:
            print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    import deepspeed

    from pretrain.train_setup import op_cache_per_environment
    from pretrain.trainer import ResumeError, Trainer

    op_cache_per_environment()  # before init_distributed, which JIT-builds DeepSpeed's CPU op
    deepspeed.init_distributed()
    # Collectives run before DeepSpeed's engine picks the device (the resume check), so pick it now.
    from deepspeed.accelerator import get_accelerator

    get_accelerator().set_device(int(os.environ["LOCAL_RANK"]))
    if get_accelerator().device_name() == "cpu":
        _unlink_cpu_allreduce_segment(rank)
    try:
        trainer = Trainer(config, shards)
    except ResumeError as exc:
        if rank == 0:
            print(f"cannot resume: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ShardFormatError as exc:  # a shard changed between validation and opening it
        if rank == 0:
            print(f"shard error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (ModelPathError, ConfigError) as exc:  # init_from changed between the check and the load
        if rank == 0:
            print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return trainer.train()


if __name__ == "__main__":
    sys.exit(main())

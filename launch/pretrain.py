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
import sys
from pathlib import Path

# Run as a script, this file's folder is sys.path[0] and the file itself would shadow the
# `pretrain` package; the repository root takes its place.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from data_prep.shard_format import ShardFormatError
from pretrain.config import (ConfigError, TrainConfig, build_arg_parser, check_deepspeed_keys, load_config, read_manifest,
                             validate)
from pretrain.model_path import ModelPathError
from pretrain.process_group import single_process_defaults, start_process_group

EXIT_CONFIG = 2


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


def _log_per_rank(rank: int) -> None:
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING,
        format=f"%(asctime)s [rank {rank}] %(levelname)s %(name)s: %(message)s",
    )


def _validated(argv: list[str] | None, world: int, rank: int):
    """(config, its shards, the flags, the data plan): everything checked that can be without the
    process group, on every rank (a training set of 0 rows is a ConfigError of plan_data)."""
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
    return config, shards, flags, data


def _print_plan(config: TrainConfig, shards, data, world: int, rank: int) -> int:
    from pretrain import plan

    if rank == 0:
        print("\n".join(plan.plan_lines(config, shards, data, int(os.environ.get("LOCAL_WORLD_SIZE", world)))))
    return 0


def _refuse(rank: int, what: str, exc: Exception) -> int:
    """A user's mistake: one line (from rank 0) and EXIT_CONFIG, no traceback."""
    if rank == 0:
        print(f"{what}: {exc}", file=sys.stderr)
    return EXIT_CONFIG


def main(argv: list[str] | None = None) -> int:
    single_process_defaults()
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    _log_per_rank(rank)
    try:
        config, shards, flags, data = _validated(argv, world, rank)
        if flags.dry_run:
            return _print_plan(config, shards, data, world, rank)
    except (ConfigError, ModelPathError) as exc:
        return _refuse(rank, "configuration error", exc)

    from pretrain.trainer import ResumeError, Trainer, already_done

    start_process_group()
    if already_done(config):
        return 0
    try:
        trainer = Trainer(config, shards)
    except ResumeError as exc:
        return _refuse(rank, "cannot resume", exc)
    except ShardFormatError as exc:  # a shard changed between validation and opening it
        return _refuse(rank, "shard error", exc)
    except (ModelPathError, ConfigError) as exc:  # init_from changed between the check and the load
        return _refuse(rank, "configuration error", exc)
    return trainer.train()


if __name__ == "__main__":
    sys.exit(main())

"""`python -m pretrain.evaluate MODEL... --task T... --data D --output_dir OUT`: fine-tune each MODEL on
each KLUE task's train split, decode its dev split greedily, score it as KLUE does and write one
side-by-side table. Started by a launcher (`deepspeed --module`, `torchrun -m`), it runs
data-parallel and rank 0 alone writes the outputs. Bad input (a model, a file, a split, a label) ends in one line and exit 2,
before any training starts.
"""
from __future__ import annotations

import argparse
import copy
import logging
import sys
import time
from pathlib import Path

import torch
import transformers

from pretrain.config import LoggingSettings
from pretrain.evaluate import distributed
from pretrain.evaluate import finetune as ft
from pretrain.evaluate.distributed import World
from pretrain.evaluate.metrics import score
from pretrain.evaluate.models import check_model, load_model
from pretrain.evaluate.report import RESULTS_TABLE, write_results
from pretrain.evaluate.sources import load_split
from pretrain.evaluate.tasks import TASKS, DataError, Example
from pretrain.metrics import MetricsLogger
from pretrain.model_path import ModelPathError
from pretrain.model_setup import freeze_gbst

LOG = logging.getLogger("pretrain.evaluate")


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, as every other user error here
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m pretrain.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", metavar="MODEL", help="exported HF directory, run directory or hub id")
    p.add_argument("--task", action="append", required=True, choices=sorted(TASKS), help="repeatable")
    p.add_argument("--data", required=True, help="KLUE release files' directory, a datasets directory, or 'klue'")
    p.add_argument("--output_dir", "--output-dir", required=True, type=Path)
    p.add_argument("--train-split", default="train")
    p.add_argument("--eval-split", default="dev", help="dev (= the hub's validation) or train")
    p.add_argument("--max-train-examples", type=int, help="the first N training examples only")
    p.add_argument("--max-eval-examples", type=int, help="the first N evaluation examples only")
    p.add_argument("--epochs", type=float, default=4.0, help="0: evaluate the model as it is")
    p.add_argument("--batch-size", type=int, default=16, help="effective batch (micro batch x --grad-accum x processes)")
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--min-lr", type=float, default=1e-7, help="where the cosine schedule ends")
    p.add_argument("--warmup-steps", type=int, default=0)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--unfreeze-gbst", action="store_true", help="also train GBST (frozen by default, as the card advises)")
    p.add_argument("--max-input-bytes", type=int, help="default: the task's (ynat 256, nli 768, sts 512, mrc 7680)")
    p.add_argument("--max-target-bytes", type=int, help="generation budget; default: the longest label, 3 (sts), 256 (mrc)")
    p.add_argument("--eval-batch-size", type=int, default=32)
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    p.add_argument("--bf16", choices=["auto", "on", "off"], default="auto", help="auto: on a GPU that has bf16")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-interval", type=int, default=10)
    p.add_argument("--wandb", action="store_true", help="also log to wandb (offline without credentials)")
    p.add_argument("--wandb-project", default="gbswt5-eval")
    # deepspeed's launcher appends --local_rank; the rank is read from the environment instead
    p.add_argument("--local_rank", "--local-rank", type=int, help=argparse.SUPPRESS)
    return p


def _bf16(spec: str, device: torch.device) -> bool:
    if spec == "auto":
        return device.type == "cuda" and torch.cuda.is_bf16_supported()
    return spec == "on"


def validate_args(args: argparse.Namespace, world: World = World()) -> None:
    for flag in ("batch_size", "grad_accum", "eval_batch_size", "log_interval", "max_input_bytes",
                 "max_target_bytes", "max_train_examples", "max_eval_examples"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise UsageError(f"--{flag.replace('_', '-')} must be at least 1, not {value}")
    if args.batch_size % (args.grad_accum * world.size):
        processes = f" x {world.size} processes" if world.size > 1 else ""
        raise UsageError(f"--batch-size {args.batch_size} is not a multiple of --grad-accum {args.grad_accum}{processes}")
    if args.epochs < 0 or args.lr <= 0 or not 0 <= args.min_lr <= args.lr:
        raise UsageError("need --epochs >= 0, --lr > 0 and 0 <= --min-lr <= --lr")


def _load_data(args: argparse.Namespace, tasks: list[str]) -> dict[str, tuple[list[Example], list[Example]]]:
    """Every split of every task, read and checked before any model is loaded."""
    data = {}
    for name in tasks:
        task = TASKS[name]
        train = load_split(args.data, task, args.train_split)[: args.max_train_examples] if args.epochs else []
        dev = load_split(args.data, task, args.eval_split)[: args.max_eval_examples]
        if not dev or (args.epochs and not train):
            raise DataError(f"{args.data}: the {name} {'train' if dev else 'evaluation'} split has no examples")
        data[name] = train, dev
    return data


class _Log:
    """Metrics records with one step counter over all models and tasks (wandb needs one)."""

    def __init__(self, logger: MetricsLogger):
        self.logger, self.step = logger, 0

    def __call__(self, record: dict, *, kind: str, model: str, task: str) -> None:
        self.step += 1
        self.logger.log({"step": self.step, "kind": kind, "model": model, "task": task, **record})


def _run_task(base: torch.nn.Module, model_name: str, name: str, split: tuple[list[Example], list[Example]],
              args: argparse.Namespace, device: torch.device, bf16: bool, log: _Log,
              world: World) -> tuple[dict, list[dict]]:
    """(the scores of `model_name` fine-tuned on task `name`, its predictions)."""
    task = TASKS[name]
    train, dev = split
    max_input = args.max_input_bytes or task.max_input_bytes
    max_target = args.max_target_bytes or task.max_target_bytes
    model = copy.deepcopy(base)
    frozen = [] if args.unfreeze_gbst else freeze_gbst(model)
    model.to(device)
    settings = ft.FinetuneSettings(epochs=args.epochs, batch_size=args.batch_size, grad_accum=args.grad_accum,
                                   lr=args.lr, min_lr=args.min_lr, warmup_steps=args.warmup_steps,
                                   weight_decay=args.weight_decay, seed=args.seed, log_interval=args.log_interval)
    torch.manual_seed(args.seed + world.rank)  # each rank its own dropout masks
    summary = ft.finetune(model, train, settings, max_input_bytes=max_input, max_target_bytes=max_target,
                          device=device, bf16=bf16, log=lambda r: log(r, kind=f"finetune_{name}", model=model_name, task=name),
                          world=world)
    started = time.perf_counter()
    predictions = ft.predict(model, dev, max_input_bytes=max_input, max_target_bytes=max_target,
                             batch_size=args.eval_batch_size, device=device, bf16=bf16, world=world)
    result = score(task, dev, predictions)
    result.update(truncated_inputs=ft.count_truncated(dev, max_input), train_examples=len(train),
                  train_truncated_inputs=ft.count_truncated(train, max_input), frozen_parameters=len(frozen),
                  decode_seconds=round(time.perf_counter() - started, 2), **summary)
    for split_name, count in (("evaluation", result["truncated_inputs"]), ("training", result["train_truncated_inputs"])):
        if count:
            LOG.warning("%s %s: %d %s inputs longer than --max-input-bytes %d were cut", model_name, name, count,
                        split_name, max_input)
    log({k: v for k, v in result.items() if isinstance(v, (int, float))}, kind=f"eval_{name}", model=model_name, task=name)
    rows = [{"model": model_name, "task": name, "guid": e.guid, "prediction": p, "target": e.target}
            for e, p in zip(dev, predictions)]
    return result, rows


def evaluate(args: argparse.Namespace, world: World = World()) -> Path | None:
    """Run the evaluation described by parsed `args`; the path of the markdown table (None on
    ranks other than 0, which write nothing)."""
    validate_args(args, world)
    tasks = list(dict.fromkeys(args.task))
    for name in args.models:
        check_model(name)
    data = _load_data(args, tasks)
    try:
        device = distributed.device_for(args.device, world)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    bf16 = _bf16(args.bf16, device)
    protocol = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "local_rank"}
    protocol.update(device=str(device), bf16=bf16, decoding="greedy", freeze_gbst=not args.unfreeze_gbst)
    if world.size > 1:
        protocol["processes"] = world.size
    if world.is_main:
        args.output_dir.mkdir(parents=True, exist_ok=True)
    logger = MetricsLogger(args.output_dir, LoggingSettings(wandb=args.wandb, wandb_project=args.wandb_project),
                           protocol, enabled=world.is_main, run_name=f"eval-{time.strftime('%Y%m%d-%H%M%S')}")
    log = _Log(logger)
    results: dict[str, dict[str, dict]] = {}
    predictions: list[dict] = []
    distributed.start(world, device)
    try:
        for index, name in enumerate(args.models):
            key = name if name not in results else f"{name} ({index + 1})"
            base = load_model(name)
            results[key] = {}
            for task in tasks:
                results[key][task], rows = _run_task(base, key, task, data[task], args, device, bf16, log, world)
                predictions += rows
            del base
    finally:
        logger.close()
        distributed.stop(world)
    if not world.is_main:
        return None
    write_results(args.output_dir, results, tasks, {t: TASKS[t].metrics for t in tasks}, protocol, predictions)
    return args.output_dir / RESULTS_TABLE


def main(argv: list[str] | None = None) -> int:
    world = distributed.world_from_env()
    # the other ranks would repeat rank 0's records and warnings
    logging.basicConfig(level=logging.INFO if world.is_main else logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    transformers.utils.logging.disable_progress_bar()
    try:
        table = evaluate(build_parser().parse_args(argv), world)
    except (UsageError, DataError, ModelPathError) as exc:
        if world.is_main:  # every rank meets the same error: one line, not one per rank
            print(f"evaluate error: {exc}", file=sys.stderr)
        return 2
    if table is not None:
        print(table.read_text(encoding="utf-8"), end="")
    return 0

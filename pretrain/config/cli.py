"""The command line of a run: flags, `--set KEY=VALUE` overrides, and reading the config file.

Flags take dashed or underscored spellings alike (`--max-steps` = `--max_steps`): the data-prep
CLI uses dashes, this one used underscores first.
"""
from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any, Sequence

from pretrain.config.errors import ConfigError
from pretrain.config.schema import RUN_KEY, RunSettings, TrainConfig, parse_document
from pretrain.config.validation import warmup_exceeds_schedule

LOG = logging.getLogger(__name__)


def _add_flag(parser: argparse.ArgumentParser, name: str, **kwargs: Any) -> None:
    """`--name_with_underscores`, also accepted as `--name-with-dashes`."""
    spellings = dict.fromkeys([f"--{name}", f"--{name.replace('_', '-')}"])
    parser.add_argument(*spellings, dest=name, **kwargs)


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="GBSWT5 / ByT5 span-corruption pretraining under DeepSpeed")
    parser.add_argument("--config", required=True, help="DeepSpeed JSON with a 'run' block (ds_configs/*.json)")
    parser.add_argument("--data", nargs="+", metavar="DIR", help="shard directories (sets run.data.train)")
    _add_flag(parser, "output_dir", help="run directory (sets run.output_dir)")
    _add_flag(parser, "init_from", help="ByT5/GBSWT5 checkpoint to start from; 'none' for random init")
    _add_flag(parser, "max_steps", type=int, help="sets run.max_steps")
    _add_flag(parser, "stop_at", type=int, metavar="STEP",
              help="sets run.stop_at_step: checkpoint and exit at STEP; the LR schedule still spans max_steps")
    parser.add_argument("--seed", type=int, help="sets run.seed")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override any field; VALUE is JSON (bare words are strings). Keys of the run block may "
        "omit 'run.' (optimizer.lr=3e-4); others are DeepSpeed keys (zero_optimization.stage=3)",
    )
    _add_flag(parser, "verify_shards", action="store_true",
              help="before training, check every shard's sha256 against its manifest (reads all the data; "
              "sizes and row counts are always checked)")
    _add_flag(parser, "dry_run", action="store_true",
              help="check everything and print the run's plan (parameters, batch, epochs, memory, outputs); "
              "build nothing, train nothing")
    # deepspeed's launcher appends --local_rank (torch.distributed.launch --local-rank); the rank
    # comes from the environment instead.
    _add_flag(parser, "local_rank", type=int, default=None, help=argparse.SUPPRESS)
    return parser


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _full_path(dotted: str) -> list[str]:
    """The key's parts, with the `run.` a run-block key may omit put back."""
    parts = dotted.split(".")
    if parts[0] != RUN_KEY and parts[0] in RunSettings.model_fields:
        parts = [RUN_KEY, *parts]
    return parts


def _set_path(doc: dict, dotted: str, value: Any) -> None:
    parts = _full_path(dotted)
    node = doc
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {dotted}: {'.'.join(parts[: i + 1])} is not an object")
        node = child
    node[parts[-1]] = value


def _overrides(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """Every command-line setting as (dotted key, value), in the order they apply: the `--set`s,
    then the dedicated flags."""
    settings = []
    for item in args.set:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        key, text = item.split("=", 1)
        settings.append((key.strip(), _parse_value(text)))
    flags = {
        "data.train": args.data,
        "output_dir": args.output_dir,
        "max_steps": args.max_steps,
        "stop_at_step": args.stop_at,
        "seed": args.seed,
    }
    settings += [(key, value) for key, value in flags.items() if value is not None]
    if args.init_from is not None:
        settings.append(("model.init_from", None if args.init_from.lower() == "none" else args.init_from))
    return settings


def apply_overrides(doc: dict, args: argparse.Namespace) -> dict:
    """Return a copy of the raw config document with the command-line flags applied."""
    doc = json.loads(json.dumps(doc))
    for key, value in _overrides(args):
        _set_path(doc, key, value)
    return doc


def _fit_warmup_to_max_steps(config: TrainConfig, given: set[str]) -> None:
    """A command line that shortens max_steps below the file's warmup (a short demo of the tiny
    preset) gets the warmup clamped to max_steps, with a log line, instead of a refusal. A config
    file whose own warmup exceeds its max_steps, or a warmup set on the command line, is still
    refused by validation: those are mistakes, not a shortened run."""
    def on_command_line(key: str) -> bool:  # the key itself, or an object that holds it
        return any(key == g or key.startswith(f"{g}.") for g in given)

    run = config.run
    if on_command_line("run.max_steps") and not on_command_line("run.schedule.warmup_steps") \
            and warmup_exceeds_schedule(run):
        LOG.info("run.schedule.warmup_steps: the config's %d warmup steps exceed max_steps %d from the command "
                 "line; warming up over all %d steps instead (--set schedule.warmup_steps=N to choose)",
                 run.schedule.warmup_steps, run.max_steps, run.max_steps)
        run.schedule.warmup_steps = run.max_steps


def _read_json(path: Path, where: str, missing: str) -> Any:
    """A JSON file's content; a missing or broken file is a ConfigError naming `where`."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{where}: {missing}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: {path} is not valid JSON: {exc}") from None


def load_config(argv: Sequence[str] | None = None) -> TrainConfig:
    """Parse the command line, read the config file and apply the overrides (no validation yet)."""
    args = build_arg_parser().parse_args(argv)
    path = Path(args.config)
    doc = _read_json(path, "--config", f"no such file {path}")
    config = parse_document(apply_overrides(doc, args), str(path))
    _fit_warmup_to_max_steps(config, {".".join(_full_path(key)) for key, _ in _overrides(args)})
    return config

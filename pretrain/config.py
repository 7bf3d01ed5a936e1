"""Run configuration: schema of the run block, command-line overrides and validation.

A config file is a normal DeepSpeed JSON plus one block, ``"run"``, holding the run's own
settings (model, data, optimizer, schedule, intervals, output). Everything is checked before any
work starts, and every error names the field (``run.data.train[1]``, ``train_micro_batch_size_per_gpu``)
so that a typo never costs a cluster allocation.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import hashlib
import importlib.util
import json
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Sequence

from data_prep.shard_format import ShardFormatError, check_shards, load_manifest
from pretrain.byte_vocab import MAX_SAFE_SENTINELS, corrupted_lengths, noise_counts, raw_length_for_inputs

RUN_KEY = "run"
RUN_CONFIG_FILE = "run_config.json"  # the resolved config, in the run directory
MODEL_TYPES = ("gbswt5", "byt5")
PRESETS = ("tiny", "small", "base", "large")
# Hub ids look like "google/byt5-large"; anything else must be an existing local directory.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ConfigError(ValueError):
    """A configuration problem; the message names the offending field."""


@dataclass
class ModelSettings:
    type: Literal["gbswt5", "byt5"] = "gbswt5"
    preset: Literal["tiny", "small", "base", "large"] = "small"
    # Config fields applied on top of the preset (or of the init_from checkpoint's config).
    overrides: dict = field(default_factory=dict)
    # A ByT5 checkpoint (hub id or directory) to warm start from, a GBSWT5 directory to continue
    # from, or None for random initialisation.
    init_from: str | None = None
    gradient_checkpointing: bool = False
    # Freeze the GBST layers (encoder.embed_tokens except the shared embedding table).
    freeze_gbst: bool = False
    z_loss: float = 0.0


@dataclass
class DataSettings:
    # Shard directories written by `python -m data_prep`; each one is a mixing component.
    train: list[str] = field(default_factory=list)
    weights: list[float] | None = None
    temperature_alpha: float | None = None
    input_length: int = 1024
    noise_density: float = 0.15
    mean_noise_span_length: float = 20.0
    allow_sentinel_collisions: bool = False
    num_workers: int = 0


@dataclass
class OptimizerSettings:
    # adamw: torch AdamW. adamw_scaled: AdamW whose step is scaled by the parameter's RMS (nanoT5).
    type: Literal["adamw", "adamw_scaled"] = "adamw"
    lr: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.0


@dataclass
class ScheduleSettings:
    type: Literal["cosine", "inverse_sqrt", "constant"] = "cosine"
    warmup_steps: int = 1000
    # Cosine decays to lr * final_lr_ratio at max_steps.
    final_lr_ratio: float = 0.1


@dataclass
class EvalSettings:
    interval: int = 1000
    # Validation batches per rank (micro-batch sized); the same batches at every evaluation.
    batches: int = 20


@dataclass
class CheckpointSettings:
    interval: int = 1000
    keep_last: int = 3
    # Also save at max_steps; throughput checks turn this off to skip a multi-GB write.
    save_final: bool = True


@dataclass
class LoggingSettings:
    interval: int = 10
    wandb: bool = True
    wandb_project: str = "gbswt5-pretrain"
    tensorboard: bool = False
    # Dense bf16 peak of one device in TFLOP/s for MFU; None = look the device up (CPU: no MFU).
    peak_tflops: float | None = None


@dataclass
class RunSettings:
    model: ModelSettings = field(default_factory=ModelSettings)
    data: DataSettings = field(default_factory=DataSettings)
    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)
    checkpoint: CheckpointSettings = field(default_factory=CheckpointSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    max_steps: int = 1000
    # Stop this invocation at this step (checkpoint, exit 0) without touching the schedule, which
    # still spans max_steps: for time-limited jobs. Rerun without it to continue.
    stop_at_step: int | None = None
    seed: int = 0
    output_dir: str = "runs/default"
    # Consecutive non-finite losses tolerated before the run checkpoints and stops.
    max_nonfinite_in_row: int = 5


@dataclass
class TrainConfig:
    run: RunSettings
    deepspeed: dict  # the DeepSpeed part, as passed to deepspeed.initialize

    def to_json_dict(self) -> dict:
        return {**self.deepspeed, RUN_KEY: dataclasses.asdict(self.run)}


# ---------------------------------------------------------------------------------------------
# Parsing the run block with type checks


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check `value` against the annotation `tp`; return it (ints accepted where floats are)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{where}: {value!r} matches none of {_type_name(tp)}")
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{where}: {value!r} is not one of {list(typing.get_args(tp))}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        (item_tp,) = typing.get_args(tp)
        return [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected an object, got {type(value).__name__} {value!r}")
        return _build_dataclass(tp, value, where)
    if tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected an object, got {type(value).__name__} {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {type(value).__name__} {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {type(value).__name__} {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {type(value).__name__} {value!r}")
        return value
    raise TypeError(f"unsupported annotation {tp!r} at {where}")


def _unknown_key_message(key: str, known: Sequence[str], where: str) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"
    return f"{where}: unknown key {key!r}{hint}"


def _build_dataclass(cls: type, raw: dict, where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in hints:
            raise ConfigError(_unknown_key_message(key, names, where))
    return cls(**{k: _coerce(v, hints[k], f"{where}.{k}") for k, v in raw.items()})


# ---------------------------------------------------------------------------------------------
# Command-line overrides


def build_arg_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="GBSWT5 / ByT5 span-corruption pretraining under DeepSpeed")
    parser.add_argument("--config", required=True, help="DeepSpeed JSON with a 'run' block (ds_configs/*.json)")
    parser.add_argument("--data", nargs="+", metavar="DIR", help="shard directories (sets run.data.train)")
    parser.add_argument("--output_dir", help="run directory (sets run.output_dir)")
    parser.add_argument("--init_from", help="ByT5/GBSWT5 checkpoint to start from; 'none' for random init")
    parser.add_argument("--max_steps", type=int, help="sets run.max_steps")
    parser.add_argument("--stop_at", type=int, metavar="STEP",
                        help="sets run.stop_at_step: checkpoint and exit at STEP; the LR schedule still spans max_steps")
    parser.add_argument("--seed", type=int, help="sets run.seed")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override any field; VALUE is JSON (bare words are strings). Keys of the run block may "
        "omit 'run.' (optimizer.lr=3e-4); others are DeepSpeed keys (zero_optimization.stage=3)",
    )
    # deepspeed's launcher appends --local_rank; the rank comes from the environment instead.
    parser.add_argument("--local_rank", type=int, default=None, help=argparse.SUPPRESS)
    return parser


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _set_path(doc: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    if parts[0] != RUN_KEY and parts[0] in {f.name for f in dataclasses.fields(RunSettings)}:
        parts = [RUN_KEY, *parts]
    node = doc
    for i, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {dotted}: {'.'.join(parts[: i + 1])} is not an object")
        node = child
    node[parts[-1]] = value


def apply_overrides(doc: dict, args: argparse.Namespace) -> dict:
    """Return a copy of the raw config document with the command-line flags applied."""
    doc = json.loads(json.dumps(doc))
    for item in args.set:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        key, text = item.split("=", 1)
        _set_path(doc, key.strip(), _parse_value(text))
    flags = {
        "data.train": args.data,
        "output_dir": args.output_dir,
        "max_steps": args.max_steps,
        "stop_at_step": args.stop_at,
        "seed": args.seed,
    }
    for key, value in flags.items():
        if value is not None:
            _set_path(doc, key, value)
    if args.init_from is not None:
        _set_path(doc, "model.init_from", None if args.init_from.lower() == "none" else args.init_from)
    return doc


def parse_document(doc: dict, source: str = "config") -> TrainConfig:
    """Split a config document into the typed run block and the DeepSpeed part."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: expected a JSON object")
    ds_part = {k: v for k, v in doc.items() if k != RUN_KEY}
    run = _coerce(doc.get(RUN_KEY, {}), RunSettings, RUN_KEY)
    return TrainConfig(run=run, deepspeed=ds_part)


def load_config(argv: Sequence[str] | None = None) -> TrainConfig:
    """Parse the command line, read the config file and apply the overrides (no validation yet)."""
    args = build_arg_parser().parse_args(argv)
    path = Path(args.config)
    doc = _read_json(path, "--config", f"no such file {path}")
    return parse_document(apply_overrides(doc, args), str(path))


def _read_json(path: Path, where: str, missing: str) -> Any:
    """A JSON file's content; a missing or broken file is a ConfigError naming `where`."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{where}: {missing}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: {path} is not valid JSON: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Validation


@dataclass(frozen=True)
class ShardInfo:
    """What validation learnt from the shard manifests; the trainer pads to these lengths."""

    chunk_bytes: int
    inputs_length: int
    targets_length: int


def read_manifest(directory: str | Path, where: str) -> dict:
    """A shard directory's manifest, after checking each shard's size and rows against it."""
    try:
        manifest = load_manifest(directory)
        check_shards(directory, manifest)
    except ShardFormatError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return manifest


def _max_targets_length(chunk_bytes: int, density: float, mean_span: float) -> int:
    # Final chunks of a shard may be shorter, so pad to the longest over every possible length.
    return max(corrupted_lengths(n, density, mean_span)[1] for n in range(2, chunk_bytes + 1))


def _check_positive(value: float, where: str, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{where}: must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


def _validate_data(data: DataSettings) -> ShardInfo:
    if not data.train:
        raise ConfigError("run.data.train: no shard directories given (use --data DIR [DIR ...])")
    if data.weights is not None:
        if len(data.weights) != len(data.train):
            raise ConfigError(
                f"run.data.weights: {len(data.weights)} weights for {len(data.train)} directories in run.data.train"
            )
        if any(w < 0 for w in data.weights) or sum(data.weights) <= 0:
            raise ConfigError(f"run.data.weights: must be >= 0 with a positive sum, got {data.weights}")
    if data.weights is not None and data.temperature_alpha is not None:
        raise ConfigError("run.data.temperature_alpha: give either run.data.weights or a temperature, not both")
    if not 0 < data.noise_density < 1:
        raise ConfigError(f"run.data.noise_density: must be in (0, 1), got {data.noise_density}")
    _check_positive(data.mean_noise_span_length, "run.data.mean_noise_span_length")
    _check_positive(data.num_workers, "run.data.num_workers", allow_zero=True)
    chunk_bytes = 0
    for i, directory in enumerate(data.train):
        manifest = read_manifest(directory, f"run.data.train[{i}]")
        chunk_bytes = max(chunk_bytes, manifest["chunk_bytes"])
        inputs, _ = corrupted_lengths(manifest["chunk_bytes"], data.noise_density, data.mean_noise_span_length)
        if inputs > data.input_length:
            fitting = raw_length_for_inputs(data.input_length, data.noise_density, data.mean_noise_span_length)
            raise ConfigError(
                f"run.data.input_length: {directory} holds {manifest['chunk_bytes']}-byte chunks whose corrupted "
                f"inputs are {inputs} ids long, more than input_length {data.input_length}; re-pack the shards with "
                f"chunk_bytes <= {fitting} or raise input_length"
            )
        _, spans = noise_counts(manifest["chunk_bytes"], data.noise_density, data.mean_noise_span_length)
        if spans > MAX_SAFE_SENTINELS and not data.allow_sentinel_collisions:
            raise ConfigError(
                f"run.data.mean_noise_span_length: {manifest['chunk_bytes']}-byte chunks in {directory} get {spans} "
                f"noise spans, more than the {MAX_SAFE_SENTINELS} sentinels that cannot collide with UTF-8 bytes; "
                "raise the mean span length or set run.data.allow_sentinel_collisions"
            )
    targets = _max_targets_length(chunk_bytes, data.noise_density, data.mean_noise_span_length)
    return ShardInfo(chunk_bytes=chunk_bytes, inputs_length=data.input_length, targets_length=targets)


def _validate_model(model: ModelSettings) -> None:
    if model.init_from is not None and not Path(model.init_from).exists() and not _HUB_ID.match(model.init_from):
        raise ConfigError(
            f"run.model.init_from: {model.init_from!r} is neither an existing directory nor a hub id like google/byt5-small"
        )
    if model.type == "byt5" and model.freeze_gbst:
        raise ConfigError("run.model.freeze_gbst: a byt5 model has no GBST layers to freeze")
    _check_positive(model.z_loss, "run.model.z_loss", allow_zero=True)


def _validate_schedule(run: RunSettings) -> None:
    opt, sched = run.optimizer, run.schedule
    _check_positive(opt.lr, "run.optimizer.lr")
    _check_positive(opt.eps, "run.optimizer.eps")
    _check_positive(opt.weight_decay, "run.optimizer.weight_decay", allow_zero=True)
    if len(opt.betas) != 2 or not all(0 <= b < 1 for b in opt.betas):
        raise ConfigError(f"run.optimizer.betas: expected two numbers in [0, 1), got {opt.betas}")
    _check_positive(run.max_steps, "run.max_steps")
    if run.stop_at_step is not None:
        _check_positive(run.stop_at_step, "run.stop_at_step")
    _check_positive(sched.warmup_steps, "run.schedule.warmup_steps", allow_zero=True)
    if sched.warmup_steps > run.max_steps and sched.type == "cosine":
        raise ConfigError(
            f"run.schedule.warmup_steps: {sched.warmup_steps} warmup steps exceed run.max_steps {run.max_steps}"
        )
    if not 0 <= sched.final_lr_ratio <= 1:
        raise ConfigError(f"run.schedule.final_lr_ratio: must be in [0, 1], got {sched.final_lr_ratio}")
    for name in ("eval", "checkpoint", "logging"):
        _check_positive(getattr(run, name).interval, f"run.{name}.interval")
    _check_positive(run.eval.batches, "run.eval.batches", allow_zero=True)
    _check_positive(run.checkpoint.keep_last, "run.checkpoint.keep_last")
    _check_positive(run.max_nonfinite_in_row, "run.max_nonfinite_in_row")
    if run.logging.peak_tflops is not None:
        _check_positive(run.logging.peak_tflops, "run.logging.peak_tflops")
    if run.logging.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError("run.logging.tensorboard: tensorboard is not installed (pip install 'gbst-kebyt5[tensorboard]')")


def _ds_int(ds: dict, key: str, default: int | None) -> int | None:
    value = ds.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key}: expected a positive integer, got {value!r}")
    return value


def validate_batch_sizes(ds: dict, world_size: int) -> tuple[int, int, int]:
    """(micro batch, accumulation steps, global batch) after checking that they multiply up."""
    micro = _ds_int(ds, "train_micro_batch_size_per_gpu", None)
    accum = _ds_int(ds, "gradient_accumulation_steps", None)
    total = _ds_int(ds, "train_batch_size", None)
    if micro is None:
        raise ConfigError("train_micro_batch_size_per_gpu: required (the batch each rank processes per forward)")
    if accum is None:
        accum = 1 if total is None else total // (micro * world_size)
    if total is None:
        total = micro * accum * world_size
    if total != micro * accum * world_size or accum < 1:
        raise ConfigError(
            f"train_batch_size: {total} is not train_micro_batch_size_per_gpu {micro} x "
            f"gradient_accumulation_steps {accum} x {world_size} ranks"
        )
    return micro, accum, total


def _validate_deepspeed(ds: dict, run: RunSettings) -> None:
    for key in ("optimizer", "scheduler"):
        if key in ds:
            raise ConfigError(
                f"{key}: the optimizer and schedule are the run's client optimizer; set run.optimizer / run.schedule instead"
            )
    if ds.get("fp16", {}).get("enabled", False):
        raise ConfigError("fp16.enabled: T5 models overflow in fp16; use bf16")
    bf16 = ds.get("bf16", {})
    if not isinstance(bf16, dict) or not isinstance(bf16.get("enabled", False), bool):
        raise ConfigError(f"bf16: expected {{\"enabled\": true|false}}, got {bf16!r}")
    zero = ds.get("zero_optimization", {})
    if not isinstance(zero, dict):
        raise ConfigError(f"zero_optimization: expected an object, got {zero!r}")
    stage = zero.get("stage", 0)
    if stage not in (0, 1, 2, 3):
        raise ConfigError(f"zero_optimization.stage: expected 0, 1, 2 or 3, got {stage!r}")
    clip = ds.get("gradient_clipping", 0.0)
    if isinstance(clip, bool) or not isinstance(clip, (int, float)) or clip < 0:
        raise ConfigError(f"gradient_clipping: expected a number >= 0, got {clip!r}")


class _RecordingDict(dict):
    """A dict that remembers which keys were looked up, to find keys DeepSpeed never reads."""

    def __init__(self, *args: Any, seen: set | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen = set() if seen is None else seen

    def __getitem__(self, key: Any) -> Any:
        self.seen.add(key)
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self.seen.add(key)
        return super().get(key, default)

    def __contains__(self, key: Any) -> bool:
        self.seen.add(key)
        return super().__contains__(key)

    def __copy__(self) -> "_RecordingDict":
        return _RecordingDict(self, seen=self.seen)


def check_deepspeed_keys(ds: dict) -> None:
    """Let DeepSpeed parse its part and report the top-level keys it never read (typos)."""
    from deepspeed.runtime.config import DeepSpeedConfig

    # train_batch_size is checked by validate_batch_sizes against the real world size; DeepSpeed
    # would check it here against a world of one process.
    recording = _RecordingDict({k: v for k, v in ds.items() if k != "train_batch_size"})
    recording.seen.add("train_batch_size")
    try:
        DeepSpeedConfig(recording)
    except Exception as exc:  # DeepSpeed raises assertion, value and pydantic errors alike
        raise ConfigError(f"DeepSpeed rejected the config: {exc}") from None
    unknown = [k for k in ds if k not in recording.seen]
    if unknown:
        raise ConfigError(_unknown_key_message(unknown[0], sorted(recording.seen & set(ds)) or ["<none>"], "deepspeed"))


def validate(config: TrainConfig, world_size: int) -> ShardInfo:
    """Check the whole configuration; raise ConfigError naming the field at the first problem."""
    run = config.run
    _validate_deepspeed(config.deepspeed, run)
    validate_batch_sizes(config.deepspeed, world_size)
    _validate_model(run.model)
    _validate_schedule(run)
    return _validate_data(run.data)


# Fields that may change between a run and its resumption without breaking exactness.
# max_steps is among them, but a cosine schedule spans max_steps: to stop early and resume
# exactly, use stop_at_step instead.
RESUMABLE_FIELDS = ("output_dir", "max_steps", "stop_at_step", "eval", "checkpoint", "logging", "max_nonfinite_in_row")


def config_hash(config: TrainConfig) -> str:
    """Hash of everything that determines the training trajectory (stored in checkpoints)."""
    run = {k: v for k, v in dataclasses.asdict(config.run).items() if k not in RESUMABLE_FIELDS}
    run["model"].pop("init_from")  # a resumed run loads the checkpoint, not the warm start
    ds = {k: v for k, v in config.deepspeed.items() if k not in {"steps_per_print", "wall_clock_breakdown"}}
    text = json.dumps({"run": run, "deepspeed": ds}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]

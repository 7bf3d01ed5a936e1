"""Checks a parsed config against itself, the shard manifests and the model's config fields.

Everything is checked before any work starts, and every error names the field
(``run.data.train[1]``, ``train_micro_batch_size_per_gpu``), so that a typo never costs a cluster
allocation. The manifests also give the lengths the trainer pads batches to (`ShardInfo`).
"""
from __future__ import annotations

import importlib.util
import inspect
import re
from dataclasses import dataclass
from pathlib import Path

from data_prep.shard_format import ShardFormatError, check_shards, load_manifest
from data_prep.span_lengths import corrupted_lengths, noise_counts, raw_length_for_inputs
from pretrain.byte_vocab import MAX_SAFE_SENTINELS
from pretrain.config.errors import ConfigError, unknown_key_message
from pretrain.config.schema import DataSettings, ModelSettings, RunSettings, TrainConfig

# Hub ids look like "google/byt5-large"; anything else must be an existing local directory.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# The README's install command for the optional TensorBoard logger.
TENSORBOARD_INSTALL = "pip install -e '.[tensorboard]'"


@dataclass(frozen=True)
class ShardInfo:
    """What validation learnt from the shard manifests; the trainer pads to these lengths."""

    chunk_bytes: int
    inputs_length: int
    targets_length: int


def read_manifest(directory: str | Path, where: str, verify: bool = False) -> dict:
    """A shard directory's manifest, after checking each shard's size and rows (and with `verify`,
    its sha256) against it."""
    try:
        manifest = load_manifest(directory)
        check_shards(directory, manifest, verify)
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


def model_config_keys(model_type: str) -> list[str]:
    """The fields `model.overrides` may set: those of the model type's transformers config (its
    attributes, its constructor's arguments and their aliases)."""
    from transformers import T5Config

    from pretrain.modeling import GBSWT5Config

    cls = GBSWT5Config if model_type == "gbswt5" else T5Config
    arguments = [p.name for p in inspect.signature(cls.__init__).parameters.values()
                 if p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "self"]
    keys = {*cls().to_dict(), *arguments, *cls.attribute_map}
    return sorted(keys - {"model_type", "transformers_version", "architectures", "_name_or_path"})


def _validate_model(model: ModelSettings) -> None:
    if model.init_from is not None and not Path(model.init_from).exists() and not _HUB_ID.match(model.init_from):
        raise ConfigError(
            f"run.model.init_from: {model.init_from!r} is neither an existing directory nor a hub id like google/byt5-small"
        )
    if model.type == "byt5" and model.freeze_gbst:
        raise ConfigError("run.model.freeze_gbst: a byt5 model has no GBST layers to freeze")
    if model.type == "byt5" and model.loss != "logits":
        raise ConfigError(f"run.model.loss: {model.loss!r} is for gbswt5 models; a byt5 model trains on its logits (\"logits\")")
    _check_positive(model.z_loss, "run.model.z_loss", allow_zero=True)
    if model.overrides:
        known = model_config_keys(model.type)
        unknown = [key for key in model.overrides if key not in known]
        if unknown:
            raise ConfigError(unknown_key_message(unknown[0], known, "run.model.overrides"))


def warmup_exceeds_schedule(run: RunSettings) -> bool:
    """A cosine schedule spans max_steps, so its warmup cannot be longer."""
    return run.schedule.type == "cosine" and run.schedule.warmup_steps > run.max_steps


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
    if warmup_exceeds_schedule(run):
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
        raise ConfigError(f"run.logging.tensorboard: tensorboard is not installed ({TENSORBOARD_INSTALL})")


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


def _validate_deepspeed(ds: dict) -> None:
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


def validate(config: TrainConfig, world_size: int) -> ShardInfo:
    """Check the whole configuration; raise ConfigError naming the field at the first problem."""
    run = config.run
    _validate_deepspeed(config.deepspeed)
    validate_batch_sizes(config.deepspeed, world_size)
    _validate_model(run.model)
    _validate_schedule(run)
    return _validate_data(run.data)

"""The run block's schema: typed settings with their defaults, and parsing a config document.

A config file is a normal DeepSpeed JSON plus one block, ``"run"``, holding the run's own
settings. pydantic parses the block strictly (no string-to-number guessing; an int is accepted
where a float is expected) and refuses unknown keys; `errors.describe_validation_error` turns its
errors into the one-line, field-named messages users see.
"""
from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from pretrain.config.errors import ConfigError, describe_validation_error

RUN_KEY = "run"
RUN_CONFIG_FILE = "run_config.json"  # the resolved config, in the run directory

ModelType = Literal["gbswt5", "byt5"]
# The size presets of GBSWT5Config.from_preset (a test keeps the two lists equal).
Preset = Literal["tiny", "small", "base", "large"]
MODEL_TYPES: tuple[str, ...] = typing.get_args(ModelType)
PRESETS: tuple[str, ...] = typing.get_args(Preset)


class _Settings(BaseModel):
    # Assignment is not validated: validation.validate checks the values a caller has set.
    model_config = ConfigDict(strict=True, extra="forbid")


class ModelSettings(_Settings):
    type: ModelType = "gbswt5"
    preset: Preset = "small"
    # Config fields applied on top of the preset (or of the init_from checkpoint's config).
    overrides: dict[str, Any] = {}
    # A ByT5 checkpoint (hub id or directory) to warm start from, a GBSWT5 directory to continue
    # from, or None for random initialisation.
    init_from: str | None = None
    gradient_checkpointing: bool = False
    # Freeze the GBST layers (encoder.embed_tokens except the shared embedding table).
    freeze_gbst: bool = False
    z_loss: float = 0.0
    # Attention kernel (README, GPU section): auto = SDPA with the bias as a float mask on GPUs,
    # eager on CPU; flex = FlexAttention (fast, but its bias gradient is not bitwise reproducible).
    attention: Literal["auto", "eager", "sdpa", "flex"] = "auto"
    # torch.compile each encoder and decoder block (not the whole model).
    compile: bool = False
    # Training loss of GBSWT5: logits = full logits then cross entropy + z-loss; chunked = the same
    # from hidden states chunk by chunk (pure torch); liger = Liger Kernel on CUDA, else chunked.
    loss: Literal["logits", "chunked", "liger"] = "logits"


class DataSettings(_Settings):
    # Shard directories written by `python -m data_prep`; each one is a mixing component.
    train: list[str] = []
    weights: list[float] | None = None
    temperature_alpha: float | None = None
    input_length: int = 1024
    noise_density: float = 0.15
    mean_noise_span_length: float = 20.0
    allow_sentinel_collisions: bool = False
    num_workers: int = 0


class OptimizerSettings(_Settings):
    # adamw: torch AdamW. adamw_scaled: AdamW whose step is scaled by the parameter's RMS (nanoT5).
    type: Literal["adamw", "adamw_scaled"] = "adamw"
    lr: float = 1e-4
    betas: list[float] = [0.9, 0.999]
    eps: float = 1e-8
    weight_decay: float = 0.0


class ScheduleSettings(_Settings):
    type: Literal["cosine", "inverse_sqrt", "constant"] = "cosine"
    warmup_steps: int = 1000
    # Cosine decays to lr * final_lr_ratio at max_steps.
    final_lr_ratio: float = 0.1


class EvalSettings(_Settings):
    interval: int = 1000
    # Validation batches per rank (micro-batch sized); the same batches at every evaluation.
    batches: int = 20


class CheckpointSettings(_Settings):
    interval: int = 1000
    keep_last: int = 3
    # Also save at max_steps; throughput checks turn this off to skip a multi-GB write.
    save_final: bool = True
    # xxh3-64 of each file, taken while it is written and verified before a resume loads it
    # (bench/bench_checkpoint_checksum.py measures the cost).
    checksums: bool = True


class LoggingSettings(_Settings):
    interval: int = 10
    wandb: bool = True
    wandb_project: str = "gbswt5-pretrain"
    tensorboard: bool = False
    # Dense bf16 peak of one device in TFLOP/s for MFU; None = look the device up (CPU: no MFU).
    peak_tflops: float | None = None


class RunSettings(_Settings):
    model: ModelSettings = ModelSettings()
    data: DataSettings = DataSettings()
    optimizer: OptimizerSettings = OptimizerSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    eval: EvalSettings = EvalSettings()
    checkpoint: CheckpointSettings = CheckpointSettings()
    logging: LoggingSettings = LoggingSettings()
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
        return {**self.deepspeed, RUN_KEY: self.run.model_dump()}


def parse_document(doc: Any, source: str = "config") -> TrainConfig:
    """Split a config document into the typed run block and the DeepSpeed part."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: expected a JSON object")
    try:
        run = RunSettings.model_validate(doc.get(RUN_KEY, {}))
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(RunSettings, exc, RUN_KEY)) from None
    return TrainConfig(run=run, deepspeed={k: v for k, v in doc.items() if k != RUN_KEY})

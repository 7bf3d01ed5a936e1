"""The builders of a training run: model, DeepSpeed engine, data.

Each takes the validated configuration and returns one ready part; the Trainer calls them in
order (model before engine, engine before data: the data needs the engine's micro batch).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import deepspeed
import torch

from pretrain.collator import SpanCorruptionCollator
from pretrain.config import ShardInfo, TrainConfig
from pretrain.data import ShardStream, validation_batches
from pretrain.flops import device_peak_tflops
from pretrain.model_setup import MODEL_CONFIG_FILE, build_model, save_model_config
from pretrain.optim import build_optimizer, build_scheduler

LOG = logging.getLogger(__name__)


def model_for_run(config: TrainConfig, run_dir: Path, *, resuming: bool, rank: int) -> torch.nn.Module:
    """The run's model; rank 0 records its config in the run directory for resuming and export."""
    model = build_model(config.run.model, run_dir, resuming=resuming, device=init_device())
    # A resumed run that lacks the file (deleted, or older than it) gets it too: export needs it.
    if rank == 0 and (not resuming or not (run_dir / MODEL_CONFIG_FILE).exists()):
        run_dir.mkdir(parents=True, exist_ok=True)
        save_model_config(model, run_dir / MODEL_CONFIG_FILE)
    return model


def init_device() -> torch.device | None:
    """Where a random model is initialised: this rank's accelerator, or None (the CPU)."""
    from deepspeed.accelerator import get_accelerator

    accelerator = get_accelerator()
    return None if accelerator.device_name() == "cpu" else torch.device(accelerator.current_device_name())


def deepspeed_config(config: TrainConfig) -> dict:
    """The DeepSpeed block as passed to deepspeed.initialize, with this project's defaults."""
    ds = dict(config.deepspeed)
    ds.setdefault("zero_optimization", {"stage": 0})
    ds.setdefault("steps_per_print", 10**9)  # our own logging replaces DeepSpeed's
    if config.run.optimizer.type != "adamw":
        ds["zero_allow_untested_optimizer"] = True  # a client optimizer DeepSpeed has no test for
    return ds


def build_engine(model: torch.nn.Module, config: TrainConfig) -> Any:
    """The DeepSpeed engine around the model, with this run's optimizer and schedule."""
    run = config.run
    ds_config = deepspeed_config(config)
    partitioned = ds_config.get("bf16", {}).get("enabled", False) or ds_config["zero_optimization"]["stage"] > 0
    optimizer = build_optimizer(model.parameters(), run.optimizer, partitioned=partitioned)
    scheduler = build_scheduler(optimizer, run.schedule, run.max_steps)
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, lr_scheduler=scheduler, config=ds_config)
    return engine


def build_data(config: TrainConfig, shards: ShardInfo, micro_batch: int, rank: int,
               world: int) -> tuple[ShardStream, list[dict[str, torch.Tensor]]]:
    """This rank's training stream and its fixed validation batches (empty when eval is off)."""
    run = config.run
    data = run.data
    collator = SpanCorruptionCollator(
        noise_density=data.noise_density, mean_noise_span_length=data.mean_noise_span_length,
        seed=run.seed, allow_sentinel_collisions=data.allow_sentinel_collisions,
        pad_inputs_to=shards.inputs_length, pad_targets_to=shards.targets_length,
    )
    stream = ShardStream(
        data.train, batch_size=micro_batch, collator=collator, split="train", seed=run.seed,
        rank=rank, world_size=world, weights=data.weights,
        temperature_alpha=data.temperature_alpha, num_workers=data.num_workers,
    )
    val_batches = validation_batches(
        data.train, batch_size=micro_batch, collator=collator, rank=rank, world_size=world,
        max_batches=run.eval.batches,
    ) if run.eval.batches else []
    if run.eval.batches and not val_batches:
        LOG.warning("the validation splits of run.data.train hold fewer rows than ranks; evaluation is off")
    return stream, val_batches


def known_peak_tflops() -> float | None:
    """This CUDA device's dense bf16 peak in TFLOP/s, if its name is known (None without CUDA)."""
    return device_peak_tflops(torch.cuda.get_device_name()) if torch.cuda.is_available() else None


def peak_flops(config: TrainConfig) -> float | None:
    """One device's dense bf16 peak in FLOP/s: the configured one, else a known CUDA device's."""
    configured = config.run.logging.peak_tflops
    peak = configured if configured is not None else known_peak_tflops()
    return None if peak is None else peak * 1e12


def device_name() -> str:
    return torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"


def parameter_counts(model: torch.nn.Module) -> tuple[int, int]:
    """(all, trainable) parameters; ZeRO-3 leaves a partitioned placeholder with the true ds_numel."""
    sizes = [(getattr(p, "ds_numel", p.numel()), p.requires_grad) for p in model.parameters()]
    return sum(n for n, _ in sizes), sum(n for n, trainable in sizes if trainable)

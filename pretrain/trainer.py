"""The DeepSpeed training loop: span-corruption pretraining with eval, logging and checkpoints.

One optimizer step = `gradient_accumulation_steps` micro-batches on every rank. Every micro-batch
ends with one small all-reduce that carries the loss, a non-finite flag and a stop request, so
all ranks take the same decisions (skip, stop, checkpoint) at the same micro-batch and no rank is
left waiting in a collective.
"""
from __future__ import annotations

import dataclasses
import logging
import resource
import signal
import time
from pathlib import Path
from typing import Any

import deepspeed
import torch
import torch.distributed as dist
import torch.nn.functional as F

from data_prep.atomic import write_json
from pretrain import checkpoint
from pretrain.checkpoint import ResumeError
from pretrain.collator import SpanCorruptionCollator
from pretrain.config import RUN_CONFIG_FILE, ShardInfo, TrainConfig, config_hash, resume_refusal, write_fingerprint
from pretrain.data import ShardStream, validation_batches
from pretrain.flops import device_peak_tflops, training_flops_per_example
from pretrain.metrics import LOSS_CURVE_FILE, MetricsLogger, plot_loss_curve
from pretrain.model_setup import MODEL_CONFIG_FILE, build_model, save_model_config
from pretrain.modeling import GBSWT5ForConditionalGeneration, span_loss
from pretrain.optim import build_optimizer, build_scheduler

LOG = logging.getLogger(__name__)
EXIT_NONFINITE = 3


class NonFiniteLossError(RuntimeError):
    """Too many consecutive non-finite losses; a checkpoint of the last good step was written."""


@dataclasses.dataclass
class _Window:
    """Sums over the micro-batches since the last log line."""

    loss: float = 0.0
    micro_batches: int = 0
    examples: int = 0
    input_ids: int = 0
    tokens: int = 0
    lr: float = 0.0  # the learning rate the last optimizer step used
    started: float = dataclasses.field(default_factory=lambda: time.perf_counter())  # late-bound: tests fake the clock


def seed_everything(seed: int) -> None:
    deepspeed.runtime.utils.set_random_seed(seed)


def _numel(param: torch.nn.Parameter) -> int:
    return getattr(param, "ds_numel", param.numel())  # ZeRO-3 leaves a partitioned placeholder


def _model_inputs(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    keys = ("input_ids", "attention_mask", "decoder_input_ids", "decoder_attention_mask")
    return {k: batch[k].to(device, non_blocking=True) for k in keys}


class Trainer:
    def __init__(self, config: TrainConfig, shards: ShardInfo) -> None:
        self.config = config
        self.run = run = config.run
        self.shards = shards
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.run_dir = Path(run.output_dir)
        self.ckpt_dir = self.run_dir / checkpoint.CHECKPOINT_DIR
        self.hash = config_hash(config)
        self.stop_requested = False
        self._signals_seen = 0
        resuming = checkpoint.resumable(self.ckpt_dir)
        if not resuming and checkpoint.list_tags(self.ckpt_dir):
            LOG.warning("%s holds no complete checkpoint (a save was interrupted); starting the run afresh",
                        self.ckpt_dir)
        seed_everything(run.seed)
        model = build_model(run.model, self.run_dir, resuming=resuming)
        # A resumed run that lacks the file (deleted, or older than it) gets it too: export needs it.
        if self.rank == 0 and (not resuming or not (self.run_dir / MODEL_CONFIG_FILE).exists()):
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_model_config(model, self.run_dir / MODEL_CONFIG_FILE)
        self.is_gbswt5 = isinstance(model, GBSWT5ForConditionalGeneration)
        ds_config = self._deepspeed_config()
        partitioned = ds_config.get("bf16", {}).get("enabled", False) or ds_config["zero_optimization"]["stage"] > 0
        optimizer = build_optimizer(model.parameters(), run.optimizer, partitioned=partitioned)
        scheduler = build_scheduler(optimizer, run.schedule, run.max_steps)
        self.engine, _, _, _ = deepspeed.initialize(
            model=model, optimizer=optimizer, lr_scheduler=scheduler, config=ds_config,
        )
        self.model_config = model.config
        self.micro_batch = self.engine.train_micro_batch_size_per_gpu()

        collator = SpanCorruptionCollator(
            noise_density=run.data.noise_density, mean_noise_span_length=run.data.mean_noise_span_length,
            seed=run.seed, allow_sentinel_collisions=run.data.allow_sentinel_collisions,
            pad_inputs_to=shards.inputs_length, pad_targets_to=shards.targets_length,
        )
        self.stream = ShardStream(
            run.data.train, batch_size=self.micro_batch, collator=collator, split="train", seed=run.seed,
            rank=self.rank, world_size=self.world, weights=run.data.weights,
            temperature_alpha=run.data.temperature_alpha, num_workers=run.data.num_workers,
        )
        self.val_batches = validation_batches(
            run.data.train, batch_size=self.micro_batch, collator=collator, rank=self.rank, world_size=self.world,
            max_batches=run.eval.batches,
        ) if run.eval.batches else []
        if run.eval.batches and not self.val_batches:
            LOG.warning("the validation splits of run.data.train hold fewer rows than ranks; evaluation is off")
        if resuming:
            self._resume()
        if self.rank == 0:  # after the resume checks, so a refused resume keeps the original
            write_json(self.run_dir / RUN_CONFIG_FILE, config.to_json_dict())
            write_fingerprint(self.run_dir, config)
        self.flops_per_example = training_flops_per_example(
            self.model_config, shards.inputs_length, shards.targets_length)
        self.peak_flops = self._peak_flops()
        self.metrics = MetricsLogger(
            self.run_dir, run.logging, config.to_json_dict(), enabled=self.rank == 0,
            run_name=f"{self.run_dir.name}-{self.hash}",
        )
        LOG.info(
            "%s: %s parameters (%s trainable), %d ranks x micro batch %d x %d accumulation, inputs %d / targets %d "
            "ids, %.3g training FLOPs per example, config hash %s",
            type(model).__name__, f"{sum(_numel(p) for p in model.parameters()):,}",
            f"{sum(_numel(p) for p in model.parameters() if p.requires_grad):,}", self.world, self.micro_batch,
            self.engine.gradient_accumulation_steps(), shards.inputs_length, shards.targets_length,
            self.flops_per_example, self.hash,
        )

    # -- setup ---------------------------------------------------------------------------------

    def _deepspeed_config(self) -> dict:
        ds = dict(self.config.deepspeed)
        ds.setdefault("zero_optimization", {"stage": 0})
        ds.setdefault("steps_per_print", 10**9)  # our own logging replaces DeepSpeed's
        if self.run.optimizer.type != "adamw":
            ds["zero_allow_untested_optimizer"] = True  # a client optimizer DeepSpeed has no test for
        return ds

    def _peak_flops(self) -> float | None:
        if self.run.logging.peak_tflops is not None:
            return self.run.logging.peak_tflops * 1e12
        if torch.cuda.is_available():
            peak = device_peak_tflops(torch.cuda.get_device_name())
            return None if peak is None else peak * 1e12
        return None

    def _resume(self) -> None:
        state = checkpoint.load_latest(self.engine, self.ckpt_dir, verify_checksums=self.run.checkpoint.checksums)
        if state is None:
            raise ResumeError(
                f"{self.ckpt_dir} holds checkpoints but none could be loaded (see the warnings above); "
                "move the directory away to start a new run there"
            )
        if state["config_hash"] != self.hash:
            raise ResumeError(resume_refusal(self.ckpt_dir, self.run_dir, state["config_hash"], self.config))
        if state["world_size"] != self.world:
            raise ResumeError(
                f"{self.ckpt_dir}: the checkpoint was written by {state['world_size']} ranks, this run has {self.world}; "
                "resume with the same number of ranks"
            )
        mine = state["ranks"][self.rank]
        self.stream.load_state_dict(mine["stream"])
        checkpoint.set_rng_state(mine["rng"])
        LOG.info("resumed from step %d of %s", self.engine.global_steps, self.ckpt_dir)

    # -- one micro-batch -----------------------------------------------------------------------

    def forward_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Training loss of one micro-batch (cross entropy + z-loss), in float32."""
        inputs = _model_inputs(batch, self.engine.device)
        labels = batch["labels"].to(self.engine.device)
        if self.is_gbswt5:
            return self.engine(**inputs, labels=labels).loss.float()
        # transformers' T5 has no z-loss and computes its loss in the model dtype; use the one
        # loss definition of this project (GBSWT5's) on its logits instead.
        return span_loss(self.engine(**inputs).logits, labels, self.run.model.z_loss)

    def _agree(self, loss: torch.Tensor) -> tuple[float, bool, bool]:
        """(mean loss over ranks, any rank non-finite, any rank asked to stop)."""
        finite = bool(torch.isfinite(loss).item())
        flags = torch.tensor(
            [loss.item() if finite else 0.0, 0.0 if finite else 1.0, 1.0 if self.stop_requested else 0.0],
            dtype=torch.float64, device=self.engine.device,  # NCCL reduces device tensors only
        )
        dist.all_reduce(flags)
        return flags[0].item() / self.world, flags[1].item() > 0, flags[2].item() > 0

    # -- evaluation ------------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Cross entropy per target byte and byte accuracy over the fixed validation batches."""
        self.engine.eval()
        sums = torch.zeros(3, dtype=torch.float64, device=self.engine.device)  # loss sum, correct, target ids
        for batch in self.val_batches:
            logits = self.engine(**_model_inputs(batch, self.engine.device)).logits.float()
            labels = batch["labels"].to(logits.device)
            kept = labels != -100
            sums[0] += F.cross_entropy(logits.view(-1, logits.shape[-1]), labels.view(-1), ignore_index=-100,
                                       reduction="sum")
            sums[1] += (logits.argmax(-1)[kept] == labels[kept]).sum()
            sums[2] += kept.sum()
        self.engine.train()
        dist.all_reduce(sums)
        count = max(sums[2].item(), 1.0)
        return {"loss": sums[0].item() / count, "byte_accuracy": sums[1].item() / count, "target_ids": int(sums[2])}

    # -- checkpoints -----------------------------------------------------------------------------

    def save(self) -> None:
        step = self.engine.global_steps
        mine = {"stream": self.stream.state_dict(), "rng": checkpoint.rng_state()}
        ranks: list[Any] = [None] * self.world
        dist.all_gather_object(ranks, mine)
        client_state = {"step": step, "config_hash": self.hash, "world_size": self.world, "ranks": ranks}
        tag = checkpoint.save(self.engine, self.ckpt_dir, step, client_state, self.run.checkpoint)
        LOG.info("saved checkpoint %s", self.ckpt_dir / tag)

    # -- logging ---------------------------------------------------------------------------------

    def _log_train(self, window: _Window) -> None:
        elapsed = max(time.perf_counter() - window.started, 1e-9)
        examples_per_s = window.examples / elapsed
        grad_norm = self.engine.get_global_grad_norm()
        record = {
            "step": self.engine.global_steps, "kind": "train",
            "loss": window.loss / max(window.micro_batches, 1),
            "lr": window.lr,
            "grad_norm": float(grad_norm) if grad_norm is not None else None,
            "examples_per_s": examples_per_s,
            "input_bytes_per_s": window.input_ids / elapsed,
            "tokens_per_s": window.tokens / elapsed,
            "epoch": self.stream.epoch,
        }
        model_flops = self.flops_per_example * examples_per_s
        record["model_tflops"] = model_flops / 1e12
        if self.peak_flops:
            record["mfu"] = model_flops / (self.peak_flops * self.world)
        if torch.cuda.is_available():
            record["peak_mem_gb"] = torch.cuda.max_memory_allocated() / 2**30
        else:
            record["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        self.metrics.log(record)

    # -- signals ---------------------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._signals_seen += 1
        if self._signals_seen > 1 and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C aborts without waiting for the checkpoint
        self.stop_requested = True
        LOG.warning("received %s: saving a checkpoint at the end of this step, then exiting",
                    signal.Signals(signum).name)

    # -- the loop --------------------------------------------------------------------------------

    def train(self) -> int:
        """Run to max_steps (or stop_at_step, or a stop signal); return the process exit code."""
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            return self._train()
        except NonFiniteLossError as exc:
            LOG.error("%s", exc)
            return EXIT_NONFINITE
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._finish()

    def _train(self) -> int:
        run = self.run
        batches = iter(self.stream)
        window = _Window()
        in_row = 0
        mid_step = False  # micro-batches of an unfinished accumulation have been backpropagated
        self.engine.train()
        end = min(run.max_steps, run.stop_at_step or run.max_steps)
        while self.engine.global_steps < end:
            batch = next(batches)
            loss = self.forward_loss(batch)
            mean_loss, nonfinite, stop = self._agree(loss)
            if nonfinite:
                in_row += 1
                LOG.warning("non-finite loss at step %d (%d in a row): batch skipped",
                            self.engine.global_steps + 1, in_row)
                if in_row >= run.max_nonfinite_in_row:
                    # Mid-step the accumulated gradients cannot go into a checkpoint, and a data
                    # position saved there would skip their micro-batches: keep the last checkpoint.
                    if not mid_step:
                        self.save()
                    saved = "the last checkpoint" if mid_step else f"step {self.engine.global_steps}"
                    raise NonFiniteLossError(
                        f"{in_row} non-finite losses in a row at step {self.engine.global_steps + 1} "
                        f"(run.max_nonfinite_in_row); stopped, a rerun resumes from {saved}. "
                        "Lower the learning rate or check the data, then rerun to resume"
                    )
                continue
            in_row = 0
            boundary = self.engine.is_gradient_accumulation_boundary()
            window.lr = self.engine.get_lr()[0]
            self.engine.backward(loss)
            self.engine.step()
            mid_step = not boundary
            window.loss += mean_loss
            window.micro_batches += 1
            input_ids = int(batch["attention_mask"].sum())
            window.examples += batch["input_ids"].shape[0] * self.world
            window.input_ids += input_ids * self.world
            window.tokens += (input_ids + int((batch["labels"] != -100).sum())) * self.world
            if not boundary:
                continue
            step = self.engine.global_steps
            if step % run.logging.interval == 0:
                self._log_train(window)
                window = _Window()
            paused = time.perf_counter()
            if step % run.eval.interval == 0 or step == end:
                if self.val_batches:
                    self.metrics.log({"step": step, "kind": "eval", **self.evaluate()})
            final = step == end and run.checkpoint.save_final
            if stop or final or step % run.checkpoint.interval == 0:
                self.save()
            # Throughput counts training only: evaluation and saving time leave the window.
            window.started += time.perf_counter() - paused
            if stop:
                LOG.warning("stopped at step %d on request; rerun the same command to resume", step)
                return 0
        return 0

    def _finish(self) -> None:
        if self.rank == 0:
            self.metrics.close()
            if self.metrics.path.exists():
                plot_loss_curve(self.metrics.path, self.run_dir / LOSS_CURVE_FILE)

"""The DeepSpeed training loop: span-corruption pretraining with eval, logging and checkpoints.

One optimizer step = `gradient_accumulation_steps` micro-batches on every rank. Every micro-batch
ends with one small all-reduce that carries the loss, a non-finite flag and a stop request, so
all ranks take the same decisions (skip, stop, checkpoint) at the same micro-batch and no rank is
left waiting in a collective.
"""
from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Any

import deepspeed
import torch
import torch.distributed as dist

from data_prep.atomic import write_json
from pretrain import checkpoint
from pretrain.checkpoint import ResumeError
from pretrain.collator import LABEL_PAD
from pretrain.config import (RUN_CONFIG_FILE, RunSettings, ShardInfo, TrainConfig, config_hash, resume_refusal,
                             write_fingerprint)
from pretrain.flops import training_flops_per_example
from pretrain.metrics import LOSS_CURVE_FILE, MetricsLogger, plot_loss_curve
from pretrain.mixture import describe_mixture
from pretrain.modeling import span_loss
from pretrain.throughput import Progress, Window, peak_memory
from pretrain.train_setup import (build_data, build_engine, device_name, model_for_run,
                                  parameter_counts, peak_flops)

LOG = logging.getLogger(__name__)
EXIT_NONFINITE = 3


class NonFiniteLossError(RuntimeError):
    """Too many consecutive non-finite losses; a checkpoint of the last good step was written."""


def seed_everything(seed: int) -> None:
    deepspeed.runtime.utils.set_random_seed(seed)


def _model_inputs(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    keys = ("input_ids", "attention_mask", "decoder_input_ids", "decoder_attention_mask")
    return {k: batch[k].to(device, non_blocking=True) for k in keys}


def end_step(run: RunSettings) -> int:
    """The step this invocation stops at."""
    return min(run.max_steps, run.stop_at_step or run.max_steps)


def already_done(config: TrainConfig) -> bool:
    """Whether the run's newest checkpoint is of this configuration at its end step or later, on
    every rank (collective): then a rerun says so and builds nothing."""
    run, end = config.run, end_step(config.run)
    ckpt_dir = Path(run.output_dir) / checkpoint.CHECKPOINT_DIR
    step = checkpoint.finished_step(ckpt_dir, config_hash(config), end, verify_checksums=run.checkpoint.checksums)
    if step is None:
        return False
    bound = "max_steps" if end == run.max_steps else "stop_at_step"
    LOG.info("%s: already at %s (%d; newest checkpoint: step %d), nothing to do", run.output_dir, bound, end, step)
    return True


class Trainer:
    def __init__(self, config: TrainConfig, shards: ShardInfo) -> None:
        self.config, self.run, self.shards = config, config.run, shards
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.run_dir = Path(self.run.output_dir)
        self.ckpt_dir = self.run_dir / checkpoint.CHECKPOINT_DIR
        self.hash = config_hash(config)
        self.stop_requested, self._signals_seen = False, 0
        resuming = self._resuming()
        seed_everything(self.run.seed)
        model = model_for_run(config, self.run_dir, resuming=resuming, rank=self.rank)
        self.engine = build_engine(model, config)
        self.micro_batch = self.engine.train_micro_batch_size_per_gpu()
        self.stream, self.val_batches = build_data(config, shards, self.micro_batch, self.rank, self.world)
        if resuming:
            self._resume()
        if self.rank == 0:  # after the resume checks, so a refused resume keeps the original
            write_json(self.run_dir / RUN_CONFIG_FILE, config.to_json_dict())
            write_fingerprint(self.run_dir, config)
        self.flops_per_example = training_flops_per_example(model.config, shards.inputs_length, shards.targets_length)
        self.peak_flops = peak_flops(config)
        self.metrics = MetricsLogger(self.run_dir, config.run.logging, config.to_json_dict(), enabled=self.rank == 0,
                                     run_name=f"{self.run_dir.name}-{self.hash}", max_steps=config.run.max_steps)
        self._log_setup(model)

    @property
    def end(self) -> int:
        return end_step(self.run)

    # -- setup ---------------------------------------------------------------------------------

    def _resuming(self) -> bool:
        resuming = checkpoint.resumable(self.ckpt_dir)
        if not resuming and checkpoint.list_tags(self.ckpt_dir):
            LOG.warning("%s holds no complete checkpoint (a save was interrupted); starting the run afresh",
                        self.ckpt_dir)
        return resuming

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

    def _log_setup(self, model: torch.nn.Module) -> None:
        total, trainable = parameter_counts(model)
        LOG.info(
            "%s: %s parameters (%s trainable), %d ranks x micro batch %d x %d accumulation, inputs %d / targets %d "
            "ids, %.3g training FLOPs per example, config hash %s",
            type(model).__name__, f"{total:,}", f"{trainable:,}", self.world, self.micro_batch,
            self.engine.gradient_accumulation_steps(), self.shards.inputs_length, self.shards.targets_length,
            self.flops_per_example, self.hash,
        )
        data = self.run.data
        for line in describe_mixture(data.train, self.stream.rows, self.stream.counts, data.weights,
                                     data.temperature_alpha):
            LOG.info("%s", line)
        if self.peak_flops is None:
            LOG.info("MFU is not logged: the bf16 peak of %s is not known; set it with "
                     "--set logging.peak_tflops=TFLOPS (one device's dense bf16 peak)", device_name())

    # -- one micro-batch -----------------------------------------------------------------------

    def forward_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Training loss of one micro-batch (cross entropy + z-loss), in float32: of the logits, or
        with run.model.loss chunked / liger the model's own from its hidden states (no logits)."""
        labels = batch["labels"].to(self.engine.device)
        if self.run.model.loss != "logits":
            return self.engine(**_model_inputs(batch, self.engine.device), labels=labels).loss
        return span_loss(self.forward_logits(batch), labels, self.run.model.z_loss)

    def forward_logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.engine(**_model_inputs(batch, self.engine.device)).logits

    def _agree(self, loss: torch.Tensor) -> tuple[float, bool, bool]:
        """(mean loss over ranks, any rank non-finite, any rank asked to stop)."""
        finite = bool(torch.isfinite(loss).item())
        flags = torch.tensor(
            [loss.item() if finite else 0.0, 0.0 if finite else 1.0, 1.0 if self.stop_requested else 0.0],
            dtype=torch.float64, device=self.engine.device,  # NCCL reduces device tensors only
        )
        dist.all_reduce(flags)
        return flags[0].item() / self.world, flags[1].item() > 0, flags[2].item() > 0

    def micro_step(self, batch: dict[str, torch.Tensor]) -> tuple[bool, bool]:
        """Train on one micro-batch, or skip it if its loss is non-finite on any rank.

        Returns (an optimizer step ended, a stop was requested on some rank).
        """
        loss = self.forward_loss(batch)
        mean_loss, nonfinite, stop = self._agree(loss)
        if nonfinite:
            self._skip_nonfinite()
            return False, False
        self.nonfinite_in_row = 0
        boundary = self.engine.is_gradient_accumulation_boundary()
        self.window.lr = self.engine.get_lr()[0]
        self.engine.backward(loss)
        self.engine.step()
        self.mid_step = not boundary
        self.window.add(mean_loss, batch, self.world)
        return boundary, stop

    def _skip_nonfinite(self) -> None:
        self.nonfinite_in_row += 1
        step = self.engine.global_steps
        LOG.warning("non-finite loss at step %d (%d in a row): batch skipped", step + 1, self.nonfinite_in_row)
        if self.nonfinite_in_row < self.run.max_nonfinite_in_row:
            return
        # Mid-step the accumulated gradients cannot go into a checkpoint, and a data position
        # saved there would skip their micro-batches: keep the last checkpoint.
        if not self.mid_step:
            self.save()
        saved = "the last checkpoint" if self.mid_step else f"step {step}"
        raise NonFiniteLossError(
            f"{self.nonfinite_in_row} non-finite losses in a row at step {step + 1} (run.max_nonfinite_in_row); "
            f"stopped, a rerun resumes from {saved}. Lower the learning rate or check the data, then rerun to resume"
        )

    # -- evaluation ------------------------------------------------------------------------------

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Cross entropy per target byte (the training loss without z-loss) and byte accuracy
        over the fixed validation batches."""
        self.engine.eval()
        sums = torch.zeros(3, dtype=torch.float64, device=self.engine.device)  # loss sum, correct, target ids
        for batch in self.val_batches:
            logits = self.forward_logits(batch).float()
            labels = batch["labels"].to(logits.device)
            kept = labels != LABEL_PAD
            sums[0] += span_loss(logits, labels) * kept.sum()
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

    # -- the interval actions, at the end of optimizer step `step` -------------------------------

    def maybe_log(self, step: int) -> None:
        if step % self.run.logging.interval:
            return
        grad_norm = self.engine.get_global_grad_norm()
        self.metrics.log({
            "step": step, "kind": "train",
            **self.window.rates(self.flops_per_example, self.peak_flops, self.world),
            "grad_norm": float(grad_norm) if grad_norm is not None else None,
            "epoch": self.stream.epoch,
            **peak_memory(),
            "eta_s": self.progress.eta_s(step),
        })
        self.window = Window()

    def maybe_eval(self, step: int) -> None:
        if (step % self.run.eval.interval == 0 or step == self.end) and self.val_batches:
            self.metrics.log({"step": step, "kind": "eval", **self.evaluate()})

    def maybe_save(self, step: int, stop: bool) -> None:
        final = step == self.end and self.run.checkpoint.save_final
        if stop or final or step % self.run.checkpoint.interval == 0:
            self.save()

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
        batches = iter(self.stream)
        self.window, self.progress = Window(), Progress(self.engine.global_steps, self.end)
        self.nonfinite_in_row, self.mid_step = 0, False  # mid_step: part of an accumulation is backpropagated
        self.engine.train()
        while self.engine.global_steps < self.end:
            with self.window.waiting_for_data():
                batch = next(batches)
            step_ended, stop = self.micro_step(batch)
            if not step_ended:
                continue
            step = self.engine.global_steps
            self.maybe_log(step)
            with self.window.paused():  # throughput counts training only
                self.maybe_eval(step)
                self.maybe_save(step, stop)
            if stop:
                LOG.warning("stopped at step %d on request; rerun the same command to resume", step)
                return 0
        return 0

    def _finish(self) -> None:
        if self.rank == 0:
            self.metrics.close()
            if self.metrics.path.exists():
                plot_loss_curve(self.metrics.path, self.run_dir / LOSS_CURVE_FILE)

"""What a training log line reports: sums since the last line, rates, MFU, memory and time left.

Throughput counts training only: the loop pauses the window while it evaluates or saves. The
time left is wall time, evaluation and saving included, so it is what a person waits for.
"""
from __future__ import annotations

import contextlib
import dataclasses
import resource
import time
from collections.abc import Iterator

import torch

from pretrain.collator import LABEL_PAD


@dataclasses.dataclass
class Window:
    """Sums over the micro-batches since the last log line (counts are global: all ranks)."""

    loss: float = 0.0
    micro_batches: int = 0
    examples: int = 0
    input_ids: int = 0
    tokens: int = 0
    lr: float = 0.0  # the learning rate the last optimizer step used
    data_wait: float = 0.0  # seconds blocked in the data iterator
    started: float = dataclasses.field(default_factory=lambda: time.perf_counter())  # late-bound: tests fake the clock

    def add(self, mean_loss: float, batch: dict[str, torch.Tensor], world: int) -> None:
        """One micro-batch trained on every rank (this rank's batch stands for each)."""
        input_ids = int(batch["attention_mask"].sum())
        self.loss += mean_loss
        self.micro_batches += 1
        self.examples += batch["input_ids"].shape[0] * world
        self.input_ids += input_ids * world
        self.tokens += (input_ids + int((batch["labels"] != LABEL_PAD).sum())) * world

    @contextlib.contextmanager
    def _timed(self, field: str) -> Iterator[None]:
        """Add the seconds spent inside to `field`."""
        start = time.perf_counter()
        try:
            yield
        finally:
            setattr(self, field, getattr(self, field) + time.perf_counter() - start)

    def paused(self) -> contextlib.AbstractContextManager[None]:
        """Time spent inside leaves the window's throughput (its start moves on by as much)."""
        return self._timed("started")

    def waiting_for_data(self) -> contextlib.AbstractContextManager[None]:
        """Time spent inside is time the step waited for its batch (it stays in the window)."""
        return self._timed("data_wait")

    def rates(self, flops_per_example: float, peak_flops: float | None, world: int) -> dict[str, float]:
        """Mean loss, examples / input bytes / tokens per second, model TFLOP/s, the fraction of the
        time spent waiting for data, and MFU (a fraction)."""
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        examples_per_s = self.examples / elapsed
        model_flops = flops_per_example * examples_per_s
        out = {
            "loss": self.loss / max(self.micro_batches, 1),
            "lr": self.lr,
            "examples_per_s": examples_per_s,
            "input_bytes_per_s": self.input_ids / elapsed,
            "tokens_per_s": self.tokens / elapsed,
            "model_tflops": model_flops / 1e12,
            "data_wait_fraction": self.data_wait / elapsed,
        }
        if peak_flops:
            out["mfu"] = model_flops / (peak_flops * world)
        return out


class Progress:
    """Wall time per optimizer step since this process started training, and the time left."""

    def __init__(self, first_step: int, end: int) -> None:
        self.first_step, self.end = first_step, end
        self.started = time.perf_counter()

    def eta_s(self, step: int) -> float | None:
        done = step - self.first_step
        if done <= 0:
            return None
        return (time.perf_counter() - self.started) / done * max(self.end - step, 0)


def peak_memory() -> dict[str, float]:
    """Peak accelerator memory of this process, or its peak resident set on CPU, in GiB."""
    if torch.cuda.is_available():
        return {"peak_mem_gb": torch.cuda.max_memory_allocated() / 2**30}
    return {"peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}

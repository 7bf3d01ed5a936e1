"""The training loop's bookkeeping, driven with a fake DeepSpeed engine and a fake clock."""
from __future__ import annotations

import types

import torch

import pretrain.trainer as trainer_module
from pretrain.trainer import Trainer

MICRO_BATCH_SECONDS = 0.01
EVAL_SECONDS = 0.5
SAVE_SECONDS = 0.25


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeEngine:
    """Counts micro-batches; every second one ends an optimizer step."""

    def __init__(self) -> None:
        self.global_steps = 0
        self.micro = 0

    def is_gradient_accumulation_boundary(self) -> bool:
        return self.micro % 2 == 1

    def get_lr(self) -> list[float]:
        return [1e-3]

    def backward(self, loss) -> None:
        pass

    def step(self) -> None:
        self.global_steps += self.is_gradient_accumulation_boundary()
        self.micro += 1

    def train(self) -> None:
        pass

    def get_global_grad_norm(self) -> float:
        return 1.0


def test_throughput_excludes_evaluation_and_checkpoint_time(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(trainer_module.time, "perf_counter", clock)
    batch = {"input_ids": torch.zeros(4, 8, dtype=torch.long), "attention_mask": torch.ones(4, 8, dtype=torch.long),
             "labels": torch.zeros(4, 3, dtype=torch.long)}

    class Stream:
        epoch = 0

        def __iter__(self):
            while True:
                clock.now += MICRO_BATCH_SECONDS
                yield batch

    def slow(seconds, result=None):
        def run():
            clock.now += seconds
            return result
        return run

    records: list[dict] = []
    trainer = object.__new__(Trainer)
    trainer.engine, trainer.world, trainer.flops_per_example, trainer.peak_flops = FakeEngine(), 1, 1.0, None
    trainer.metrics = types.SimpleNamespace(log=records.append)
    trainer.stream, trainer.val_batches = Stream(), [object()]
    trainer.forward_loss = lambda b: torch.tensor(1.0)
    trainer._agree = lambda loss: (1.0, False, False)
    trainer.evaluate = slow(EVAL_SECONDS, {"loss": 1.0})
    trainer.save = slow(SAVE_SECONDS)
    trainer.run = types.SimpleNamespace(
        max_steps=6, stop_at_step=None, max_nonfinite_in_row=3,
        logging=types.SimpleNamespace(interval=2), eval=types.SimpleNamespace(interval=2),
        checkpoint=types.SimpleNamespace(interval=3, save_final=True),
    )
    trainer._train()
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == [2, 4, 6]
    # 4 examples per micro-batch of 10 ms: 400 examples/s in every window, whatever ran between.
    for record in train:
        assert abs(record["examples_per_s"] - 4 / MICRO_BATCH_SECONDS) < 1e-6

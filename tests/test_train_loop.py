"""The training loop's bookkeeping, driven with a fake DeepSpeed engine and a fake clock."""
from __future__ import annotations

import types

import pytest
import torch

import pretrain.throughput as throughput_module
from pretrain.trainer import NonFiniteLossError, Trainer

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


BATCH = {"input_ids": torch.zeros(4, 8, dtype=torch.long), "attention_mask": torch.ones(4, 8, dtype=torch.long),
         "labels": torch.zeros(4, 3, dtype=torch.long)}


def fake_trainer(clock: FakeClock, *, max_steps: int, records: list[dict], saves: list[int],
                 nonfinite_micro_batches: set[int] = frozenset(), compute_seconds: float = 0.0) -> Trainer:
    """A Trainer whose engine, stream, metrics, evaluation and saving are fakes; each micro-batch
    takes 10 ms of fake time to load and `compute_seconds` to train on, an evaluation 0.5 s, a save 0.25 s."""

    class Stream:
        epoch = 0

        def __iter__(self):
            while True:
                clock.now += MICRO_BATCH_SECONDS
                yield BATCH

    trainer = object.__new__(Trainer)
    trainer.engine, trainer.world, trainer.flops_per_example, trainer.peak_flops = FakeEngine(), 1, 1.0, None
    trainer.metrics = types.SimpleNamespace(log=records.append)
    trainer.stream, trainer.val_batches = Stream(), [object()]
    drawn = iter(range(10**6))

    def forward_loss(batch):
        clock.now += compute_seconds
        return torch.tensor(1.0)

    trainer.forward_loss = forward_loss
    trainer._agree = lambda loss: (1.0, next(drawn) in nonfinite_micro_batches, False)

    def evaluate():
        clock.now += EVAL_SECONDS
        return {"loss": 1.0}

    def save():
        clock.now += SAVE_SECONDS
        saves.append(trainer.engine.global_steps)

    trainer.evaluate, trainer.save = evaluate, save
    trainer.run = types.SimpleNamespace(
        max_steps=max_steps, stop_at_step=None, max_nonfinite_in_row=3,
        logging=types.SimpleNamespace(interval=2), eval=types.SimpleNamespace(interval=2),
        checkpoint=types.SimpleNamespace(interval=3, save_final=True),
    )
    return trainer


def test_throughput_excludes_evaluation_and_checkpoint_time(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(throughput_module.time, "perf_counter", clock)
    records, saves = [], []
    fake_trainer(clock, max_steps=6, records=records, saves=saves)._train()
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == [2, 4, 6]
    assert saves == [3, 6]
    # 4 examples per micro-batch of 10 ms: 400 examples/s in every window, whatever ran between.
    # 32 input ids and 12 target ids per micro-batch likewise.
    for record in train:
        assert abs(record["examples_per_s"] - 4 / MICRO_BATCH_SECONDS) < 1e-6
        assert abs(record["input_bytes_per_s"] - 32 / MICRO_BATCH_SECONDS) < 1e-6
        assert abs(record["tokens_per_s"] - 44 / MICRO_BATCH_SECONDS) < 1e-6
    # The time left is wall time per step so far, evaluation and saving included, times the steps left:
    # at step 4, 8 micro-batches, the evaluation at step 2 and the save at step 3 took 0.83 s.
    per_step = [4 * MICRO_BATCH_SECONDS / 2, (8 * MICRO_BATCH_SECONDS + EVAL_SECONDS + SAVE_SECONDS) / 4]
    assert [r["eta_s"] for r in train] == pytest.approx([per_step[0] * 4, per_step[1] * 2, 0.0])


def test_data_wait_is_the_time_blocked_in_the_data_iterator(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(throughput_module.time, "perf_counter", clock)
    records = []
    fake_trainer(clock, max_steps=4, records=records, saves=[], compute_seconds=0.03)._train()
    train = [r for r in records if r["kind"] == "train"]
    # 10 ms loading per 40 ms micro-batch; evaluation and saves stay out of both sides.
    assert [r["data_wait_fraction"] for r in train] == pytest.approx([0.25, 0.25])
    assert train[0]["examples_per_s"] == pytest.approx(4 / 0.04)


def test_nonfinite_stop_saves_only_between_steps():
    # Two micro-batches per step. Micro-batches 0-1 make step 1; 2 is backpropagated, then 3-5 are
    # non-finite: the stop comes mid-step, where a checkpoint would lose micro-batch 2.
    records, saves = [], []
    trainer = fake_trainer(FakeClock(), max_steps=6, records=records, saves=saves, nonfinite_micro_batches={3, 4, 5})
    with pytest.raises(NonFiniteLossError, match="resumes from the last checkpoint"):
        trainer._train()
    assert saves == []
    # Non-finite from the first micro-batch of step 2 on: a clean step boundary, saved.
    saves = []
    trainer = fake_trainer(FakeClock(), max_steps=6, records=[], saves=saves, nonfinite_micro_batches={2, 3, 4})
    with pytest.raises(NonFiniteLossError, match="resumes from step 1"):
        trainer._train()
    assert saves == [1]

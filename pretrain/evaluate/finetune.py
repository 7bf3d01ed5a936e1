"""Text-to-text fine-tuning and greedy decoding, on one device or data-parallel over a launcher's
ranks, with the training stack's pieces.

The optimizer and the cosine schedule are `pretrain.optim`'s, the loss is the project's one loss
(GBSWT5's cross entropy + z-loss; `span_loss` on a plain ByT5's logits, as the trainer does),
freezing is `model_setup.freeze_gbst`. With several ranks every rank draws the same shuffled
stream and takes its contiguous slice of each step's batch, so N ranks x (batch / N) is, up to
rounding, one process with --grad-accum N. Inputs are bytes + EOS; an input longer than its budget is
cut at a character boundary and counted, never silently.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Callable

import torch

from pretrain.byte_vocab import EOS_ID, PAD_ID, decode, encode
from pretrain.config import OptimizerSettings, ScheduleSettings
from pretrain.evaluate import distributed
from pretrain.evaluate.distributed import World
from pretrain.evaluate.tasks import Example
from pretrain.modeling import GBSWT5ForConditionalGeneration, span_loss
from pretrain.optim import build_optimizer, build_scheduler

IGNORE = -100


@dataclass
class FinetuneSettings:
    epochs: float = 4.0
    batch_size: int = 16  # effective: micro batch x grad_accum x ranks
    grad_accum: int = 1
    lr: float = 1e-4
    min_lr: float = 1e-7  # where the cosine ends
    warmup_steps: int = 0
    weight_decay: float = 0.0
    seed: int = 0
    log_interval: int = 10


def encode_text(text: str, max_bytes: int) -> tuple[list[int], bool]:
    """(ids with EOS, whether the text was cut to `max_bytes`)."""
    data = text.encode("utf-8")
    cut = len(data) > max_bytes
    if cut:  # never end on part of a character
        data = data[:max_bytes].decode("utf-8", errors="ignore").encode("utf-8")
    return encode(data).tolist() + [EOS_ID], cut


def _pad(rows: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (width - len(r)) for r in rows], dtype=torch.long)


def autocast(device: torch.device, bf16: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def loss_of(model: torch.nn.Module, inputs: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    out = model(input_ids=inputs, attention_mask=mask, labels=labels)
    if isinstance(getattr(model, "module", model), GBSWT5ForConditionalGeneration):  # DDP wraps it
        return out.loss.float()
    return span_loss(out.logits, labels, 0.0)  # transformers' T5 computes its loss in the model dtype


def count_truncated(examples: list[Example], max_input_bytes: int) -> int:
    return sum(len(e.source.encode("utf-8")) > max_input_bytes for e in examples)


def finetune(model: torch.nn.Module, examples: list[Example], settings: FinetuneSettings, *, max_input_bytes: int,
             max_target_bytes: int, device: torch.device, bf16: bool,
             log: Callable[[dict], None], world: World = World()) -> dict[str, float | int]:
    """Train `model` in place on `examples`; a summary (steps, last logged loss)."""
    if settings.batch_size % (settings.grad_accum * world.size):
        raise ValueError(f"--batch-size {settings.batch_size} is not a multiple of --grad-accum {settings.grad_accum}"
                         f" x {world.size} processes")
    per_rank = settings.batch_size // world.size
    micro = per_rank // settings.grad_accum
    sources = [encode_text(e.source, max_input_bytes)[0] for e in examples]
    targets = [encode_text(e.target, max_target_bytes)[0] for e in examples]
    steps = math.ceil(math.ceil(len(examples) / settings.batch_size) * settings.epochs)
    if steps == 0:
        return {"steps": 0}
    optimizer = build_optimizer(model.parameters(), OptimizerSettings(lr=settings.lr, weight_decay=settings.weight_decay),
                                partitioned=False)
    schedule = ScheduleSettings(type="cosine", warmup_steps=min(settings.warmup_steps, steps),
                                final_lr_ratio=settings.min_lr / settings.lr)
    scheduler = build_scheduler(optimizer, schedule, steps)
    generator = torch.Generator().manual_seed(settings.seed)  # the same stream on every rank
    order: list[int] = []
    model.train()
    trained = distributed.wrap(model, world, device)
    window, last = [], float("nan")
    for step in range(steps):
        while len(order) < settings.batch_size:  # next epoch: a fresh shuffle, appended
            order += torch.randperm(len(examples), generator=generator).tolist()
        mine, order = order[world.rank * per_rank:(world.rank + 1) * per_rank], order[settings.batch_size:]
        total = 0.0
        for index in range(settings.grad_accum):
            batch = mine[index * micro:(index + 1) * micro]
            inputs = _pad([sources[i] for i in batch], PAD_ID).to(device)
            labels = _pad([targets[i] for i in batch], IGNORE).to(device)
            # DDP averages the gradients once per step, on the last micro batch's backward
            sync = index + 1 == settings.grad_accum or trained is model
            with contextlib.nullcontext() if sync else trained.no_sync():
                with autocast(device, bf16):
                    loss = loss_of(trained, inputs, inputs.ne(PAD_ID).long(), labels) / settings.grad_accum
                loss.backward()
            total += loss.item()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        window.append(distributed.mean(total, world, device))
        if (step + 1) % settings.log_interval == 0 or step + 1 == steps:
            last = sum(window) / len(window)
            log({"loss": last, "lr": scheduler.get_last_lr()[0], "finetune_step": step + 1})
            window = []
    model.eval()
    return {"steps": steps, "train_loss": last}


def _first_sequence(ids: list[int]) -> str:
    """Generated ids (after the decoder start id) up to the first EOS, as text."""
    ids = ids[1:]
    if EOS_ID in ids:
        ids = ids[: ids.index(EOS_ID)]
    return decode(ids).decode("utf-8", errors="replace")


@torch.no_grad()
def predict(model: torch.nn.Module, examples: list[Example], *, max_input_bytes: int, max_target_bytes: int,
            batch_size: int, device: torch.device, bf16: bool, world: World = World()) -> list[str]:
    """Greedy generation for every example, in the examples' order. Each rank decodes every
    world.size-th batch of the one-process batching, so each batch (its padding included) is the
    one a single process would decode."""
    model.eval()
    sources = [encode_text(e.source, max_input_bytes)[0] for e in examples]
    order = sorted(range(len(examples)), key=lambda i: len(sources[i]))  # similar lengths share a batch
    predictions: dict[int, str] = {}
    for start in range(world.rank * batch_size, len(order), batch_size * world.size):
        batch = order[start:start + batch_size]
        inputs = _pad([sources[i] for i in batch], PAD_ID).to(device)
        with autocast(device, bf16):
            out = model.generate(input_ids=inputs, attention_mask=inputs.ne(PAD_ID).long(), do_sample=False,
                                 num_beams=1, max_new_tokens=max_target_bytes + 1, eos_token_id=EOS_ID,
                                 pad_token_id=PAD_ID)
        for i, row in zip(batch, out.tolist()):
            predictions[i] = _first_sequence(row)
    gathered = distributed.gather(predictions, world)
    return [gathered[i] for i in range(len(examples))]

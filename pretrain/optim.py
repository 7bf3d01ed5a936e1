"""Client optimizers and learning-rate schedules for the DeepSpeed engine.

The optimizer is built here, not from the DeepSpeed config, because the RMS-scaled AdamW that
nanoT5 uses is not a DeepSpeed built-in and because DeepSpeed's own AdamW on CPU needs another
JIT-compiled op. DeepSpeed wraps whatever is returned (bf16 master weights, ZeRO partitioning).
"""
from __future__ import annotations

import math
from typing import Callable, Iterable

import torch
import torch.distributed as dist
from torch.optim.lr_scheduler import LambdaLR

from pretrain.config import OptimizerSettings, ScheduleSettings


class AdamWScale(torch.optim.Optimizer):
    """AdamW whose step is multiplied by max(1e-3, RMS(parameter)), as nanoT5's AdamWScale.

    Adafactor's relative step size made T5 pretraining insensitive to the learning rate; nanoT5
    showed AdamW with this one change matches it. DeepSpeed hands the optimizer flat fp32
    partitions instead of parameters, so every parameter gets its own param group (recording its
    full size) and, when `partitioned`, the sums of squares of all groups are all-reduced over
    the data-parallel ranks: the RMS is then that of the whole parameter, as without ZeRO.
    """

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float = 1e-2,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        partitioned: bool = False,
    ) -> None:
        groups = [{"params": [p], "rms_numel": p.numel()} for p in params]
        super().__init__(groups, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))
        self.partitioned = partitioned

    def _parameter_rms(self) -> list[torch.Tensor]:
        # float64 so that the sum over billions of elements keeps its precision
        sums = torch.stack([
            sum((p.detach().double().pow(2).sum() for p in g["params"]), torch.zeros((), dtype=torch.float64))
            for g in self.param_groups
        ])
        if self.partitioned and dist.is_available() and dist.is_initialized():
            dist.all_reduce(sums)
        numel = torch.tensor([float(g["rms_numel"]) for g in self.param_groups], dtype=torch.float64,
                             device=sums.device)
        return list((sums / numel).sqrt())

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = closure() if closure is not None else None
        for group, rms in zip(self.param_groups, self._parameter_rms()):
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg.mul_(beta1).add_(p.grad, alpha=1.0 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1.0 - beta2)
                bias1 = 1.0 - beta1 ** state["step"]
                bias2 = 1.0 - beta2 ** state["step"]
                step_size = group["lr"] * math.sqrt(bias2) / bias1 * max(1e-3, float(rms))
                p.addcdiv_(exp_avg, exp_avg_sq.sqrt().add_(group["eps"]), value=-step_size)
                if group["weight_decay"] > 0.0:
                    p.add_(p, alpha=-group["lr"] * group["weight_decay"])
        return loss


def build_optimizer(
    params: Iterable[torch.nn.Parameter], settings: OptimizerSettings, *, partitioned: bool
) -> torch.optim.Optimizer:
    """The client optimizer for `settings.type`; `partitioned` = DeepSpeed shards its state."""
    trainable = [p for p in params if p.requires_grad]
    if settings.type == "adamw":
        return torch.optim.AdamW(
            trainable, lr=settings.lr, betas=tuple(settings.betas), eps=settings.eps,
            weight_decay=settings.weight_decay,
        )
    return AdamWScale(
        trainable, lr=settings.lr, betas=tuple(settings.betas), eps=settings.eps,
        weight_decay=settings.weight_decay, partitioned=partitioned,
    )


def lr_factor(step: int, settings: ScheduleSettings, max_steps: int) -> float:
    """Multiplier of the peak learning rate for optimizer step `step` (0-based).

    Linear warmup to 1 over `warmup_steps`, then cosine down to `final_lr_ratio` at `max_steps`,
    inverse square root (T5: 1/sqrt(max(step, warmup)), normalised to 1 at the end of warmup),
    or constant.
    """
    warmup = settings.warmup_steps
    if step < warmup:
        return (step + 1) / warmup
    if settings.type == "constant":
        return 1.0
    if settings.type == "inverse_sqrt":
        return math.sqrt(max(warmup, 1) / max(step, warmup, 1))
    progress = min(1.0, (step - warmup) / max(1, max_steps - warmup))
    floor = settings.final_lr_ratio
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(optimizer: torch.optim.Optimizer, settings: ScheduleSettings, max_steps: int) -> LambdaLR:
    return LambdaLR(optimizer, lambda step: lr_factor(step, settings, max_steps))

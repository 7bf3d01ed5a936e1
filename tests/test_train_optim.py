"""Client optimizer (AdamW with RMS-scaled steps) and learning-rate schedules."""
from __future__ import annotations

import math
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pretrain.config import OptimizerSettings, ScheduleSettings
from pretrain.optim import AdamWScale, build_optimizer, build_scheduler, lr_factor


def reference_adamw_scale(param, grads, lr, betas, eps, weight_decay):
    """nanoT5's AdamWScale written out element by element for one parameter."""
    p = param.clone().double().flatten().tolist()
    m = [0.0] * len(p)
    v = [0.0] * len(p)
    for t, grad in enumerate(grads, start=1):
        g = grad.double().flatten().tolist()
        rms = math.sqrt(sum(x * x for x in p) / len(p))
        step = lr * math.sqrt(1 - betas[1] ** t) / (1 - betas[0] ** t) * max(1e-3, rms)
        for i in range(len(p)):
            m[i] = betas[0] * m[i] + (1 - betas[0]) * g[i]
            v[i] = betas[1] * v[i] + (1 - betas[1]) * g[i] * g[i]
            p[i] -= step * m[i] / (math.sqrt(v[i]) + eps)
            p[i] -= lr * weight_decay * p[i]
    return torch.tensor(p, dtype=torch.float64).view_as(param)


def run_steps(optimizer, params, grads_per_param):
    for step_grads in zip(*grads_per_param):
        for p, g in zip(params, step_grads):
            p.grad = g.clone()
        optimizer.step()


def test_adamw_scale_matches_reference_per_parameter():
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(3, 4, dtype=torch.float64)),
              torch.nn.Parameter(torch.full((5,), 1e-5, dtype=torch.float64))]  # RMS below the 1e-3 floor
    grads = [[torch.randn_like(p) for _ in range(4)] for p in params]
    expected = [reference_adamw_scale(p.detach(), g, 0.01, (0.9, 0.99), 1e-8, 0.01) for p, g in zip(params, grads)]
    opt = AdamWScale(params, lr=0.01, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.01)
    run_steps(opt, params, grads)
    for p, e in zip(params, expected):
        torch.testing.assert_close(p.detach(), e, rtol=1e-9, atol=1e-12)
    # each parameter scales its own step: the tiny one moved much less than the large one would
    assert (params[1].detach() - 1e-5).abs().max() < 1e-3 * 0.01 * 4 * 1.01


def _partitioned_worker(rank, world, port, full, grads, out_path):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    # what ZeRO gives the optimizer: this rank's slice of the flattened parameter
    half = full.numel() // world
    piece = torch.nn.Parameter(full.flatten()[rank * half:(rank + 1) * half].clone())
    opt = AdamWScale([piece], lr=0.05, partitioned=True)
    opt.param_groups[0]["rms_numel"] = full.numel()
    for g in grads:
        piece.grad = g.flatten()[rank * half:(rank + 1) * half].clone()
        opt.step()
    torch.save(piece.detach(), f"{out_path}.{rank}")
    dist.destroy_process_group()


def test_adamw_scale_partitioned_over_ranks_equals_unpartitioned(tmp_path):
    torch.manual_seed(1)
    full = torch.randn(4, 6)
    grads = [torch.randn(4, 6) for _ in range(3)]
    whole = torch.nn.Parameter(full.clone())
    run_steps(AdamWScale([whole], lr=0.05), [whole], [grads])
    port = 29700 + os.getpid() % 200
    mp.spawn(_partitioned_worker, args=(2, port, full, grads, str(tmp_path / "p")), nprocs=2)
    pieces = [torch.load(tmp_path / f"p.{r}", weights_only=True) for r in range(2)]
    torch.testing.assert_close(torch.cat(pieces).view(4, 6), whole.detach())


def test_build_optimizer_skips_frozen_parameters():
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 2))
    model[0].weight.requires_grad_(False)
    for kind in ("adamw", "adamw_scaled"):
        opt = build_optimizer(model.parameters(), OptimizerSettings(type=kind, lr=0.1), partitioned=False)
        held = [p for g in opt.param_groups for p in g["params"]]
        assert len(held) == 3 and all(p is not model[0].weight for p in held)
    assert isinstance(build_optimizer(model.parameters(), OptimizerSettings(type="adamw"), partitioned=False),
                      torch.optim.AdamW)


def test_cosine_schedule_values():
    s = ScheduleSettings(type="cosine", warmup_steps=10, final_lr_ratio=0.1)
    assert [lr_factor(i, s, 110) for i in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert lr_factor(10, s, 110) == pytest.approx(1.0)
    assert lr_factor(60, s, 110) == pytest.approx(0.55)  # half way: mean of 1 and the floor
    assert lr_factor(110, s, 110) == pytest.approx(0.1)
    assert lr_factor(500, s, 110) == pytest.approx(0.1)
    factors = [lr_factor(i, s, 110) for i in range(10, 111)]
    assert all(a >= b for a, b in zip(factors, factors[1:]))


def test_inverse_sqrt_and_constant_schedules():
    s = ScheduleSettings(type="inverse_sqrt", warmup_steps=100)
    assert lr_factor(99, s, 10_000) == pytest.approx(1.0)
    assert lr_factor(400, s, 10_000) == pytest.approx(0.5)  # sqrt(100 / 400)
    assert lr_factor(10_000, s, 10_000) == pytest.approx(0.1)
    assert lr_factor(9, ScheduleSettings(type="inverse_sqrt", warmup_steps=0), 100) == pytest.approx(1 / 3)
    c = ScheduleSettings(type="constant", warmup_steps=4)
    assert [lr_factor(i, c, 50) for i in (0, 3, 4, 49)] == pytest.approx([0.25, 1.0, 1.0, 1.0])


def test_scheduler_drives_the_optimizer_learning_rate():
    p = torch.nn.Parameter(torch.zeros(2))
    opt = build_optimizer([p], OptimizerSettings(type="adamw", lr=0.2), partitioned=False)
    sched = build_scheduler(opt, ScheduleSettings(type="cosine", warmup_steps=2, final_lr_ratio=0.0), max_steps=4)
    seen = []
    for _ in range(4):
        seen.append(opt.param_groups[0]["lr"])
        p.grad = torch.ones(2)
        opt.step()
        sched.step()
    assert seen == pytest.approx([0.1, 0.2, 0.2, 0.1])

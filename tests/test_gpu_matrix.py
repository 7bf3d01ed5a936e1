"""The GPU check's plan (pretrain/gpu_matrix.py) and report (pretrain/gpu_report.py), driven with
made-up measurements of an imagined 141 GiB device, and what its process imports."""
from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from pretrain.gpu_matrix import (OK, OOM, SKIPPED, CostModel, Deadline, MatrixOptions, Setting, Skip, estimate_s,
                                 find, largest_micro, memory_fit, plan)
from pretrain.gpu_report import MEASURES, RUN_FIELDS, reference, skipped, targets

REPO = Path(__file__).resolve().parents[1]
H200 = 141.0


def fake_result(setting: Setting, *, speed: dict[str, float], fixed: float = 25.0, per_example: float = 1.5) -> dict:
    """A result as measure() records it: peak memory fixed + per_example x micro (a quarter per
    example with checkpointing, 2.5x for ByT5), OOM above the device's 141 GiB; examples/s from
    `speed` by attention, x1.2 compiled, x0.3 for ByT5, growing with the micro-batch up to 64."""
    per = per_example / (4 if setting.checkpointing else 1) * (2.5 if setting.model == "byt5" else 1)
    out = {"name": setting.name, "setting": dataclasses.asdict(setting), "status": OK, "reason": None,
           **dict.fromkeys(MEASURES), **dict.fromkeys(RUN_FIELDS)}
    if fixed + per * setting.micro > H200:
        return {**out, "status": OOM, "reason": "CUDA out of memory"}
    rate = speed[setting.attention] * (1.2 if setting.compile else 1) * (0.3 if setting.model == "byt5" else 1)
    out.update(examples_per_s=rate * min(setting.micro, 64) / 64, peak_mem_gb=fixed + per * setting.micro,
               losses={1: 5.0, 2: 4.0}, mfu=0.3, data_wait_fraction=0.001, setup_s=5.0, train_s=10.0,
               flops_per_step=1e12 * setting.micro)
    return out


def run_plan(options: MatrixOptions, **fake) -> list[dict]:
    results: list[dict] = []
    for item in plan(options, results):
        setting = item.setting if isinstance(item, Skip) else item
        if find(results, setting) is None:
            results.append(skipped(setting, item.reason) if isinstance(item, Skip) else fake_result(setting, **fake))
    return results


def ran(results: list[dict]) -> list[str]:
    return [r["name"] for r in results if r["status"] != SKIPPED]


def test_the_plan_measures_only_what_can_win():
    options = MatrixOptions(memory_gib=H200)
    results = run_plan(options, speed={"sdpa": 10.0, "eager": 6.0, "flex": 12.0})
    # the largest fitting micro-batch: (0.9 x 141 - 25) / 1.5 = 67.9 -> 64; ByT5 (3.75 GiB per example): 27 -> 24
    assert ran(results) == [
        "gbswt5 bf16 micro 16 sdpa", "gbswt5 fp32 micro 16 sdpa",
        "gbswt5 bf16 micro 32 sdpa", "gbswt5 bf16 micro 32 eager", "gbswt5 bf16 micro 32 flex",
        "gbswt5 bf16 micro 16 flex", "gbswt5 bf16 micro 48 flex", "gbswt5 bf16 micro 64 flex",
        "byt5 bf16 micro 16 flex", "byt5 bf16 micro 24 flex",
        "gbswt5 bf16 micro 64 flex compile", "byt5 bf16 micro 24 flex compile",
        "gbswt5 bf16 micro 64 flex compile chunked loss",
    ]
    reasons = {r["name"]: r["reason"] for r in results if r["status"] == SKIPPED}
    assert "fits without checkpointing" in reasons["gbswt5 bf16 micro 48 flex checkpointing"]
    assert "flex was faster at micro 32" in reasons["gbswt5 bf16 micro any sdpa"]
    assert "liger_kernel is not importable" in reasons["gbswt5 bf16 micro 64 flex compile liger loss"]
    with_liger = run_plan(dataclasses.replace(options, liger=True), speed={"sdpa": 10.0, "eager": 6.0, "flex": 12.0})
    assert "gbswt5 bf16 micro 64 flex compile liger loss" in ran(with_liger)


def test_checkpointing_only_where_a_micro_batch_does_not_fit_without_it():
    results = run_plan(MatrixOptions(memory_gib=H200, compile=False, byt5=False), per_example=3.0,
                       speed={"sdpa": 10.0, "eager": 6.0, "flex": 9.0})
    statuses = {r["name"]: r["status"] for r in results}
    assert statuses["gbswt5 bf16 micro 48 sdpa"] == OOM  # 25 + 48 x 3 GiB
    assert statuses["gbswt5 bf16 micro 48 sdpa checkpointing"] == OK
    assert statuses["gbswt5 bf16 micro 32 sdpa checkpointing"] == SKIPPED
    # without checkpointing the line through 16 and 32 allows 32 (measured); with it, from the
    # shared fixed part and the one checkpointed point: (126.9 - 25) / 0.75 = 135.9 -> 128
    reasons = {r["name"]: r["reason"] for r in results if r["status"] == SKIPPED}
    assert "(32) is not above 32" in reasons["gbswt5 bf16 micro any sdpa"]
    assert statuses["gbswt5 bf16 micro 128 sdpa checkpointing"] == OK
    assert statuses["gbswt5 bf16 micro 128 sdpa compile checkpointing"] == SKIPPED  # COMPILE off


def test_a_largest_micro_batch_that_does_not_fit_is_retried_one_step_down_only():
    results: list[dict] = []
    options = MatrixOptions(memory_gib=H200, compile=False, byt5=False)
    for item in plan(options, results):
        setting = item.setting if isinstance(item, Skip) else item
        if find(results, setting) is None:
            speed = {"sdpa": 1.0, "eager": 1.0, "flex": 1.0}
            result = skipped(setting, item.reason) if isinstance(item, Skip) else fake_result(setting, speed=speed)
            if setting.micro > 48 and result["status"] == OK:  # the extrapolation was too hopeful
                result = {**result, "status": OOM}
            results.append(result)
    big = [(r["setting"]["micro"], r["status"]) for r in results if r["setting"]["micro"] > 48]
    assert big == [(64, OOM), (56, OOM)]


def test_without_accelerator_memory_the_largest_micro_batch_is_skipped_with_the_reason():
    results = run_plan(MatrixOptions(micros=(2, 4), attentions=("eager", "sdpa"), compile=False),
                       speed={"sdpa": 2.0, "eager": 1.0})
    reasons = [r["reason"] for r in results if r["status"] == SKIPPED]
    assert sum("no accelerator memory figure" in r for r in reasons) == 2  # GBSWT5 and ByT5
    assert ran(results)[-2:] == ["byt5 bf16 micro 2 sdpa", "gbswt5 bf16 micro 4 sdpa chunked loss"]


def test_largest_micro_fits_a_line_through_the_peaks():
    points = [(16, 25 + 16 * 1.5), (32, 25 + 32 * 1.5), (48, 25 + 48 * 1.5)]
    assert memory_fit(points) == pytest.approx((25.0, 1.5))
    assert largest_micro(points, H200, 8) == 64
    assert largest_micro(points[:1], H200, 8) is None  # one point and no known fixed part
    assert largest_micro([(16, 25 + 16 * 4.0)], H200, 8, fixed_gib=25.0) == 24
    assert largest_micro(points, 30.0, 8) is None


def test_the_estimate_scales_the_last_comparable_run_by_flops():
    done = [fake_result(Setting(micro=16), speed={"sdpa": 1.0})]  # setup 5 s, train 10 s at 16e12
    cost = CostModel(compile_s=100.0, fp32_slowdown=8.0)
    assert estimate_s(Setting(micro=32), 32e12, done, cost) == pytest.approx(5 + 20)
    assert estimate_s(Setting(micro=16, dtype="fp32"), 16e12, done, cost) == pytest.approx(5 + 80)
    assert estimate_s(Setting(micro=16, compile=True), 16e12, done, cost) == pytest.approx(5 + 10 + 100)
    assert estimate_s(Setting(micro=16), 16e12, [], cost) == cost.setup_s + cost.train_s


def test_deadline_counts_down_on_its_clock():
    now = [100.0]
    deadline = Deadline(60.0, clock=lambda: now[0])
    now[0] += 45.0
    assert deadline.left() == pytest.approx(15.0)


def test_reference_and_targets_read_off_the_measurements():
    bf16 = fake_result(Setting(micro=16), speed={"sdpa": 10.0})
    fp32 = fake_result(Setting(micro=16, dtype="fp32"), speed={"sdpa": 1.0})
    bf16["losses"], fp32["losses"] = {1: 5.06, 2: 4.0}, {1: 5.0, 2: 4.02}
    ref = reference([bf16, fp32])
    assert ref["steps"] == 2 and ref["max_rel_diff"] == pytest.approx(0.012)
    assert ref["final_rel_diff"] == pytest.approx(0.02 / 4.02)
    byt5 = fake_result(Setting(model="byt5", micro=16), speed={"sdpa": 10.0})
    got = targets([bf16, fp32, byt5], ref)
    assert got["figures"]["byt5_speedup"] == pytest.approx(1 / 0.3)
    assert got["met"] == {"mfu": False, "byt5_speedup": True, "micro_batch": False, "data_wait_fraction": True,
                          "bf16_loss_rel": False}


def test_the_gpu_check_process_imports_nothing_a_training_only_machine_lacks():
    """The GPU machine has torch, transformers, pyarrow and tqdm, and gets DeepSpeed and a few
    small wheels: data prep's numba kernels, datasets, pandas, matplotlib and wandb must stay out."""
    modules = ("pretrain.trainer", "pretrain.gpu_matrix", "pretrain.gpu_report", "pretrain.synthetic_shards", "pretrain.process_group",
               "pretrain.config", "pretrain.model_setup", "pretrain.flops")
    probe = ("import sys\n" + "".join(f"import {m}\n" for m in modules)
             + "heavy = {'numba', 'llvmlite', 'datasets', 'pandas', 'matplotlib', 'wandb', 'mwparserfromhell'}\n"
             + "print(sorted(heavy & set(sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "[]"


def gpu_check_module():
    sys.path.insert(0, str(REPO / "launch"))
    try:
        import gpu_check
    finally:
        sys.path.pop(0)  # (the module puts the repository where launch/ was)
    return gpu_check


def test_the_float32_reference_turns_tf32_off_and_back_on():
    import torch

    before = torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision
    with gpu_check_module().exact_float32(True):
        assert (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision) == ("ieee", "ieee")
    assert (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision) == before
    with gpu_check_module().exact_float32(False):
        assert torch.backends.cudnn.conv.fp32_precision == before[1]


def test_allocation_failures_of_any_library_count_as_out_of_memory():
    import torch

    out_of_memory = gpu_check_module().out_of_memory
    assert out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert out_of_memory(RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate(handle)"))
    assert not out_of_memory(RuntimeError("CUDA error: an illegal memory access was encountered"))

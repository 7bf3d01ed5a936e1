"""The measurement matrix of launch/gpu_check.sh: every configuration pretrain/gpu_matrix.py
plans, trained for a few steps on synthetic shards in this one process; the report (JSON and
markdown, pretrain/gpu_report.py) is rewritten after every configuration.

One process loops over the configurations, each with a fresh Trainer (model, DeepSpeed engine,
data stream), and frees the engine and the CUDA cache between them. A process per configuration
(what `deepspeed launch/pretrain.py` would be) pays Python's and CUDA's start-up, the imports of
torch, transformers and DeepSpeed, and the process group, every time: 15-25 s, against 5-15 s for
a whole configuration here. With a dozen configurations in 15 minutes of GPU time, that is the
difference between measuring the matrix and measuring half of it. The price: one process's
allocator across configurations, so each records the memory still allocated when it starts
(`memory_left_gb`) and the peak statistics are reset before it.

Expected on an H200 (not yet measured; model FLOPs at ~35% MFU, the rest guessed): ~20 s to
start, ~8 s to build each configuration (model initialised on the GPU, ZeRO-2 partitions), 12
steps in 2-7 s (GBSWT5-large: 2.3 TFLOP per example, 0.1 s a step at micro 16), float32 ~1 s a
step, Flex's kernel compile ~30 s, torch.compile of the blocks ~100 s, ByT5-large 2.8x the
FLOPs: about 11 configurations in 4-7 minutes, inside the default 480 s budget.

    python launch/gpu_check.py --config ds_configs/large.json --report-dir runs/gpu_check
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import gc
import logging
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repository, not launch/, as in pretrain.py

from data_prep.span_lengths import raw_length_for_inputs
from pretrain.gpu_matrix import (GIB, OK, OOM, CostModel, Deadline, MatrixOptions, Setting, Skip, estimate_s, find,
                                 plan)
from pretrain.gpu_report import RUN_FIELDS, skipped, summarize, write_report
from pretrain.process_group import single_process_defaults, start_process_group
from pretrain.synthetic_shards import write_synthetic_shards

LOG = logging.getLogger("gpu_check")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    words = lambda text: tuple(w for w in text.replace(",", " ").split() if w)  # noqa: E731
    on = lambda text: text.lower() in ("on", "true", "1", "yes")  # noqa: E731
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="ds_configs/large.json")
    parser.add_argument("--report-dir", type=Path, default=Path("runs/gpu_check"))
    parser.add_argument("--work", type=Path, default=None, help="shards and run directories (default: a temp dir)")
    parser.add_argument("--micros", type=lambda t: tuple(map(int, words(t))), default=(16, 32, 48))
    parser.add_argument("--attentions", type=words, default=("sdpa", "eager", "flex"))
    parser.add_argument("--compile", type=on, default=True)
    parser.add_argument("--byt5", type=on, default=True)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=4, help="first steps not measured")
    parser.add_argument("--input-length", type=int, default=1024)
    parser.add_argument("--budget-s", type=float, default=480.0, help="configurations that would end later are skipped")
    parser.add_argument("--init-from", default="none")
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--rows", type=int, default=4096, help="synthetic training chunks")
    return parser.parse_args(argv)


def run_argv(args: argparse.Namespace, setting: Setting, shards: Path, run_dir: Path) -> list[str]:
    sets = [*setting.overrides(), "gradient_accumulation_steps=1", f"data.input_length={args.input_length}",
            "data.num_workers=2", "schedule.warmup_steps=1", "logging.interval=1", "logging.wandb=false",
            "eval.batches=0", "checkpoint.interval=1000000", "checkpoint.save_final=false"]
    if args.peak_tflops:
        sets.append(f"logging.peak_tflops={args.peak_tflops}")
    return ["--config", args.config, "--data", str(shards), "--output_dir", str(run_dir), "--max_steps",
            str(args.steps), "--init_from", args.init_from, *[w for s in sets for w in ("--set", s)]]


@contextlib.contextmanager
def exact_float32(enabled: bool) -> Iterator[None]:
    """float32 matrix products and convolutions without TF32 (cuDNN's convolutions allow it by
    default), through torch's fp32_precision settings (torch >= 2.9), else the allow_tf32 flags."""
    import torch

    knobs = [torch.backends.cuda.matmul, torch.backends.cudnn.conv]
    if not enabled:
        yield
    elif all(hasattr(k, "fp32_precision") for k in knobs):
        saved = [k.fp32_precision for k in knobs]
        for knob in knobs:
            knob.fp32_precision = "ieee"
        try:
            yield
        finally:
            for knob, value in zip(knobs, saved):
                knob.fp32_precision = value
    else:
        saved_flags = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved_flags


def free_memory() -> None:
    """After the last reference to a Trainer is gone: its engine, optimizer partitions and
    compiled graphs go before the next setting is built."""
    import torch

    torch._dynamo.reset()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def out_of_memory(exc: BaseException) -> bool:
    """torch's OutOfMemoryError, or a library's allocation failure that reaches us as a RuntimeError
    (cuBLAS, cuDNN, NCCL): either way the setting does not fit."""
    import torch

    text = str(exc)
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in text.lower() or "ALLOC_FAILED" in text


def measure(args: argparse.Namespace, setting: Setting, config, shards_info, run_dir: Path) -> dict:
    """Train one setting; its summary (status ok, oom, failed or nonfinite)."""
    import torch

    from pretrain.metrics import read_metrics
    from pretrain.trainer import Trainer

    cuda = torch.cuda.is_available()
    left = torch.cuda.memory_allocated() / GIB if cuda else None
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer, status, reason, setup_s, train_s = None, OK, None, None, None
    start = time.perf_counter()
    try:
        with exact_float32(setting.dtype == "fp32"):
            trainer = Trainer(config, shards_info)
            setup_s = time.perf_counter() - start
            code = trainer.train()
            train_s = time.perf_counter() - start - setup_s
            if code:
                status, reason = "nonfinite", f"the run ended with exit code {code}"
    except Exception as exc:  # noqa: BLE001 -- one failing kernel must not cost the rest of the matrix
        if out_of_memory(exc):
            status, reason = OOM, str(exc).split("\n")[0][:200]
        else:
            LOG.error("%s failed:\n%s", setting.name, traceback.format_exc())
            status, reason = "failed", f"{type(exc).__name__}: {exc}"[:300]
    step_flops = getattr(trainer, "flops_per_example", 0.0) * setting.micro or None
    if getattr(trainer, "engine", None) is not None:
        try:
            trainer.engine.destroy()
        except Exception:  # noqa: BLE001 -- what it holds still goes with the last reference
            LOG.warning("%s: the engine's destroy() failed:\n%s", setting.name, traceback.format_exc())
    trainer = None
    free_memory()
    out = {"name": setting.name, "setting": dataclasses.asdict(setting), "status": status, "reason": reason,
           **summarize(read_metrics(run_dir / "metrics.jsonl"), args.warmup),
           "setup_s": setup_s, "train_s": train_s, "flops_per_step": step_flops,
           "peak_reserved_gb": torch.cuda.max_memory_reserved() / GIB if cuda else None, "memory_left_gb": left}
    assert set(RUN_FIELDS) <= out.keys()
    return out


def flops_per_step(config, shards_info, micro: int) -> float:
    """Model FLOPs of one optimizer step of this configuration (for the time estimate)."""
    from pretrain.flops import training_flops_per_example
    from pretrain.model_setup import byt5_preset_config
    from pretrain.modeling import GBSWT5Config

    settings = config.run.model
    model_config = (GBSWT5Config.from_preset(settings.preset, **settings.overrides) if settings.type == "gbswt5"
                    else byt5_preset_config(settings))
    return training_flops_per_example(model_config, shards_info.inputs_length, shards_info.targets_length) * micro


def header(args: argparse.Namespace) -> dict:
    import deepspeed
    import torch
    import transformers

    from pretrain.train_setup import device_name, known_peak_tflops

    cuda = torch.cuda.is_available()
    return {"device": device_name(), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "torch": torch.__version__, "transformers": transformers.__version__, "deepspeed": deepspeed.__version__,
            "peak_tflops": args.peak_tflops or known_peak_tflops(), "input_length": args.input_length, "steps": args.steps,
            "warmup": args.warmup, "budget_s": args.budget_s, "config": args.config,
            "memory_gib": torch.cuda.get_device_properties(0).total_memory / GIB if cuda else None}


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    deadline = Deadline(args.budget_s)
    single_process_defaults()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from pretrain.config import load_config, validate

    work = args.work or Path(tempfile.mkdtemp(prefix="gpu_check-"))
    shards = write_synthetic_shards(work / "shards", args.rows, raw_length_for_inputs(args.input_length))
    start_process_group()
    import torch

    head = header(args)
    options = MatrixOptions(micros=args.micros, attentions=args.attentions, compile=args.compile, byt5=args.byt5,
                            memory_gib=head["memory_gib"], liger=torch.cuda.is_available() and _importable("liger_kernel"))
    cost = CostModel() if torch.cuda.is_available() else CostModel(setup_s=5, train_s=5, compile_s=60, fp32_slowdown=1)
    results: list[dict] = []
    for item in plan(options, results):
        setting = item.setting if isinstance(item, Skip) else item
        if find(results, setting) is not None:
            continue
        if isinstance(item, Skip):
            results.append(skipped(setting, item.reason))
        else:
            run_dir = work / "runs" / setting.name.replace(" ", "-")
            shutil.rmtree(run_dir, ignore_errors=True)  # a reused --work: metrics.jsonl would be appended to
            config = load_config(run_argv(args, setting, shards, run_dir))
            shards_info = validate(config, world_size=1)
            need = estimate_s(setting, flops_per_step(config, shards_info, setting.micro), results, cost)
            if need > deadline.left():
                results.append(skipped(setting, f"deadline: needs ~{need:.0f} s, {max(deadline.left(), 0):.0f} s left"))
            else:
                LOG.info("gpu_check: %s (estimated %.0f s, %.0f s left)", setting.name, need, deadline.left())
                results.append(measure(args, setting, config, shards_info, run_dir))
        write_report(args.report_dir, head, results, args.budget_s - deadline.left(), finished=False)
    write_report(args.report_dir, head, results, args.budget_s - deadline.left(), finished=True)
    print((args.report_dir / "gpu_check.md").read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

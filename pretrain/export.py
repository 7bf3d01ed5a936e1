"""Export a training checkpoint (any ZeRO stage) as a Hugging Face model directory.

    python -m pretrain.export RUN_OR_CHECKPOINT_DIR OUT_DIR [--tag global_stepN] [--bin] [--no-remote-code]
        [--overwrite]

DeepSpeed's zero_to_fp32 consolidates the partitions into one fp32 state dict;
`model_io.write_hf_files` writes the HF files (safetensors, config with auto_map, remote code,
tokenizer, generation config; --no-remote-code leaves out the code and auto_map, as ETRI's releases
do). A model card (README.md) records the training settings and final metrics.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path

import torch
import transformers

from pretrain import checkpoint
from pretrain.checkpoint import CHECKPOINT_DIR
from pretrain.checkpoint_engine import UnsafeCheckpointError, weights_only_zero_to_fp32
from pretrain.config import RUN_CONFIG_FILE
from pretrain.metrics import METRICS_FILE, read_metrics
from pretrain.model_io import replace_directory, write_hf_files
from pretrain.tokenizer import usage_snippet
from pretrain.model_setup import MODEL_CONFIG_FILE, model_from_config_file
from pretrain.modeling import GBSWT5ForConditionalGeneration

LOG = logging.getLogger(__name__)


class ExportError(RuntimeError):
    pass


def locate(path: Path, tag: str | None) -> tuple[Path, Path, str]:
    """(run directory, checkpoint directory, tag) for a run dir, its checkpoints dir or one tag dir."""
    path = path.resolve()
    if not path.is_dir():
        raise ExportError(f"{path}: no such directory (pass a run directory, its checkpoints/ or a global_stepN)")
    if (path / "config.json").is_file():
        raise ExportError(f"{path} is already a Hugging Face model directory; export reads a training run")
    if (path / CHECKPOINT_DIR).is_dir():
        run_dir, ckpt_dir = path, path / CHECKPOINT_DIR
    elif checkpoint.list_tags(path):
        run_dir, ckpt_dir = path.parent, path
    elif path.name.startswith("global_step") and path.is_dir():
        run_dir, ckpt_dir, tag = path.parent.parent, path.parent, tag or path.name
    else:
        raise ExportError(f"{path}: neither a run directory, its checkpoints/ directory nor a global_stepN checkpoint")
    if tag is None:
        for _, candidate in checkpoint.list_tags(ckpt_dir):
            problem = checkpoint.damage(ckpt_dir, candidate, verify_checksums=True)
            if problem is None:
                tag = candidate
                break
            LOG.warning("skipping damaged checkpoint %s: %s", candidate, problem)
        else:
            raise ExportError(f"{ckpt_dir}: no complete checkpoint")
    elif not (ckpt_dir / tag).is_dir():
        raise ExportError(f"--tag {tag}: no such checkpoint in {ckpt_dir}")
    elif problem := checkpoint.damage(ckpt_dir, tag, verify_checksums=True):
        raise ExportError(f"--tag {tag}: {problem}")
    if not (run_dir / MODEL_CONFIG_FILE).is_file():
        raise ExportError(f"{run_dir / MODEL_CONFIG_FILE} is missing; it is written at the start of every run")
    return run_dir, ckpt_dir, tag


def consolidated_model(run_dir: Path, ckpt_dir: Path, tag: str) -> torch.nn.Module:
    """The run's model with the fp32 weights of checkpoint `tag`."""
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    # zero_to_fp32 narrates every step with print(); errors still arrive as exceptions.
    with contextlib.redirect_stdout(io.StringIO()), weights_only_zero_to_fp32():
        try:
            state = get_fp32_state_dict_from_zero_checkpoint(str(ckpt_dir), tag=tag)
        except UnsafeCheckpointError as exc:
            raise ExportError(str(exc)) from None
    model = model_from_config_file(run_dir / MODEL_CONFIG_FILE)
    missing, unexpected = model.load_state_dict(state, strict=False)
    # zero_to_fp32 writes a tied parameter under one name; the others are the same tensor.
    tied = {name for name, p in model.named_parameters(remove_duplicate=False)} - {
        name for name, p in model.named_parameters()}
    if unexpected or set(missing) - tied:
        raise ExportError(f"{ckpt_dir / tag}: weights do not match {run_dir / MODEL_CONFIG_FILE}: "
                          f"missing {sorted(set(missing) - tied)}, unexpected {sorted(unexpected)}")
    return model.eval()


def _settings_table(run_config: dict) -> str:
    run = run_config.get("run", {})
    zero = run_config.get("zero_optimization", {}).get("stage", 0)
    rows = [
        ("model", f"{run.get('model', {}).get('type')} preset {run.get('model', {}).get('preset')}"),
        ("warm start", run.get("model", {}).get("init_from") or "random initialisation"),
        ("data", ", ".join(run.get("data", {}).get("train", []))),
        ("input length", run.get("data", {}).get("input_length")),
        ("noise density / mean span", f"{run.get('data', {}).get('noise_density')} / "
                                      f"{run.get('data', {}).get('mean_noise_span_length')}"),
        ("optimizer", json.dumps(run.get("optimizer"))),
        ("schedule", json.dumps(run.get("schedule"))),
        ("micro batch x accumulation", f"{run_config.get('train_micro_batch_size_per_gpu')} x "
                                       f"{run_config.get('gradient_accumulation_steps', 1)}"),
        ("precision / ZeRO", f"bf16={run_config.get('bf16', {}).get('enabled', False)}, stage {zero}"),
        ("steps", run.get("max_steps")),
    ]
    return "\n".join(f"| {k} | {v} |" for k, v in rows)


def model_card(run_dir: Path, tag: str, model: torch.nn.Module, out_name: str, remote_code: bool = True) -> str:
    run_config = json.loads((run_dir / RUN_CONFIG_FILE).read_text()) if (run_dir / RUN_CONFIG_FILE).exists() else {}
    records = read_metrics(run_dir / METRICS_FILE)
    step = int(tag.removeprefix("global_step"))
    final = {kind: [r for r in records if r.get("kind") == kind and r["step"] <= step] for kind in ("train", "eval")}
    metric_rows = [f"| {kind} {k} (step {rs[-1]['step']}) | {v:.4f} |"
                   for kind, rs in final.items() if rs for k, v in rs[-1].items()
                   if k in ("loss", "byte_accuracy") and isinstance(v, float)]
    is_gbst = isinstance(model, GBSWT5ForConditionalGeneration)
    loader = ("remote_code" if remote_code else "package") if is_gbst else "t5"
    name = "GBST-KEByT5 (GBSWT5)" if is_gbst else "KEByT5 (ByT5 architecture)"
    params = sum(p.numel() for p in model.parameters())
    return f"""---
language: ko
library_name: transformers
tags: [byt5, gbst, korean, t5, span-corruption]
---

# {name}, span-corruption pretraining checkpoint {tag}

Byte-level encoder-decoder pretrained with T5 span corruption (sentinels 258, 257, ...: the
i-th noise span is id 258 - i, as google/byt5) on Korean text. {params:,} parameters.

```python
{usage_snippet(out_name, loader)}```

The tokenizer maps `<extra_id_i>` to id 258 - i for i = 0..10 (the ids of bytes that never occur
in UTF-8), the sentinels pretraining used; `<extra_id_11>` and beyond are plain text.

## Training settings

| setting | value |
|---|---|
{_settings_table(run_config)}

## Final metrics

| metric | value |
|---|---|
{chr(10).join(metric_rows) or "| (no metrics recorded) | |"}

Loss is cross entropy per target byte (train loss includes the z-loss term); byte accuracy is
the argmax accuracy on the span-corruption targets of the held-out validation split.
"""


def export(source: Path, out: Path, *, tag: str | None = None, write_bin: bool = False,
           remote_code: bool = True, overwrite: bool = False) -> Path:
    """Write the HF directory `out` from a run or checkpoint; return `out`."""
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ExportError(f"{out} exists and is not empty; pass --overwrite to replace it")
    run_dir, ckpt_dir, tag = locate(source, tag)
    model = consolidated_model(run_dir, ckpt_dir, tag)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        target = staging / "model"
        write_hf_files(model, target, remote_code)
        if write_bin:  # the .bin layout the released gbswt5 code loads
            torch.save(model.state_dict(), target / "pytorch_model.bin")
        (target / "README.md").write_text(model_card(run_dir, tag, model, out.name, remote_code), encoding="utf-8")
        replace_directory(target, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    LOG.info("exported %s to %s", ckpt_dir / tag, out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Export a GBSWT5/ByT5 training checkpoint to Hugging Face format")
    parser.add_argument("source", type=Path, help="run directory, its checkpoints/ directory, or a global_stepN directory")
    parser.add_argument("out", type=Path, help="output directory")
    parser.add_argument("--tag", help="checkpoint tag (global_stepN); default: the newest complete one")
    parser.add_argument("--bin", action="store_true", help="also write pytorch_model.bin for older gbswt5 code")
    parser.add_argument("--no-remote-code", dest="remote_code", action="store_false",
                        help="leave out the model code and config.json's auto_map, as ETRI's released models: "
                             "loaded after `import gbswt5` (ETRI's package) or `import pretrain.modeling`; "
                             "AutoTokenizer then loads it without trust_remote_code")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    transformers.utils.logging.disable_progress_bar()  # a bar per weight file is noise here
    try:
        export(args.source, args.out, tag=args.tag, write_bin=args.bin, remote_code=args.remote_code,
               overwrite=args.overwrite)
    except ExportError as exc:
        print(f"export error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The dry run (`launch/pretrain.py ... --dry-run`, pretrain/plan.py) and its memory estimate.

The dry run runs as a user types it, in a subprocess, offline: it must print the plan, write
nothing and build no weights; an empty training split is one line and exit 2.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from data_prep.cli import main as data_prep
from pretrain.config import ModelSettings
from pretrain.memory_estimate import Shape, activation_bytes_per_sequence, model_states_bytes
from pretrain.modeling import GBSWT5Config, GBSWT5ForConditionalGeneration
from pretrain.plan import model_on_meta, parameter_count

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sample_shards(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("plan") / "sample"
    assert data_prep(["--konlpy-sample", "--text-mode", "block", "--input-length", "1024", "-o", str(out)]) == 0
    return out


def dry_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "DS_ACCELERATOR": "cpu"}
    env.pop("RANK", None)
    command = [sys.executable, str(ROOT / "launch/pretrain.py"), "--output_dir", str(tmp_path / "run"), *args, "--dry-run"]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)


def test_dry_run_of_the_large_preset_prints_the_plan_and_writes_nothing(tmp_path, sample_shards):
    rows = json.loads((sample_shards / "manifest.json").read_text())["splits"]["train"]["rows"]
    result = dry_run(tmp_path, "--config", str(ROOT / "ds_configs/large.json"), "--data", str(sample_shards),
                     str(sample_shards), "--set", "data.weights=[0.7,0.3]", "--init_from", "none",
                     "--set", "gradient_accumulation_steps=32")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    # The README's count for large: transformers' byt5-large, GBST and the separate lm_head.
    assert f"{1_227_593_728 + 2_377_729 + 589_824:,} parameters" in out
    assert "32 per GPU x 32 accumulation x 1 GPU(s) = 1024 sequences per step = 1,048,576 input tokens (1x ByT5's 2^20)" in out
    assert f"{1024 * (1024 + 189):,} tokens (1024 input + 189 target ids per sequence)" in out
    epoch = 2 * rows // 32 * 32  # the stream's epoch: whole micro batches of the two components
    assert f"epoch: {epoch / 1024:,.4g} steps over {2 * rows:,} training chunks" in out
    assert "70.0% of each epoch" in out and "30.0% of each epoch" in out
    # ZeRO-2 on one GPU: DeepSpeed's 2 + 18 bytes per parameter.
    states = 20 * (1_227_593_728 + 2_377_729 + 589_824) / 2**30
    assert f"ZeRO-2 model states {states:.1f} GiB over 1 GPU(s)" in out
    assert f"{tmp_path / 'run'}/checkpoints/global_stepN every 1000 steps" in out
    assert "target bytes to evaluate on" in result.stderr  # the sample's validation split is tiny
    assert not (tmp_path / "run").exists()


def test_an_empty_training_split_is_one_line_and_exit_2(tmp_path):
    shards = tmp_path / "all_validation"
    assert data_prep(["--konlpy-sample", "--text-mode", "block", "--val-docs", "100000", "-o", str(shards)]) == 0
    result = dry_run(tmp_path, "--config", str(ROOT / "ds_configs/tiny.json"), "--data", str(shards),
                     "--set", "data.input_length=1024")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "hold 0 rows" in lines[0] and "nothing to train on" in lines[0], result.stderr


@pytest.mark.parametrize("settings", [ModelSettings(preset="tiny"), ModelSettings(type="byt5", preset="tiny")])
def test_meta_parameter_count_matches_the_built_model(settings):
    from pretrain.model_setup import fresh_model

    assert parameter_count(model_on_meta(settings)) == sum(p.numel() for p in fresh_model(settings).parameters())
    assert all(p.is_meta for p in model_on_meta(settings).parameters())


def test_activation_estimate_against_the_tensors_a_forward_pass_saves():
    """The formula against what autograd keeps (bf16, eager attention on CPU, 1024/189 ids)."""
    config = GBSWT5Config.from_preset("small")
    model = GBSWT5ForConditionalGeneration(config).to(torch.bfloat16).train()
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def keep(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    ids = torch.randint(3, 259, (1, 1024))
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=torch.randint(3, 259, (1, 189)))
    estimate = activation_bytes_per_sequence(Shape.of(config, 1024, 189))
    assert 0.8 < estimate / sum(saved.values()) < 1.2


def test_model_states_follow_deepspeeds_accounting():
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs

    params = 1_000_000
    assert model_states_bytes(0, params, 0, 8, 1) == 20 * params
    assert model_states_bytes(1, params, 0, 8, 1) == 4 * params + 16 * params // 8
    assert model_states_bytes(2, params, 0, 8, 1) == 2 * params + 18 * params // 8
    assert model_states_bytes(3, params, 5000, 8, 2) == estimate_zero3_model_states_mem_needs(
        params, 5000, 8, 2, cpu_offload=False, cpu_offload_params=False)[1]

"""Model paths and hub ids given by the user: a typo or a missing download is one line, exit 2.

The command-line cases run as a user would, in subprocesses, offline (HF_HUB_OFFLINE=1) and with
an empty Hugging Face cache, so no test touches the network.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pretrain.model_path import ModelPathError, looks_local, resolve_model
from config_fixtures import fake_shards

ROOT = Path(__file__).resolve().parents[1]


def hf_env(tmp_path: Path, **extra: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_OFFLINE": "1",
           "DS_ACCELERATOR": "cpu"}
    env.pop("HF_HUB_CACHE", None)
    return {**env, **extra}


def run_cli(args: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_what_looks_local(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert not looks_local("google/byt5-small")
    for name in ("./model", "../model", "/abs/model", "~/model", "a/b/c", "model", "runs/x/"):
        assert looks_local(name), name
    (tmp_path / "hf").mkdir()
    assert looks_local("hf/nope")  # hf/ exists here: the README's export directory, not a hub owner


def test_local_model_directory_and_cached_snapshot_resolve(tmp_path, monkeypatch):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    assert resolve_model(str(model)) == str(model)
    # A cached hub snapshot with weights resolves to its folder, offline.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = tmp_path / "cache" / "models--org--name" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (snapshot / "model.safetensors").write_bytes(b"")
    (tmp_path / "cache" / "models--org--name" / "refs").mkdir()
    (tmp_path / "cache" / "models--org--name" / "refs" / "main").write_text("abc")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "cache"))
    assert Path(resolve_model("org/name")) == snapshot


def test_a_run_directory_says_export_first(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints" / "global_step4").mkdir(parents=True)
    (run / "run_config.json").write_text("{}")
    for path in (run, run / "checkpoints", run / "checkpoints" / "global_step4"):
        with pytest.raises(ModelPathError, match="export it first"):
            resolve_model(str(path))


def test_unreachable_hub_is_one_line_with_the_download_command(tmp_path):
    env = hf_env(tmp_path, HF_HUB_OFFLINE="0", HF_ENDPOINT="http://127.0.0.1:9")  # refused at once
    line = one_error_line(run_cli(["-m", "pretrain.fill", "org/absent-model", "민주<mask>이다"], env, tmp_path))
    assert "could not be reached" in line and "`hf download org/absent-model --local-dir DIR`" in line


def test_fill_with_a_mistyped_path_is_one_line(tmp_path):
    (tmp_path / "hf").mkdir()  # as after the README's export into hf/
    line = one_error_line(run_cli(["-m", "pretrain.fill", "hf/nope", "민주<mask>이다"], hf_env(tmp_path), tmp_path))
    assert "hf/nope: no such directory" in line


def test_fill_with_an_uncached_hub_id_offline_names_the_download_command(tmp_path):
    line = one_error_line(run_cli(["-m", "pretrain.fill", "org/absent-model", "민주<mask>이다"], hf_env(tmp_path), tmp_path))
    assert "offline" in line and "`hf download org/absent-model --local-dir DIR`" in line


def test_fill_with_a_run_directory_says_export_first(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints" / "global_step2").mkdir(parents=True)
    (run / "run_config.json").write_text("{}")
    line = one_error_line(run_cli(["-m", "pretrain.fill", str(run), "민주<mask>이다"], hf_env(tmp_path), tmp_path))
    assert "export it first" in line and "python -m pretrain.export" in line


def test_export_of_a_missing_directory_is_one_line(tmp_path):
    line = one_error_line(run_cli(["-m", "pretrain.export", "runs/nope", "out"], hf_env(tmp_path), tmp_path))
    assert "no such directory" in line


def test_training_with_an_uncached_init_from_offline_is_one_line(tmp_path):
    shards = fake_shards(tmp_path / "shards", 1193)
    args = [str(ROOT / "launch/pretrain.py"), "--config", str(ROOT / "ds_configs/large.json"), "--data", str(shards),
            "--output_dir", str(tmp_path / "run"), "--set", "gradient_accumulation_steps=128"]
    line = one_error_line(run_cli(args, hf_env(tmp_path), tmp_path))
    assert line.startswith("configuration error: run.model.init_from google/byt5-large")
    assert "`hf download google/byt5-large --local-dir DIR`" in line
    assert not (tmp_path / "run").exists()

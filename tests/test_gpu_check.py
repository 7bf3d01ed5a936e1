"""launch/gpu_check.sh's CPU dry run (tiny preset, gloo): the matrix's JSON and markdown carry
every field of every configuration, skipped ones with their reason, and a spent budget skips."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deepspeed_runs import REPO, run_env
from pretrain.gpu_report import MEASURES, RUN_FIELDS

pytestmark = pytest.mark.deepspeed

DRY_RUN = {"CONFIG": "ds_configs/tiny.json", "MICROS": "2,4", "ATTENTIONS": "eager,sdpa", "COMPILE": "off",
           "STEPS": "3", "WARMUP": "1", "INPUT_LENGTH": "128", "ROWS": "256", "PEAK_TFLOPS": "1"}
FIRST = ["gbswt5 bf16 micro 2 eager", "gbswt5 fp32 micro 2 eager", "gbswt5 bf16 micro 4 eager",
         "gbswt5 bf16 micro 4 sdpa"]  # the reference pair, then the attention comparison


def dry_run(tmp_path: Path, budget_s: str) -> tuple[dict, str]:
    env = run_env(**DRY_RUN, BUDGET_S=budget_s, REPORT_DIR=str(tmp_path / "report"), WORK=str(tmp_path / "work"),
                  PY=sys.executable)
    done = subprocess.run(["bash", "launch/gpu_check.sh"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = tmp_path / "report"
    assert not list(report.glob(".*tmp*")), "a temporary file was left behind"
    return json.loads((report / "gpu_check.json").read_text()), (report / "gpu_check.md").read_text()


def test_dry_run_reports_every_field_of_every_configuration(tmp_path):
    doc, table = dry_run(tmp_path, "600")
    assert doc["finished"] and doc["header"]["device"] == "CPU"
    configs = doc["configs"]
    for record in configs:
        assert {"name", "setting", "status", "reason", *MEASURES, *RUN_FIELDS} <= record.keys(), record["name"]
        assert record["name"] in table
    ran = [r for r in configs if r["status"] != "skipped"]
    assert [r["name"] for r in ran[:4]] == FIRST
    byt5 = [r for r in ran if r["setting"]["model"] == "byt5"]
    best = byt5[0]["setting"]["attention"]  # which one is faster on this CPU is its business
    assert [r["name"] for r in byt5] == [f"byt5 bf16 micro 2 {best}"]
    assert [r["setting"]["attention"] for r in ran if r["setting"]["loss"] == "chunked"] == [best]
    for record in ran:
        assert record["status"] == "ok", (record["name"], record["reason"])
        for key in ("examples_per_s", "input_bytes_per_s", "model_tflops", "mfu", "data_wait_fraction",
                    "peak_mem_gb", "loss", "setup_s", "train_s", "flops_per_step"):
            assert record[key] is not None and record[key] >= 0, (record["name"], key)
        assert record["steps"] == 3 and record["measured_steps"] == 2 and record["memory_kind"] == "cpu_rss"
        assert f"| {record['name']} | ok |" in table
    reasons = [r["reason"] for r in configs if r["status"] == "skipped"]
    assert any("fits without checkpointing" in r for r in reasons)
    assert sum("no accelerator memory figure" in r for r in reasons) == 2  # GBSWT5 and ByT5
    assert any("COMPILE=off" in r for r in reasons) and any("liger_kernel is not importable" in r for r in reasons)
    ref = doc["reference"]
    assert ref["steps"] == 3 and len(ref["bf16_losses"]) == len(ref["fp32_losses"]) == 3
    assert ref["max_rel_diff"] >= ref["final_rel_diff"] >= 0
    assert "bf16 against float32: gbswt5 bf16 micro 2 eager, 3 steps" in table
    assert doc["targets"]["figures"]["byt5_speedup"] is not None


def test_a_spent_budget_skips_every_configuration_and_still_writes_the_report(tmp_path):
    doc, table = dry_run(tmp_path, "0")
    assert doc["finished"] and doc["configs"]
    assert all(r["status"] == "skipped" for r in doc["configs"])
    deadline = [r for r in doc["configs"] if r["reason"].startswith("deadline")]
    assert deadline and deadline[0]["name"] == FIRST[0]
    assert doc["reference"] is None and "bf16 against float32: not measured" in table


def test_the_offline_wrapper_installs_the_listed_wheels_then_runs_the_check(tmp_path):
    wheels = tmp_path / "whl"
    wheels.mkdir()
    for name in ("requirements.txt", "requirements-datasets.txt"):
        (wheels / name).write_text("")  # this venv has everything: nothing to install
    env = run_env(**DRY_RUN, BUDGET_S="0", REPORT_DIR=str(tmp_path / "report"), WORK=str(tmp_path / "work"),
                  PY=sys.executable, WHEELS=str(wheels), DEPS=str(tmp_path / "deps"))
    done = subprocess.run(["bash", "launch/gpu_check_offline.sh"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "deepspeed 0." in done.stdout and json.loads((tmp_path / "report" / "gpu_check.json").read_text())["finished"]
    env["WHEELS"] = str(tmp_path / "none")
    done = subprocess.run(["bash", "launch/gpu_check_offline.sh"], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "launch/gpu_wheels.sh" in done.stderr

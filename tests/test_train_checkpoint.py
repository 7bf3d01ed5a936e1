"""Checkpoint bookkeeping without DeepSpeed: damage detection, tag order, RNG state round trip,
metrics records and the loss curve."""
from __future__ import annotations

import json
import random

import numpy as np
import torch

from pretrain.checkpoint import MARKER, _file_sizes, damage, list_tags, rng_state, set_rng_state
from pretrain.metrics import plot_loss_curve, read_metrics


def make_checkpoint(root, step, payload=b"weights"):
    tag = root / f"global_step{step}"
    (tag / "sub").mkdir(parents=True)
    (tag / "a.pt").write_bytes(payload)
    (tag / "sub" / "b.pt").write_bytes(payload * 2)
    (tag / MARKER).write_text(json.dumps({"step": step, "files": _file_sizes(tag)}))
    return tag


def test_tags_are_listed_newest_first_by_step_number(tmp_path):
    for step in (9, 10, 100):
        make_checkpoint(tmp_path, step)
    (tmp_path / "global_stepX").mkdir()
    (tmp_path / "latest").write_text("global_step100")
    assert list_tags(tmp_path) == [(100, "global_step100"), (10, "global_step10"), (9, "global_step9")]
    assert list_tags(tmp_path / "missing") == []


def test_damage_detects_unfinished_truncated_and_missing_files(tmp_path):
    tag = make_checkpoint(tmp_path, 5)
    assert damage(tmp_path, "global_step5") is None
    (tag / "sub" / "b.pt").write_bytes(b"short")
    assert "b.pt has 5 bytes, 14 were written" in damage(tmp_path, "global_step5")
    (tag / "a.pt").unlink()
    assert "a.pt is missing" in damage(tmp_path, "global_step5")
    (tag / MARKER).unlink()
    assert "has no complete.json (the save did not finish)" in damage(tmp_path, "global_step5")


def test_rng_state_round_trips_through_json():
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    state = json.loads(json.dumps(rng_state()))
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(7), np.random.seed(7), torch.manual_seed(7)
    set_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_metrics_keep_the_last_record_of_a_repeated_step_and_plot(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = [{"step": 1, "kind": "train", "loss": 5.0}, {"step": 2, "kind": "train", "loss": 4.0},
             {"step": 2, "kind": "eval", "loss": 4.5}, {"step": 2, "kind": "train", "loss": 3.9}]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    records = read_metrics(path)
    assert [(r["step"], r["kind"], r["loss"]) for r in records] == [(1, "train", 5.0), (2, "eval", 4.5), (2, "train", 3.9)]
    plot_loss_curve(path, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_failing_wandb_leaves_the_jsonl_metrics(tmp_path, monkeypatch, caplog):
    from pretrain.config import LoggingSettings
    from pretrain.metrics import MetricsLogger

    monkeypatch.setenv("WANDB_MODE", "no-such-mode")  # wandb.init raises, as without a reachable server
    logger = MetricsLogger(tmp_path, LoggingSettings(wandb=True), {}, enabled=True, run_name="r")
    logger.log({"step": 3, "kind": "train", "loss": 2.5})
    logger.close()
    assert "wandb is off for this run" in caplog.text
    assert read_metrics(tmp_path / "metrics.jsonl") == [{"step": 3, "kind": "train", "loss": 2.5}]

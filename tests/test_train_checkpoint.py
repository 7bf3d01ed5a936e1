"""Checkpoint bookkeeping without DeepSpeed: damage detection, tag order, RNG state round trip,
metrics records and the loss curve."""
from __future__ import annotations

import json
import random
import socket
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist

from data_prep.atomic import temp_path
from pretrain.checkpoint import MARKER, _file_sizes, damage, list_tags, prune, resumable, rng_state, set_rng_state
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


def test_damage_ignores_a_marker_being_written_by_another_node(tmp_path):
    # With a shared disk, every node's first rank marks the same directory: one may list the files
    # while another's temporary marker exists, which is renamed over the marker right after.
    tag = make_checkpoint(tmp_path, 5)
    other = temp_path(tag / MARKER)
    other.write_text("{")
    (tag / MARKER).write_text(json.dumps({"step": 5, "files": _file_sizes(tag)}))
    other.unlink()
    assert damage(tmp_path, "global_step5") is None


def test_prune_keeps_complete_checkpoints_only(tmp_path):
    # Step 100 complete; a save at 150 was killed (no marker); the run fell back to 100, went on
    # and saved 120. Keeping one must keep 120, not the damaged 150.
    make_checkpoint(tmp_path, 100)
    (tmp_path / "global_step150").mkdir()
    make_checkpoint(tmp_path, 120)
    prune(tmp_path, 120, keep_last=1)
    assert list_tags(tmp_path) == [(120, "global_step120")]


def test_prune_keeps_the_newest_k_and_drops_damaged_and_stale_ones(tmp_path):
    for step in (10, 20, 30, 40, 60):
        make_checkpoint(tmp_path, step)
    (tmp_path / "global_step20" / MARKER).unlink()  # damaged, before the current step
    prune(tmp_path, 40, keep_last=2)  # 60 is stale: the run resumed below it and saved 40 again
    assert list_tags(tmp_path) == [(40, "global_step40"), (30, "global_step30")]


def test_rng_state_round_trips_through_json():
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    random.gauss(), np.random.standard_normal()  # both now hold a cached second normal deviate
    state = json.loads(json.dumps(rng_state()))

    def draw():
        return random.gauss(), random.random(), np.random.standard_normal(), np.random.rand(), torch.rand(1).item()

    expected = draw()
    random.seed(7), np.random.seed(7), torch.manual_seed(7)
    set_rng_state(state)
    assert draw() == expected


def test_metrics_keep_the_last_record_of_a_repeated_step_and_plot(tmp_path):
    path = tmp_path / "metrics.jsonl"
    lines = [{"step": 1, "kind": "train", "loss": 5.0}, {"step": 2, "kind": "train", "loss": 4.0},
             {"step": 2, "kind": "eval", "loss": 4.5}, {"step": 2, "kind": "train", "loss": 3.9}]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    records = read_metrics(path)
    assert [(r["step"], r["kind"], r["loss"]) for r in records] == [(1, "train", 5.0), (2, "eval", 4.5), (2, "train", 3.9)]
    plot_loss_curve(path, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_matplotlib_there_is_no_loss_curve_and_no_error(tmp_path, monkeypatch, caplog):
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps({"step": 1, "kind": "train", "loss": 5.0}) + "\n")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with caplog.at_level("INFO", logger="pretrain.metrics"):
        plot_loss_curve(path, tmp_path / "curve.png")
    assert not (tmp_path / "curve.png").exists()
    assert "matplotlib is not installed" in caplog.text


def test_a_failing_wandb_leaves_the_jsonl_metrics(tmp_path, monkeypatch, caplog):
    from pretrain.config import LoggingSettings
    from pretrain.metrics import MetricsLogger

    monkeypatch.setenv("WANDB_MODE", "no-such-mode")  # wandb.init raises, as without a reachable server
    logger = MetricsLogger(tmp_path, LoggingSettings(wandb=True), {}, enabled=True, run_name="r")
    logger.log({"step": 3, "kind": "train", "loss": 2.5})
    logger.close()
    assert "wandb is off for this run" in caplog.text
    assert read_metrics(tmp_path / "metrics.jsonl") == [{"step": 3, "kind": "train", "loss": 2.5}]


@pytest.fixture
def one_rank_group():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_a_run_resumes_only_from_a_complete_checkpoint(tmp_path, one_rank_group):
    assert not resumable(tmp_path)
    (tmp_path / "global_step50").mkdir()  # killed during the run's first save: start afresh
    assert not resumable(tmp_path)
    make_checkpoint(tmp_path, 40)
    assert resumable(tmp_path)

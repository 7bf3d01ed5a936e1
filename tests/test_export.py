"""Export CLI: finding the checkpoint to export and refusing what cannot be exported.

The full round trip (a DeepSpeed run exported and loaded without this project) is in
tests/test_train_deepspeed.py, where a real checkpoint exists.
"""
from __future__ import annotations

import json

import pytest

from pretrain.checkpoint import MARKER
from pretrain.checkpoint_engine import file_checksum
from pretrain.export import ExportError, locate, main


def fake_run(root, steps=(2, 4), damaged=()):
    ckpts = root / "checkpoints"
    for step in steps:
        tag = ckpts / f"global_step{step}"
        tag.mkdir(parents=True)
        (tag / "mp_rank_00_model_states.pt").write_bytes(b"x" * 10)
        files = {"mp_rank_00_model_states.pt": 10 if step not in damaged else 11}
        (tag / MARKER).write_text(json.dumps({"step": step, "files": files}))
    (root / "model_config.json").write_text("{}")
    return root


def test_locate_accepts_run_checkpoints_and_tag_directories(tmp_path):
    run = fake_run(tmp_path / "run")
    assert locate(run, None) == (run, run / "checkpoints", "global_step4")
    assert locate(run / "checkpoints", None) == (run, run / "checkpoints", "global_step4")
    assert locate(run / "checkpoints" / "global_step2", None) == (run, run / "checkpoints", "global_step2")
    assert locate(run, "global_step2")[2] == "global_step2"


def test_locate_skips_a_damaged_newest_checkpoint(tmp_path, caplog):
    run = fake_run(tmp_path / "run", damaged=(4,))
    assert locate(run, None)[2] == "global_step2"
    assert "skipping damaged checkpoint global_step4" in caplog.text


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda r: None, "neither a run directory"),
        (lambda r: fake_run(r, damaged=(2, 4)), "no complete checkpoint"),
        (lambda r: (fake_run(r), (r / "model_config.json").unlink()), "model_config.json is missing"),
    ],
)
def test_locate_errors_name_the_problem(tmp_path, setup, message):
    run = tmp_path / "run"
    run.mkdir()
    setup(run)
    with pytest.raises(ExportError, match=message):
        locate(run, None)
    with pytest.raises(ExportError, match="--tag global_step9: no such checkpoint"):
        locate(fake_run(tmp_path / "other"), "global_step9")


def test_cli_refuses_to_overwrite_a_non_empty_output(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main([str(fake_run(tmp_path / "run")), str(out)]) == 2
    assert "exists and is not empty; pass --overwrite" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"


def test_locate_verifies_checksums_and_refuses_a_damaged_tag(tmp_path, caplog):
    run = fake_run(tmp_path / "run")
    for step in (2, 4):  # checksums recorded; step 4's file then changes at the same size
        tag = run / "checkpoints" / f"global_step{step}"
        marker = json.loads((tag / MARKER).read_text())
        marker["xxh3_64"] = {"mp_rank_00_model_states.pt": file_checksum(tag / "mp_rank_00_model_states.pt")}
        (tag / MARKER).write_text(json.dumps(marker))
    victim = run / "checkpoints" / "global_step4" / "mp_rank_00_model_states.pt"
    victim.write_bytes(b"y" * 10)
    assert locate(run, None)[2] == "global_step2"
    assert f"skipping damaged checkpoint global_step4: {victim} does not match the xxh3_64 checksum" in caplog.text
    with pytest.raises(ExportError, match=f"--tag global_step4: {victim} does not match"):
        locate(run, "global_step4")

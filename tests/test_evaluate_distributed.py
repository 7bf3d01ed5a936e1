"""`python -m pretrain.evaluate` data-parallel: two gloo processes started by torchrun (as on GPUs by
`torchrun -m` or `deepspeed --module`) against one process with the same effective batch."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from klue_fixtures import tiny_model_dir, write_klue
from pretrain.evaluate.cli import main
from pretrain.evaluate.report import PREDICTIONS, RESULTS_JSON, RESULTS_TABLE

ROOT = Path(__file__).resolve().parents[1]
# 24 NLI examples, batch 8 (two ranks x 4), two epochs: 6 steps; 24 decoded in batches of 5, so the
# ranks decode 3 and 2 batches and the last batch is short.
ARGS = ["--task", "nli", "--eval-split", "train", "--epochs", "2", "--batch-size", "8", "--lr", "3e-3",
        "--eval-batch-size", "5", "--log-interval", "2", "--device", "cpu"]


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_two_ranks_equal_one_process_with_the_same_effective_batch(tmp_path):
    model = str(tiny_model_dir(tmp_path / "tiny"))
    klue = str(write_klue(tmp_path / "klue", tasks=("nli",)))
    two, one = tmp_path / "two", tmp_path / "one"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "pretrain.evaluate", model, "--data", klue, "--output_dir", str(two), *ARGS],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("| model | nli accuracy |") == 1  # rank 0 alone prints the table
    # One process that splits each batch of 8 the way the ranks do: two micro batches of 4, the
    # loss of each halved. DDP's average of the ranks' gradients is the same sum, added in another
    # order, so weights and losses agree up to float32 rounding (relative ~1e-7 a step, which Adam
    # does not amplify over 6 steps: 1e-5 leaves room); greedy decoding of identical batches from
    # weights that close gives the same text.
    assert main([model, "--data", klue, "--output_dir", str(one), *ARGS, "--grad-accum", "2"]) == 0

    assert sorted(p.name for p in two.iterdir()) == sorted(p.name for p in one.iterdir())  # no rank-1 files
    assert _jsonl(two / PREDICTIONS) == _jsonl(one / PREDICTIONS)
    assert [r["guid"] for r in _jsonl(two / PREDICTIONS)] == [f"klue-nli-v1_train_{i:05d}" for i in range(24)]
    got, want = (json.loads((d / RESULTS_JSON).read_text())["results"][model]["nli"] for d in (two, one))
    assert got.pop("train_loss") == pytest.approx(want.pop("train_loss"), rel=1e-5)
    del got["decode_seconds"], want["decode_seconds"]
    assert got == want and got["steps"] == 6 and got["examples"] == 24
    assert (two / RESULTS_TABLE).read_text() == (one / RESULTS_TABLE).read_text()
    records = {d: [r for r in _jsonl(d / "metrics.jsonl") if r["kind"] == "finetune_nli"] for d in (two, one)}
    assert len(records[two]) == 3
    for a, b in zip(records[two], records[one]):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5) and a["lr"] == b["lr"]


def test_a_batch_the_ranks_cannot_share_is_one_line(tmp_path, monkeypatch, capsys):
    model = str(tiny_model_dir(tmp_path / "tiny"))
    klue = str(write_klue(tmp_path / "klue", tasks=("nli",)))
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "3")
    code = main([model, "--task", "nli", "--data", klue, "--output_dir", str(tmp_path / "o"), "--grad-accum", "2"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == "evaluate error: --batch-size 16 is not a multiple of --grad-accum 2 x 3 processes"
    assert not (tmp_path / "o").exists()


def test_the_local_rank_flag_deepspeed_appends_is_accepted_and_not_recorded(tmp_path):
    model = str(tiny_model_dir(tmp_path / "tiny"))
    klue = str(write_klue(tmp_path / "klue", tasks=("ynat",)))
    out = tmp_path / "o"
    assert main([model, "--task", "ynat", "--data", klue, "--output_dir", str(out), "--epochs", "0",
                 "--max-eval-examples", "2", "--max-target-bytes", "4", "--local_rank=0"]) == 0
    protocol = json.loads((out / RESULTS_JSON).read_text())["protocol"]
    assert "local_rank" not in protocol and "processes" not in protocol and protocol["device"] == "cpu"

"""The multi-node recipe on one machine: two `torchrun` "nodes" of one rank each share the run
directory. A kill -9 of one node and a resume give per-step losses bitwise equal to an unbroken
run, and the shared run state (checkpoint markers, `latest`, pruning, metrics) is written once,
by rank 0. The resume uses the SLURM script's rendezvous (c10d, node ranks assigned on joining)."""
from __future__ import annotations

import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path

import pytest

from deepspeed_runs import (REPO, finish_group, free_port, kolaw_shards, run_args, run_env,  # noqa: F401 (a fixture)
                            start_group, tags, train_losses)

pytestmark = pytest.mark.deepspeed

TORCHRUN = Path(sys.executable).with_name("torchrun")
STEPS = 6


def node_args(shards: Path, out: Path) -> list[str]:
    return run_args(shards, out, "checkpoint.interval=2", "checkpoint.keep_last=2", steps=STEPS)


def launch_two_nodes(args: list[str], logs: Path, trace: Path, *, rendezvous: str = "static",
                     faults: dict[str, str] | None = None) -> list[int]:
    """Start the two nodes' torchrun side by side; wait for both; return their exit codes."""
    port = free_port()
    if rendezvous == "static":
        nodes = [["--node_rank", str(n), "--master_addr", "127.0.0.1", "--master_port", str(port)] for n in (0, 1)]
    else:  # launch/slurm_pretrain.sbatch
        nodes = [["--rdzv_id", "test", "--rdzv_backend", "c10d", "--rdzv_endpoint", f"127.0.0.1:{port}"]] * 2
    env = run_env(TRACE_DIR=str(trace), **(faults or {}))
    procs = [start_group([str(TORCHRUN), "--nnodes", "2", "--nproc_per_node", "1", *node, str(REPO / "tests" / "fault_entry.py"),
                          *args], logs / f"node{n}.txt", env) for n, node in enumerate(nodes)]
    try:
        return [finish_group(proc) for proc in procs]
    finally:  # torchrun starts its ranks in sessions of their own
        for pid in (trace / "pids").read_text().split() if (trace / "pids").exists() else []:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


def writes(trace: Path, rank: int) -> Counter:
    path = trace / f"rank{rank}.txt"
    return Counter(path.read_text().splitlines()) if path.exists() else Counter()


def metrics_lines(run_dir: Path) -> Counter:
    return Counter((r["kind"], r["step"]) for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()))


@pytest.fixture(scope="module")
def unbroken(kolaw_shards, tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("unbroken")
    codes = launch_two_nodes(node_args(kolaw_shards, root / "run"), root, root / "trace")
    assert codes == [0, 0], (root / "node0.txt").read_text()[-3000:] + (root / "node1.txt").read_text()[-3000:]
    return root / "run", root / "trace"


def test_two_nodes_write_the_shared_run_state_once_from_rank_0(unbroken):
    run_dir, trace = unbroken
    assert writes(trace, 1) == Counter()
    saves = ["global_step2", "global_step4", "global_step6"]
    assert writes(trace, 0) == Counter(
        [f"marker {t}" for t in saves] + ["latest written"] * 3 + ["prune global_step2"]
        + [f"metrics train {s}" for s in range(1, STEPS + 1)] + [f"metrics eval {STEPS}"])
    assert metrics_lines(run_dir) == Counter([("train", s) for s in range(1, STEPS + 1)] + [("eval", STEPS)])
    assert tags(run_dir) == ["global_step4", "global_step6"]
    assert (run_dir / "checkpoints" / "latest").read_text() == "global_step6"
    assert json.loads((run_dir / "checkpoints" / "global_step6" / "complete.json").read_text())["world_size"] == 2


def test_a_node_killed_with_sigkill_resumes_bitwise_equal(unbroken, kolaw_shards, tmp_path):
    out, trace = tmp_path / "run", tmp_path / "trace"
    codes = launch_two_nodes(node_args(kolaw_shards, out), tmp_path, trace, faults={"FAULT_SIGKILL_AT": "5", "FAULT_RANK": "1"})
    assert codes[1] == -signal.SIGKILL and codes[0] != 0  # node 0's rank loses its peer
    assert tags(out) == ["global_step2", "global_step4"] and max(train_losses(out)) == 4
    (trace / "pids").unlink()

    codes = launch_two_nodes(node_args(kolaw_shards, out), tmp_path, trace, rendezvous="c10d")
    logs = (tmp_path / "node0.txt").read_text() + (tmp_path / "node1.txt").read_text()
    assert codes == [0, 0], logs[-4000:]
    assert "resumed from step 4" in logs
    assert train_losses(out) == train_losses(unbroken[0])
    assert tags(out) == ["global_step4", "global_step6"]
    assert writes(trace, 1) == Counter()
    assert writes(trace, 0) == Counter(
        [f"marker global_step{s}" for s in (2, 4, 6)] + ["latest written"] * 3 + ["prune global_step2"]
        + [f"metrics train {s}" for s in (1, 2, 3, 4, 5, 6)] + [f"metrics eval {STEPS}"])

"""Shared by the tests that train under a real launcher (CPU, gloo): the kolaw shards, run
arguments, launching in a process group of its own, reading losses and checkpoint tags."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data_prep.pack import Packer
from data_prep.sample import konlpy_corpus_dir
from pretrain.metrics import read_metrics
from shard_fixtures import write_shard_dir

REPO = Path(__file__).resolve().parents[1]
DEEPSPEED = Path(sys.executable).with_name("deepspeed")
CHUNK_BYTES = 128
LAUNCH_TIMEOUT = 600


def constitution_text() -> str:
    return (konlpy_corpus_dir() / "kolaw" / "constitution.txt").read_text(encoding="utf-8")


def packed_chunks(text: str) -> list[bytes]:
    """The text's lines packed into CHUNK_BYTES-byte chunks as `python -m data_prep` packs them."""
    packer = Packer(CHUNK_BYTES)
    chunks = packer.feed([line.strip().encode() for line in text.splitlines() if line.strip()])
    return chunks.to_list() + packer.finish().to_list()


@pytest.fixture(scope="module")
def kolaw_shards(tmp_path_factory) -> Path:
    chunks = packed_chunks(constitution_text())
    return write_shard_dir(tmp_path_factory.mktemp("kolaw") / "shards", chunks[16:], source="kolaw",
                           chunk_bytes=CHUNK_BYTES, val_chunks=chunks[:16])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_args(shards: Path, out: Path, *settings: str, steps: int) -> list[str]:
    base = {
        "data.input_length": CHUNK_BYTES, "logging.interval": 1, "logging.wandb": False, "eval.batches": 2,
        "schedule.type": "inverse_sqrt", "schedule.warmup_steps": 2, "optimizer.lr": 3e-3,
        "train_micro_batch_size_per_gpu": 4,
    }
    sets = [f"{k}={json.dumps(v)}" for k, v in base.items()] + list(settings)
    return ["--config", str(REPO / "ds_configs" / "tiny.json"), "--data", str(shards), "--output_dir", str(out),
            "--max_steps", str(steps), *[a for s in sets for a in ("--set", s)]]


def run_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1", **extra}


def start_group(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    """Start `cmd` in a process group of its own (the group's id is its pid), output to `log`."""
    with log.open("w") as handle:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                start_new_session=True)


def finish_group(proc: subprocess.Popen, timeout: float = LAUNCH_TIMEOUT) -> int:
    """Wait for `proc`, then until every process of its group has exited (SIGKILL after 60 s:
    ranks outlive a launcher killed by a signal). Returns `proc`'s exit code."""
    try:
        code = proc.wait(timeout=timeout)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.5)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return code


def assert_no_shared_memory_left(port: int) -> None:
    left = sorted(p.name for p in Path("/dev/shm").glob(f"deepspeed_allreduce_buffer_*_{port}_*"))
    assert not left, f"the run left shared memory behind: {left}"


def launch(args: list[str], log: Path, *, ranks: int = 1, faults: dict[str, str] | None = None,
           env: dict[str, str] | None = None) -> int:
    """Run `deepspeed --num_gpus N tests/fault_entry.py ARGS` in its own process group; wait until
    every process of the group (launcher and ranks) has exited. Returns the launcher's exit code.
    Checks that the run left no DeepSpeed shared-memory segment behind in /dev/shm."""
    port = free_port()
    cmd = [str(DEEPSPEED), "--num_gpus", str(ranks), "--master_port", str(port),
           str(REPO / "tests" / "fault_entry.py"), *args]
    code = finish_group(start_group(cmd, log, run_env(**(env or {}), **(faults or {}))))
    assert_no_shared_memory_left(port)
    return code


def train_losses(run_dir: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(run_dir / "metrics.jsonl") if r["kind"] == "train"}


def tags(run_dir: Path) -> list[str]:
    return sorted(p.name for p in (run_dir / "checkpoints").glob("global_step*"))



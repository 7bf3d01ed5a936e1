"""Resuming from hostile or unusable checkpoints under the real `deepspeed` launcher (CPU, gloo):
a same-size bit flip falls back to the previous checkpoint, a file whose pickle names code is
refused by resume and export without running it, another rank count is reported as such."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from deepspeed_runs import REPO, kolaw_shards, launch, run_args, tags, train_losses  # noqa: F401 (a fixture)
from pretrain.checkpoint import MARKER, _file_sizes
from pretrain.checkpoint_engine import CHECKSUM, file_checksum

pytestmark = pytest.mark.deepspeed


def four_step_args(shards: Path, out: Path, steps: int = 4) -> list[str]:
    return run_args(shards, out, "checkpoint.interval=2", "checkpoint.keep_last=3", steps=steps)


def resume_args(shards: Path, out: Path) -> list[str]:
    """The four-step run continued by one step: a real resume (a rerun at max_steps 4 would stop at
    'already at max_steps, nothing to do' before loading anything). The inverse-sqrt schedule does
    not depend on max_steps, so steps 3 and 4 redone match the first run bitwise."""
    return four_step_args(shards, out, steps=5)


@pytest.fixture(scope="module")
def four_step_run(kolaw_shards, tmp_path_factory) -> Path:
    """One rank, ZeRO-2 (tiny.json), checkpoints at steps 2 and 4."""
    out = tmp_path_factory.mktemp("four_steps") / "run"
    assert launch(four_step_args(kolaw_shards, out), out.parent / "log.txt") == 0, (out.parent / "log.txt").read_text()[-3000:]
    assert tags(out) == ["global_step2", "global_step4"]
    return out


@pytest.fixture
def run_copy(four_step_run, tmp_path) -> Path:
    return Path(shutil.copytree(four_step_run, tmp_path / "run"))


@pytest.mark.parametrize("steps", [5, 4], ids=["continued", "finished_rerun"])
def test_a_same_size_bit_flip_falls_back_to_the_previous_checkpoint(four_step_run, run_copy, kolaw_shards,
                                                                    tmp_path, steps):
    """Continued to step 5, or rerun at max_steps 4: a finished run whose final checkpoint rotted
    is not 'nothing to do' but redoes steps 3 and 4 from the checkpoint before."""
    victim = next((run_copy / "checkpoints" / "global_step4").glob("*optim_states.pt"))
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01  # inside the fp32 master weights or Adam states
    victim.write_bytes(bytes(data))
    assert launch(four_step_args(kolaw_shards, run_copy, steps=steps), tmp_path / "log.txt") == 0
    log = (tmp_path / "log.txt").read_text()
    assert "nothing to do" not in log
    assert f"checkpoint global_step4 is damaged ({victim} does not match the xxh3_64 checksum" in log
    assert "resumed from step 2" in log
    redone = {step: loss for step, loss in train_losses(run_copy).items() if step <= 4}
    assert redone == train_losses(four_step_run)  # steps 3 and 4 again, bitwise


class Payload:
    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")  # creates the file when unpickled


def test_a_checkpoint_file_that_would_run_code_is_refused_by_resume_and_export(run_copy, kolaw_shards, tmp_path):
    directory = run_copy / "checkpoints" / "global_step4"
    crafted = directory / "mp_rank_00_model_states.pt"
    ran = tmp_path / "payload-ran"
    torch.save({"module": {}, "dp_world_size": 1, "exploit": Payload(ran)}, crafted)
    # the marker made to match, as whoever can write the file can write it too
    marker = json.loads((directory / MARKER).read_text())
    marker.update(files=_file_sizes(directory), **{CHECKSUM: {n: file_checksum(directory / n) for n in _file_sizes(directory)}})
    (directory / MARKER).write_text(json.dumps(marker))

    assert launch(resume_args(kolaw_shards, run_copy), tmp_path / "log.txt") == 2
    log = (tmp_path / "log.txt").read_text()
    assert f"cannot resume: {crafted} asks the unpickler to call" in log and "refusing to load it" in log
    assert not ran.exists()

    export = subprocess.run([sys.executable, "-m", "pretrain.export", str(run_copy), str(tmp_path / "hf")], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert export.returncode == 2, export.stderr[-3000:]
    assert f"export error: {crafted} asks the unpickler to call" in export.stderr
    assert "Traceback" not in export.stderr and not ran.exists()


def test_resuming_with_another_rank_count_says_so_first(run_copy, kolaw_shards, tmp_path):
    assert launch(resume_args(kolaw_shards, run_copy), tmp_path / "log.txt", ranks=2) == 2
    log = (tmp_path / "log.txt").read_text()
    errors = [line for line in log.splitlines() if "cannot resume" in line]
    assert len(errors) == 1 and errors[0].endswith(
        f"cannot resume: {run_copy / 'checkpoints' / 'global_step4'} was written by 1 rank, this run has 2; resume "
        "with 1 rank (DeepSpeed cannot repartition the ZeRO states), or give another output_dir to start a new run")
    assert "none could be loaded" not in log and "Traceback" not in log
    assert tags(run_copy) == ["global_step2", "global_step4"]

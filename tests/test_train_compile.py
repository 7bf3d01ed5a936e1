"""run.model.compile under the real deepspeed launcher (CPU, one rank): a run stopped and resumed
with compiled blocks follows the unbroken compiled run bitwise (how close compiled is to eager:
tests/test_model_compile.py)."""
from __future__ import annotations

import pytest

from deepspeed_runs import kolaw_shards, launch, run_args, train_losses  # noqa: F401 (a fixture)

pytestmark = pytest.mark.deepspeed

STEPS = 6
COMPILED = ("model.compile=true", "checkpoint.interval=3", "eval.batches=0", "checkpoint.save_final=false")


def test_compiled_run_resumes_exactly(kolaw_shards, tmp_path):
    whole = tmp_path / "whole"
    assert launch(run_args(kolaw_shards, whole, *COMPILED, steps=STEPS), tmp_path / "whole.txt") == 0, \
        (tmp_path / "whole.txt").read_text()[-3000:]
    split = tmp_path / "split"
    for stop in (3, STEPS):
        log = tmp_path / f"split{stop}.txt"
        assert launch(run_args(kolaw_shards, split, *COMPILED, f"stop_at_step={stop}", steps=STEPS), log) == 0, \
            log.read_text()[-3000:]
    assert "resumed from step 3" in (tmp_path / f"split{STEPS}.txt").read_text()
    reference = train_losses(whole)
    assert sorted(reference) == list(range(1, STEPS + 1))
    assert train_losses(split) == reference

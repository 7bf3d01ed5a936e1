"""What a person reads in the training log: the line format, durations, the mixture summary."""
from __future__ import annotations

import numpy as np
import pytest

from pretrain.metrics import format_duration, format_record
from pretrain.mixture import describe_mixture, mixing_counts


def test_a_train_line_shows_progress_mfu_in_percent_and_time_left():
    record = {"step": 120, "kind": "train", "loss": 1.23456, "lr": 1e-4, "grad_norm": None, "epoch": 0,
              "mfu": 0.4567, "eta_s": 3 * 3600 + 5 * 60 + 29}
    assert format_record(record, 1000) == "step 120/1000 train: loss 1.235  lr 0.0001  epoch 0  mfu 45.7%  eta 3h05m"
    assert format_record({"step": 7, "kind": "eval", "loss": 2.0, "target_ids": 30}) == "step 7 eval: loss 2  target_ids 30"


@pytest.mark.parametrize("seconds, text", [(0, "0s"), (12.4, "12s"), (59.6, "1m00s"), (247, "4m07s"),
                                           (3600, "1h00m"), (90061, "25h01m")])
def test_durations(seconds, text):
    assert format_duration(seconds) == text


def test_the_mixture_summary_shows_each_source_against_its_weight():
    rows, weights = [230, 37], [1, 3]
    counts = mixing_counts(rows, 264, weights, None)
    lines = describe_mixture(["shards/big", "shards/small"], rows, counts, weights, None)
    assert lines == [
        "data mixture (weights 1, 3): 264 samples per epoch",
        "  shards/big: 66 samples per epoch (25.0%, intended 25.0%) from 230 rows (0.29 passes)",
        "  shards/small: 198 samples per epoch (75.0%, intended 75.0%) from 37 rows (5.35 passes)",
    ]
    alpha = describe_mixture(["a", "b"], rows, mixing_counts(rows, 264, None, 0.3), None, 0.3)
    p = np.array(rows) ** 0.3
    assert alpha[0] == "data mixture (temperature_alpha 0.3): 264 samples per epoch"
    assert f"intended {100 * p[1] / p.sum():.1f}%" in alpha[2]
    assert describe_mixture(["a", "b"], rows, mixing_counts(rows, 264, None, None), None, None)[0].startswith(
        "data mixture (proportional to rows)")

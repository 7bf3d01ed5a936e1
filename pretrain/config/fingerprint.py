"""The resume fingerprint: a hash of every setting that determines the training trajectory.

Checkpoints store the hash; a run resumes only from checkpoints whose hash equals its own.
"""
from __future__ import annotations

import hashlib
import json

from pretrain.config.schema import TrainConfig

# Fields that may change between a run and its resumption without breaking exactness.
# max_steps is among them, but a cosine schedule spans max_steps: to stop early and resume
# exactly, use stop_at_step instead.
RESUMABLE_FIELDS = ("output_dir", "max_steps", "stop_at_step", "eval", "checkpoint", "logging", "max_nonfinite_in_row")
# DeepSpeed keys that only change what DeepSpeed prints.
_UNHASHED_DEEPSPEED = ("steps_per_print", "wall_clock_breakdown")


def hashed_settings(config: TrainConfig) -> dict:
    """The settings the hash covers, as a JSON-able document."""
    run = {k: v for k, v in config.run.model_dump().items() if k not in RESUMABLE_FIELDS}
    run["model"].pop("init_from")  # a resumed run loads the checkpoint, not the warm start
    ds = {k: v for k, v in config.deepspeed.items() if k not in _UNHASHED_DEEPSPEED}
    return {"run": run, "deepspeed": ds}


def config_hash(config: TrainConfig) -> str:
    """Hash of everything that determines the training trajectory (stored in checkpoints)."""
    text = json.dumps(hashed_settings(config), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]

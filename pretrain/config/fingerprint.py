"""The resume fingerprint: a hash of every setting that determines the training trajectory.

Checkpoints store the hash; a run resumes only from checkpoints whose hash equals its own. The
run directory also keeps the hashed settings themselves (`FINGERPRINT_FILE`), so that a refused
resume can say which settings changed, from what to what.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from data_prep.atomic import write_json
from pretrain.config.schema import RUN_KEY, TrainConfig

# Fields that may change between a run and its resumption without breaking exactness.
# max_steps is among them, but a cosine schedule spans max_steps: to stop early and resume
# exactly, use stop_at_step instead.
RESUMABLE_FIELDS = ("output_dir", "max_steps", "stop_at_step", "eval", "checkpoint", "logging", "max_nonfinite_in_row")
# DeepSpeed keys that only change what DeepSpeed prints.
_UNHASHED_DEEPSPEED = ("steps_per_print", "wall_clock_breakdown")
FINGERPRINT_FILE = "config_fingerprint.json"  # in the run directory, beside checkpoints/
# Model settings that choose an implementation of the same function (kernels, compile), not the
# function: a run may resume with others (then equal up to rounding, not bitwise), and the hash
# of runs older than these settings stays what it was.
_IMPLEMENTATION_FIELDS = ("attention", "compile", "loss")


def hashed_settings(config: TrainConfig) -> dict:
    """The settings the hash covers, as a JSON-able document."""
    run = {k: v for k, v in config.run.model_dump().items() if k not in RESUMABLE_FIELDS}
    run["model"].pop("init_from")  # a resumed run loads the checkpoint, not the warm start
    for field in _IMPLEMENTATION_FIELDS:
        run["model"].pop(field)
    ds = {k: v for k, v in config.deepspeed.items() if k not in _UNHASHED_DEEPSPEED}
    return {"run": run, "deepspeed": ds}


def _hash(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def config_hash(config: TrainConfig) -> str:
    """Hash of everything that determines the training trajectory (stored in checkpoints)."""
    return _hash(hashed_settings(config))


def write_fingerprint(run_dir: Path, config: TrainConfig) -> None:
    """Keep the hashed settings in the run directory, for `resume_refusal` to compare against."""
    write_json(Path(run_dir) / FINGERPRINT_FILE, {"config_hash": config_hash(config), "settings": hashed_settings(config)})


def _flatten(node: Any, prefix: str, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(node, dict) and node:
        for key, value in node.items():
            _flatten(value, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = node
    return out


def _as_config_keys(settings: dict) -> dict[str, Any]:
    """Hashed settings as {key as written in the config file: value}: run.optimizer.lr, zero_optimization.stage."""
    return {**_flatten(settings["deepspeed"], "", {}), **_flatten(settings["run"], RUN_KEY, {})}


def changed_settings(old: dict, new: dict) -> list[str]:
    """'key: old -> new' for every hashed setting that differs ('unset' where one side lacks it)."""
    before, after = _as_config_keys(old), _as_config_keys(new)

    def show(values: dict, key: str) -> str:
        return json.dumps(values[key]) if key in values else "unset"

    return [f"{key}: {show(before, key)} -> {show(after, key)}"
            for key in sorted(before.keys() | after.keys()) if show(before, key) != show(after, key)]


def _stored_settings(run_dir: Path, stored_hash: str) -> dict | None:
    """The settings behind `stored_hash`, if the run directory kept them (runs of older versions did not)."""
    try:
        stored = json.loads((Path(run_dir) / FINGERPRINT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("config_hash") != stored_hash or _hash(stored.get("settings")) != stored_hash:
        return None
    return stored["settings"]


def resume_refusal(ckpt_dir: Path, run_dir: Path, stored_hash: str, config: TrainConfig) -> str:
    """Why a checkpoint written with `stored_hash` cannot be resumed with `config`, in one line."""
    head = f"{ckpt_dir}: the checkpoint was written with config hash {stored_hash}, this run's is {config_hash(config)}"
    tail = f"only {', '.join(RESUMABLE_FIELDS)} of the run block may change when resuming"
    stored = _stored_settings(run_dir, stored_hash)
    if stored is None:
        return f"{head}; {tail} (compare with the run_config.json of the original run)"
    return f"{head}; changed: {'; '.join(changed_settings(stored, hashed_settings(config)))}; {tail}"

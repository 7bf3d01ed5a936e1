"""The resume fingerprint: what the hash covers, its stability, and the refusal that names changes."""
from __future__ import annotations

import json

from config_fixtures import valid_config

from pretrain.config import FINGERPRINT_FILE, config_hash, parse_document, resume_refusal, write_fingerprint


def test_config_hash_ignores_resumable_fields_only(tmp_path):
    base = valid_config(tmp_path)
    same = parse_document(base.to_json_dict())
    same.run.max_steps, same.run.output_dir, same.run.eval.interval = 999, "elsewhere", 3
    assert config_hash(same) == config_hash(base)
    for mutate in (
        lambda c: setattr(c.run.optimizer, "lr", 0.5),
        lambda c: setattr(c.run, "seed", 9),
        lambda c: c.deepspeed.update(gradient_accumulation_steps=2),
        lambda c: setattr(c.run.data, "noise_density", 0.2),
    ):
        other = parse_document(base.to_json_dict())
        mutate(other)
        assert config_hash(other) != config_hash(base)


def test_config_hash_is_the_one_existing_runs_were_written_with():
    """Checkpoints store this hash; a different value for the same settings refuses every existing
    run's resume. (A new run-block field changes it too: its default joins every run's hash.)"""
    doc = {"train_micro_batch_size_per_gpu": 1, "steps_per_print": 5, "run": {"optimizer": {"lr": 1}}}
    assert config_hash(parse_document(doc)) == "d6bf8dc85ba5792c"  # what the code before the pydantic schema gave


def test_a_refused_resume_names_each_changed_setting_with_old_and_new_values(tmp_path):
    original = valid_config(tmp_path)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_fingerprint(run_dir, original)
    changed = parse_document(json.loads(json.dumps(original.to_json_dict())))
    changed.run.optimizer.lr = 0.5
    changed.run.model.overrides["dropout_rate"] = 0.1
    changed.deepspeed["gradient_accumulation_steps"] = 2
    changed.deepspeed["zero_optimization"]["stage"] = 3
    changed.run.max_steps = 7  # resumable: not named
    message = resume_refusal(run_dir / "checkpoints", run_dir, config_hash(original), changed)
    assert message.startswith(f"{run_dir / 'checkpoints'}: the checkpoint was written with config hash "
                              f"{config_hash(original)}, this run's is {config_hash(changed)}; changed: ")
    named = message.split("; changed: ")[1].split("; only ")[0].split("; ")
    assert named == [
        "gradient_accumulation_steps: 1 -> 2",
        "run.model.overrides.dropout_rate: 0.0 -> 0.1",
        "run.optimizer.lr: 0.001 -> 0.5",
        "zero_optimization.stage: 2 -> 3",
    ]
    assert "\n" not in message and "max_steps:" not in message


def test_a_setting_only_one_side_has_is_shown_as_unset(tmp_path):
    original = valid_config(tmp_path)
    write_fingerprint(tmp_path, original)
    changed = parse_document(json.loads(json.dumps(original.to_json_dict())))
    del changed.deepspeed["gradient_clipping"]
    changed.deepspeed["prescale_gradients"] = True
    message = resume_refusal(tmp_path, tmp_path, config_hash(original), changed)
    assert "gradient_clipping: 1.0 -> unset; prescale_gradients: unset -> true" in message


def test_without_matching_stored_settings_the_refusal_points_to_run_config(tmp_path):
    """Run directories of older versions hold no fingerprint; one of another run proves nothing."""
    original = valid_config(tmp_path)
    changed = parse_document(json.loads(json.dumps(original.to_json_dict())))
    changed.run.seed = 5
    for stored in (None, {"config_hash": config_hash(changed), "settings": {}}, "not json"):
        path = tmp_path / FINGERPRINT_FILE
        path.unlink(missing_ok=True)
        if stored is not None:
            path.write_text(stored if isinstance(stored, str) else json.dumps(stored))
        message = resume_refusal(tmp_path, tmp_path, config_hash(original), changed)
        assert "changed:" not in message
        assert message.endswith("may change when resuming (compare with the run_config.json of the original run)")

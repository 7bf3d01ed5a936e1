"""The resume fingerprint: what the hash covers, and its stability."""
from __future__ import annotations

from config_fixtures import valid_config

from pretrain.config import config_hash, parse_document


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

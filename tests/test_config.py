"""Run-config parsing, command-line overrides and validation (every error names its field)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from config_fixtures import CONFIGS, tiny_doc, valid_config, write

from data_prep.span_lengths import corrupted_lengths
from pretrain.config import (
    ConfigError,
    apply_overrides,
    build_arg_parser,
    check_deepspeed_keys,
    load_config,
    parse_document,
    validate,
    validate_batch_sizes,
)

@pytest.mark.parametrize("name", ["tiny", "small", "base", "large", "large_zero3"])
def test_shipped_configs_parse_and_pass_deepspeed(name):
    doc = json.loads((CONFIGS / f"{name}.json").read_text())
    config = parse_document(doc)
    check_deepspeed_keys(config.deepspeed)
    assert config.deepspeed["bf16"]["enabled"] is True
    micro, accum, total = validate_batch_sizes(config.deepspeed, world_size=8)
    assert total == micro * accum * 8
    if name != "tiny":  # ByT5 practice: 1024 sequences of 1024 inputs per step on 8 devices
        assert total == 1024 and config.run.data.input_length == 1024
    assert config.run.model.preset == name.split("_")[0]


def test_cli_flags_and_set_override_fields(tmp_path):
    path = write(tmp_path / "c.json", tiny_doc())
    config = load_config([
        "--config", str(path), "--data", "a", "b", "--output_dir", "out", "--init_from", "google/byt5-small",
        "--max_steps", "7", "--stop_at", "4", "--seed", "3", "--set", "optimizer.lr=0.02", "--set", "run.schedule.type=inverse_sqrt",
        "--set", "zero_optimization.stage=3", "--set", "model.overrides={\"d_model\": 48}", "--local_rank=0",
    ])
    run = config.run
    assert run.data.train == ["a", "b"] and run.output_dir == "out" and run.max_steps == 7 and run.seed == 3
    assert run.stop_at_step == 4
    assert run.model.init_from == "google/byt5-small"
    assert run.optimizer.lr == 0.02 and run.schedule.type == "inverse_sqrt"
    assert config.deepspeed["zero_optimization"]["stage"] == 3
    assert run.model.overrides == {"d_model": 48}
    assert load_config(["--config", str(path), "--init_from", "none"]).run.model.init_from is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"optimizer": {"type": "adamw", "lrr": 1.0}}, "run.optimizer: unknown key 'lrr' (did you mean 'lr'?)"),
        ({"max_step": 3}, "run: unknown key 'max_step' (did you mean 'max_steps'?)"),
        ({"max_steps": "10"}, "run.max_steps: expected an integer"),
        ({"max_steps": 2.5}, "run.max_steps: expected an integer"),
        ({"seed": True}, "run.seed: expected an integer"),
        ({"model": {"type": "bert"}}, "run.model.type: 'bert' is not one of"),
        ({"model": {"gradient_checkpointing": 1}}, "run.model.gradient_checkpointing: expected true or false"),
        ({"data": {"train": ["a", 3]}}, "run.data.train[1]: expected a string"),
        ({"data": {"weights": "0.5"}}, "run.data.weights"),
    ],
)
def test_type_and_key_errors_name_the_field(change, field):
    with pytest.raises(ConfigError) as err:
        parse_document(tiny_doc(**change))
    assert field in str(err.value)


def test_set_on_a_non_object_is_refused(tmp_path):
    args = build_arg_parser().parse_args(["--config", "x", "--set", "max_steps.x=1"])
    with pytest.raises(ConfigError, match="run.max_steps is not an object"):
        apply_overrides(tiny_doc(), args)


def test_unknown_deepspeed_key_is_reported_with_suggestion():
    doc = tiny_doc()
    doc["gradient_cliping"] = 1.0
    with pytest.raises(ConfigError, match="unknown key 'gradient_cliping' \\(did you mean 'gradient_clipping'"):
        check_deepspeed_keys(parse_document(doc).deepspeed)
    doc = tiny_doc()
    doc["zero_optimization"]["overlap_com"] = True
    with pytest.raises(ConfigError, match="overlap_com"):
        check_deepspeed_keys(parse_document(doc).deepspeed)


def test_validation_returns_padding_lengths_from_the_manifest(tmp_path):
    info = validate(valid_config(tmp_path, chunk_bytes=1193), world_size=2)
    assert info.chunk_bytes == 1193 and info.inputs_length == 1024
    # The longest targets over every chunk length up to 1193 (ByT5's 1024/189 setting).
    expected = max(corrupted_lengths(n)[1] for n in range(2, 1194))
    assert info.targets_length == expected >= 189


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c.deepspeed.update(train_batch_size=9), "train_batch_size: 9 is not train_micro_batch_size_per_gpu 8"),
        (lambda c: c.deepspeed.update(gradient_accumulation_steps=0), "gradient_accumulation_steps: expected a positive"),
        (lambda c: c.deepspeed.pop("train_micro_batch_size_per_gpu"), "train_micro_batch_size_per_gpu: required"),
        (lambda c: c.deepspeed.update(optimizer={"type": "Adam"}), "optimizer: the optimizer and schedule are the run's"),
        (lambda c: c.deepspeed.update(fp16={"enabled": True}), "fp16.enabled: T5 models overflow"),
        (lambda c: c.deepspeed["zero_optimization"].update(stage=4), "zero_optimization.stage: expected 0, 1, 2 or 3"),
        (lambda c: c.run.data.train.append("/nonexistent/shards"), "run.data.train[1]: shard directory /nonexistent/shards does not exist"),
        (lambda c: setattr(c.run.data, "train", []), "run.data.train: no shard directories"),
        (lambda c: setattr(c.run.data, "weights", [1.0, 2.0]), "run.data.weights: 2 weights for 1 directories"),
        (lambda c: setattr(c.run.data, "input_length", 200), "run.data.input_length: "),
        (lambda c: setattr(c.run.data, "mean_noise_span_length", 1.0), "run.data.mean_noise_span_length: 256-byte chunks"),
        (lambda c: setattr(c.run.model, "init_from", "./no/such/dir/x"), "run.model.init_from: './no/such/dir/x'"),
        (lambda c: setattr(c.run.schedule, "warmup_steps", 10_000), "run.schedule.warmup_steps: 10000 warmup steps exceed"),
        (lambda c: setattr(c.run.optimizer, "betas", [0.9]), "run.optimizer.betas"),
        (lambda c: setattr(c.run.checkpoint, "keep_last", 0), "run.checkpoint.keep_last: must be > 0"),
        (lambda c: setattr(c.run, "stop_at_step", 0), "run.stop_at_step: must be > 0"),
        (lambda c: (setattr(c.run.model, "type", "byt5"), setattr(c.run.model, "freeze_gbst", True)), "run.model.freeze_gbst"),
        (lambda c: (setattr(c.run.model, "type", "byt5"), setattr(c.run.model, "loss", "chunked")), "run.model.loss"),
    ],
)
def test_impossible_combinations_fail_naming_the_field(tmp_path, mutate, message):
    config = valid_config(tmp_path)
    validate(config, world_size=1)  # the unmodified config is fine
    mutate(config)
    with pytest.raises(ConfigError) as err:
        validate(config, world_size=1)
    assert message in str(err.value)


def test_manifest_problems_name_the_directory(tmp_path):
    config = valid_config(tmp_path)
    manifest = Path(config.run.data.train[0]) / "manifest.json"
    manifest.write_text("{not json")
    with pytest.raises(ConfigError, match=r"run.data.train\[0\]: .*manifest.json is not valid JSON"):
        validate(config, world_size=1)
    manifest.write_text(json.dumps({"format_version": 1}))
    with pytest.raises(ConfigError, match=r"run.data.train\[0\]: .*no valid integer 'chunk_bytes'"):
        validate(config, world_size=1)


def test_batch_size_arithmetic_over_ranks():
    assert validate_batch_sizes({"train_micro_batch_size_per_gpu": 4, "train_batch_size": 32}, 4) == (4, 2, 32)
    assert validate_batch_sizes({"train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 3}, 2) == (4, 3, 24)
    with pytest.raises(ConfigError, match="train_batch_size: 30 is not"):
        validate_batch_sizes({"train_micro_batch_size_per_gpu": 4, "train_batch_size": 30}, 4)


def test_presets_and_model_types_match_the_model():
    from pretrain.config import MODEL_TYPES, PRESETS
    from pretrain.modeling.configuration_gbswt5 import _BYT5_DIMS

    assert sorted(PRESETS) == sorted(_BYT5_DIMS)
    assert MODEL_TYPES == ("gbswt5", "byt5")
    with pytest.raises(ConfigError, match=r"run.model.preset: 'xl' is not one of \['tiny', 'small', 'base', 'large'\]"):
        parse_document(tiny_doc(model={"preset": "xl"}))


@pytest.mark.parametrize(
    ("section", "typo", "message"),
    [
        (("zero_optimization",), {"stge": 3}, "zero_optimization: unknown key 'stge' (did you mean 'stage'?)"),
        (("zero_optimization", "offload_optimizer"), {"device": "cpu", "devce": "cpu"},
         "zero_optimization.offload_optimizer: unknown key 'devce' (did you mean 'device'?)"),
        (("bf16",), {"enabled": True, "enabeld": True}, "bf16: unknown key 'enabeld' (did you mean 'enabled'?)"),
        # validated by DeepSpeed's monitor config from the top level
        (("tensorboard",), {"enabeld": True}, "tensorboard: unknown key 'enabeld' (did you mean 'enabled'?)"),
        # sections DeepSpeed reads key by key and would silently ignore a typo in
        (("activation_checkpointing",), {"partition_activatons": True},
         "activation_checkpointing: unknown key 'partition_activatons' (did you mean 'partition_activations'?)"),
        (("flops_profiler",), {"enabled": True, "profile_stp": 3},
         "flops_profiler: unknown key 'profile_stp' (did you mean 'profile_step'?)"),
    ],
)
def test_nested_deepspeed_typos_get_a_suggestion(section, typo, message):
    doc = tiny_doc()
    node = doc
    for key in section[:-1]:
        node = node[key]
    node[section[-1]] = {**node.get(section[-1], {}), **typo}
    with pytest.raises(ConfigError) as err:
        check_deepspeed_keys(parse_document(doc).deepspeed)
    assert str(err.value) == message


def test_valid_deepspeed_sections_are_not_taken_for_typos():
    """Keys DeepSpeed reads only in part (a disabled profiler) or through pydantic (offload_param)."""
    doc = tiny_doc()
    doc["zero_optimization"].update(stage=3, offload_param={"device": "cpu"}, offload_optimizer={"device": "cpu"})
    doc.update(
        activation_checkpointing={"partition_activations": True, "cpu_checkpointing": False, "number_checkpoints": None,
                                  "contiguous_memory_optimization": False, "synchronize_checkpoint_boundary": False},
        flops_profiler={"enabled": False, "profile_step": 1, "module_depth": -1, "top_modules": 1, "detailed": True},
        tensorboard={"enabled": False, "output_path": "tb", "job_name": "j"}, data_types={"grad_accum_dtype": "fp32"},
        aio={"block_size": 1048576, "queue_depth": 8, "thread_count": 1}, checkpoint={"tag_validation": "Warn"},
    )
    check_deepspeed_keys(parse_document(doc).deepspeed)


def test_an_unplaceable_deepspeed_error_is_still_one_line():
    doc = tiny_doc()
    doc["zero_optimization"]["stage"] = "three"
    with pytest.raises(ConfigError) as err:
        check_deepspeed_keys(parse_document(doc).deepspeed)
    assert "\n" not in str(err.value) and "stage" in str(err.value)


def test_model_overrides_are_checked_against_the_model_config(tmp_path):
    path = write(tmp_path / "c.json", valid_config(tmp_path).to_json_dict())
    config = load_config(["--config", str(path), "--set", "model.overrides.dropout_rte=0.3"])
    with pytest.raises(ConfigError) as err:
        validate(config, world_size=1)
    assert str(err.value) == "run.model.overrides: unknown key 'dropout_rte' (did you mean 'dropout_rate'?)"
    config = load_config(["--config", str(path), "--set", "model.overrides.dropout_rate=0.3",
                          "--set", "model.overrides.hidden_size=64", "--set", "model.overrides.downsample_factor=2"])
    validate(config, world_size=1)  # a field, an alias of one, and a GBST field of a gbswt5 model
    # a byt5 model has T5's fields only
    config = load_config(["--config", str(path), "--set", "model.type=byt5", "--set", "model.overrides.downsample_factor=2"])
    with pytest.raises(ConfigError, match="run.model.overrides: unknown key 'downsample_factor'"):
        validate(config, world_size=1)


def test_the_tensorboard_hint_is_the_readme_install_command(tmp_path, monkeypatch):
    import importlib.util

    from pretrain.config.validation import TENSORBOARD_INSTALL

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else find_spec(name, *a))
    config = valid_config(tmp_path)
    config.run.logging.tensorboard = True
    with pytest.raises(ConfigError) as err:
        validate(config, world_size=1)
    assert str(err.value) == f"run.logging.tensorboard: tensorboard is not installed ({TENSORBOARD_INSTALL})"
    assert TENSORBOARD_INSTALL in (CONFIGS.parent / "README.md").read_text(encoding="utf-8")

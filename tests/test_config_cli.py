"""The run's command line: both spellings of every flag, and a shortened run's warmup."""
from __future__ import annotations

import logging

import pytest
from config_fixtures import fake_shards, tiny_doc, write

from pretrain.config import ConfigError, build_arg_parser, load_config, validate

FLAGS = [("output_dir", "out"), ("init_from", "google/byt5-small"), ("max_steps", "7"), ("stop_at", "4"),
         ("local_rank", "0")]


@pytest.mark.parametrize(("name", "value"), FLAGS)
def test_every_flag_takes_dashes_or_underscores(name, value):
    parser = build_arg_parser()
    underscored = parser.parse_args(["--config", "c.json", f"--{name}", value])
    dashed = parser.parse_args(["--config", "c.json", f"--{name.replace('_', '-')}", value])
    assert vars(dashed) == vars(underscored)
    assert getattr(dashed, name) is not None


def test_every_flag_of_the_parser_has_both_spellings():
    for action in build_arg_parser()._actions:
        long = [s for s in action.option_strings if s.startswith("--")]
        if any("_" in s or "-" in s[2:] for s in long):
            assert {s.replace("-", "_")[2:] for s in long} == {action.dest}, long
            assert len(long) == 2, long


def demo_args(tmp_path, *extra: str) -> list[str]:
    shards = fake_shards(tmp_path / "shards")
    return ["--config", str(write(tmp_path / "c.json", tiny_doc())), "--data", str(shards), *extra]


@pytest.mark.parametrize("steps_flag", [["--max-steps", "10"], ["--max_steps", "10"], ["--set", "max_steps=10"]])
def test_a_short_demo_of_the_tiny_preset_clamps_its_warmup_and_says_so(tmp_path, caplog, steps_flag):
    assert tiny_doc()["run"]["schedule"]["warmup_steps"] == 20  # the preset's warmup is longer than the demo
    with caplog.at_level(logging.INFO, logger="pretrain.config"):
        config = load_config(demo_args(tmp_path, *steps_flag))
    assert config.run.max_steps == 10 and config.run.schedule.warmup_steps == 10
    validate(config, world_size=1)
    assert "the config's 20 warmup steps exceed max_steps 10 from the command line; warming up over all 10 steps" \
        in caplog.text


def test_a_demo_long_enough_for_the_warmup_keeps_it(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="pretrain.config"):
        config = load_config(demo_args(tmp_path, "--max_steps", "25"))
    assert config.run.schedule.warmup_steps == 20 and "warmup" not in caplog.text


@pytest.mark.parametrize("warmup_set", ["schedule.warmup_steps=30", "run.schedule={\"warmup_steps\": 30}"])
def test_a_warmup_given_on_the_command_line_is_not_clamped(tmp_path, warmup_set):
    config = load_config(demo_args(tmp_path, "--max_steps", "10", "--set", warmup_set))
    with pytest.raises(ConfigError, match="run.schedule.warmup_steps: 30 warmup steps exceed run.max_steps 10"):
        validate(config, world_size=1)


def test_a_config_file_whose_warmup_exceeds_its_own_max_steps_is_refused(tmp_path):
    doc = tiny_doc(max_steps=10)
    doc["run"]["data"]["train"] = [str(fake_shards(tmp_path / "shards"))]
    config = load_config(["--config", str(write(tmp_path / "c.json", doc)), "--seed", "1"])
    with pytest.raises(ConfigError, match="run.schedule.warmup_steps: 20 warmup steps exceed run.max_steps 10"):
        validate(config, world_size=1)

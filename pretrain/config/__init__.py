"""Run configuration: the run block's schema, the command line, validation and the resume hash.

    schema.py          typed settings (pydantic) and parsing a config document
    cli.py             flags, `--set KEY=VALUE`, reading the config file
    validation.py      checks against the shard manifests and the model; padding lengths
    deepspeed_keys.py  DeepSpeed's own parse of its part, typos reported by name
    fingerprint.py     the hash that decides whether a checkpoint may be resumed
    errors.py          ConfigError and the one-line, field-named messages

The names below are the package's public interface; import them from `pretrain.config`.
"""
from pretrain.config.cli import apply_overrides, build_arg_parser, load_config
from pretrain.config.deepspeed_keys import check_deepspeed_keys
from pretrain.config.errors import ConfigError
from pretrain.config.fingerprint import (
    FINGERPRINT_FILE,
    RESUMABLE_FIELDS,
    config_hash,
    hashed_settings,
    resume_refusal,
    write_fingerprint,
)
from pretrain.config.schema import (
    MODEL_TYPES,
    PRESETS,
    RUN_CONFIG_FILE,
    RUN_KEY,
    CheckpointSettings,
    DataSettings,
    EvalSettings,
    LoggingSettings,
    ModelSettings,
    OptimizerSettings,
    RunSettings,
    ScheduleSettings,
    TrainConfig,
    parse_document,
)
from pretrain.config.validation import ShardInfo, read_manifest, validate, validate_batch_sizes

__all__ = [
    "FINGERPRINT_FILE", "MODEL_TYPES", "PRESETS", "RESUMABLE_FIELDS", "RUN_CONFIG_FILE", "RUN_KEY", "CheckpointSettings",
    "ConfigError", "DataSettings", "EvalSettings", "LoggingSettings", "ModelSettings", "OptimizerSettings",
    "RunSettings", "ScheduleSettings", "ShardInfo", "TrainConfig", "apply_overrides", "build_arg_parser",
    "check_deepspeed_keys", "config_hash", "hashed_settings", "load_config", "parse_document", "read_manifest",
    "resume_refusal", "validate", "validate_batch_sizes", "write_fingerprint",
]

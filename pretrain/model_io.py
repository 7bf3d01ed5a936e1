"""Loading and saving models outside the modeling files: ByT5 loads, the GBSWT5 warm start, HF directories.

Kept apart from `pretrain/modeling/` as transformers keeps loading and conversion outside its
modeling files: the modeling files travel as remote code and hold the model and its config only.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import T5Config, T5ForConditionalGeneration

from pretrain.model_path import resolve_model
from pretrain.modeling import GBSWT5Config, GBSWT5ForConditionalGeneration
from pretrain.modeling.configuration_gbswt5 import RELEASED_GBST
from pretrain.tokenizer import sentinel_tokenizer

# T5 config fields a warm start takes from the ByT5 checkpoint.
_T5_FIELDS = (
    "vocab_size", "d_model", "d_kv", "d_ff", "num_layers", "num_decoder_layers", "num_heads",
    "relative_attention_num_buckets", "relative_attention_max_distance", "layer_norm_epsilon",
    "initializer_factor", "feed_forward_proj", "pad_token_id", "eos_token_id", "decoder_start_token_id",
)


class _UntiedLmHeadNotice(logging.Filter):
    """Drops transformers 5's warning that a T5 checkpoint's lm_head and byte table differ "so we
    will NOT tie them". ByT5 keeps them apart, and so does the loaded model; the warning comes only
    because T5Config always claims a tied lm_head (models/t5/configuration_t5.py), and its advice,
    `tie_word_embeddings=False`, is a setting T5Config overrides."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("lm_head.weight" in message and "NOT tie" in message)


def load_t5(name_or_path: str | os.PathLike, **kwargs) -> T5ForConditionalGeneration:
    """`T5ForConditionalGeneration.from_pretrained` without the untied-lm_head warning."""
    logger = logging.getLogger("transformers.modeling_utils")
    notice = _UntiedLmHeadNotice()
    logger.addFilter(notice)
    try:
        return T5ForConditionalGeneration.from_pretrained(name_or_path, **kwargs)
    finally:
        logger.removeFilter(notice)


def load_byt5(name_or_path: str | os.PathLike) -> T5ForConditionalGeneration:
    """A local directory, else the hub cache, else the hub; ModelPathError (one line) when none has it."""
    return load_t5(resolve_model(name_or_path, what="ByT5 checkpoint"))


def warm_start_config(source: T5Config, **config_overrides) -> GBSWT5Config:
    """The config of a GBSWT5 warm-started from a ByT5 of config `source`: its dimensions, the
    released GBST settings and dropout 0.0, then `config_overrides`."""
    settings = {key: getattr(source, key) for key in _T5_FIELDS if hasattr(source, key)}
    # transformers 5 keeps ByT5's "untied lm_head" in scale_decoder_outputs, not tie_word_embeddings.
    settings["tie_word_embeddings"] = bool(getattr(source, "scale_decoder_outputs", source.tie_word_embeddings))
    settings.update(RELEASED_GBST, dropout_rate=0.0)  # pretraining ran without dropout
    settings.update(config_overrides)
    return GBSWT5Config(**settings)


def from_byt5(name_or_path: str | os.PathLike, **config_overrides) -> GBSWT5ForConditionalGeneration:
    """GBSWT5 warm-started from a ByT5 (`T5ForConditionalGeneration`) checkpoint directory or hub name.

    Every T5 tensor is copied unchanged (the encoder's byte table becomes GBST's, i.e. the shared
    table); GBST parameters get `GBST.reset_parameters`' identity initialisation. The config takes
    the checkpoint's dimensions, the released GBST settings and dropout 0.0, then `config_overrides`.
    """
    byt5 = load_byt5(name_or_path)
    model = GBSWT5ForConditionalGeneration(warm_start_config(byt5.config, **config_overrides)).to(byt5.dtype)
    state = {
        ("encoder.embed_tokens.embeds.weight" if key == "encoder.embed_tokens.weight" else key): tensor
        for key, tensor in byt5.state_dict().items()
    }
    missing, unexpected = model.load_state_dict(state, strict=False)
    gbst_keys = {f"encoder.embed_tokens.{name}" for name, _ in model.encoder.embed_tokens.named_parameters()}
    gbst_keys.discard("encoder.embed_tokens.embeds.weight")
    unexpected = set(unexpected) - set(GBSWT5ForConditionalGeneration._keys_to_ignore_on_load_unexpected)
    if set(missing) != gbst_keys or unexpected:
        raise ValueError(
            f"{name_or_path}: not a T5 checkpoint matching its config; missing {sorted(set(missing) - gbst_keys)}, "
            f"unexpected {sorted(unexpected)}"
        )
    return model


def write_hf_files(model: torch.nn.Module, directory: Path, remote_code: bool = True) -> None:
    """The Hugging Face files of a model: safetensors weights, config.json, generation_config.json
    and the byte tokenizer; for GBSWT5 also its code, named in config.json's auto_map, unless
    `remote_code` is false (ETRI's released layout: a package registering gbswt5 loads it)."""
    model.save_pretrained(directory)
    sentinel_tokenizer().save_pretrained(directory)
    if not remote_code:
        _drop_remote_code(directory)


def _drop_remote_code(directory: Path) -> None:
    """Remove the code save_pretrained copied for the classes registered for auto loading, and the
    auto_map naming it. Without them `AutoTokenizer.from_pretrained` never asks whether to run the
    directory's code: transformers reads config.json before tokenizer_config.json, and a config.json
    whose auto_map names an AutoConfig of an unregistered model_type makes it ask even for a
    tokenizer that needs no code."""
    config_file = directory / "config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config.pop("auto_map", None)
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for code in directory.glob("*.py"):
        code.unlink()


def save_pretrained(model: torch.nn.Module, save_directory: str | os.PathLike, remote_code: bool = True) -> None:
    """`write_hf_files`, atomically: written beside the target, then swapped into place.

    With `remote_code`, `AutoModelForSeq2SeqLM.from_pretrained(dir, trust_remote_code=True)` and
    `AutoTokenizer.from_pretrained(dir, trust_remote_code=True)` load the result without this
    project installed.
    """
    target = Path(save_directory)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        write_hf_files(model, staging, remote_code)
        replace_directory(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def replace_directory(staging: Path, target: Path) -> None:
    """Move a fully written directory into place; an existing one is swapped out, then removed.

    The staging directory gets the permissions of a directory made normally (temporary
    directories are created private).
    """
    staging.chmod(0o777 & ~_umask())
    if not target.exists():
        os.replace(staging, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    os.replace(target, old / target.name)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

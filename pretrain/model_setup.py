"""Build the model a run trains: GBSWT5 (default) or plain ByT5, random, warm-started or resumed.

The model's config is written to the run directory at the start, so that a resumed run and the
exporter rebuild exactly this architecture without the warm-start checkpoint.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

import torch
from transformers import PretrainedConfig, T5Config, T5ForConditionalGeneration

from data_prep.atomic import write_bytes
from pretrain.config import ConfigError, ModelSettings
from pretrain.model_io import from_byt5, load_t5
from pretrain.model_path import resolve_model
from pretrain.modeling import (
    ATTENTION_DEFAULT, ATTENTION_FLEX, ATTENTION_SDPA, GBSWT5Config, GBSWT5ForConditionalGeneration, link_bias_tables,
)

MODEL_CONFIG_FILE = "model_config.json"
# GBST parameters frozen by `freeze_gbst` (ETRI's model card: the GBST block of the encoder);
# its byte table is the shared embedding and keeps training with the decoder.
GBST_PREFIX = "encoder.embed_tokens."
GBST_SHARED = "encoder.embed_tokens.embeds.weight"


# The model types a warm start reads as ByT5 (T5ForConditionalGeneration loads both).
T5_MODEL_TYPES = ("t5", "mt5")


def _checkpoint_model_type(name_or_path: str) -> str | None:
    """The `model_type` in a local directory's or a hub checkpoint's (cached, or reachable online)
    config, or None when it cannot be read: the ByT5 warm start then reports the missing or
    offline checkpoint with its own clear message."""
    try:
        config, _ = PretrainedConfig.get_config_dict(name_or_path)
    except OSError:
        return None
    return config.get("model_type")


def init_from_source(settings: ModelSettings) -> tuple[str, str | None] | None:
    """(where `settings.init_from` lives, its model type or None if unreadable), None without
    one. ModelPathError for a model that cannot be found; ConfigError for a model type this run
    cannot start from, which a ByT5 warm start would load only in part (a GBSWT5 checkpoint
    without its GBST, say)."""
    if settings.init_from is None:
        return None
    source = resolve_model(settings.init_from, what="run.model.init_from")
    model_type = _checkpoint_model_type(source)
    allowed = ("gbswt5", *T5_MODEL_TYPES) if settings.type == "gbswt5" else T5_MODEL_TYPES
    if model_type is not None and model_type not in allowed:
        raise ConfigError(
            f"run.model.init_from: {settings.init_from} holds a model of type {model_type!r}; a {settings.type} "
            f"run starts from model_type {' or '.join(repr(t) for t in allowed)} only"
        )
    return source, model_type


def byt5_preset_config(settings: ModelSettings) -> T5Config:
    """A plain ByT5's config for the preset and overrides (no checkpoint)."""
    # The size presets live with the GBSWT5 config; plain ByT5 takes their T5 fields.
    full = GBSWT5Config.from_preset(settings.preset, **settings.overrides).to_dict()
    t5_fields = T5Config().to_dict().keys()
    return T5Config(**{k: v for k, v in full.items() if k in t5_fields and k not in ("model_type", "architectures")})


def _with_own_lm_head(model: T5ForConditionalGeneration, *, fresh: bool = False) -> T5ForConditionalGeneration:
    """ByT5's layout: an output matrix of its own, not the byte table.

    transformers 5's T5 always ties `lm_head` to `shared` when it builds a model (it only unties
    on loading a checkpoint whose two matrices differ). A run must build the same architecture
    when it starts, resumes and exports, so every plain-ByT5 model is untied here. A `fresh`
    (randomly initialised) model gets its own random head, drawn as T5 draws an untied one; a
    loaded one keeps the values it has.
    """
    if model.lm_head.weight is model.shared.weight:
        weight = model.shared.weight.detach().clone()
        if fresh:
            weight.normal_(0.0, model.config.initializer_factor)
        model.lm_head.weight = torch.nn.Parameter(weight)
    return model


def fresh_model(settings: ModelSettings) -> torch.nn.Module:
    """The model before any checkpoint of this run is loaded: warm start or random init."""
    overrides = dict(settings.overrides)
    found = init_from_source(settings)
    if settings.type == "gbswt5":
        overrides["z_loss"] = settings.z_loss
        if found is None:
            return GBSWT5ForConditionalGeneration(GBSWT5Config.from_preset(settings.preset, **overrides))
        source, model_type = found
        if model_type == "gbswt5":
            return GBSWT5ForConditionalGeneration.from_pretrained(source, **overrides)
        return from_byt5(source, **overrides)
    if found is None:
        return _with_own_lm_head(T5ForConditionalGeneration(byt5_preset_config(settings)), fresh=True)
    return _with_own_lm_head(load_t5(found[0], **overrides))


def model_from_config_file(path: Path) -> torch.nn.Module:
    """Rebuild (random weights) the architecture saved by `save_model_config`."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    if raw.get("model_type") == "gbswt5":
        return GBSWT5ForConditionalGeneration(GBSWT5Config.from_dict(raw))
    return _with_own_lm_head(T5ForConditionalGeneration(T5Config.from_dict(raw)))


def save_model_config(model: torch.nn.Module, path: Path) -> None:
    write_bytes(path, model.config.to_json_string().encode("utf-8"))


def freeze_gbst(model: torch.nn.Module) -> list[str]:
    """Freeze GBST's convolution and scoring (the byte table stays trainable); the frozen names."""
    frozen = []
    for name, param in model.named_parameters():
        if name.startswith(GBST_PREFIX) and name != GBST_SHARED:
            param.requires_grad_(False)
            frozen.append(name)
    return frozen


# run.model.attention -> the attn_implementation it selects.
ATTENTION_IMPLEMENTATIONS = {"auto": ATTENTION_DEFAULT, "eager": "eager", "sdpa": ATTENTION_SDPA, "flex": ATTENTION_FLEX}


def _set_kernels(model: torch.nn.Module, settings: ModelSettings) -> None:
    """Attention implementation, loss implementation, and compiled encoder/decoder blocks."""
    model.set_attn_implementation(ATTENTION_IMPLEMENTATIONS[settings.attention])
    if settings.attention == "flex":
        link_bias_tables(model)  # GBSWT5 does it itself; plain ByT5 needs it
    if isinstance(model, GBSWT5ForConditionalGeneration):
        model.loss_implementation = settings.loss
    if settings.compile:
        # Block by block (Module.compile keeps parameter names): GBST and the loss stay eager, and
        # one graph per block shape is compiled once (all blocks of a stack but the first share it).
        for stack in (model.encoder, model.decoder):
            for block in stack.block:
                block.compile()


def prepare_for_training(model: torch.nn.Module, settings: ModelSettings) -> torch.nn.Module:
    """Freezing, gradient checkpointing, kernels and no KV cache (training never decodes step by step)."""
    model.config.use_cache = False
    _set_kernels(model, settings)
    if settings.freeze_gbst:
        freeze_gbst(model)
    if settings.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    return model


def build_model(settings: ModelSettings, run_dir: Path, *, resuming: bool,
                device: torch.device | None = None) -> torch.nn.Module:
    """A resumed run rebuilds its saved architecture (weights come from the checkpoint); a new
    one builds the model from the settings (the caller saves its config, once).

    A randomly initialised model is built on `device` when given: on a GPU its initialisation
    takes a second, where on the CPU the large preset's 1.2B draws take ~30 s per rank (and
    every rank of a node draws at once). Warm starts load on the CPU as before.
    """
    config_path = run_dir / MODEL_CONFIG_FILE
    rebuilt = resuming and config_path.exists()
    on_device = device is not None and (rebuilt or settings.init_from is None)
    with torch.device(device) if on_device else contextlib.nullcontext():
        model = model_from_config_file(config_path) if rebuilt else fresh_model(settings)
    return prepare_for_training(model, settings)

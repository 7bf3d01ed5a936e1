"""The model a MODEL argument names: an exported HF directory, a training run, or a hub id.

A run directory (or its checkpoints/ or a global_stepN) is read as `python -m pretrain.export`
reads it: the newest complete checkpoint, consolidated in memory. Everything else goes through
the one model-path resolver, so a typo fails at once in one line.
"""
from __future__ import annotations

from pathlib import Path

import torch

from pretrain.model_path import ModelPathError, is_training_output, resolve_model


def _is_run(name: str) -> bool:
    path = Path(name).expanduser()
    return path.is_dir() and not (path / "config.json").is_file() and is_training_output(path)


def load_model(name: str) -> torch.nn.Module:
    """The model in evaluation mode, on the CPU. ModelPathError (one line) when it cannot be found."""
    from transformers import AutoConfig, AutoModelForSeq2SeqLM

    import pretrain.modeling  # noqa: F401  (registers gbswt5 with the Auto classes)

    if _is_run(name):
        from pretrain.export import ExportError, consolidated_model, locate

        try:
            return consolidated_model(*locate(Path(name).expanduser(), None))
        except ExportError as exc:
            raise ModelPathError(f"model {name}: {exc}") from None
    source = resolve_model(name)
    model = AutoModelForSeq2SeqLM.from_pretrained(source, config=AutoConfig.from_pretrained(source))
    return model.eval()


def check_model(name: str) -> None:
    """Fail now, in one line, for a MODEL that cannot be loaded later (before any training)."""
    if _is_run(name):
        from pretrain.export import ExportError, locate

        try:
            locate(Path(name).expanduser(), None)
        except ExportError as exc:
            raise ModelPathError(f"model {name}: {exc}") from None
    else:
        resolve_model(name)

"""Where a model given by the user lives: a local directory, the Hugging Face cache, or the hub.

One resolver for every command that takes a model (`fill`, `export`, `run.model.init_from`), so a
typo fails at once with one line instead of hub retries and a traceback. A name that looks like a
path (`./x`, `/x`, `runs/x` when `runs/` exists, `a/b/c`) must exist locally; a hub id is looked
up in the cache, then (unless offline) asked of the hub once.
"""
from __future__ import annotations

import re
from pathlib import Path

from pretrain.config import RUN_CONFIG_FILE

# google/byt5-large, etri-lirs/gbst-kebyt5-base-preview: one owner, one name.
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_WEIGHTS = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")


class ModelPathError(OSError):
    """A model path or hub id that cannot be used; the message is one line for the user."""


def looks_local(name: str) -> bool:
    """Whether `name` can only mean a local path (it is not shaped like a hub id, or its first
    component is an existing local directory, as `runs/` or `hf/` are after a run or export)."""
    if not _HUB_ID.match(name) or name.startswith((".", "~")):
        return True
    return Path(name.split("/", 1)[0]).is_dir()


def download_hint(repo_id: str) -> str:
    return f"download it where there is network (`hf download {repo_id} --local-dir DIR`) and pass that directory path"


def local_model_dir(path: str | Path, *, what: str = "model") -> Path:
    """An existing local directory holding a Hugging Face model (a config.json)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise ModelPathError(f"{what} {path}: no such directory")
    if not path.is_dir():
        raise ModelPathError(f"{what} {path}: not a directory")
    if not (path / "config.json").is_file():
        if is_training_output(path):
            raise ModelPathError(f"{what} {path} is a training run or checkpoint, not a model: export it first "
                                 f"(`python -m pretrain.export {path} OUT_DIR`) and pass OUT_DIR")
        raise ModelPathError(f"{what} {path}: no config.json, so not a Hugging Face model directory")
    return path


def is_training_output(path: Path) -> bool:
    """A run directory, its checkpoints/ directory or one global_stepN checkpoint."""
    return ((path / RUN_CONFIG_FILE).is_file() or path.name.startswith("global_step")
            or any(path.glob("global_step*")))


def _cached_snapshot(repo_id: str) -> Path | None:
    """The cached snapshot of `repo_id` if it holds weights (a config alone may have been cached
    by an earlier look-up)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = Path(snapshot_download(repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError):
        return None
    has_weights = any(any(folder.glob(pattern)) for pattern in _WEIGHTS)
    return folder if has_weights and (folder / "config.json").is_file() else None


def _check_on_hub(repo_id: str, what: str) -> None:
    """One request (no retries): does the hub have `repo_id`, and can we reach it?"""
    from huggingface_hub import model_info
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        model_info(repo_id, timeout=10)
    except GatedRepoError:
        raise ModelPathError(f"{what} {repo_id} is gated on the hub: accept its conditions on the model page and "
                             "log in (`hf auth login`), or " + download_hint(repo_id)) from None
    except RepositoryNotFoundError:
        raise ModelPathError(f"{what} {repo_id}: no such local directory, and no such model on the Hugging Face hub "
                             "(a private one needs `hf auth login`)") from None
    except Exception as exc:  # connection refused, DNS, timeouts: the hub's HTTP client's own types
        raise ModelPathError(f"{what} {repo_id}: no such local directory, not in the Hugging Face cache, and the hub "
                             f"could not be reached ({type(exc).__name__}: {exc}); {download_hint(repo_id)}") from None


def resolve_model(name_or_path: str | Path, *, what: str = "model") -> str:
    """A local directory to load `name_or_path` from, or the hub id itself when it is on the hub
    but not cached (`from_pretrained` downloads it). Raises ModelPathError with one line."""
    from huggingface_hub import is_offline_mode

    name = str(name_or_path)
    if Path(name).expanduser().is_dir() or looks_local(name):
        return str(local_model_dir(name, what=what))
    cached = _cached_snapshot(name)
    if cached is not None:
        return str(cached)
    if is_offline_mode():
        raise ModelPathError(f"{what} {name}: no such local directory, and not in the Hugging Face cache while "
                             f"offline (HF_HUB_OFFLINE=1); {download_hint(name)}")
    _check_on_hub(name, what)
    return name

"""Let DeepSpeed parse its part of the config, and name the keys it would ignore or refuse.

DeepSpeed ignores unknown top-level keys (a typo'd `gradient_cliping` would silently do nothing),
ignores them too in the sections it reads key by key (`activation_checkpointing`, `aio`, ...),
and refuses them with a raw pydantic dump in the sections that are pydantic models
(`zero_optimization`). All three become the same one-line did-you-mean message as a typo in the
run block.
"""
from __future__ import annotations

import difflib
from typing import Any, Iterator

from pydantic import BaseModel, ValidationError

from pretrain.config.errors import ConfigError, describe_error, first_error, model_keys, unknown_key_message


class _RecordingDict(dict):
    """A dict that remembers which keys were looked up, to find keys DeepSpeed never reads.
    Nested sections are recording dicts too, each with its dotted path; a copy shares them all."""

    def __init__(self, items: dict, path: str = "", seen: set | None = None) -> None:
        super().__init__({k: _RecordingDict(v, f"{path}{k}.") if type(v) is dict else v for k, v in items.items()})
        self.path = path
        self.seen = set() if seen is None else seen

    def __getitem__(self, key: Any) -> Any:
        self.seen.add(key)
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        self.seen.add(key)
        return super().get(key, default)

    def __contains__(self, key: Any) -> bool:
        self.seen.add(key)
        return super().__contains__(key)

    def __copy__(self) -> "_RecordingDict":
        return _RecordingDict(self, self.path, seen=self.seen)

    def sections(self) -> Iterator["_RecordingDict"]:
        """The nested sections, at any depth."""
        for value in dict.values(self):
            if isinstance(value, _RecordingDict):
                yield value
                yield from value.sections()


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _pydantic_keys() -> set[str]:
    """Every key one of DeepSpeed's pydantic config models accepts. pydantic reads a section in C,
    unseen by `_RecordingDict`, and refuses what it does not know; what it kept is no typo."""
    from deepspeed.runtime.config_utils import DeepSpeedConfigModel

    return {key for cls in _subclasses(DeepSpeedConfigModel) for key in model_keys(cls)}


def _ignored_typo(section: _RecordingDict, pydantic_keys: set[str]) -> str | None:
    """A key of a section that DeepSpeed never read, close to a key it looked for and did not
    find: the user's spelling of that key. Other unread keys are left alone, as DeepSpeed may
    read a section only in part (the rest of `flops_profiler` only when it is enabled)."""
    looked_for = sorted(k for k in section.seen if isinstance(k, str) and k not in section)
    for key in section:
        if key not in section.seen and key not in pydantic_keys and difflib.get_close_matches(key, looked_for, n=1):
            return unknown_key_message(key, looked_for, section.path.rstrip("."))
    return None


def _section_model(name: str) -> type[BaseModel] | None:
    """DeepSpeed's config model called `name` (a ValidationError's title)."""
    from deepspeed.runtime.config_utils import DeepSpeedConfigModel

    return next((cls for cls in _subclasses(DeepSpeedConfigModel) if cls.__name__ == name), None)


def _section_path(ds: dict, error: dict) -> str | None:
    """The dotted path of the section of `ds` that holds the value the error is about ('' for the
    top level: DeepSpeed's monitor config validates `tensorboard`, `wandb`, ... from there)."""
    loc = error["loc"]

    def holds(node: Any) -> bool:
        for part in loc[:-1]:
            if not isinstance(node, dict) or part not in node:
                return False
            node = node[part]
        return isinstance(node, dict) and loc[-1] in node and node[loc[-1]] == error.get("input")

    pending = [("", ds)]
    while pending and loc:
        path, node = pending.pop(0)
        if isinstance(node, dict):
            if holds(node):
                return path
            pending += [(f"{path}.{key}" if path else str(key), value) for key, value in node.items()]
    return None


def _describe(ds: dict, exc: ValidationError) -> str:
    """A DeepSpeed section's pydantic error as one field-named line."""
    model, error = _section_model(exc.title), first_error(exc)
    where = _section_path(ds, error)
    if model is None or where is None:
        return f"DeepSpeed rejected the config: {exc.title}: {'.'.join(map(str, error['loc']))}: {error['msg']}"
    return describe_error(model, error, where)


def check_deepspeed_keys(ds: dict) -> None:
    """Let DeepSpeed parse its part and report the keys it never read or refused (typos)."""
    from deepspeed.runtime.config import DeepSpeedConfig

    # train_batch_size is checked by validate_batch_sizes against the real world size; DeepSpeed
    # would check it here against a world of one process.
    recording = _RecordingDict({k: v for k, v in ds.items() if k != "train_batch_size"})
    recording.seen.add("train_batch_size")
    try:
        DeepSpeedConfig(recording)
    except ValidationError as exc:
        raise ConfigError(_describe(ds, exc)) from None
    except Exception as exc:  # DeepSpeed raises assertion and value errors as well
        raise ConfigError(f"DeepSpeed rejected the config: {exc}") from None
    unknown = [k for k in ds if k not in recording.seen]
    if unknown:
        raise ConfigError(unknown_key_message(unknown[0], sorted(recording.seen & set(ds)) or ["<none>"], "deepspeed"))
    pydantic_keys = _pydantic_keys()
    for section in recording.sections():
        typo = _ignored_typo(section, pydantic_keys)
        if typo:
            raise ConfigError(typo)

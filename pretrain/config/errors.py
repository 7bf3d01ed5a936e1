"""ConfigError and the field-named messages every part of the config check raises.

One message style for the run block, `--set`, `model.overrides` and DeepSpeed's own sections:
``where: what is wrong``, where `where` is the dotted path of the field (``run.data.train[1]``).
pydantic's errors are translated into that style here, so a user never sees a raw
``ValidationError`` dump.
"""
from __future__ import annotations

import difflib
import types
import typing
from typing import Any, Literal, Sequence

from pydantic import BaseModel, ValidationError


class ConfigError(ValueError):
    """A configuration problem; the message names the offending field."""


def unknown_key_message(key: str, known: Sequence[str], where: str) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(known)})"
    return f"{where}: unknown key {key!r}{hint}"


def join_path(where: str, loc: Sequence[str | int]) -> str:
    """``run`` + ``("data", "train", 1)`` -> ``run.data.train[1]``; '' + ``("wandb",)`` -> ``wandb``."""
    for part in loc:
        where = f"{where}[{part}]" if isinstance(part, int) else f"{where}.{part}" if where else str(part)
    return where


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        options = [t for t in typing.get_args(tp) if t is not type(None)]
        if len(options) == 1:
            return options[0]
    return tp


def _annotation_at(root: type[BaseModel], loc: Sequence[str | int]) -> Any:
    """The annotation of the field `loc` points at, or None if the path leaves the schema."""
    tp: Any = root
    for part in loc:
        tp = _strip_optional(tp)
        if isinstance(part, int):
            args = typing.get_args(tp)
            tp = args[0] if typing.get_origin(tp) is list and args else None
        elif isinstance(tp, type) and issubclass(tp, BaseModel):
            fields = {**{f.alias: f for f in tp.model_fields.values() if f.alias}, **tp.model_fields}
            tp = fields[part].annotation if part in fields else None
        else:
            return None
    return _strip_optional(tp)


def model_keys(model: type[BaseModel]) -> list[str]:
    """The keys a model accepts: field names and their aliases."""
    aliases = [f.alias for f in model.model_fields.values() if f.alias]
    return list(dict.fromkeys([*model.model_fields, *aliases]))


_EXPECTED = {
    "int_type": "an integer", "float_type": "a number", "string_type": "a string", "list_type": "a list",
    "dict_type": "an object", "model_type": "an object", "model_attributes_type": "an object",
}


def describe_error(root: type[BaseModel], error: dict, where: str) -> str:
    """One pydantic error of validating `root` as a line naming the field under `where`."""
    loc, value, kind = error["loc"], error.get("input"), error["type"]
    field = join_path(where, loc)
    if kind == "extra_forbidden":
        parent = _annotation_at(root, loc[:-1])
        if isinstance(parent, type) and issubclass(parent, BaseModel):
            return unknown_key_message(str(loc[-1]), model_keys(parent), join_path(where, loc[:-1]))
    if kind == "bool_type":
        return f"{field}: expected true or false, got {value!r}"
    if kind in _EXPECTED:
        return f"{field}: expected {_EXPECTED[kind]}, got {type(value).__name__} {value!r}"
    if kind == "literal_error":
        tp = _annotation_at(root, loc)
        if typing.get_origin(tp) is Literal:
            return f"{field}: {value!r} is not one of {list(typing.get_args(tp))}"
    return f"{field}: {error['msg']}"


def first_error(exc: ValidationError) -> dict:
    """The error to report: an unknown key comes first, as a typo'd key is the likeliest cause of
    the others."""
    return sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]


def describe_validation_error(root: type[BaseModel], exc: ValidationError, where: str) -> str:
    """One line for the first problem pydantic found in `root`."""
    return describe_error(root, first_error(exc), where)

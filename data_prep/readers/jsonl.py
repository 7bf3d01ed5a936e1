"""JSON Lines: one object per line, text at a dotted field (`--text-field`, e.g. `text` or `meta.body`).

Also reads WikiExtractor `--json` output, whose lines are `{id, revid, url, title, text}`.
"""
from __future__ import annotations

import json
from collections.abc import Iterator

import orjson

from data_prep.readers.base import SURROGATE_ESCAPE, Doc, ReadContext, Unit, iter_lines
from data_prep.readers.jsonpath import parse_path, select

_BAD = object()  # a line that is not JSON (None is a valid JSON value)
# strict=False lets raw control characters (NUL...) through to the cleaner instead of losing the
# record; one decoder is reused because json.loads(strict=False) builds a new one per call.
_DECODER = json.JSONDecoder(strict=False)
# An integer of more digits than Python converts (sys.get_int_max_str_digits(), 4300) makes the
# standard parser raise a plain ValueError; such a value is read again with its integers as floats
# (a number is never text) rather than losing the record, or a whole-file JSON corpus.
_FLOAT_INTS = json.JSONDecoder(strict=False, parse_int=float)


def read_jsonl(unit: Unit, ctx: ReadContext) -> Iterator[Doc]:
    field = ctx.options.field
    steps = parse_path(field)
    top = field if steps == [(field, 0)] else None  # a plain top-level field, not a dotted path
    for location, line in iter_lines(unit, ctx):
        # orjson parses UTF-8 bytes faster than decode then json (bench/bench_steps.py) and
        # rejects what the standard parser reads otherwise or reports in its own words: invalid
        # UTF-8, a BOM, raw control characters, escaped lone surrogates, NaN, deep nesting. Those
        # lines, and blank ones, go to the standard parser (_record). (orjson reads integers past
        # 64 bits as floats: not text, so read alike.)
        try:
            record, suspect = orjson.loads(line), False
        except orjson.JSONDecodeError:
            record, suspect = _record(line, location, ctx), SURROGATE_ESCAPE.search(line) is not None
            if record is _BAD:
                continue
        # The common case, a top-level string field, skips the general path walk.
        text = record.get(top) if top is not None and type(record) is dict else None
        if type(text) is not str:
            text = texts_at(record, steps, field, location, ctx)
        if suspect and text is not None:
            text = ctx.repair_surrogates(text, location)
        if text is not None:
            yield text, location


def _record(line: bytes, location: str, ctx: ReadContext):
    """The record of a line, as the standard parser reads it (after --invalid-utf8 and a BOM);
    _BAD for a blank, undecodable or malformed line."""
    if not line.strip():
        return _BAD
    text_line = ctx.decode(line, location)
    if text_line is None:
        return _BAD
    if text_line[0] == "\ufeff":  # a BOM opens the file
        text_line = text_line[1:]
    return _loads(text_line, location, ctx)


def decode_json(text: str):
    """The value of the JSON `text` (raw control characters allowed); JSONDecodeError or RecursionError if malformed."""
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError:
        raise
    except ValueError:
        return _FLOAT_INTS.decode(text)


def _loads(line: str, location: str, ctx: ReadContext):
    try:
        return decode_json(line)
    except json.JSONDecodeError as err:
        ctx.problems.report("malformed_json", location, f"column {err.colno}: {err.msg}")
        return _BAD
    except RecursionError:  # the C decoder recurses per nesting level
        ctx.problems.report("malformed_json", location, "nested too deeply to parse")
        return _BAD


def texts_at(record, steps, path: str, location: str, ctx: ReadContext) -> str | None:
    """The strings at `path` in `record` joined by newlines; a missing or non-text field is reported."""
    missing: list[str] = []
    values = list(select(record, steps, missing))
    strings = [v for v in values if isinstance(v, str)]
    if len(strings) != len(values):
        ctx.problems.report("bad_field", location, f"field '{path}' holds a non-string value")
    if not values and missing:
        ctx.problems.report("missing_field", location, f"record has no field '{missing[0]}' (text path '{path}')")
        return None
    return "\n".join(strings)

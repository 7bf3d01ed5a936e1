"""Namuwiki dump: one JSON array (> 8 GB) of `{namespace, title, text, contributors}`, streamed
with ijson (yajl2_c) so memory stays flat; a single record object is read too. Only namespace 0
(articles) is kept; redirects are dropped; namumark is stripped."""
from __future__ import annotations

from collections.abc import Iterator

import ijson

from data_prep.readers.base import Doc, ReadContext, RecordTooLarge, Unit
from data_prep.readers.namumark import is_redirect, strip_namumark
from data_prep.readers.streamed_json import json_values


def read_namuwiki(unit: Unit, ctx: ReadContext) -> Iterator[Doc]:
    index = -1
    try:
        for index, record in enumerate(json_values(unit, ctx, _prefix)):
            doc = _article(record, f"{unit.name}[{index}]", ctx)
            if doc is not None:
                yield doc
    except (ijson.JSONError, UnicodeDecodeError) as err:
        ctx.problems.report("malformed_json", f"{unit.name}[{index + 1}]", f"{err}; rest of file skipped")
    except RecordTooLarge:
        ctx.oversized(f"{unit.name}[{index + 1}]", "the record", "dropped with the rest of the file")


def _prefix(stream) -> str:
    """The records are the items of an array, or the one object: by the first non-blank byte,
    peeked so the stream stays at its start (every stream open_unit returns is buffered)."""
    return "item" if stream.peek(64).lstrip(b" \t\r\n")[:1] == b"[" else ""


def _article(record, location: str, ctx: ReadContext) -> Doc | None:
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        ctx.problems.report("missing_field", location, "record has no string field 'text'")
        return None
    if str(record.get("namespace", "0")) != "0":
        ctx.dropped["namespace"] += 1
        return None
    if is_redirect(record["text"]):
        ctx.dropped["redirect"] += 1
        return None
    return strip_namumark(record["text"]), f"{location} {record.get('title', '')!r}"

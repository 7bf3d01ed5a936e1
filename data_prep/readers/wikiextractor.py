"""WikiExtractor `<doc id=".." url=".." title="..">` ... `</doc>` output (the `--json` variant is
JSON Lines and goes through the jsonl reader)."""
from __future__ import annotations

from collections.abc import Iterator

from data_prep.readers.base import Doc, ReadContext, Unit, iter_lines


def read_wikiextractor(unit: Unit, ctx: ReadContext) -> Iterator[Doc]:
    body: list[str] | None = None
    start = ""
    for location, raw in iter_lines(unit):
        line = ctx.decode(raw, location)
        if line is None:
            continue
        if line.startswith("<doc ") or line.startswith("<doc>"):
            if body is not None:
                ctx.problems.report("truncated_doc", start, "<doc> not closed before the next <doc>")
                yield "".join(body), start
            body, start = [], location
        elif line.startswith("</doc>"):
            if body is None:
                ctx.problems.report("malformed_doc", location, "</doc> without an opening <doc>")
            else:
                yield "".join(body), start
            body = None
        elif body is not None:
            body.append(line)
    if body is not None:
        ctx.problems.report("truncated_doc", start, "<doc> not closed at end of file")
        yield "".join(body), start

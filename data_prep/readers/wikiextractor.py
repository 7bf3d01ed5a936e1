"""WikiExtractor `<doc id=".." url=".." title="..">` ... `</doc>` output (the `--json` variant is
JSON Lines and goes through the jsonl reader)."""
from __future__ import annotations

from collections.abc import Iterator

from data_prep.readers.base import Doc, DocLines, ReadContext, Unit, iter_lines


def read_wikiextractor(unit: Unit, ctx: ReadContext) -> Iterator[Doc]:
    body = DocLines(ctx)
    for location, raw in iter_lines(unit, ctx):
        line = ctx.decode(raw, location)
        if line is None:
            continue
        if line.startswith("<doc ") or line.startswith("<doc>"):
            if body.location is not None:
                ctx.problems.report("truncated_doc", body.location, "<doc> not closed before the next <doc>")
                if finished := body.close():
                    yield finished
            body.open(location)
        elif line.startswith("</doc>"):
            if body.location is None:
                ctx.problems.report("malformed_doc", location, "</doc> without an opening <doc>")
            elif finished := body.close():
                yield finished
        elif body.location is not None:
            body.add(line, len(raw))
    if body.location is not None:
        ctx.problems.report("truncated_doc", body.location, "<doc> not closed at end of file")
        if finished := body.close():
            yield finished

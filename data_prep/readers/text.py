"""Plain text: one document per line (`--text-mode line`, e.g. KcBERT), per blank-line-separated
block (`block`, e.g. articles), or per file (`file`)."""
from __future__ import annotations

from collections.abc import Iterator

from data_prep.readers.base import Doc, DocLines, ReadContext, Unit, iter_lines


def read_text(unit: Unit, ctx: ReadContext) -> Iterator[Doc]:
    mode = ctx.options.text_mode
    doc = DocLines(ctx)
    for location, raw in iter_lines(unit, ctx):
        line = ctx.decode(raw, location)
        if line is None:
            continue
        if mode == "line":
            if line.strip():
                yield line, location
        elif mode == "block" and not line.strip():
            if finished := doc.close():
                yield finished
        else:
            if doc.location is None:
                doc.open(location)
            doc.add(line, len(raw))
    if finished := doc.close():
        yield finished

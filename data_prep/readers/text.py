"""Plain text: one document per line (`--text-mode line`, e.g. KcBERT), per blank-line-separated
block (`block`, e.g. articles), or per file (`file`)."""
from __future__ import annotations

from collections.abc import Iterator

from data_prep.readers.base import Doc, ReadContext, Unit, iter_lines


def read_text(unit: Unit, ctx: ReadContext) -> Iterator[Doc]:
    mode = ctx.options.text_mode
    block: list[str] = []
    block_start = ""
    for location, raw in iter_lines(unit):
        line = ctx.decode(raw, location)
        if line is None:
            continue
        if mode == "line":
            if line.strip():
                yield line, location
        elif mode == "block" and not line.strip():
            if block:
                yield "".join(block), block_start
            block = []
        else:
            if not block:
                block_start = location
            block.append(line)
    if block:
        yield "".join(block), block_start

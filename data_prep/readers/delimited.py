"""CSV and TSV tables (NSMC, KorNLI, KorSTS, ChatbotData, question pairs): the first row names the
columns; `--text-field` picks one, or several joined by newlines (`--text-field Q,A`).

CSV follows RFC 4180 quoting (quoted fields may hold commas, quotes and newlines); TSV fields are
literal (no quoting: a `"` is text, as KorNLI and KorSTS write it). Lines are read in bounded
pieces (`iter_lines`) and a quoted field may not grow past --max-doc-bytes.
"""
from __future__ import annotations

import csv
from collections.abc import Iterator

from data_prep.readers.base import Doc, ReadContext, Unit, iter_lines


def read_csv(unit: Unit, ctx: ReadContext) -> Iterator[Doc]:
    yield from _read_table(unit, ctx, csv.reader(_text_lines(unit, ctx)))


def read_tsv(unit: Unit, ctx: ReadContext) -> Iterator[Doc]:
    yield from _read_table(unit, ctx, csv.reader(_text_lines(unit, ctx), delimiter="\t", quoting=csv.QUOTE_NONE))


def _text_lines(unit: Unit, ctx: ReadContext) -> Iterator[str]:
    for location, raw in iter_lines(unit, ctx):
        line = ctx.decode(raw, location)
        if line is not None:
            yield line


def _read_table(unit: Unit, ctx: ReadContext, rows) -> Iterator[Doc]:
    csv.field_size_limit(ctx.options.max_doc_bytes)  # per process; every unit of a run sets the same
    header = _next_row(rows, unit, ctx)
    while header == []:  # blank lines before the header
        header = _next_row(rows, unit, ctx)
    if header is None:
        return
    header[0] = header[0].removeprefix("\ufeff")
    wanted = [name.strip() for name in ctx.options.field.split(",")]
    missing = [name for name in wanted if name not in header]
    if missing:
        ctx.problems.report("missing_field", unit.where, f"no column {', '.join(map(repr, missing))} "
                            f"(columns: {', '.join(header)}); pass --text-field")
        return
    columns = [header.index(name) for name in wanted]
    row_number = 0
    while (row := _next_row(rows, unit, ctx, row_number)) is not None:
        location = f"{unit.where}#row{row_number}"
        row_number += 1
        if not row:
            continue  # a blank line
        if len(row) <= max(columns):
            ctx.problems.report("bad_row", location, f"{len(row)} field(s), the header has {len(header)}")
            continue
        yield "\n".join(row[i] for i in columns if row[i]), location


def _next_row(rows, unit: Unit, ctx: ReadContext, row_number: int = -1) -> list[str] | None:
    """The next parsed row (None at the end); a malformed row is reported and skipped."""
    while True:
        try:
            return next(rows, None)
        except csv.Error as err:
            ctx.problems.report("bad_row", f"{unit.where}#row{row_number}", f"{err}; row skipped")

"""CSV and TSV tables (NSMC, KorNLI, KorSTS, ChatbotData, question pairs): the first row names the
columns; `--text-field` picks one, or several joined by newlines (`--text-field Q,A`).

CSV follows RFC 4180 quoting (quoted fields may hold commas, quotes and newlines); TSV fields are
literal (no quoting: a `"` is text, as KorNLI and KorSTS write it). Lines are read in bounded
pieces (`iter_lines`) and a quoted field may not grow past --max-doc-bytes. A quote that is never
closed (`"text,1` then more rows) made its field take every later line: up to the end of the file
silently, or up to --max-doc-bytes, where the row failed and its lines (as many rows) were lost.
Now such a row is reported and skipped, and the lines after its first are read again as rows
(a quote that a later row's quote closes cannot be told from a quoted field holding newlines).
"""
from __future__ import annotations

import csv
from collections import deque
from collections.abc import Iterator

from data_prep.readers.base import Doc, ReadContext, Unit, iter_lines


def read_csv(unit: Unit, ctx: ReadContext) -> Iterator[Doc]:
    lines = _Lines(_text_lines(unit, ctx))
    yield from _read_table(unit, ctx, csv.reader(lines), lines)


def read_tsv(unit: Unit, ctx: ReadContext) -> Iterator[Doc]:
    lines = _Lines(_text_lines(unit, ctx))
    yield from _read_table(unit, ctx, csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE), lines)


def _text_lines(unit: Unit, ctx: ReadContext) -> Iterator[str]:
    for location, raw in iter_lines(unit, ctx):
        line = ctx.decode(raw, location)
        if line is not None:
            yield line


class _Lines:
    """The lines the csv reader parses, remembering those of the row it is reading (at most about
    --max-doc-bytes: the field size limit), so they can be read again."""

    def __init__(self, lines: Iterator[str]):
        self._lines = lines
        self._again: deque[str] = deque()
        self.row: list[str] = []
        self.ended = False  # the last line has been read

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self._again:
            line = self._again.popleft()
        else:
            line = next(self._lines, None)
            if line is None:
                self.ended = True
                raise StopIteration
        self.row.append(line)
        return line

    def again(self, lines: list[str]) -> None:
        """Have `lines` read again, before the rest."""
        self._again.extendleft(reversed(lines))


def _read_table(unit: Unit, ctx: ReadContext, rows, lines: _Lines) -> Iterator[Doc]:
    csv.field_size_limit(ctx.options.max_doc_bytes)  # per process; every unit of a run sets the same
    header = _next_row(rows, lines, unit, ctx)
    while header == []:  # blank lines before the header
        header = _next_row(rows, lines, unit, ctx)
    if header is None:
        return
    header[0] = header[0].removeprefix("\ufeff")
    header = [name.strip() for name in header]  # "text, label": the column is 'label', as --text-field is read
    wanted = [name.strip() for name in ctx.options.field.split(",")]
    missing = [name for name in wanted if name not in header]
    if missing:
        ctx.problems.report("missing_field", unit.where, f"no column {', '.join(map(repr, missing))} "
                            f"(columns: {', '.join(header)}); pass --text-field")
        return
    columns = [header.index(name) for name in wanted]
    row_number = 0
    while (row := _next_row(rows, lines, unit, ctx, row_number)) is not None:
        location = f"{unit.where}#row{row_number}"
        row_number += 1
        if not row:
            continue  # a blank line
        if len(row) <= max(columns):
            ctx.problems.report("bad_row", location, f"{len(row)} field(s), the header has {len(header)}")
            continue
        yield "\n".join(row[i] for i in columns if row[i]), location


def _next_row(rows, lines: _Lines, unit: Unit, ctx: ReadContext, row_number: int = -1) -> list[str] | None:
    """The next parsed row (None at the end). A malformed row is reported and skipped; if it took
    several lines (a quote never closed), the lines after its first are read again as rows."""
    while True:
        lines.row = []
        try:
            row = next(rows, None)
        except csv.Error as err:
            ctx.problems.report("bad_row", f"{unit.where}#row{row_number}", f"{err}; row skipped{_again(lines)}")
            continue
        if row is not None and lines.ended and len(lines.row) > 1 and sum(line.count('"') for line in lines.row) % 2:
            ctx.problems.report("bad_row", f"{unit.where}#row{row_number}", "a quote opened here is never closed; "
                                f"row skipped{_again(lines)}")
            continue
        return row


def _again(lines: _Lines) -> str:
    """Have the lines after the first of the row just read read again; what to add to its report.
    They were inside the runaway quoted field, so they hold no quote but doubled ones: read again,
    none of them opens another runaway field, and no line is read more than twice."""
    if len(lines.row) < 2:
        return ""
    lines.again(lines.row[1:])
    return f", its other {len(lines.row) - 1} line(s) read again as rows"

"""Parquet and Arrow (IPC stream or file) tables with a text column (`--text-field`)."""
from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.ipc as ipc

from data_prep.readers.base import Doc, ReadContext, Unit, open_unit

_BATCH_ROWS = 4096


def read_parquet(unit: Unit, ctx: ReadContext) -> Iterator[Doc]:
    import pyarrow.parquet as pq  # here, not at the top: its import costs every run ~30 ms of serial start-up

    with open_unit(unit) as stream:
        table = pq.ParquetFile(stream)
        if not _has_column(table.schema_arrow, unit, ctx):
            return
        batches = table.iter_batches(batch_size=_BATCH_ROWS, columns=[ctx.options.field])
        yield from _rows(batches, unit, ctx)


def read_arrow(unit: Unit, ctx: ReadContext) -> Iterator[Doc]:
    with open_unit(unit) as stream:
        try:
            reader = ipc.open_stream(stream)
            batches = iter(reader)
        except pa.ArrowInvalid:
            stream.seek(0)
            reader = ipc.open_file(stream)
            batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
        if _has_column(reader.schema, unit, ctx):
            yield from _rows(batches, unit, ctx)


def _has_column(schema: pa.Schema, unit: Unit, ctx: ReadContext) -> bool:
    field = ctx.options.field
    if field in schema.names:
        return True
    ctx.problems.report("missing_field", unit.name, f"no column '{field}' (columns: {', '.join(schema.names)})")
    return False


def _rows(batches, unit: Unit, ctx: ReadContext) -> Iterator[Doc]:
    row = 0
    for batch in batches:
        for value in batch.column(ctx.options.field).to_pylist():
            if isinstance(value, bytes):
                value = ctx.decode(value, f"{unit.name}#row{row}")
            if value:
                yield value, f"{unit.name}#row{row}"
            row += 1

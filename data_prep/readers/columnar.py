"""Parquet and Arrow (IPC stream or file) tables with a text column (`--text-field`).

Parquet is read in batches of about --max-doc-bytes of the text column; an Arrow file's record
batches are read as they were written. A value longer than --max-doc-bytes is dropped."""
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
        rows = _batch_rows(table.metadata, ctx.options.field, ctx.options.max_doc_bytes)
        batches = table.iter_batches(batch_size=rows, columns=[ctx.options.field])
        yield from _rows(batches, unit, ctx)


def _batch_rows(metadata, column: str, limit: int) -> int:
    """Rows per batch such that a batch of the text column holds about --max-doc-bytes (from the
    column's uncompressed size in the file's metadata: as encoded, so values repeated through a
    dictionary count once), at most _BATCH_ROWS."""
    paths = [metadata.schema.column(i).path for i in range(metadata.num_columns)]
    if column not in paths or metadata.num_rows == 0:
        return _BATCH_ROWS
    index = paths.index(column)
    size = sum(metadata.row_group(g).column(index).total_uncompressed_size for g in range(metadata.num_row_groups))
    return max(1, min(_BATCH_ROWS, limit * metadata.num_rows // max(size, 1)))


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
    limit = ctx.options.max_doc_bytes
    for batch in batches:
        for value in batch.column(ctx.options.field).to_pylist():
            if isinstance(value, (str, bytes)) and len(value) * 4 > limit and len(_utf8(value)) > limit:
                ctx.oversized(f"{unit.name}#row{row}", f"the value ({len(_utf8(value))} bytes)")
                value = None
            if isinstance(value, bytes):
                value = ctx.decode(value, f"{unit.name}#row{row}")
            if value:
                yield value, f"{unit.name}#row{row}"
            row += 1


def _utf8(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")

"""Parquet and Arrow (IPC stream or file) tables with a text column (`--text-field`).

Parquet is read in batches of about --max-doc-bytes of the text column; an Arrow file's record
batches are read as they were written. A value longer than --max-doc-bytes is dropped. A
dictionary-encoded column stays encoded (a 28 KB Parquet file of 2,000 rows that all name one
600 KB value would decode to 1.2 GB): value lengths come from the dictionary, and rows become
Python strings in runs of at most --max-doc-bytes, so no value over the limit is ever decoded."""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from data_prep.readers.base import Doc, ReadContext, Unit, open_unit

_BATCH_ROWS = 4096


def read_parquet(unit: Unit, ctx: ReadContext) -> Iterator[Doc]:
    import pyarrow.parquet as pq  # here, not at the top: its import costs every run ~30 ms of serial start-up

    with open_unit(unit) as stream:
        table = pq.ParquetFile(stream)
        if not _has_column(table.schema_arrow, unit, ctx):
            return
        if _dictionary_encoded(table.metadata, ctx.options.field):
            stream.seek(0)
            table = pq.ParquetFile(stream, read_dictionary=[ctx.options.field])
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


def _dictionary_encoded(metadata, column: str) -> bool:
    """Whether every row group stores `column` with a dictionary page (pyarrow's default): then it
    is read as a DictionaryArray instead of being decoded value by value."""
    paths = [metadata.schema.column(i).path for i in range(metadata.num_columns)]
    if column not in paths or metadata.num_row_groups == 0:
        return False
    index = paths.index(column)
    return all(metadata.row_group(g).column(index).has_dictionary_page for g in range(metadata.num_row_groups))


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
    """Whether the schema has the text column, holding text (or bytes, decoded as UTF-8); if not,
    the file is reported: a number, list or struct column would become no text or a wrong one."""
    field = ctx.options.field
    if field not in schema.names:
        ctx.problems.report("missing_field", unit.name, f"no column '{field}' (columns: {', '.join(schema.names)})")
        return False
    kind = schema.field(field).type
    if _is_text(kind.value_type if pa.types.is_dictionary(kind) else kind):
        return True
    ctx.problems.report("bad_field", unit.name, f"column '{field}' holds {kind}, not text; file skipped")
    return False


def _is_text(kind: pa.DataType) -> bool:
    return any(test(kind) for test in (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view,
                                       pa.types.is_binary, pa.types.is_large_binary, pa.types.is_binary_view,
                                       pa.types.is_null))


def _rows(batches, unit: Unit, ctx: ReadContext) -> Iterator[Doc]:
    row = 0
    limit = ctx.options.max_doc_bytes
    for batch in batches:
        column = _without_views(batch.column(ctx.options.field))
        lengths = _value_bytes(column)
        for start, stop in _runs(lengths, limit):
            if lengths[start] > limit:
                ctx.oversized(f"{unit.name}#row{row + start}", f"the value ({lengths[start]} bytes)")
                continue
            for offset, value in enumerate(_values(column.slice(start, stop - start))):
                where = f"{unit.name}#row{row + start + offset}"
                if isinstance(value, bytes):
                    value = ctx.decode(value, where)
                if value:
                    yield value, where
        row += len(column)


def _without_views(column: pa.Array) -> pa.Array:
    """A string_view or binary_view column as its large_ variant, whose value lengths Arrow computes."""
    if pa.types.is_string_view(column.type):
        return column.cast(pa.large_string())
    if pa.types.is_binary_view(column.type):
        return column.cast(pa.large_binary())
    return column


def _values(column: pa.Array) -> list:
    """The rows as Python values; where a text column holds invalid UTF-8 (neither Parquet nor
    Arrow checks it on reading), the rows of that run come as bytes, for ctx.decode to report."""
    try:
        return column.to_pylist()
    except UnicodeDecodeError:
        return _as_binary(column).to_pylist()


def _as_binary(column: pa.Array) -> pa.Array:
    """A string column viewed as bytes (no copy)."""
    if pa.types.is_dictionary(column.type):
        return pa.DictionaryArray.from_arrays(column.indices, _as_binary(column.dictionary))
    return column.view(pa.large_binary() if pa.types.is_large_string(column.type) else pa.binary())


def _value_bytes(column: pa.Array) -> list[int]:
    """Each row's value length in bytes (0 for nulls and values that are not text), decoding none."""
    if pa.types.is_dictionary(column.type):
        per_entry = np.asarray(_value_bytes(column.dictionary), np.int64)
        indices = column.indices.fill_null(0).to_numpy(zero_copy_only=False)
        valid = column.is_valid().to_numpy(zero_copy_only=False)
        return np.where(valid, per_entry[indices] if len(per_entry) else 0, 0).tolist()
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type) or \
            pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        return pc.binary_length(column).fill_null(0).to_numpy(zero_copy_only=False).tolist()
    return [0] * len(column)


def _runs(lengths: list[int], limit: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of consecutive rows holding at most `limit` bytes together; a row over
    `limit` is a run of its own."""
    start = total = 0
    for i, size in enumerate(lengths):
        if size > limit or total + size > limit:
            if i > start:
                yield start, i
            if size > limit:
                yield i, i + 1
                start, total = i + 1, 0
                continue
            start, total = i, 0
        total += size
    if start < len(lengths):
        yield start, len(lengths)

"""JSON files too big to parse whole (the Namuwiki dump, Modu/AIHub files over --max-doc-bytes),
streamed with ijson one value at a time, each bounded by --max-doc-bytes (RecordTooLarge past it).

Numbers are read with yajl's own integer and double parsing (use_float: fast), which fails on an
integer past 64 bits (a 20-digit id) or a float past the double range with an "overflow" parse
error: that lost the rest of the file, GBs of a dump, for one number. After such a failure the
file is read again with exact numbers (int, Decimal), skipping the values already yielded. Exact
numbers are not the default because ijson's C backend then crashes the process (it does not check
PyLong_FromString's result) on an integer of more digits than Python converts
(sys.get_int_max_str_digits()): that limit is lifted while the second reading runs; such a value
is at most --max-doc-bytes long.
"""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import ijson

from data_prep.readers.base import ReadContext, Unit, open_unit, parser_stream

_BOM = b"\xef\xbb\xbf"


def json_values(unit: Unit, ctx: ReadContext, prefix_of: Callable[[BinaryIO], str],
                report: bool = True) -> Iterator[Any]:
    """The values at ijson prefix `prefix_of(stream)` (the stream peeked, past a BOM) of the unit;
    invalid UTF-8 is repaired and reported if `report` (Utf8Repair). Parse errors propagate."""
    done = 0
    with open_unit(unit) as stream:
        source, budget = parser_stream(_past_bom(stream), ctx, unit.name, report)
        try:
            for value in ijson.items(source, prefix_of(stream), use_float=True):
                budget.next_record()
                done += 1
                yield value
            return
        except ijson.JSONError as err:
            if "overflow" not in str(err):
                raise
            reported = source.offset  # invalid UTF-8 before this was reported by the first reading
    with _any_int_digits(), open_unit(unit) as stream:
        source, budget = parser_stream(_past_bom(stream), ctx, unit.name, report, quiet_until=reported)
        for index, value in enumerate(ijson.items(source, prefix_of(stream))):
            budget.next_record()
            if index >= done:
                yield value


def _past_bom(stream: BinaryIO) -> BinaryIO:
    """`stream` past a UTF-8 BOM (yajl rejects it: the whole file was lost); streams from open_unit peek."""
    if stream.peek(3)[:3] == _BOM:
        stream.read(3)
    return stream


@contextlib.contextmanager
def _any_int_digits() -> Iterator[None]:
    before = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)
    try:
        yield
    finally:
        sys.set_int_max_str_digits(before)

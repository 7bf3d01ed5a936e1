"""The JSON Lines reader's orjson fast path against its standard-parser path, line by line: hostile
lines (invalid UTF-8, BOMs, raw control characters, lone surrogate escapes, NaN, big numbers, deep
nesting, broken syntax) must give the same documents, problems and drops either way."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_prep.readers import jsonl
from test_data_prep_readers import read


class StandardOnly:
    """Stands in for orjson: rejects every line, so that the standard parser reads them all."""
    JSONDecodeError = orjson.JSONDecodeError

    @staticmethod
    def loads(line: bytes):
        raise orjson.JSONDecodeError("standard parser only", "", 0)


def both_ways(data: bytes, monkeypatch: pytest.MonkeyPatch, **options):
    """(documents, problem counts, samples, drops) of a .jsonl file holding `data`, read with the
    fast path and with the standard parser only."""
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.jsonl"
        path.write_bytes(data)
        for parser in (orjson, StandardOnly):
            with monkeypatch.context() as patch:
                patch.setattr(jsonl, "orjson", parser)
                docs, ctx = read(path, **options)
            results.append(([(ascii(text), where) for text, where in docs], dict(ctx.problems.counts),
                            ctx.problems.samples, dict(ctx.dropped)))
    return results


_PIECES = [b'"', b"\\", b"\\ud800", b"\\ude00", b"\\ud83d\\ude00", b"\\u00e9", b"\xff", b"\xed\xa0\x80", b"\xc0\x80",
           b"\xef\xbb\xbf", b"\t", b"\x00", b"\x1f", b" ", b"\r", b"NaN", b"-Infinity", b"1e400", b"-0", b"1.5",
           b"123456789012345678901234567890", b"{", b"}", b"[", b"]", b",", b":", b'"text"', b'"meta"', b'"body"',
           b"\xea\xb0\x80", b"a", b"null", b"true", b"[" * 1100 + b"]" * 1100]
_PIECE = st.sampled_from(_PIECES)
_VALUE = st.lists(_PIECE, max_size=5).map(b"".join)
_LINE = st.one_of(
    st.text().map(lambda s: json.dumps({"text": s}, ensure_ascii=False).encode("utf-8")),
    st.lists(_PIECE, max_size=12).map(b"".join),
    st.tuples(_VALUE, _VALUE).map(lambda v: b'{"text": "' + v[0] + b'", "meta": {"body": ' + v[1] + b"}}"),
    st.tuples(_VALUE, _VALUE).map(lambda v: v[0] + b'{"text": "ok"}' + v[1]),
)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(_LINE, max_size=6), field=st.sampled_from([None, "meta.body"]),
       invalid=st.sampled_from(["replace", "drop"]))
def test_fast_path_reads_as_the_standard_parser(lines, field, invalid):
    with pytest.MonkeyPatch.context() as monkeypatch:
        fast, standard = both_ways(b"\n".join(lines) + b"\n", monkeypatch, text_field=field, invalid_utf8=invalid)
    assert fast == standard


@pytest.mark.parametrize("line", [b'\xef\xbb\xbf{"text": "bom"}', b'{"text": "raw\ttab\x00"}', b'{"text": "\\ud800"}',
                                  b'{"text": "bad \xff byte"}', b'{"text": NaN}', b"[" * 5000 + b"]" * 5000,
                                  b'{"text": "a", "text": "b"}', b'{"text": 123456789012345678901234567890}',
                                  b"   ", b'{"text": "ok"} trailing'])
def test_lines_orjson_rejects_or_reads_alike(line, monkeypatch):
    fast, standard = both_ways(line + b'\r\n{"text": "next"}\n', monkeypatch)
    assert fast == standard and fast[0][-1][0] == "'next'"


@pytest.mark.parametrize("field, expected", [("meta.body", ["'nested'"]), ("text", ["'top'"])])
def test_a_dotted_path_is_walked_even_where_a_key_spells_it(field, expected, monkeypatch):
    line = b'{"meta.body": "literal", "meta": {"body": "nested"}, "text": "top"}'
    fast, standard = both_ways(line + b"\n", monkeypatch, text_field=field)
    assert fast == standard and [text for text, _ in fast[0]] == expected

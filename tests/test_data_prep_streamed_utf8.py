"""Invalid UTF-8 in a file read by a streaming parser (a big Modu/AIHub JSON through ijson, the
Namuwiki dump, a MediaWiki XML dump) is replaced and reported, and the rest of the file is read:
the parsers stop at the first invalid byte, which lost everything after it."""
from __future__ import annotations

import codecs
import io
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from data_prep.problems import Problems
from data_prep.readers.base import Utf8Repair
from tests.test_data_prep_readers import read
from tests.test_data_prep_readers_wiki import WIKI_XML


class Trickle(io.RawIOBase):
    """A stream that returns at most the next of `sizes` bytes per read (as decompressors do)."""

    def __init__(self, data: bytes, sizes: list[int]):
        self._data, self._sizes, self._pos = data, sizes or [1], 0

    def read(self, size: int = -1) -> bytes:
        step = self._sizes[self._pos % len(self._sizes)] if self._pos < len(self._data) else 0
        size = step if size < 0 else min(size, step)
        chunk = self._data[self._pos:self._pos + size]
        self._pos += len(chunk)
        return chunk


_BYTES = st.lists(st.sampled_from([b"a", b"\n", "가".encode(), "€".encode(), "😀".encode(), b"\xff", b"\x80",
                                   b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xed\xa0\x80", b"\xc0\xaf"]),
                  max_size=40).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(data=_BYTES, sizes=st.lists(st.integers(1, 7), min_size=1, max_size=5), ask=st.sampled_from([-1, 1, 3, 64]))
def test_repair_reads_as_decoding_the_whole_file_with_replacement(data, sizes, ask):
    problems = Problems()
    stream, out = Utf8Repair(Trickle(data, sizes), problems, "f"), []
    while chunk := stream.read(ask):
        out.append(chunk)
    # The reference: an incremental decoder, which keeps a character the end cuts pending; that one
    # is left as it is, for the parser to report with the cut file.
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    repaired = decoder.decode(data, final=False).encode("utf-8")
    cut = decoder.getstate()[0]
    assert b"".join(out) == repaired + cut
    try:
        data[:len(data) - len(cut)].decode("utf-8")
        assert problems.total == 0
    except UnicodeDecodeError as err:  # the first bad byte is reported where it lies in the file
        assert problems.counts["invalid_utf8"] >= 1 and f"f@byte{err.start}:" in problems.samples[0]


def _modu(tmp_path):
    docs = [{"id": str(i), "paragraph": [{"form": f"문서 {i} 본문입니다. " * 30}]} for i in range(5)]
    path = tmp_path / "modu.json"
    path.write_bytes(json.dumps({"document": docs}, ensure_ascii=False).encode().replace(
        "문서 1 본문".encode(), b"\xff\xfe 1 bad"))
    assert 3000 < path.stat().st_size
    return path, {"fmt": "modu", "max_doc_bytes": 3000}  # bigger than --max-doc-bytes: streamed


def _namuwiki(tmp_path):
    records = [{"namespace": 0, "title": f"문서{i}", "text": f"문서 {i} 본문입니다.", "contributors": []} for i in range(5)]
    path = tmp_path / "namuwiki.json"
    path.write_bytes(json.dumps(records, ensure_ascii=False).encode().replace("문서 1 본문".encode(), b"\xff\xfe 1 bad"))
    return path, {"fmt": "namuwiki"}


def _wiki_xml(tmp_path):
    path = tmp_path / "kowiki-pages-articles.xml"
    path.write_bytes(WIKI_XML.encode().replace("조지아주".encode(), b"\xff\xfe"))
    return path, {}


def test_a_bad_byte_is_replaced_and_the_rest_of_a_streamed_file_read(tmp_path):
    for make, expected in ((_modu, 5), (_namuwiki, 5), (_wiki_xml, 1)):
        path, options = make(tmp_path)
        fmt = options.pop("fmt", None)
        docs, ctx = read(path, fmt, invalid_utf8="drop", **options)
        assert len(docs) == expected, (path, ctx.problems.samples)
        assert sum("\ufffd\ufffd" in text for text, _ in docs) == 1
        assert ctx.problems.counts == {"invalid_utf8": 1} and f"{path.name}@byte" in ctx.problems.samples[0]

"""What every reader shares: the unit of work, options, byte streams and UTF-8 decoding."""
from __future__ import annotations

import codecs
import functools
import io
import re
import tarfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from data_prep.problems import Problems
from data_prep.readers.compression import READ_BUFFER, decompressed
from data_prep.readers.newlines import lf_lines

# One reader result: (text, location such as "file.jsonl:12" or "dump.json[345]").
Doc = tuple[str, str]
# The longest line, record or document read (--max-doc-bytes): what bounds a reader's memory.
MAX_DOC_BYTES = 8 << 20
# The standard JSON parser decodes an escaped lone surrogate ("\ud800") into a str that no
# encoding can write (orjson refuses such a line; ijson's yajl backend reads it as "?"). Where that
# parser reads, one scan of the raw bytes for a surrogate escape (paired or not: rare) says whether
# its texts need a look.
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class RecordTooLarge(ValueError):
    """A streaming parser's record grew past --max-doc-bytes: the rest of its file is skipped."""


@dataclass(frozen=True)
class Unit:
    """One piece of work: a file, a zip or tar member, or a newline-aligned byte range of a big file."""

    index: int
    path: str
    source: str
    fmt: str
    size: int
    member: str | None = None
    start: int | None = None
    end: int | None = None
    archive: str | None = None  # "zip" or "tar" for a member
    member_offset: int = 0  # where a tar member's data starts in the (decompressed) archive

    @property
    def where(self) -> str:
        """The file, or `archive::member`."""
        return f"{self.path}::{self.member}" if self.member else self.path

    @property
    def name(self) -> str:
        return self.where if self.start is None else f"{self.where}[{self.start}:{self.end}]"


@dataclass(frozen=True)
class ReadOptions:
    text_field: str | None = None  # None: not given, "text"
    doc_path: str | None = None
    text_path: str | None = None
    text_mode: str = "line"
    invalid_utf8: str = "replace"
    max_doc_bytes: int = MAX_DOC_BYTES

    @property
    def field(self) -> str:
        """The text field, column or (for csv/tsv) comma-separated columns."""
        return self.text_field or "text"


@dataclass
class ReadContext:
    options: ReadOptions
    problems: Problems = field(default_factory=Problems)
    dropped: Counter = field(default_factory=Counter)

    def decode(self, data: bytes, location: str) -> str | None:
        """UTF-8 text of `data`; invalid bytes are replaced or the record dropped, per --invalid-utf8."""
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as err:
            if self._drops("invalid_utf8", location, f"invalid UTF-8 at byte {err.start}"):
                return None
            return data.decode("utf-8", "replace")

    def repair_surrogates(self, text: str, location: str) -> str | None:
        """`text` with its lone surrogates replaced by U+FFFD, or None to drop it, per --invalid-utf8
        (like invalid UTF-8: it is text no encoding can write)."""
        repaired, found = _LONE_SURROGATE.subn("\ufffd", text)
        if found and self._drops("lone_surrogate", location, f"{found} escaped lone surrogate(s)"):
            return None
        return repaired

    def _drops(self, kind: str, location: str, what: str) -> bool:
        """Report a record holding text no encoding can write; whether --invalid-utf8 drops it
        (counted under `kind`) rather than having it repaired."""
        drop = self.options.invalid_utf8 == "drop"
        self.problems.report(kind, location, f"{what} ({'dropped' if drop else 'replaced'})")
        if drop:
            self.dropped[kind] += 1
        return drop

    def oversized(self, location: str, what: str, consequence: str = "dropped") -> None:
        """Report a record dropped for being longer than --max-doc-bytes."""
        self.problems.report("oversized_record", location, f"{what} is longer than --max-doc-bytes "
                             f"{self.options.max_doc_bytes}; {consequence}")


def open_unit(unit: Unit) -> BinaryIO:
    """Decompressed byte stream of a unit (archive member or file), positioned at its start."""
    if unit.member is None:
        return decompressed(open(unit.path, "rb", buffering=READ_BUFFER))
    if unit.archive == "tar":
        return decompressed(_TarMember(unit))
    with zipfile.ZipFile(unit.path) as archive:
        # The archive's file stays open until the member stream is closed (ZipFile refcounts it).
        return decompressed(archive.open(unit.member))


class _TarMember(io.BufferedReader):
    """A tar member's bytes, found by the offset listing recorded (no scan of the archive's
    headers); closing it closes the archive."""

    def __init__(self, unit: Unit):
        self._archive = tarfile.open(unit.path, "r:*")
        info = tarfile.TarInfo(unit.member)
        info.offset_data, info.size = unit.member_offset, unit.size
        super().__init__(self._archive.extractfile(info))

    def close(self) -> None:
        super().close()
        self._archive.close()


def iter_lines(unit: Unit, ctx: ReadContext) -> Iterator[tuple[str, bytes]]:
    """(location, raw line) for every line of the unit, read in pieces of at most --max-doc-bytes:
    a longer line is skipped and reported with its byte offset (in the decompressed data). Byte
    ranges start after the first newline at or after `start` and end with the line that spans
    `end`, so ranges tile a file exactly."""
    limit = ctx.options.max_doc_bytes
    with open_unit(unit) as opened:
        pos = unit.start or 0
        if pos > 0:
            opened.seek(pos - 1)
        stream = lf_lines(opened)  # peeked where the unit starts: a range's first read is not wasted
        read = functools.partial(stream.readline, limit + 1)
        if pos > 0:
            first = read()
            pos += len(first) + _rest_of_line(read, first) - 1
        where, end = unit.where, unit.end
        for lineno, line in enumerate(iter(read, b""), 1):
            if end is not None and pos >= end:
                break
            location = f"{where}:{lineno}" if unit.start is None else f"{unit.path}@byte{pos}"
            start, pos = pos, pos + len(line)
            if len(line) > limit and not line.endswith(b"\n"):
                pos += _rest_of_line(read, line)
                ctx.oversized(location, f"the line at byte {start} ({pos - start} bytes)")
                continue
            yield location, line


def _rest_of_line(read: Callable[[], bytes], piece: bytes) -> int:
    """Read to the end of the line that `piece` began; return the number of bytes read after it."""
    skipped = 0
    while piece and not piece.endswith(b"\n"):
        piece = read()
        skipped += len(piece)
    return skipped


class DocLines:
    """The lines of the multi-line document being read (a text block, a WikiExtractor <doc>), at
    most --max-doc-bytes of them: a document that grows past that is reported once and dropped."""

    def __init__(self, ctx: ReadContext):
        self._ctx = ctx
        self.location: str | None = None  # where the open document starts; None: none is open
        self._lines: list[str] = []
        self._size = 0
        self._over = False

    def open(self, location: str) -> None:
        self.location, self._lines, self._size, self._over = location, [], 0, False

    def add(self, line: str, size: int) -> None:
        """Append a line of `size` raw bytes to the open document."""
        self._size += size
        if self._over:
            return
        if self._size > self._ctx.options.max_doc_bytes:
            self._over, self._lines = True, []
            self._ctx.oversized(self.location, "the document starting here")
        else:
            self._lines.append(line)

    def close(self) -> Doc | None:
        """The finished document (None if none was open, or it was dropped)."""
        location, self.location = self.location, None
        if location is None or self._over:
            return None
        return "".join(self._lines), location


def parser_stream(stream: BinaryIO, ctx: ReadContext, name: str, report: bool = True,
                  quiet_until: int = 0) -> tuple[Utf8Repair, RecordBudget]:
    """(what a streaming parser (ijson, expat) reads a big file through, its budget): at most
    --max-doc-bytes of the file per record (RecordBudget, told of each record's end with
    next_record()), then invalid UTF-8 repaired (Utf8Repair; reported to ctx.problems if `report`,
    from byte `quiet_until` on)."""
    budget = RecordBudget(stream, ctx.options.max_doc_bytes)
    return Utf8Repair(budget, ctx.problems if report else None, name, quiet_until), budget


class Utf8Repair:
    """A byte stream whose invalid UTF-8 is replaced by U+FFFD, each read's first one reported
    with its byte offset. The streaming parsers stop at the first invalid byte, which lost the
    rest of the file (GBs of a Namuwiki dump) for one bad byte. They also buffer ahead, so which
    record a byte ends up in is not known here: --invalid-utf8 drop cannot drop that record, and
    the bytes are replaced either way. Valid reads pass through unchanged (one validating decode)."""

    def __init__(self, stream: BinaryIO, problems: Problems | None, name: str, quiet_until: int = 0):
        self._stream, self._problems, self._name, self._quiet_until = stream, problems, name, quiet_until
        # Holds back the start of a character cut by the end of a read, as decoding a whole file would.
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._offset = 0  # bytes of the stream before those the decoder holds back

    @property
    def offset(self) -> int:
        """Bytes of the stream passed on so far."""
        return self._offset

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""
        while True:
            held = self._decoder.getstate()[0]
            fresh = self._stream.read(size)
            if not fresh:  # the end: a character it cuts is left to the parser, which reports the cut file
                self._decoder.reset()
                return held
            text = self._decoder.decode(fresh, final=False)
            if text:
                break
        data = held + fresh
        data = data[:len(data) - len(self._decoder.getstate()[0])]
        offset, self._offset = self._offset, self._offset + len(data)
        if "\ufffd" not in text:
            return data
        try:  # a U+FFFD the text holds, or one put for invalid bytes?
            data.decode("utf-8")
            return data
        except UnicodeDecodeError as err:
            if self._problems is not None and offset + err.start >= self._quiet_until:
                self._problems.report("invalid_utf8", f"{self._name}@byte{offset + err.start}", "invalid UTF-8 "
                                      "replaced with U+FFFD (in a streamed file, whatever --invalid-utf8)")
            return text.encode("utf-8")


class RecordBudget:
    """A byte stream for a parser that builds one record at a time in memory (ijson, ElementTree):
    it counts the bytes read since `next_record()` and raises RecordTooLarge past
    --max-doc-bytes, so no record costs more memory than about that."""

    def __init__(self, stream: BinaryIO, limit: int):
        self._stream = stream
        self._limit = limit
        self._since = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size if 0 <= size <= self._limit else self._limit)
        self._since += len(data)
        if self._since > self._limit:
            raise RecordTooLarge(f"a record is longer than --max-doc-bytes {self._limit}")
        return data

    def next_record(self) -> None:
        self._since = 0

"""What every reader shares: the unit of work, options, byte streams and UTF-8 decoding."""
from __future__ import annotations

import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from data_prep.problems import Problems
from data_prep.readers.compression import decompressed

# One reader result: (text, location such as "file.jsonl:12" or "dump.json[345]").
Doc = tuple[str, str]


@dataclass(frozen=True)
class Unit:
    """One piece of work: a file, a zip member, or a newline-aligned byte range of a big file."""

    index: int
    path: str
    source: str
    fmt: str
    size: int
    member: str | None = None
    start: int | None = None
    end: int | None = None

    @property
    def name(self) -> str:
        where = f"{self.path}::{self.member}" if self.member else self.path
        return where if self.start is None else f"{where}[{self.start}:{self.end}]"


@dataclass(frozen=True)
class ReadOptions:
    text_field: str = "text"
    doc_path: str | None = None
    text_path: str | None = None
    text_mode: str = "line"
    invalid_utf8: str = "replace"


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
            action = "dropped" if self.options.invalid_utf8 == "drop" else "replaced"
            self.problems.report("invalid_utf8", location, f"invalid UTF-8 at byte {err.start} ({action})")
            if self.options.invalid_utf8 == "drop":
                self.dropped["invalid_utf8"] += 1
                return None
            return data.decode("utf-8", "replace")


def open_unit(unit: Unit) -> BinaryIO:
    """Decompressed byte stream of a unit (zip member or file), positioned at its start."""
    if unit.member is None:
        return decompressed(open(unit.path, "rb"))
    with zipfile.ZipFile(unit.path) as archive:
        # The archive's file stays open until the member stream is closed (ZipFile refcounts it).
        return decompressed(archive.open(unit.member))


def iter_lines(unit: Unit) -> Iterator[tuple[str, bytes]]:
    """(location, raw line) for every line of the unit; byte ranges start after the first newline
    at or after `start` and end with the line that spans `end`, so ranges tile a file exactly."""
    with open_unit(unit) as stream:
        if unit.start is None:
            for lineno, line in enumerate(stream, 1):
                yield f"{unit.path}:{lineno}", line
            return
        pos = unit.start
        if pos > 0:
            stream.seek(pos - 1)
            pos += len(stream.readline()) - 1
        for line in stream:
            if pos >= unit.end:
                break
            yield f"{unit.path}@byte{pos}", line
            pos += len(line)


def read_all(unit: Unit) -> bytes:
    with open_unit(unit) as stream:
        return stream.read()


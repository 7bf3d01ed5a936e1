"""Files whose lines end in CR alone (classic Mac OS; Excel's "CSV (Macintosh)"): read as LF.

The line readers split on LF only, so such a file was one line: a CSV lost every row ("new-line
character seen in unquoted field"), a JSON Lines file every record, and any of them bigger than
--max-doc-bytes was dropped whole. A stream whose first buffered bytes hold a CR and no LF is
read through CR -> LF translation, which keeps every byte offset (byte ranges still tile the
file); any other stream is read as it is, at no cost beyond one peek.
"""
from __future__ import annotations

import io
from typing import BinaryIO

_PEEK = 1 << 16


def lf_lines(stream: BinaryIO) -> BinaryIO:
    """`stream`, or (CR-only line ends) a stream of its bytes with every CR read as LF; closing
    it closes `stream`. `stream` must have peek (every stream open_unit returns does)."""
    head = stream.peek(_PEEK)
    if b"\n" in head or b"\r" not in head:
        return stream
    return io.BufferedReader(_CrAsLf(stream), buffer_size=_PEEK)


class _CrAsLf(io.RawIOBase):
    def __init__(self, stream: BinaryIO):
        self._stream = stream

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._stream.seekable()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        buffer[:len(data)] = data.replace(b"\r", b"\n")
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
        super().close()

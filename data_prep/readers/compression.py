"""Transparent decompression: gzip, bz2, zstd by magic bytes (extensions are not trusted).

Every stream here is read in bounded pieces, so a compression bomb costs time, never memory, and
every one raises EOFError when its data ends inside a compressed frame (a truncated file).
"""
from __future__ import annotations

import bz2
import gzip
import io
from typing import BinaryIO

import pyarrow as pa

_GZIP = b"\x1f\x8b"
_BZ2 = b"BZh"
_ZSTD = b"\x28\xb5\x2f\xfd"
ZIP_MAGIC = b"PK\x03\x04"
COMPRESSION_SUFFIXES = (".gz", ".bz2", ".zst", ".zstd")


def compression_of(head: bytes) -> str | None:
    """Name of the stream compression whose magic starts `head`, or None for plain bytes."""
    if head.startswith(_GZIP):
        return "gzip"
    if head.startswith(_BZ2):
        return "bz2"
    if head.startswith(_ZSTD):
        return "zstd"
    return None


class _ZstdReader(io.RawIOBase):
    """zstd through Arrow's decompressor: unlike python-zstandard's stream reader, it notices a
    stream that ends inside a frame. A file cut exactly between two frames is a valid, shorter
    zstd file and cannot be told apart."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self._stream = pa.CompressedInputStream(raw, "zstd")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            return self._stream.readinto(buffer)
        except OSError as err:
            if "runcated" not in str(err):
                raise
            raise EOFError(f"zstd data ends inside a frame ({err})") from err  # what gzip and bz2 raise

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
            self._raw.close()
        super().close()


# The buffer of an input file: with the default 8 KB, a JSONL file of 4 KB records costs a read
# call every other line (readline: 3x the CPU time of a 1 MB buffer). Only the file's: a
# decompressor's buffer stays small, as a read that meets a truncation loses what it decoded.
READ_BUFFER = 1 << 20


def decompressed(raw: BinaryIO) -> BinaryIO:
    """A buffered reader of the decompressed bytes of `raw` (positioned at its start; seekable
    when uncompressed), chosen by its magic bytes."""
    kind = compression_of(raw.read(4))
    raw.seek(0)
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw)
    if kind == "bz2":
        return bz2.BZ2File(raw)
    if kind == "zstd":
        return io.BufferedReader(_ZstdReader(raw))
    return raw


def strip_compression_suffix(name: str) -> str:
    for suffix in COMPRESSION_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name

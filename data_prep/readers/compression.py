"""Transparent decompression: gzip, bz2, zstd by magic bytes (extensions are not trusted)."""
from __future__ import annotations

import bz2
import gzip
import io
from typing import BinaryIO

import zstandard

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


def decompressed(raw: BinaryIO) -> BinaryIO:
    """A reader of the decompressed bytes of `raw` (seekable, positioned at its start), chosen by
    its magic bytes."""
    kind = compression_of(raw.read(4))
    raw.seek(0)
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw)
    if kind == "bz2":
        return bz2.BZ2File(raw)
    if kind == "zstd":
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True))
    return raw


def strip_compression_suffix(name: str) -> str:
    for suffix in COMPRESSION_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name

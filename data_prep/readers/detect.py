"""Format detection. Rules, first match wins (README "Detection rules"):

0. a UTF-16 (or UTF-32) byte order mark, unless the extension names a binary format: an error
   (convert the text to UTF-8 first; read as UTF-8 every line was invalid);
1. extension (after any .gz/.bz2/.zst): .parquet -> parquet, .arrow/.feather -> arrow, .xml -> wiki-xml,
   .jsonl/.ndjson -> jsonl, .csv -> csv, .tsv -> tsv;
2. content of the first 64 KiB (decompressed): `<doc` -> wikiextractor; `<mediawiki`/`<?xml` -> wiki-xml;
   JSON with "namespace" and "title" keys -> namuwiki; JSON with "document" and
   "paragraph"/"utterance"/"sentence" -> modu; a first line that is a whole JSON object -> jsonl;
   other JSON (starting with `{` or `[`) -> aihub; binary -> unknown: a known binary magic number
   (images, PDF, executables, archives, media, SQLite), more than 1/8 NUL bytes in the first 4 KiB,
   or more than 1/8 of its bytes not valid UTF-8 (also legacy EUC-KR/CP949 text);
3. anything else is text.
"""
from __future__ import annotations

import json

from data_prep.readers.compression import strip_compression_suffix

FORMATS = ("jsonl", "text", "modu", "wiki-xml", "wikiextractor", "namuwiki", "aihub", "parquet", "arrow", "csv",
           "tsv")
SNIFF_BYTES = 1 << 16
# Binary files show themselves at once; text with stray NULs (which the cleaner removes and
# counts) must not be rejected for NULs spread over the whole sniffed head.
_BINARY_WINDOW = 4096
# Magic numbers of binary files that turn up beside corpora (zip is an archive only at the top
# level: inside a zip member it is binary). A short curated table rather than `filetype`, which
# calls text starting with "MZ세대" an .exe and "BMW" a .bmp: prefixes Korean text can start with
# are left to the NUL and UTF-8 tests below.
_BINARY_MAGIC = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF87a": "GIF", b"GIF89a": "GIF",
                 b"%PDF-": "PDF", b"\x7fELF": "ELF", b"MZ\x90\x00": "PE executable", b"PK\x03\x04": "zip",
                 b"7z\xbc\xaf\x27\x1c": "7z", b"Rar!\x1a\x07": "RAR", b"\xfd7zXZ\x00": "xz", b"\x04\x22\x4d\x18": "lz4",
                 b"II*\x00": "TIFF", b"MM\x00*": "TIFF", b"OggS": "Ogg", b"fLaC": "FLAC", b"ID3\x03": "MP3",
                 b"ID3\x04": "MP3", b"SQLite format 3\x00": "SQLite", b"\xca\xfe\xba\xbe": "Java class",
                 b"\x00asm": "WebAssembly", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1": "MS Office (OLE)"}
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")  # UTF-32's little-endian BOM starts like UTF-16's
_BINARY_SUFFIXES = (".parquet", ".arrow", ".feather")
_BY_SUFFIX = {".parquet": "parquet", ".arrow": "arrow", ".feather": "arrow", ".xml": "wiki-xml",
              ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv"}


class UnknownFormat(ValueError):
    pass


def detect_format(name: str, head: bytes) -> str:
    """The reader for a file called `name` whose decompressed content starts with `head`."""
    base = strip_compression_suffix(name.lower())
    if head.startswith(_UTF16_BOMS) and not base.endswith(_BINARY_SUFFIXES):
        raise UnknownFormat(f"{name}: UTF-16 text (it starts with a UTF-16 byte order mark); convert it to UTF-8 "
                            "first, e.g. iconv -f utf-16 -t utf-8")
    for suffix, fmt in _BY_SUFFIX.items():
        if base.endswith(suffix):
            return fmt
    body = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if body.startswith(b"<doc"):
        return "wikiextractor"
    if body.startswith((b"<mediawiki", b"<?xml")):
        return "wiki-xml"
    if body[:1] in (b"{", b"["):
        return _json_kind(body)
    why = binary_kind(head)
    if why:
        raise UnknownFormat(f"{name}: looks binary ({why}) and matches no known format; "
                            f"pass --format ({', '.join(FORMATS)})")
    return "text"


def binary_kind(head: bytes) -> str | None:
    """Why `head` (a file's first bytes) is not text, or None if it may be."""
    for magic, kind in _BINARY_MAGIC.items():
        if head.startswith(magic):
            return f"{kind} data"
    if head[4:12] in (b"ftypisom", b"ftypmp42", b"ftypheic", b"ftypavif") or head[8:12] in (b"WEBP", b"WAVE", b"AVI "):
        return "media container"
    window = head[:_BINARY_WINDOW]
    if window.count(b"\x00") > len(window) // 8:
        return "NUL bytes"
    # Each byte outside a valid UTF-8 sequence decodes to one lone surrogate.
    invalid = sum(1 for ch in window.decode("utf-8", "surrogateescape") if "\udc80" <= ch <= "\udcff")
    if invalid > len(window) // 8:
        return f"{invalid} of its first {len(window)} bytes are not UTF-8; legacy EUC-KR/CP949 text needs iconv first"
    return None


def _json_kind(body: bytes) -> str:
    if b'"namespace"' in body and b'"title"' in body:
        return "namuwiki"
    if b'"document"' in body and any(k in body for k in (b'"paragraph"', b'"utterance"', b'"sentence"')):
        return "modu"
    first_line, newline, _ = body.partition(b"\n")
    if newline and body[:1] == b"{":
        try:
            json.loads(first_line)
            return "jsonl"
        except ValueError:
            pass
    return "aihub"

"""Format detection. Rules, first match wins (README "Detection rules"):

1. extension (after any .gz/.bz2/.zst): .parquet -> parquet, .arrow/.feather -> arrow, .xml -> wiki-xml,
   .jsonl/.ndjson -> jsonl;
2. content of the first 64 KiB (decompressed): `<doc` -> wikiextractor; `<mediawiki`/`<?xml` -> wiki-xml;
   JSON with "namespace" and "title" keys -> namuwiki; JSON with "document" and
   "paragraph"/"utterance"/"sentence" -> modu; a first line that is a whole JSON object -> jsonl;
   other JSON (starting with `{` or `[`) -> aihub; more than 1/8 NUL bytes in the first 4 KiB ->
   unknown (binary);
3. anything else is text.
"""
from __future__ import annotations

import json

from data_prep.readers.compression import strip_compression_suffix

FORMATS = ("jsonl", "text", "modu", "wiki-xml", "wikiextractor", "namuwiki", "aihub", "parquet", "arrow")
SNIFF_BYTES = 1 << 16
# Binary files show themselves at once; text with stray NULs (which the cleaner removes and
# counts) must not be rejected for NULs spread over the whole sniffed head.
_BINARY_WINDOW = 4096
_BY_SUFFIX = {".parquet": "parquet", ".arrow": "arrow", ".feather": "arrow", ".xml": "wiki-xml",
              ".jsonl": "jsonl", ".ndjson": "jsonl"}


class UnknownFormat(ValueError):
    pass


def detect_format(name: str, head: bytes) -> str:
    """The reader for a file called `name` whose decompressed content starts with `head`."""
    base = strip_compression_suffix(name.lower())
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
    window = head[:_BINARY_WINDOW]
    if window.count(b"\x00") > len(window) // 8:
        raise UnknownFormat(f"{name}: looks binary and matches no known format; pass --format ({', '.join(FORMATS)})")
    return "text"


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

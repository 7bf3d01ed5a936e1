"""One reader per corpus format; each turns a Unit into (text, location) documents."""
from __future__ import annotations

from collections.abc import Callable, Iterator

from data_prep.readers.base import Doc, ReadContext, ReadOptions, Unit
from data_prep.readers.columnar import read_arrow, read_parquet
from data_prep.readers.delimited import read_csv, read_tsv
from data_prep.readers.detect import FORMATS, UnknownFormat, detect_format
from data_prep.readers.json_docs import read_aihub, read_modu
from data_prep.readers.jsonl import read_jsonl
from data_prep.readers.namuwiki import read_namuwiki
from data_prep.readers.text import read_text
from data_prep.readers.wiki_xml import read_wiki_xml
from data_prep.readers.wikiextractor import read_wikiextractor

READERS: dict[str, Callable[[Unit, ReadContext], Iterator[Doc]]] = {
    "jsonl": read_jsonl,
    "text": read_text,
    "modu": read_modu,
    "wiki-xml": read_wiki_xml,
    "wikiextractor": read_wikiextractor,
    "namuwiki": read_namuwiki,
    "aihub": read_aihub,
    "parquet": read_parquet,
    "arrow": read_arrow,
    "csv": read_csv,
    "tsv": read_tsv,
}
assert set(READERS) == set(FORMATS)

# Formats whose records are lines, so a big uncompressed file can be split into byte ranges.
LINE_FORMATS = frozenset({"jsonl", "text"})
# Formats whose records have named fields, which --text-field chooses among.
FIELD_FORMATS = ("jsonl", "csv", "tsv", "parquet", "arrow")

__all__ = ["Doc", "FIELD_FORMATS", "FORMATS", "LINE_FORMATS", "READERS", "ReadContext", "ReadOptions", "Unit",
           "UnknownFormat", "detect_format"]

"""Whole-file JSON corpora: Modu (NIKL) and AIHub layouts, and any file described by
`--doc-path` (where the documents are) plus `--text-path` (their strings, joined by newlines).

A file up to --max-doc-bytes is parsed whole (fast, with exact error positions); a bigger one is
streamed with ijson, one document at a time, so the limit bounds each document.
"""
from __future__ import annotations

import json
from collections.abc import Iterator

import ijson

from data_prep.readers.base import SURROGATE_ESCAPE, Doc, ReadContext, RecordTooLarge, Unit, open_unit
from data_prep.readers.jsonl import decode_json, texts_at
from data_prep.readers.jsonpath import parse_path, select
from data_prep.readers.streamed_json import json_values

# (doc path, text path), tried in order; the first whose text path matches a document wins.
MODU_LAYOUTS = [
    ("document[]", "paragraph[].form"),  # newspaper, written, web (first paragraph = title)
    ("document[]", "utterance[].form"),  # spoken, messenger, dialogue
    ("document[]", "sentence[].form"),  # lexical-semantics style corpora
]
AIHUB_PRESETS = {
    "sjml": ("SJML.text[]", "content"),
    "rows": ("data[]", "rows[].text"),
    "documents": ("documents[]", "text[][].sentence"),
    "utterance": ("", "utterance[].original_form"),
    "squad": ("data[].paragraphs[]", "context"),  # KorQuAD and other SQuAD-shaped files
    "text": ("", "text"),
}


def read_modu(unit: Unit, ctx: ReadContext) -> Iterator[Doc]:
    yield from _read_layouts(unit, ctx, _layouts(ctx, MODU_LAYOUTS))


def read_aihub(unit: Unit, ctx: ReadContext) -> Iterator[Doc]:
    yield from _read_layouts(unit, ctx, _layouts(ctx, list(AIHUB_PRESETS.values())))


def _layouts(ctx: ReadContext, defaults: list[tuple[str, str]]) -> list[tuple[str, str]]:
    options = ctx.options
    if options.text_path is None:
        return defaults
    return [(options.doc_path or "", options.text_path)]


def _read_layouts(unit: Unit, ctx: ReadContext, layouts: list[tuple[str, str]]) -> Iterator[Doc]:
    with open_unit(unit) as stream:
        data = stream.read(ctx.options.max_doc_bytes + 1)
    if len(data) > ctx.options.max_doc_bytes:
        yield from _pick_layout(unit, ctx, layouts, _Streamed(unit, ctx))
        return
    text = ctx.decode(data, unit.name)
    if text is None:
        return
    try:
        root = decode_json(text.removeprefix("\ufeff"))  # a BOM (Windows tools write one) lost the file
    except json.JSONDecodeError as err:
        ctx.problems.report("malformed_json", f"{unit.name}:{err.lineno}:{err.colno}", f"{err.msg}; file skipped")
        return
    except RecursionError:
        ctx.problems.report("malformed_json", unit.name, "nested too deeply to parse; file skipped")
        return
    yield from _pick_layout(unit, ctx, layouts, lambda doc_path, report: select(root, parse_path(doc_path), []),
                            suspect=SURROGATE_ESCAPE.search(data) is not None)


def _pick_layout(unit: Unit, ctx: ReadContext, layouts: list[tuple[str, str]], docs_at,
                 suspect: bool = False) -> Iterator[Doc]:
    """The documents of the first layout whose text path finds a string in one of its documents;
    `docs_at(doc_path, report)` yields a layout's documents (reporting errors if `report`).
    `suspect`: the texts may hold lone surrogates (ReadContext.repair_surrogates)."""
    for doc_path, text_path in layouts:
        text_steps = parse_path(text_path)
        if any(_has_text(doc, text_steps) for doc in docs_at(doc_path, False)):
            for i, doc in enumerate(docs_at(doc_path, True)):
                location = f"{unit.name}#doc{i}"
                joined = texts_at(doc, text_steps, text_path, location, ctx)
                if suspect and joined is not None:
                    joined = ctx.repair_surrogates(joined, location)
                if joined is not None:
                    yield joined, location
            return
    if isinstance(docs_at, _Streamed) and docs_at.failure:
        ctx.problems.report(*docs_at.failure)
        return
    tried = ", ".join(f"{d or '<root>'} -> {t}" for d, t in layouts)
    ctx.problems.report("missing_field", unit.name, f"no documents found at any of: {tried}")


class _Streamed:
    """The documents at a JSON path of a file too big to parse whole, streamed with ijson, one
    document (at most --max-doc-bytes) in memory at a time. A parse error or an oversized
    document ends the file; while choosing a layout (report=False) the first one is kept in
    `failure` instead of being reported."""

    def __init__(self, unit: Unit, ctx: ReadContext):
        self._unit, self._ctx = unit, ctx
        self.failure: tuple[str, str, str] | None = None

    def __call__(self, doc_path: str, report: bool) -> Iterator:
        index = -1
        prefix = _ijson_prefix(doc_path)
        try:
            for index, doc in enumerate(json_values(self._unit, self._ctx, lambda _: prefix, report)):
                yield doc
        except (ijson.JSONError, UnicodeDecodeError) as err:
            self._fail(report, "malformed_json", f"{self._unit.name}#doc{index + 1}", f"{err}; rest of file skipped")
        except RecordTooLarge:
            self._fail(report, "oversized_record", f"{self._unit.name}#doc{index + 1}", "the document is longer "
                       f"than --max-doc-bytes {self._ctx.options.max_doc_bytes}; dropped with the rest of the file")

    def _fail(self, report: bool, kind: str, location: str, message: str) -> None:
        if report:
            self._ctx.problems.report(kind, location, message)
        elif self.failure is None:
            self.failure = (kind, location, message)


def _ijson_prefix(doc_path: str) -> str:
    """ijson's name for the values a doc path selects: `data[].paragraphs[]` -> `data.item.paragraphs.item`."""
    return ".".join(part for name, depth in parse_path(doc_path) for part in [name] * bool(name) + ["item"] * depth)


def _has_text(doc, steps) -> bool:
    return any(isinstance(v, str) for v in select(doc, steps, []))

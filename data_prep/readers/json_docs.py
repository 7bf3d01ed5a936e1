"""Whole-file JSON corpora: Modu (NIKL) and AIHub layouts, and any file described by
`--doc-path` (where the documents are) plus `--text-path` (their strings, joined by newlines).

Files are parsed whole, so --max-doc-bytes bounds the file: Modu and AIHub files are a few MB each
(the multi-GB Namuwiki array has its own streaming reader).
"""
from __future__ import annotations

import json
from collections.abc import Iterator

from data_prep.readers.base import Doc, ReadContext, Unit, read_all
from data_prep.readers.jsonl import texts_at
from data_prep.readers.jsonpath import parse_path, select

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
    data = read_all(unit, ctx)
    text = None if data is None else ctx.decode(data, unit.name)
    if text is None:
        return
    try:
        root = json.loads(text, strict=False)
    except json.JSONDecodeError as err:
        ctx.problems.report("malformed_json", f"{unit.name}:{err.lineno}:{err.colno}", f"{err.msg}; file skipped")
        return
    except RecursionError:
        ctx.problems.report("malformed_json", unit.name, "nested too deeply to parse; file skipped")
        return
    for doc_path, text_path in layouts:
        docs = list(select(root, parse_path(doc_path), []))
        text_steps = parse_path(text_path)
        if docs and any(_has_text(doc, text_steps) for doc in docs):
            for i, doc in enumerate(docs):
                location = f"{unit.name}#doc{i}"
                joined = texts_at(doc, text_steps, text_path, location, ctx)
                if joined is not None:
                    yield joined, location
            return
    tried = ", ".join(f"{d or '<root>'} -> {t}" for d, t in layouts)
    ctx.problems.report("missing_field", unit.name, f"no documents found at any of: {tried}")


def _has_text(doc, steps) -> bool:
    return any(isinstance(v, str) for v in select(doc, steps, []))

"""Namumark (Namuwiki markup) to plain text: links to their text, tables to their cell text,
macros, footnotes, comments, attributes and HTML blocks removed, formatting marks dropped."""
from __future__ import annotations

import re

_HTML_BLOCK = re.compile(r"\{\{\{#!(?:html|wiki|folding|syntax)[^\n]*?(?:\n.*?)?\}\}\}", re.S)
_BRACES = re.compile(r"\{\{\{(?:[+-]\d\s|#[0-9A-Za-z,#]+\s)?(.*?)\}\}\}", re.S)
_FOOTNOTE = re.compile(r"\[\*[^\[\]]*(?:\[\[[^\]]*\]\][^\[\]]*)*\]")
_MEDIA_LINK = re.compile(r"\[\[(?:파일|분류|File|Category|이미지):[^\]]*\]\]")
_LINK = re.compile(r"\[\[([^\]|]*?)(?:\|([^\]]*?))?\]\]")
_BR = re.compile(r"\[br\]", re.I)
_MACRO = re.compile(r"\[[A-Za-z가-힣]+(?:\([^\]]*\))?\]")
_COMMENT = re.compile(r"^##.*$", re.M)
_HEADING = re.compile(r"^=+#?\s*(.*?)\s*#?=+\s*$", re.M)
_TABLE_ATTR = re.compile(r"<[^<>\n]*>")
_TABLE_ROW = re.compile(r"^\s*\|\|(.*)\|\|\s*$", re.M)
_CAPTION = re.compile(r"^\s*\|[^|\n]+\|(?=\S)", re.M)
_FORMAT = re.compile(r"'''|''|__|~~|--(?=\S)|(?<=\S)--|\^\^|,,")
_LIST = re.compile(r"^\s*(?:\*|\d+\.|[aAiI]\.)\s*", re.M)
_QUOTE = re.compile(r"^>+\s?", re.M)
_RULE = re.compile(r"^-{4,9}\s*$", re.M)
_REDIRECT = re.compile(r"^\s*#(?:redirect|넘겨주기)\b", re.I)


def is_redirect(text: str) -> bool:
    return bool(_REDIRECT.match(text))


def _table_row(match: re.Match) -> str:
    cells = (_TABLE_ATTR.sub("", cell).strip() for cell in match.group(1).split("||"))
    return " ".join(cell for cell in cells if cell)


def strip_namumark(text: str) -> str:
    text = _HTML_BLOCK.sub("", text)
    text = _COMMENT.sub("", text)
    text = _BRACES.sub(r"\1", text)
    text = _FOOTNOTE.sub("", text)
    text = _MEDIA_LINK.sub("", text)
    text = _LINK.sub(lambda m: m.group(2) if m.group(2) is not None else m.group(1).split("#")[0], text)
    text = _BR.sub("\n", text)
    text = _MACRO.sub("", text)
    text = _HEADING.sub(r"\1", text)
    text = _CAPTION.sub("", text)
    text = _TABLE_ROW.sub(_table_row, text)
    text = _FORMAT.sub("", text)
    text = _RULE.sub("", text)
    text = _LIST.sub("", text)
    return _QUOTE.sub("", text)

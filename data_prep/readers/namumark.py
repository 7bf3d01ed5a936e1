"""Namumark (Namuwiki markup) to plain text: links to their text, tables to their cell text,
macros, footnotes, comments, attributes, HTML and code blocks removed, formatting marks dropped."""
from __future__ import annotations

import re

_BRACE_TOKEN = re.compile(r"\{\{\{|\}\}\}")
_DROPPED_BLOCK = re.compile(r"#!(?:html|syntax)\b")
_KEPT_BLOCK = re.compile(r"#!(?:wiki|folding)[^\n]*\n?")
_BLOCK_PREFIX = re.compile(r"[+-][1-5]\s|#[0-9A-Za-z,#]+\s")
# Two levels of nested [] inside a footnote cover links ([[...]]) and macros within it.
_L1 = r"\[[^\[\]]*\]"
_L2 = rf"\[(?:[^\[\]]|{_L1})*\]"
_FOOTNOTE = re.compile(rf"\[\*(?:[^\[\]]|{_L1}|{_L2})*\]")
_MEDIA_LINK = re.compile(r"\[\[(?:파일|분류|File|Category|이미지):[^\]]*\]\]")
_LINK = re.compile(r"\[\[([^\]|]*?)(?:\|((?:[^\[\]]|\[[^\[\]]*\])*?))?\]\]")
_BR = re.compile(r"\[br\]", re.I)
_MACRO = re.compile(r"\[[A-Za-z가-힣]+(?:\([^\]]*\))?\]")
_COMMENT = re.compile(r"^##.*$", re.M)
_HEADING = re.compile(r"^=+#?\s*(.*?)\s*#?=+\s*$", re.M)
_TABLE_CELL = re.compile(r"\|\|(?:\s*<[^<>\n]*>)*")
_CAPTION = re.compile(r"^\s*\|[^|\n]+\|(?=\S)", re.M)
_FORMAT = re.compile(r"'''|''|__|~~|--(?=\S)|(?<=\S)--|\^\^|,,")
_LIST = re.compile(r"^\s*(?:\*|\d+\.|[aAiI]\.)\s*", re.M)
_QUOTE = re.compile(r"^>+\s?", re.M)
_RULE = re.compile(r"^-{4,9}\s*$", re.M)
_REDIRECT = re.compile(r"^\s*#(?:redirect|넘겨주기)\b", re.I)
# Literal brackets written as {{{[}}} must not close footnotes or links: hidden until the end.
_LITERAL_OPEN, _LITERAL_CLOSE = "\ue000", "\ue001"


def is_redirect(text: str) -> bool:
    return bool(_REDIRECT.match(text))


def _unbrace(text: str) -> str:
    """Resolve {{{ }}} blocks (nestable): html/syntax blocks are dropped, wiki/folding blocks and
    sized/coloured text keep their content without the header, other blocks are literal text."""
    out: list[str] = []
    dropping: list[bool] = []  # per open block: is its content dropped?
    pos = 0
    for token in _BRACE_TOKEN.finditer(text):
        if not any(dropping):
            out.append(text[pos:token.start()])
        pos = token.end()
        if token.group() == "}}}":
            if dropping:
                dropping.pop()
            continue
        dropped = bool(_DROPPED_BLOCK.match(text, pos))
        header = _KEPT_BLOCK.match(text, pos) or _BLOCK_PREFIX.match(text, pos)
        if header and not dropped:
            pos = header.end()
        dropping.append(dropped)
    if not any(dropping):
        out.append(text[pos:])
    return "".join(out)


def strip_namumark(text: str) -> str:
    text = text.replace("{{{[}}}", _LITERAL_OPEN).replace("{{{]}}}", _LITERAL_CLOSE)
    text = _COMMENT.sub("", text)
    text = _unbrace(text)
    text = _FOOTNOTE.sub("", text)
    text = _MEDIA_LINK.sub("", text)
    text = _LINK.sub(lambda m: m.group(2) if m.group(2) is not None else m.group(1).split("#")[0], text)
    text = _BR.sub("\n", text)
    text = _MACRO.sub("", text)
    text = _HEADING.sub(r"\1", text)
    text = _CAPTION.sub("", text)
    text = _TABLE_CELL.sub(" ", text)
    text = _FORMAT.sub("", text)
    text = _RULE.sub("", text)
    text = _LIST.sub("", text)
    text = _QUOTE.sub("", text)
    return text.replace(_LITERAL_OPEN, "[").replace(_LITERAL_CLOSE, "]")

"""`--pii mask`: personal data replaced by a plain-text placeholder per kind (the model reads bytes,
so the placeholder is text). Each candidate the patterns find is validated before it is masked:

- resident registration numbers (`[주민번호]`): YYMMDD-GNNNNNN with a real calendar date (century
  from the gender digit G, 1-8) and a valid check digit. Numbers issued since October 2020 have
  no check digit, so a valid date of birth in 2020 or later is masked whatever the last digit.
- phone numbers (`[전화번호]`): mobile 01[016789] with or without separators, +82 forms, and
  landlines (02, 0[3-6][1-5], 070, 080) written with separators; business numbers such as
  1588-xxxx are not personal and stay.
- e-mail addresses (`[이메일]`), card numbers passing the Luhn check (`[카드번호]`: 4-4-4-4 or
  4-6-5 with '-' or ' ', or 15-16 digits in a row), and IPv4 host addresses (`[IP주소]`, as
  FineWeb-2's PIIFormatter masks them: first octet 1-223), except version and series numbers
  (v1.2.3.4, 버전 10.0.19041.1, 람보1.2.3.4: a letter or dot before it).

A digit run only matches whole (never inside a longer run of digits), so a 20-digit order number
or a 13-digit ISBN is never a card or an RRN.
"""
from __future__ import annotations

import datetime
import re
from collections import Counter

from data_prep.lazy import lazy_module
from data_prep.steps import Step

pii_kernels = lazy_module("data_prep.pii_kernels")  # numba: loaded where documents are first masked
text_stats = lazy_module("data_prep.text_stats")  # code points, encoded once for every step

PLACEHOLDERS = {"rrn": "[주민번호]", "phone": "[전화번호]", "email": "[이메일]", "card": "[카드번호]",
                "ip": "[IP주소]"}

_SEP = r"[-. ]"
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_FIRST_OCTET = r"(?:22[0-3]|2[01]\d|1\d\d|[1-9]\d?)"  # 1-223: 0.x and 224+ are no one's address
_CARD = r"\d{4}(?P<csep>[- ])\d{4}(?P=csep)\d{4}(?P=csep)\d{4}|\d{4}(?P<asep>[- ])\d{6}(?P=asep)\d{5}|\d{15,16}"
_MOBILE = rf"(?:\+82{_SEP}?|0)1[016789]{_SEP}?\d{{3,4}}{_SEP}?\d{{4}}"
_LANDLINE = rf"(?:\+82{_SEP}?(?:2|[3-6][1-5]|70)|02|0[3-6][1-5]|070|080)(?:{_SEP}|\) ?)\d{{3,4}}{_SEP}\d{{4}}"
# Python's `re` scans Hangul at ~7 MB/s for the five anchored alternatives below: they see only the
# few digit runs they can match, `[\d+(][\d\-. ()+]{6,}`, which pii_kernels.candidate_spans finds.
# The group that matched names the kind.
_DIGITS = re.compile("|".join([
    r"(?<![\d.])(?P<rrn>\d{6}-?[1-8]\d{6})(?!\d)",
    rf"(?<!\d)(?P<card>{_CARD})(?!\d)",
    rf"(?<![\d+])(?P<phone>{_MOBILE}|{_LANDLINE})(?!\d)",
    r"(?<!\d)(?P<paren_phone>\(0(?:2|[3-6][1-5])\) ?\d{3,4}-\d{4})(?!\d)",
    rf"(?<![\w.])(?<!버전 )(?P<ip>{_FIRST_OCTET}(?:\.{_OCTET}){{3}})(?![\d.])",
]))
_EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}(?![\w-])")
# The characters of an address's local part, as _EMAIL has them.
_LOCAL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-")
_CENTURY = {"1": 1900, "2": 1900, "5": 1900, "6": 1900, "3": 2000, "4": 2000, "7": 2000, "8": 2000}
_RRN_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)


def valid_rrn(number: str) -> bool:
    digits = number.replace("-", "")
    year = _CENTURY[digits[6]] + int(digits[:2])
    try:
        datetime.date(year, int(digits[2:4]), int(digits[4:6]))
    except ValueError:
        return False
    check = (11 - sum(int(d) * w for d, w in zip(digits, _RRN_WEIGHTS)) % 11) % 10
    return check == int(digits[12]) or year >= 2020


def luhn_valid(number: str) -> bool:
    digits = [int(d) for d in number if d.isdigit()]
    total = sum(digits[-1::-2]) + sum(d * 2 - 9 if d > 4 else d * 2 for d in digits[-2::-2])
    return total % 10 == 0


def _kind(match: re.Match) -> str | None:
    """The PII kind of a pattern match, or None if validation rejects it."""
    kind = match.lastgroup
    if kind == "rrn":
        return kind if valid_rrn(match.group(kind)) else None
    if kind == "card":
        return kind if luhn_valid(match.group(kind)) else None
    return "phone" if kind == "paren_phone" else kind


def mask_emails(text: str) -> tuple[str, int]:
    """_EMAIL.subn(PLACEHOLDERS["email"], text), with the pattern tried only where a match can
    start: the first of the local-part characters before each "@" (a later one has one of them
    before it, which the lookbehind refuses, and none before reaches that "@"). `re` scans Hangul
    slowly, and a document with an "@" is most often a long one with one address."""
    pieces, done, at = [], 0, text.find("@")
    while at >= 0:
        start = at
        while start > done and text[start - 1] in _LOCAL:
            start -= 1
        match = _EMAIL.match(text, start)  # sees the text before `start`, as sub's scan does
        if match is None:
            at = text.find("@", at + 1)
            continue
        pieces += [text[done:start], PLACEHOLDERS["email"]]
        done = match.end()
        at = text.find("@", done)
    return ("".join(pieces) + text[done:] if pieces else text), len(pieces) // 2


def mask_pii(text: str, counts: Counter) -> str:
    """`text` with every validated PII match replaced by its placeholder; adds "pii.KIND" counts."""
    spans, at = pii_kernels.candidate_spans(text_stats.code_points(text))
    if at:
        masked, found = mask_emails(text)
        if found:  # the spans are of the text before
            counts["pii.email"] += found
            text = masked
            spans = pii_kernels.candidate_spans(text_stats.code_points(text))[0]
    pieces, done = [], 0
    for start, end in spans:
        # The lookbehinds see the text before the candidate (finditer's pos does not hide it).
        for match in _DIGITS.finditer(text, start, end):
            kind = _kind(match)
            if kind is not None:
                counts[f"pii.{kind}"] += 1
                pieces += [text[done:match.start()], PLACEHOLDERS[kind]]
                done = match.end()
    return "".join(pieces) + text[done:] if pieces else text


def pii_steps(mode: str) -> list[Step]:
    """The masking step (last of all, so that no filter sees placeholders), or none for "keep"."""
    return [Step("pii", mask_pii)] if mode == "mask" else []

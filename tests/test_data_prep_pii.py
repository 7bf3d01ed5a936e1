"""PII masking: recall on generated valid numbers and addresses, precision on generated look-alikes
(impossible dates, failing check digits, Luhn failures, version strings, ordinary numbers); the
compiled search for number-like spans against the regular expression it replaces."""
from __future__ import annotations

import datetime
import re
from collections import Counter

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from data_prep.pii import _EMAIL, PLACEHOLDERS, luhn_valid, mask_emails, mask_pii, valid_rrn
from data_prep.pii_kernels import candidate_spans

WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)


def rrn_check(first12: str) -> str:
    """The check digit, written out from the published rule (independent of data_prep.pii)."""
    total = 0
    for digit, weight in zip(first12, WEIGHTS):
        total += int(digit) * weight
    return str((11 - total % 11) % 10)


def luhn_digit(body: str) -> str:
    for check in "0123456789":
        number = body + check
        total = 0
        for i, ch in enumerate(reversed(number)):
            d = int(ch) * (2 if i % 2 else 1)
            total += d - 9 if d > 9 else d
        if total % 10 == 0:
            return check
    raise AssertionError


def masked(text: str) -> tuple[str, Counter]:
    counts: Counter = Counter()
    return mask_pii(text, counts), counts


CONTEXT = st.sampled_from(["제 번호는 {}입니다.", "{}", "연락처: {} (평일)", "문의 {}, 감사합니다", "A{}B"])
digits = st.text(alphabet="0123456789", min_size=1, max_size=1)


@st.composite
def rrns(draw, after_2020: bool = False):
    if after_2020:
        born = draw(st.dates(datetime.date(2020, 1, 1), datetime.date(2099, 12, 31)))
        gender = draw(st.sampled_from("3478"))
    else:
        born = draw(st.dates(datetime.date(1900, 1, 1), datetime.date(2019, 12, 31)))
        gender = draw(st.sampled_from("1256" if born.year < 2000 else "3478"))
    body = born.strftime("%y%m%d") + gender + "".join(draw(st.lists(digits, min_size=5, max_size=5)))
    check = draw(digits) if after_2020 else rrn_check(body)
    sep = draw(st.sampled_from(["-", ""]))
    return body[:6] + sep + body[6:] + check


@settings(max_examples=300, deadline=None)
@given(st.one_of(rrns(), rrns(after_2020=True)), CONTEXT)
def test_valid_resident_numbers_are_masked(number, context):
    text, counts = masked(context.format(number))
    assert text == context.format("[주민번호]") and counts == {"pii.rrn": 1}


@st.composite
def bad_rrns(draw):
    """A pre-2020 date that is impossible (month 00/13+, day 00/32+, 30 February), or a real one with a
    wrong check digit."""
    yy = draw(st.integers(0, 99))
    gender = draw(st.sampled_from("12" if yy >= 20 else "1256"))
    if draw(st.booleans()):
        mm, dd = draw(st.sampled_from([(0, 10), (13, 1), (99, 12), (2, 30), (4, 31), (1, 0), (1, 32)]))
        date = f"{yy:02d}{mm:02d}{dd:02d}"
        body = date + gender + "".join(draw(st.lists(digits, min_size=5, max_size=5)))
        return body[:6] + "-" + body[6:] + rrn_check(body)
    born = draw(st.dates(datetime.date(1900, 1, 1), datetime.date(1999, 12, 31)))
    body = born.strftime("%y%m%d") + gender + "".join(draw(st.lists(digits, min_size=5, max_size=5)))
    wrong = str((int(rrn_check(body)) + draw(st.integers(1, 9))) % 10)
    return body[:6] + "-" + body[6:] + wrong


@settings(max_examples=300, deadline=None)
@given(bad_rrns())
def test_impossible_dates_and_wrong_check_digits_stay(number):
    assert masked(f"번호 {number} 끝") == (f"번호 {number} 끝", Counter())
    assert not valid_rrn(number)


@st.composite
def phones(draw):
    sep = draw(st.sampled_from(["-", ".", " ", ""]))
    if draw(st.booleans()):
        prefix = draw(st.sampled_from(["010", "011", "016", "017", "018", "019", "+82 10", "+82-10"]))
        middle = "".join(draw(st.lists(digits, min_size=3, max_size=4)))
    else:
        sep = sep or "-"
        prefix = draw(st.sampled_from(["02", "031", "032", "042", "051", "053", "062", "064", "070", "+82 2"]))
        middle = "".join(draw(st.lists(digits, min_size=3, max_size=4)))
    return f"{prefix}{sep}{middle}{sep}" + "".join(draw(st.lists(digits, min_size=4, max_size=4)))


@settings(max_examples=300, deadline=None)
@given(phones(), CONTEXT)
def test_phone_numbers_are_masked(number, context):
    assert masked(context.format(number)) == (context.format("[전화번호]"), Counter({"pii.phone": 1}))


def test_parenthesised_landline_and_business_numbers():
    assert masked("대표 (02) 123-4567") == ("대표 [전화번호]", Counter({"pii.phone": 1}))
    assert masked("고객센터 1588-1234")[1] == Counter()


@st.composite
def cards(draw):
    if draw(st.booleans()):
        body = draw(st.sampled_from("3456")) + "".join(draw(st.lists(digits, min_size=14, max_size=14)))
        number = body + luhn_digit(body)
        sep = draw(st.sampled_from(["-", " ", ""]))
        return sep.join(number[i:i + 4] for i in range(0, 16, 4))
    body = "3" + draw(st.sampled_from("47")) + "".join(draw(st.lists(digits, min_size=12, max_size=12)))
    number = body + luhn_digit(body)
    sep = draw(st.sampled_from(["-", " "]))
    return sep.join([number[:4], number[4:10], number[10:]])


@settings(max_examples=300, deadline=None)
@given(cards(), CONTEXT)
def test_luhn_valid_cards_are_masked_and_failing_ones_stay(number, context):
    assert masked(context.format(number)) == (context.format("[카드번호]"), Counter({"pii.card": 1}))
    last = number[-1]
    wrong = number[:-1] + str((int(last) + 1) % 10)
    assert not luhn_valid(wrong)
    assert masked(f"주문 {wrong} 끝") == (f"주문 {wrong} 끝", Counter())


emails = st.builds(lambda local, domain, tld: f"{local}@{domain}.{tld}",
                   st.from_regex(r"[a-z0-9][a-z0-9._]{0,15}", fullmatch=True),
                   st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True),
                   st.sampled_from(["com", "co.kr", "net", "ac.kr", "org"]))


@settings(max_examples=300, deadline=None)
@given(emails, st.sampled_from(["메일 {} 로 보내 주세요", "<{}>", "({})", "{}"]))
def test_emails_are_masked(address, context):
    assert masked(context.format(address)) == (context.format("[이메일]"), Counter({"pii.email": 1}))


@settings(max_examples=200, deadline=None)
@given(emails, phones())
def test_numbers_after_an_email_address_are_masked(address, number):
    """The number spans are found again in the text with its addresses masked (they move)."""
    text = f"메일 {address} 또는 전화 {number} 로 연락"
    assert masked(text) == ("메일 [이메일] 또는 전화 [전화번호] 로 연락", Counter({"pii.email": 1, "pii.phone": 1}))


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(list("aZ09._%+-@ ") + ["가", "\n", "é", "co", "kr", "@a.co", "x@y.kr"]), max_size=40)
       .map("".join))
def test_email_masking_is_the_patterns_substitution(text):
    assert mask_emails(text) == _EMAIL.subn(PLACEHOLDERS["email"], text)


octets = st.integers(0, 255).map(str)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 223), st.lists(octets, min_size=3, max_size=3), st.sampled_from([0, 224, 255]))
def test_ip_addresses_are_masked_and_version_strings_stay(first, rest, not_a_host):
    address = ".".join([str(first), *rest])
    assert masked(f"서버 {address} 접속") == ("서버 [IP주소] 접속", Counter({"pii.ip": 1}))
    for version in (f"v{address}", f"버전 {address}", f"{address}.7", f"람보{address}", f"{not_a_host}.{'.'.join(rest)}"):
        assert masked(f"{version} 배포") == (f"{version} 배포", Counter())


ordinary = st.one_of(
    st.integers(0, 10**12).map(lambda n: f"{n:,}원"),
    st.dates().map(lambda d: d.strftime("%Y-%m-%d")),
    st.dates().map(lambda d: d.strftime("%Y. %m. %d.")),
    st.integers(1900, 2100).map(lambda y: f"{y}년"),
    st.from_regex(r"97[89]\d{10}", fullmatch=True),  # ISBN-13
    st.from_regex(r"\d{17,25}", fullmatch=True),  # order numbers, hashes
    st.from_regex(r"1[568]\d\d-\d{4}", fullmatch=True),  # business numbers
    st.from_regex(r"\d{1,3}(\.\d{1,3}){1,2}", fullmatch=True),  # section and version numbers
)


@settings(max_examples=500, deadline=None)
@given(ordinary)
def test_ordinary_numbers_stay(value):
    text = f"기록: {value} 이상"
    assert masked(text) == (text, Counter())


def test_placeholders_are_plain_text():
    assert all(p.startswith("[") and p.endswith("]") and p.isprintable() for p in PLACEHOLDERS.values())


# Digits of several scripts (re's \d is any Unicode decimal digit), the separators, and other text.
number_like = st.text(alphabet=st.sampled_from(list("0123456789+(-. )") + ["０", "٣", "𝟕", "가", "a", "\n", "@"]),
                      max_size=80)


@settings(max_examples=500, deadline=None)
@given(number_like)
def test_candidate_spans_are_the_regex_matches(text):
    pattern = re.compile(r"[\d+(][\d\-. ()+]{6,}")  # what the kernel finds before the number patterns run
    points = np.frombuffer(text.encode("utf-32-le"), np.uint32)
    assert candidate_spans(points) == ([[m.start(), m.end()] for m in pattern.finditer(text)], "@" in text)


def test_candidate_spans_beyond_the_kernels_first_buffer():
    text = "가".join(f"+{i:07d}" for i in range(1000)) + " a@b"
    points = np.frombuffer(text.encode("utf-32-le"), np.uint32)
    assert candidate_spans(points) == ([[m.start(), m.end()] for m in re.finditer(r"[\d+(][\d\-. ()+]{6,}", text)], True)


def test_no_decimal_digit_lies_beyond_the_planes_the_digit_table_is_built_from():
    """`\\d` matches every Unicode decimal digit; the kernel's table takes them from below
    DIGITS_END only, which holds while this Python's Unicode has none above it."""
    import sys

    from data_prep.pii_kernels import DIGITS_END

    assert not [c for c in range(DIGITS_END, sys.maxunicode + 1) if chr(c).isdecimal()]
    assert re.fullmatch(r"\d", chr(0x1FBF9)) and candidate_spans(  # the last digit of plane 1 is in the table
        np.frombuffer(("+" + chr(0x1FBF9) * 7).encode("utf-32-le"), np.uint32))[0] == [[0, 8]]

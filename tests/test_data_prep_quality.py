"""Corpus-quality presets: each filter against a document that trips it and one that passes, the
compiled repetition measures against slow loop references, repeated-character runs, and
`curated` on real edited Korean text (../shared/corpora, skipped where absent)."""
from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_prep import char_kernels, span_kernels
from data_prep.clean import CleanOptions, normalize
from data_prep.extract import document_steps
from data_prep.options import OptionError, parse_quality
from data_prep.quality import PRESETS, quality_steps
from data_prep.readers import READERS, ReadContext, ReadOptions, Unit
from data_prep.repetition import duplicate_fraction, squeeze_runs, top_fraction
from data_prep.steps import Pipeline
from data_prep.text_stats import measure

CORPORA = Path(os.environ.get("KOREAN_CORPORA", Path(__file__).resolve().parents[2] / "shared" / "corpora"))
needs_corpora = pytest.mark.skipif(not CORPORA.is_dir(), reason="../shared/corpora not present")

SENTENCE = "서울은 대한민국의 수도이며 한강을 끼고 발달한 도시이다."
PROSE = "\n".join([SENTENCE, "조선 시대에는 한양이라 불렸고 지금은 천만 명 가까운 사람이 산다.",
                   "교통과 경제의 중심지로서 많은 기업의 본사가 이곳에 있다.",
                   "매년 여러 국제 행사가 열리며 관광객도 꾸준히 늘고 있어요."])
PASSAGE = ("이번 여름 휴가는 가족과 함께 제주도 바닷가 근처 작은 마을에서 조용히 보냈다 "
           "아침마다 해변을 걸었고 저녁에는 시장에서 산 생선으로 맛있는 요리를 만들어 먹었다")


def drop_reason(text: str, preset: str) -> str | None:
    pipeline = Pipeline.of(quality_steps(preset))
    pipeline(text)
    return next(iter(pipeline.counts.dropped), None)


# ---------------------------------------------------------------- reference measures (slow loops)


def ref_top_fraction(words: list[bytes], n: int, size: int) -> float:
    grams = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    if not grams or max(grams.values()) < 2:
        return 0.0
    top = max(grams.values())
    return top * max(len(b" ".join(g)) for g, c in grams.items() if c == top) / size


def ref_duplicate_fraction(words: list[bytes], n: int, size: int) -> float:
    seen, covered = set(), set()
    for i in range(len(words) - n + 1):
        gram = tuple(words[i:i + n])
        if gram in seen:
            covered.update(range(i, i + n))
        seen.add(gram)
    return sum(len(words[i]) for i in covered) / size


def is_hangul(char: str) -> bool:
    return any(low <= ord(char) <= high for low, high in char_kernels.HANGUL_RANGES)


def ref_text_counts(text: str) -> tuple:
    lines = [line for line in text.split("\n") if line]
    seen, duplicates, duplicate_chars = set(), 0, 0
    for line in lines:
        if line in seen:
            duplicates += 1
            duplicate_chars += len(line)
        seen.add(line)
    junk = sum(map(len, re.findall(r"[A-Za-z0-9+/=_\-.:%&?#@~]{25,}", text)))
    return (sum(map(is_hangul, text)), text.count(" ") + text.count("\n"), junk, len(lines), duplicates,
            duplicate_chars, sum(map(len, lines)), sum(line.endswith(span_kernels.SENTENCE_ENDS) for line in lines))


texts = st.lists(st.sampled_from(["가", "나다", "라마바", "a", "12"]), min_size=0, max_size=300).map(
    lambda words: " ".join(words))


@settings(max_examples=200, deadline=None)
@given(texts, st.integers(2, 10))
def test_ngram_fractions_match_loop_references(text, n):
    if not text:
        return
    words, size = text.encode().split(), len(text.encode())
    measures = measure(text, 10, -1.0)
    assert top_fraction(measures, n) == pytest.approx(ref_top_fraction(words, n, size))
    assert duplicate_fraction(measures, n) == pytest.approx(ref_duplicate_fraction(words, n, size))
    # the gate's bound (text_stats.measure measures no n-grams below it) is one
    assert measures.repeated_word_bytes / size >= ref_duplicate_fraction(words, n, size)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 6), max_size=400))
def test_repeated_bigram_runs_match_a_loop(codes):
    """The longest run of repeated bigrams (what bounds the n measured) against a loop over the
    bigrams, in texts of 2000 bytes or more (once a separate NumPy path)."""
    words = [b"w%d" % c for c in codes] + [b"x%d" % i for i in range(700)]
    longest = measure(b" ".join(words).decode(), 10, -1.0).longest
    bigrams = Counter(zip(words, words[1:]))
    repeated = [bigrams[pair] > 1 for pair in zip(words, words[1:])]
    chain = [next((j - i for j in range(i, len(repeated)) if not repeated[j]), len(repeated) - i)
             for i in range(len(repeated))]
    assert longest == max(chain, default=0)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="가a1./:= \n", max_size=120), st.sampled_from([("web", 0.2), ("curated", 0.5)]))
def test_latin_noise_filter_matches_the_regex(text, preset_limit):
    preset, limit = preset_limit
    share = sum(map(len, re.findall(r"[A-Za-z0-9+/=_\-.:%&?#@~]{25,}", text))) / max(len(text), 1)
    step = next(step for step in quality_steps(preset) if step.name == "latin_noise")
    assert step.keep(step.measure(text)) == (share <= limit)


def ref_squeeze(text: str, hangul_keep: int | None, any_keep: int) -> str:
    def cut(match: re.Match) -> str:
        char, run = match.group(1), match.group(0)
        keep = hangul_keep if hangul_keep and re.match("[가-힣ㄱ-ㅣ]", char) else any_keep
        return run if char.isspace() else char * min(len(run), keep)
    return re.sub(r"(.)\1*", cut, text, flags=re.S)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ㅋ하a!1 \n", max_size=80), st.sampled_from([None, 2, 3]), st.integers(2, 10))
def test_squeeze_runs_matches_regex_reference(text, hangul_keep, any_keep):
    assert squeeze_runs(text, hangul_keep, any_keep) == ref_squeeze(text, hangul_keep, any_keep)


def test_repeated_characters():
    web = Pipeline.of(quality_steps("web"))
    assert web("진짜 웃기다 ㅋㅋㅋㅋㅋㅋ ㅠㅠㅠ 하하하하") == "진짜 웃기다 ㅋㅋ ㅠㅠ 하하"
    assert web("가격은 10000원, 주소는 www.example.com 입니다.") == "가격은 10000원, 주소는 www.example.com 입니다."
    long_run = "좋은 글이다 " + "=" * 400 + " 다음 글이다"
    assert web(long_run) == "좋은 글이다 " + "=" * 10 + " 다음 글이다"
    curated = Pipeline.of(quality_steps("curated"))
    assert curated("그는 ㅋㅋㅋㅋ 하고 웃었다.") == "그는 ㅋㅋㅋㅋ 하고 웃었다."  # quoted as written
    assert curated("끝" + "ㅋ" * 400) == "끝" + "ㅋ" * 10
    assert web.counts.edits == {"repeated_chars": 2} and web.counts.docs_clean == 3  # documents changed


def ref_filters(text: str, preset: str) -> dict[str, bool]:
    """Whether each of the preset's filters keeps `text` (its runs cut), in the preset's order, each
    written out on the reference measures."""
    limits = PRESETS[preset]
    hangul, blanks, junk, lines, duplicates, duplicate_chars, line_chars, ends = ref_text_counts(text)
    words, size = text.encode().split(), len(text.encode())
    letters = len(text) - blanks
    several = lines >= 2
    keep = {"min_length": len(text) >= limits.min_chars,
            "hangul_ratio": (hangul / letters if letters else 0.0) >= (limits.min_hangul_ratio or 0),
            "latin_noise": junk <= (limits.max_latin_junk or 0) * len(text),
            "dup_lines": not several or duplicates / lines <= (limits.dup_line_frac or 0),
            "dup_line_chars": not several or duplicate_chars / line_chars <= (limits.dup_line_char_frac or 0),
            "line_punct": not several or ends / lines >= (limits.min_line_punct or 0),
            "list_like": not several or text.count("\n") / max(len(words), 1) <= (limits.max_newline_per_word or 0)}
    keep |= {f"top_{n}_gram": ref_top_fraction(words, n, size) <= limit for n, limit in limits.top_ngrams}
    keep |= {f"dup_{n}_gram": not size or ref_duplicate_fraction(words, n, size) <= limit for n, limit in limits.dup_ngrams}
    return keep


FILTER_WORDS = st.sampled_from(["서울은", "가나다", "있다.", "좋아요", "한국어", "ㅋㅋㅋㅋ", "abc", "a1/b2=c3.d4:" * 3,
                                "!!!!!!!!!!!!", "다", "x"])
# Lines of phrases from a few per document: n-grams of every length repeat, within lines and across.
FILTER_DOCS = st.lists(st.lists(FILTER_WORDS, min_size=1, max_size=6).map(" ".join), min_size=1, max_size=5).flatmap(
    lambda phrases: st.lists(st.lists(st.sampled_from(phrases), min_size=1, max_size=5).map(" ".join), max_size=10)
).map("\n".join)


@settings(max_examples=400, deadline=None)
@given(FILTER_DOCS, st.sampled_from(["web", "curated"]))
def test_each_filter_keeps_as_its_formula_on_reference_measures(text, preset):
    limits = PRESETS[preset]
    squeezed = ref_squeeze(text, limits.hangul_keep, limits.any_keep)
    keep = ref_filters(squeezed, preset)
    steps = quality_steps(preset)[1:]
    assert {step.name: step.keep(step.measure(squeezed)) for step in steps} == {step.name: keep[step.name] for step in steps}
    assert drop_reason(text, preset) == next((step.name for step in steps if not keep[step.name]), None)

# ---------------------------------------------------------------- each filter trips and passes


@pytest.mark.parametrize("reason, bad", [
    ("min_length", "짧은 댓글"),
    ("hangul_ratio", "This is an English sentence with one 한글 word in it."),
    ("latin_noise", SENTENCE + " aGVsbG8gd29ybGQgdGhpcyBpcyBiYXNlNjQgZGF0YQ=="),
    ("dup_lines", "\n".join(["구독과 좋아요 부탁드립니다"] * 3 + [SENTENCE])),
    ("dup_line_chars", "\n".join(["오늘의 날씨는 맑고 기온은 높다."] * 3 + [
                                  *PROSE.split("\n"), "내일은 비가 올 것으로 보인다.", "모레는 다시 맑아진다."])),
    ("line_punct", "\n".join(["메뉴", "홈으로 가기", "로그인 하기", "회원 가입 하기", "고객 센터 안내 바로 가기 링크"] * 1
                             + [f"{i}번째 목록 항목 바로 가기" for i in range(20)])),
    ("list_like", "\n".join(f"항목{i}." for i in range(30))),
    ("top_2_gram", "무료 배송 무료 배송 무료 배송 무료 배송 지금 바로 주문하세요 오늘만 특별 할인 행사를 진행합니다."),
    ("dup_5_gram", PROSE + "\n" + PASSAGE + " " + PASSAGE + "."),
])
def test_web_filter_drops_for_its_reason(reason, bad):
    assert drop_reason(normalize(bad), "web") == reason


def test_web_keeps_prose_comments_and_one_line_documents():
    assert drop_reason(PROSE, "web") is None
    assert drop_reason("이 영화 진짜 재밌네 또 보고 싶다", "web") is None  # a comment: no sentence end, one line
    assert drop_reason(SENTENCE + "\n" + "출처: 위키백과", "web") is None


def test_curated_drops_only_junk():
    assert drop_reason(PROSE, "curated") is None
    assert drop_reason("짧은 댓글", "curated") is None
    assert drop_reason("English text stays in a curated corpus.", "curated") is None
    assert drop_reason("\n".join(["광고 문의 환영"] * 6), "curated") == "dup_lines"
    assert drop_reason("https://example.com/a/very/long/path/to/some/page.html", "curated") == "latin_noise"
    assert drop_reason("off", "off") is None and quality_steps("off") == []


# ---------------------------------------------------------------- per-source presets


def test_quality_spec_per_source_and_errors():
    assert parse_quality(None, {"a"}) == ("curated", ())
    assert parse_quality(["web"], {"a"}) == ("web", ())
    assert parse_quality(["curated,kcbert=web", "modu=off"], {"kcbert", "modu"}) == (
        "curated", (("kcbert", "web"), ("modu", "off")))
    with pytest.raises(OptionError, match="unknown preset 'webb' for source 'kcbert'"):
        parse_quality(["kcbert=webb"], {"kcbert"})
    with pytest.raises(OptionError, match="no input source is named 'kcbret'.*kcbert"):
        parse_quality(["kcbret=web"], {"kcbert"})
    options = CleanOptions(quality="curated", quality_for=(("kcbert", "web"),))
    unit = Unit(0, "x.txt", "kcbert", "text", 1)
    assert "top_2_gram" in [s.name for s in document_steps(unit, options)]
    assert "top_2_gram" not in [s.name for s in document_steps(Unit(0, "x.txt", "wiki", "text", 1), options)]


# ---------------------------------------------------------------- real edited text


def read_docs(path: Path, fmt: str, read: ReadOptions = ReadOptions()) -> list[str]:
    unit = Unit(0, str(path), "s", fmt, path.stat().st_size)
    return [normalize(text) for text, _ in READERS[fmt](unit, ReadContext(read))]


@needs_corpora
def test_curated_keeps_real_edited_prose():
    docs = [d for f in sorted((CORPORA / "kowiki_wikiextractor").rglob("wiki_*")) for d in read_docs(f, "wikiextractor")]
    squad = ReadOptions(doc_path="data[]", text_path="paragraphs[].context")
    docs += read_docs(CORPORA / "korquad" / "KorQuAD_v1.0_dev.json", "aihub", squad)
    docs += read_docs(CORPORA / "boddari" / "fairytale01.txt", "text")
    docs = [d for d in docs if d]
    assert len(docs) > 2500
    dropped = [d for d in docs if drop_reason(d, "curated")]
    assert len(dropped) <= 0.001 * len(docs), dropped[:3]

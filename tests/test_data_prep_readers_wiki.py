"""The wiki readers of data_prep (WikiExtractor <doc> files, the Namuwiki JSON dump, MediaWiki XML
dumps), on fixtures written here and on the real Korean data in ../shared/corpora when present."""
from __future__ import annotations

import bz2
import json
import unicodedata

from data_prep.clean import CleanOptions, clean
from data_prep.readers import detect_format
from data_prep.readers.namumark import strip_namumark
from tests.test_data_prep_readers import CORPORA, needs_corpora, read

# ---------------------------------------------------------------- wikiextractor <doc>


def test_wikiextractor_docs_and_unclosed_doc(tmp_path):
    path = tmp_path / "wiki_01"
    path.write_text('<doc id="1" url="u" title="가">\n가\n\n가는 글자이다.\n</doc>\n'
                    '<doc id="2" url="u" title="나">\n나\n\n나는 끝나지 않는다.\n', encoding="utf-8")
    docs, ctx = read(path)
    assert [clean(t, "wikiextractor", CleanOptions())[0] for t, _ in docs] == ["가\n\n가는 글자이다.", "나\n\n나는 끝나지 않는다."]
    assert ctx.problems.counts["truncated_doc"] == 1 and f"{path}:6" in ctx.problems.samples[0]


@needs_corpora
def test_real_kowiki_wikiextractor():
    docs, ctx = read(CORPORA / "kowiki_wikiextractor" / "AA" / "wiki_00")
    assert len(docs) == 131 and ctx.problems.total == 0
    assert docs[0][0].startswith("지미 카터")
    assert not any("<doc" in text or "</doc>" in text for text, _ in docs)


# ---------------------------------------------------------------- namuwiki

NAMU_ARRAY = [
    {"namespace": 0, "title": "문서", "contributors": ["a"], "text":
        "[목차]\n== 개요 ==\n'''굵은''' [[링크 대상|보이는 글]]과 [[단순 링크]].[* 각주 내용]\n"
        "[[파일:그림.png]][[분류:테스트]]\n|| 셀 하나 || <#fff> 셀 둘 ||\n * 목록 항목\n{{{+1 큰 글씨}}}[br]다음 줄"},
    {"namespace": 0, "title": "넘김", "contributors": [], "text": "#redirect 문서"},
    {"namespace": 1, "title": "틀:X", "contributors": [], "text": "틀 내용"},
    {"namespace": 0, "title": "빈"},
]


def test_namuwiki_array_fixture(tmp_path):
    path = tmp_path / "namuwiki.json"
    path.write_text(json.dumps(NAMU_ARRAY, ensure_ascii=False), encoding="utf-8")
    assert detect_format(path.name, path.read_bytes()) == "namuwiki"
    docs, ctx = read(path)
    assert len(docs) == 1
    text = clean(docs[0][0], "namuwiki", CleanOptions())[0]
    assert text == "개요\n굵은 보이는 글과 단순 링크.\n\n셀 하나 셀 둘\n목록 항목\n큰 글씨\n다음 줄"
    assert ctx.dropped == {"redirect": 1, "namespace": 1}
    assert ctx.problems.counts["missing_field"] == 1 and f"{path}[3]" in ctx.problems.samples[0]


def test_namuwiki_truncated_array_keeps_earlier_records(tmp_path):
    data = json.dumps(NAMU_ARRAY[:1] * 3, ensure_ascii=False).encode()
    path = tmp_path / "cut.json"
    path.write_bytes(data[: len(data) - 40])
    docs, ctx = read(path, fmt="namuwiki")
    assert len(docs) == 2 and ctx.problems.counts["malformed_json"] == 1 and f"{path}[2]" in ctx.problems.samples[0]


@needs_corpora
def test_real_namuwiki_records_lose_their_markup():
    for number in range(1, 8):
        path = CORPORA / "namuwiki_dump_json" / f"test{number}.json"
        docs, ctx = read(path)
        assert len(docs) == 1 and ctx.problems.total == 0, path
        text = clean(docs[0][0], "namuwiki", CleanOptions())[0]
        for mark in ("[[", "]]", "{{{", "}}}", "'''", "[*", "[br]", "||"):
            assert mark not in text, (path, mark)
        gold = [line.strip() for line in (path.with_suffix(".gold.txt")).read_text("utf-8").splitlines()
                if len(line.strip()) > 20 and " - " not in line]
        found = sum(unicodedata.normalize("NFC", line) in text for line in gold)
        assert found >= 0.5 * len(gold), (path, found, len(gold))


def test_strip_namumark_links_keep_text():
    assert strip_namumark("[[대한민국#s-2|한국]]과 [[일본#역사]]") == "한국과 일본"


# ---------------------------------------------------------------- wiki XML

WIKI_XML = """<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" xml:lang="ko">
  <siteinfo><sitename>위키백과</sitename></siteinfo>
  <page><title>지미 카터</title><ns>0</ns><id>5</id><revision><id>1</id>
    <text xml:space="preserve">'''제임스 얼 카터 주니어'''는 [[미국]]의 제39대 [[미국의 대통령|대통령]]이다.{{각주}}
[[파일:Carter.jpg|섬네일|카터]]
== 생애 ==
[[조지아주]]에서 태어났다.&lt;ref&gt;출처&lt;/ref&gt;
[[분류:미국의 대통령]]</text></revision></page>
  <page><title>카터</title><ns>0</ns><id>6</id><redirect title="지미 카터" /><revision><text>#넘겨주기 [[지미 카터]]</text></revision></page>
  <page><title>토론:지미 카터</title><ns>1</ns><id>7</id><revision><text>토론 내용</text></revision></page>
</mediawiki>
"""


def test_wiki_xml_bz2(tmp_path):
    path = tmp_path / "kowiki-pages-articles.xml.bz2"
    path.write_bytes(bz2.compress(WIKI_XML.encode()))
    docs, ctx = read(path)
    assert len(docs) == 1 and ctx.dropped == {"redirect": 1, "namespace": 1}
    text = clean(docs[0][0], "wiki-xml", CleanOptions())[0]
    assert text.startswith("제임스 얼 카터 주니어는 미국의 제39대 대통령이다.")
    assert "조지아주에서 태어났다." in text
    for mark in ("[[", "{{", "'''", "<ref", "분류", "Carter.jpg"):
        assert mark not in text


def test_wiki_xml_truncated(tmp_path):
    path = tmp_path / "cut.xml"
    path.write_text(WIKI_XML[: WIKI_XML.index("<page><title>카터")], encoding="utf-8")
    docs, ctx = read(path)
    assert len(docs) == 1 and ctx.problems.counts["malformed_xml"] == 1

"""Benchmark decontamination: lines sharing a 16-character N-gram (whitespace ignored) with an
evaluation passage are removed, checked against a slow set-of-strings reference; evaluation files
through the input readers; per-file counts; bad evaluation files."""
from __future__ import annotations

import json
import logging
import random
import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_prep.cli import main
from data_prep.decontam import EvalFileError, load_eval_set, remove_overlaps
from data_prep.decontam_kernels import NGRAM
from data_prep.readers import ReadOptions
from data_prep.sample import sample_paragraphs
from test_data_prep_cli import manifest


def run(*args) -> int:
    return main([str(a) for a in args])


def reference(text: str, passages: list[str]) -> str | None:
    """Slow reference: every N-gram (of N/2 letters or more) of every passage in a set of strings,
    every line checked."""
    grams = set()
    for passage in passages:
        compact = "".join(passage.split())
        grams.update(g for g in (compact[i:i + NGRAM] for i in range(len(compact) - NGRAM + 1))
                     if len(re.findall("[a-zA-Z가-힣ㄱ-ㆎ一-鿿]", g)) >= NGRAM // 2)
    kept = []
    for line in text.split("\n"):
        compact = line.replace(" ", "")
        if not any(compact[i:i + NGRAM] in grams for i in range(len(compact) - NGRAM + 1)):
            kept.append(line)
    return "\n".join(kept).strip() or None


def eval_file(tmp_path: Path, passages: list[str], name: str = "eval.txt") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(passages) + "\n", "utf-8")
    return path


words = st.sampled_from(["가나", "다", "라마바", "사", "아자", "차카타"])
lines = st.lists(words, min_size=1, max_size=14).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(passages=st.lists(lines, min_size=1, max_size=4), doc_lines=st.lists(lines, min_size=1, max_size=6))
def test_removal_matches_reference(passages, doc_lines, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eval")
    passages = [p for p in passages if len(p.replace(" ", "")) >= NGRAM] or ["가나다라마바사아자차카타파하가나다"]
    evals = load_eval_set((str(eval_file(tmp, passages)),), ReadOptions())
    text = "\n".join(doc_lines)
    counts: Counter = Counter()
    assert remove_overlaps(text, evals, counts) == reference(text, passages)
    removed = len(doc_lines) - len((reference(text, passages) or "").split("\n")) if reference(text, passages) else None
    if removed:
        assert sum(counts.values()) == removed


def test_an_embedded_sentence_of_25_characters_is_caught_whatever_its_spacing(tmp_path):
    rng = random.Random(0)
    paragraphs = sample_paragraphs()
    sentences = [s.strip() + "." for p in paragraphs for s in p.split(".") if 25 <= len(s.strip()) <= 40
                 and "\n" not in s.strip() and len(re.findall("[가-힣]", s)) >= 16]
    assert len(sentences) > 50
    chosen = rng.sample(sentences, 50)
    evals = load_eval_set((str(eval_file(tmp_path, chosen)),), ReadOptions())
    for sentence in chosen:
        respaced = sentence.replace(" ", "", 1)  # spacing differs between copies of a sentence
        text = f"첫 문단은 그대로 남는다.\n앞에 붙은 말 {respaced} 뒤에 붙은 말\n마지막 문단도 남는다."
        counts: Counter = Counter()
        assert remove_overlaps(text, evals, counts) == "첫 문단은 그대로 남는다.\n마지막 문단도 남는다."
        assert sum(counts.values()) == 1
    # The bills repeat each other's sentences: the slow reference says which paragraphs share text.
    assert all(remove_overlaps(p, evals, Counter()) == reference(p, chosen) for p in paragraphs)


def test_cli_jsonl_eval_file_counts_per_file_and_drops_emptied_documents(tmp_path):
    paragraphs = list(dict.fromkeys(p for p in sample_paragraphs() if p.count("\n") >= 2))[:40]
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"text": p}, ensure_ascii=False) + "\n" for p in paragraphs), "utf-8")
    first = tmp_path / "klue.jsonl"  # JSON lines with the passage in a nested field
    first.write_text(json.dumps({"q": {"context": paragraphs[3]}}, ensure_ascii=False) + "\n", "utf-8")
    line = max(paragraphs[7].split("\n"), key=len)
    second = eval_file(tmp_path, [line, paragraphs[3]], "sts.txt")
    out = tmp_path / "out"
    assert run(docs, "-o", out, "--quality", "off", "--val-fraction", 0, "--decontaminate", first, second,
               "--decontaminate-field", "q.context") == 0
    m = manifest(out)
    expected = [reference(p, [paragraphs[3], line]) for p in paragraphs]
    assert m["sources"]["docs"]["dropped"] == {"decontaminated": expected.count(None)}
    assert expected[3] is None and expected[7] is not None
    edits = m["sources"]["docs"]["edits"]
    assert edits[f"decontaminate.{first}"] >= len(paragraphs[3].split("\n"))  # the first file listed wins
    assert edits[f"decontaminate.{second}"] >= 1
    removed = sum(p.count("\n") + 1 - (e.count("\n") + 1 if e else 0) for p, e in zip(paragraphs, expected))
    assert sum(edits.values()) == removed
    assert m["options"]["clean"]["decontaminate"] == [str(first), str(second)]


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.txt", "input not found"),
    (lambda d: (d / "bad.jsonl").write_text('{"text": "평가 문장입니다 아주 긴 문장입니다"}\n{oops\n') and d / "bad.jsonl",
     "malformed_json"),
    (lambda d: (d / "short.txt").write_text("짧다\n") and d / "short.txt", "no passage of 16 or more characters"),
    (lambda d: (d / "dates.txt").write_text("2010. 11. 12. 2011. 03. 04.\n") and d / "dates.txt",
     "no passage has 16 characters in a row of which half are letters"),  # was an IndexError traceback
])
def test_a_bad_evaluation_file_is_one_line_exit_2(tmp_path, caplog, make, message):
    docs = tmp_path / "docs.txt"
    docs.write_text("문서 하나\n", "utf-8")
    bad = make(tmp_path)
    caplog.set_level(logging.ERROR)
    assert run(docs, "-o", tmp_path / "out", "--decontaminate", bad) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and f"--decontaminate {bad}" in errors[0] and message in errors[0]
    with pytest.raises(EvalFileError):
        load_eval_set((str(bad),), ReadOptions())


def test_an_edited_evaluation_file_changes_the_fingerprint(tmp_path, caplog):
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(sample_paragraphs()[0].split("\n")) + "\n", "utf-8")
    evals = eval_file(tmp_path, ["이 평가 문장은 말뭉치 어디에도 나오지 않는 문장이다"])
    out = tmp_path / "out"
    assert run(docs, "-o", out, "--decontaminate", evals) == 0
    assert run(docs, "-o", out, "--decontaminate", evals) == 0  # unchanged: recognised as done
    eval_file(tmp_path, ["이 평가 문장은 말뭉치 어디에도 나오지 않는 다른 문장이다"])
    assert run(docs, "-o", out, "--decontaminate", evals) == 2 and "--overwrite" in caplog.text


def test_inputs_after_decontaminate_get_a_hint(tmp_path, caplog):
    evals = eval_file(tmp_path, ["이 평가 문장은 말뭉치 어디에도 나오지 않는 문장이다"])
    docs = eval_file(tmp_path, ["문서 하나"], "docs.txt")
    assert run("-o", tmp_path / "out", "--decontaminate", evals, docs) == 2
    assert "give the inputs before it" in caplog.text

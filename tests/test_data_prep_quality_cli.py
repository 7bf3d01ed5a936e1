"""The corpus-quality options end to end: per-source presets and their drop counts in the
manifest, option errors, refusing a rerun with other options, resume after kill -9."""
from __future__ import annotations

import json
import logging
import re
import subprocess
from pathlib import Path

from data_prep.cli import main
from data_prep.shard_format import MANIFEST
from test_data_prep_cli import PYTHON, REPO, manifest, output_files, write_corpus
from data_prep_kill import kill_after_units

JUNK = ["구독 좋아요 알림 설정 " * 8, "\n".join(["광고 문의는 쪽지로 주세요"] * 5), "ㅋ" * 400 + " 진짜 웃기다"]


def run(*args) -> int:
    return main([str(a) for a in args])


def write_mixed(directory: Path) -> Path:
    """Two sources: news (real paragraphs plus junk) and comments (one short comment per line)."""
    write_corpus(directory / "news", files=1, docs_per_file=60)
    with open(directory / "news" / "part0.jsonl", "a", encoding="utf-8") as f:
        for text in JUNK:
            f.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    (directory / "comments.txt").write_text("재밌다\n이 영화 진짜 재밌네요 또 보고 싶어요\nㅋㅋㅋㅋㅋㅋㅋ 대박 사건이네요\n", "utf-8")
    return directory


def test_per_source_presets_and_drop_counts(tmp_path):
    src = write_mixed(tmp_path / "src")
    out = tmp_path / "out"
    assert run(f"news={src / 'news'}", f"comments={src / 'comments.txt'}", "-o", out, "--quality",
               "curated,comments=web", "--val-fraction", 0) == 0
    m = manifest(out)
    assert m["options"]["clean"]["quality"] == "curated"
    assert m["options"]["clean"]["quality_for"] == [["comments", "web"]]
    news, comments = m["sources"]["news"], m["sources"]["comments"]
    assert news["dropped"] == {"dup_10_gram": 1, "dup_lines": 1} and news["docs_kept"] == 61
    assert comments["dropped"] == {"min_length": 1} and comments["docs_kept"] == 2
    assert m["dropped"] == {"dup_10_gram": 1, "dup_lines": 1, "min_length": 1}
    text = b"".join(chunk for chunk in _chunks(out)).decode()
    assert "ㅋ" * 11 not in text and "ㅋ" * 10 + " 진짜 웃기다" in text  # curated: runs cut to 10
    assert "\nㅋㅋ 대박 사건이네요" in text  # web: cut to 2


def _chunks(out: Path) -> list[bytes]:
    import datasets

    return datasets.load_from_disk(str(out / "train"))["chunk"]


def test_bad_preset_or_source_is_one_line_exit_2(tmp_path, caplog):
    src = write_mixed(tmp_path / "src")
    caplog.set_level(logging.ERROR)
    assert run(f"news={src / 'news'}", "-o", tmp_path / "out", "--quality", "news=webb") == 2
    assert "--quality: unknown preset 'webb' for source 'news'" in caplog.text
    assert run(f"news={src / 'news'}", "-o", tmp_path / "out", "--quality", "nwes=web") == 2
    assert "no input source is named 'nwes' (sources: news)" in caplog.text
    assert not (tmp_path / "out").exists()


def test_other_quality_options_into_the_same_output_are_refused(tmp_path, caplog):
    src = write_mixed(tmp_path / "src")
    out = tmp_path / "out"
    assert run(src / "news", "-o", out) == 0
    assert run(src / "news", "-o", out, "--quality", "web") == 2
    assert "--overwrite" in caplog.text
    assert run(src / "news", "-o", out, "--quality", "web", "--overwrite") == 0
    assert manifest(out)["options"]["clean"]["quality"] == "web"


def test_resume_after_kill_with_quality_options(tmp_path):
    corpus = write_corpus(tmp_path / "big", files=2, docs_per_file=1500, seed=3)
    with open(corpus / "part1.jsonl", "a", encoding="utf-8") as f:
        for text in JUNK * 20:
            f.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    evals = tmp_path / "eval.txt"  # a paragraph of the corpus, so lines are removed in every unit
    evals.write_text(json.loads((corpus / "part0.jsonl").read_text("utf-8").split("\n")[0])["text"].split("\n")[1],
                     "utf-8")
    args = [str(corpus), "--unit-mb", "0.08", "--shard-rows", "200", "--quality", "web", "--decontaminate", str(evals)]
    reference = tmp_path / "ref"
    assert run(*args, "-o", reference) == 0
    out = tmp_path / "out"
    proc = subprocess.Popen([PYTHON, "-m", "data_prep", *args, "-o", str(out), "--workers", "2"], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_after_units(proc, out, 6)
    assert not (out / MANIFEST).exists()
    assert run(*args, "-o", out) == 0
    assert output_files(out) == output_files(reference)
    assert manifest(out)["sources"] == manifest(reference)["sources"]
    assert sum(manifest(out)["dropped"].values()) > 60 and manifest(out)["edits"][f"decontaminate.{evals}"] > 10


def test_pii_is_masked_by_default_and_counted_per_kind(tmp_path):
    src = tmp_path / "pii.jsonl"
    lines = ["담당자 연락처는 010-1234-5678 이고 메일은 kim.minsu@example.co.kr 입니다.",
             "주민등록번호 900101-1234568 은 지워져야 한다. 잘못된 날짜 901301-1234567 은 남는다.",
             "카드 4111-1111-1111-1111 결제, 주문번호 4111-1111-1111-1112 확인."]
    src.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in lines), "utf-8")
    out, kept = tmp_path / "out", tmp_path / "kept"
    assert run(src, "-o", out, "--val-fraction", 0) == 0
    m = manifest(out)
    expected = {"pii.card": 1, "pii.email": 1, "pii.phone": 1, "pii.rrn": 1}
    assert m["sources"]["pii"]["edits"] == expected and m["edits"] == expected
    text = b"".join(_chunks(out)).decode()
    for placeholder in ("[전화번호]", "[이메일]", "[주민번호]", "[카드번호]"):
        assert placeholder in text
    assert "901301-1234567" in text and "4111-1111-1111-1112" in text and "010-1234" not in text
    assert run(src, "-o", kept, "--val-fraction", 0, "--pii", "keep") == 0
    assert manifest(kept)["edits"] == {} and "010-1234-5678" in b"".join(_chunks(kept)).decode()


def test_keep_dropped_samples_per_step_shown_by_inspect(tmp_path, capsys):
    src = write_mixed(tmp_path / "src")
    with open(src / "news" / "part0.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"text": "\n".join(["연락처 010-9876-5432 로 광고 문의"] * 5)}, ensure_ascii=False) + "\n")
        f.write(json.dumps({"text": "제보는 010-1111-2222 로 해 주세요. 감사합니다."}, ensure_ascii=False) + "\n")
    out = tmp_path / "out"
    assert run(src / "news", "-o", out, "--keep-dropped", 1, "--val-fraction", 0) == 0
    samples = [json.loads(line) for line in (out / "dropped_samples.jsonl").read_text("utf-8").splitlines()]
    by_step = {s["step"]: s for s in samples}
    assert len(samples) == len(by_step) == 4 and all(s["source"] == "news" for s in samples)
    assert by_step["dup_10_gram"]["text"].startswith("구독 좋아요")
    assert not re.search(r"(\S)\1{10}", by_step["repeated_chars"]["text"])  # the text after the step
    assert by_step["dup_lines"]["text"].startswith("광고 문의는") and "[전화번호]" in by_step["pii"]["text"]
    assert "010-" not in json.dumps(samples, ensure_ascii=False)  # dropped documents are masked too
    assert manifest(out)["samples"] == {"file": "dropped_samples.jsonl", "per_step": 1, "count": 4}
    assert run("inspect", out, "--samples", 1) == 0
    shown = capsys.readouterr().out
    assert "--- dup_lines source=news\n광고 문의는 쪽지로 주세요" in shown and "--- pii source=news" in shown
    assert run(src / "news", "-o", out, "--overwrite") == 0  # without the option: no stale sample file
    assert not (out / "dropped_samples.jsonl").exists()

"""Small validation splits: data prep tops up a small corpus's draw to --min-val-docs documents
and warns, as training does (tests/test_plan.py), below a useful number of target bytes."""
from __future__ import annotations

import json
import logging
import random

import numpy as np

from data_prep.cli import main
from data_prep.dedup import doc_hash
from data_prep.sample import sample_paragraphs
from data_prep.validation_size import USEFUL_TARGET_BYTES, small_validation_warning
from test_data_prep_cli import load_split, manifest


def one_line_docs(path, count: int, seed: int = 0) -> list[str]:
    """Unique one-line documents (line mode: a line is a document) of real Korean text."""
    rng = random.Random(seed)
    lines = [" ".join(p.split()) for p in sample_paragraphs()]
    docs = [f"{i}번 " + " ".join(rng.sample(lines, 3)) for i in range(count)]
    path.write_text("\n".join(docs) + "\n", encoding="utf-8")
    return docs


def split_docs(out, split: str = "validation") -> set[str]:
    """The (cleaned) documents of a split: one per line in line mode."""
    text = b"".join(row[0] for row in load_split(out, split)).decode("utf-8")
    return set(filter(None, text.split("\n")))


def test_a_small_corpus_holds_out_the_min_val_docs_smallest_hashes(tmp_path):
    one_line_docs(tmp_path / "c.txt", 600)
    out = tmp_path / "out"
    assert main([f"c={tmp_path / 'c.txt'}", "--text-mode", "line", "--no-near-dedup", "-o", str(out)]) == 0  # --val-fraction 0.001
    m = manifest(out)
    assert m["sources"]["c"]["docs_validation"] == 60  # min(100, a tenth of 600)
    # Dedup hashes the cleaned text, which is what the splits hold.
    docs = split_docs(out, "train") | split_docs(out)
    assert len(docs) == 600
    smallest = sorted(docs, key=lambda d: doc_hash(d.encode("utf-8")))[:60]
    assert split_docs(out) == set(smallest)
    # Workers do not change the draw; --min-val-docs 0 gives the one forced document of before.
    assert main([f"c={tmp_path / 'c.txt'}", "--text-mode", "line", "--no-near-dedup", "-o", str(tmp_path / "w2"), "--workers", "2",
                 "--unit-mb", "0.02"]) == 0
    assert split_docs(tmp_path / "w2") == set(smallest)
    assert main([f"c={tmp_path / 'c.txt'}", "--text-mode", "line", "--no-near-dedup", "-o", str(tmp_path / "off"),
                 "--min-val-docs", "0"]) == 0
    assert manifest(tmp_path / "off")["sources"]["c"]["docs_validation"] == 1


def test_data_prep_warns_about_a_validation_split_too_small_to_measure(tmp_path, caplog):
    one_line_docs(tmp_path / "c.txt", 600)
    caplog.set_level(logging.WARNING, logger="data_prep")
    assert main([f"c={tmp_path / 'c.txt'}", "--text-mode", "line", "--no-near-dedup", "-o", str(tmp_path / "small")]) == 0
    warnings = [r.getMessage() for r in caplog.records if "target bytes to evaluate on" in r.getMessage()]
    split = manifest(tmp_path / "small")["splits"]["validation"]
    assert len(warnings) == 1 and f"{split['rows']} chunks, {split['bytes']:,} bytes" in warnings[0]
    caplog.clear()
    # 500 held-out documents of three paragraphs each: over 67 KB, so no warning.
    assert main([f"c={tmp_path / 'c.txt'}", "--text-mode", "line", "--no-near-dedup", "-o", str(tmp_path / "big"), "--val-docs", "500"]) == 0
    assert manifest(tmp_path / "big")["splits"]["validation"]["bytes"] * 0.15 >= USEFUL_TARGET_BYTES
    assert not [r for r in caplog.records if "target bytes to evaluate on" in r.getMessage()]


def test_the_threshold_is_the_documented_one():
    assert small_validation_warning(USEFUL_TARGET_BYTES, "x", "y") is None
    assert "9,999 target bytes" in small_validation_warning(USEFUL_TARGET_BYTES - 1, "x", "y")
    assert json.dumps(np.uint64(1).item()) == "1"  # manifests hold plain ints

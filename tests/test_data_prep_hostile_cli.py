"""Mistakes in the command line: each ends in one line naming it and exit 2, before any work.
Each case once ended in a traceback, or never ended (--shard-rows 0)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from data_prep import inputs
from data_prep.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def corpus(tmp_path) -> Path:
    path = tmp_path / "a.jsonl"
    path.write_text('{"text": "안녕하세요, 반갑습니다."}\n', "utf-8")
    return path


BAD_OPTIONS = [
    (["--unit-mb", "0"], "--unit-mb must be more than 0"),
    (["--chunk-bytes", "4"], "--chunk-bytes must be at least 8"),
    (["--input-length", "1"], "--input-length 1 makes chunks of"),
    (["--workers", "0"], "--workers must be at least 1"),
    (["--val-docs", "-1"], "--val-docs must be at least 0"),
    (["--val-fraction", "-0.5"], "--val-fraction must be in [0, 1)"),
    (["--val-fraction", "1.5"], "--val-fraction must be in [0, 1)"),
    (["--min-hangul-ratio", "2"], "--min-hangul-ratio must be in [0, 1]"),
    (["--max-doc-bytes", "0"], "--max-doc-bytes must be at least 1"),
    (["--separator", "\\x"], "--separator '\\\\x': truncated \\xXX escape"),
]


def run_cli(args: list[str]) -> subprocess.CompletedProcess:
    # A subprocess, with a timeout: --shard-rows 0 used to loop forever (so it is not in BAD_OPTIONS).
    return subprocess.run([sys.executable, "-m", "data_prep", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("extra, message", BAD_OPTIONS)
def test_an_option_out_of_range_is_one_line_and_exit_2(tmp_path, corpus, caplog, extra, message):
    out = tmp_path / "out"
    assert main([str(corpus), "-o", str(out), *extra]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and message in errors[0], errors
    assert not out.exists()


def test_shard_rows_0_ends_at_once_in_a_real_process(tmp_path, corpus):
    done = run_cli([str(corpus), "-o", str(tmp_path / "out"), "--shard-rows", "0"])
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == ["[data_prep] error: --shard-rows must be at least 1, not 0"]


@pytest.mark.parametrize("below", ["", "sub"])
def test_an_output_that_is_a_file_is_one_line_and_exit_2(tmp_path, corpus, caplog, below):
    blocker = tmp_path / "taken"
    blocker.write_text("not a directory")
    assert main([str(corpus), "-o", str(blocker / below if below else blocker)]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and f"{blocker} is a file, not a directory" in errors[0], errors
    assert blocker.read_text() == "not a directory"


def test_an_unreadable_input_is_one_line_naming_it(tmp_path, corpus, caplog, monkeypatch):
    real_open = open

    def refuse(path, *args, **kwargs):  # what a file without read permission gives (tests may run as root)
        if Path(path) == corpus:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(inputs, "open", refuse, raising=False)
    assert main([str(corpus), "-o", str(tmp_path / "out")]) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == [f"error: [Errno 13] Permission denied: '{corpus}'"]


_KILLED_WORKER = """
import os, signal, sys
from data_prep import readers

def killed(unit, ctx):  # what the kernel's OOM killer, or a crash in a C extension, does to a worker
    os.kill(os.getpid(), signal.SIGKILL)
    yield

readers.READERS["text"] = killed
from data_prep.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_worker_that_dies_ends_the_run_in_one_line_instead_of_a_hang(tmp_path):
    corpus = tmp_path / "in"
    corpus.mkdir()
    for i in range(3):
        (corpus / f"a{i}.jsonl").write_text("".join(f'{{"text": "문서 {i} {j} 안녕하세요"}}\n' for j in range(20)), "utf-8")
    # The first unit: the one the main process waits for when the pool breaks, whatever else was in flight.
    (corpus / "0_dies.txt").write_text("이 파일을 읽는 작업자가 죽는다\n", "utf-8")
    done = subprocess.run([sys.executable, "-c", _KILLED_WORKER, str(corpus), "-o", str(tmp_path / "out"),
                           "--workers", "2", "--no-near-dedup"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "a worker process died" in errors[0] and "0_dies.txt" in errors[0]

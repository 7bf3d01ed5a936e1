"""The real Korean sample every user has: the constitution (kolaw) and bills (kobill) that the
konlpy wheel ships. Located via importlib without importing konlpy (its import needs JPype)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

SAMPLE_SOURCES = ("kolaw", "kobill")


def konlpy_corpus_dir() -> Path:
    spec = importlib.util.find_spec("konlpy")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the konlpy package is not installed (pip install konlpy --no-deps)")
    for location in spec.submodule_search_locations:
        corpus = Path(location) / "data" / "corpus"
        if all((corpus / name).is_dir() for name in SAMPLE_SOURCES):
            return corpus
    raise FileNotFoundError("konlpy is installed but has no data/corpus/{kolaw,kobill}")


def sample_inputs() -> list[str]:
    """`NAME=PATH` input arguments for the sample, one source per corpus."""
    corpus = konlpy_corpus_dir()
    return [f"{name}={corpus / name}" for name in SAMPLE_SOURCES]


def sample_paragraphs(min_chars: int = 20) -> list[str]:
    """The sample's blank-line-separated paragraphs longer than `min_chars`, stripped: real Korean
    text from which tests and benchmarks synthesise corpora."""
    paragraphs = []
    for path in sorted(konlpy_corpus_dir().rglob("*.txt")):
        paragraphs += [p.strip() for p in path.read_text("utf-8").split("\n\n")]
    return [p for p in paragraphs if len(p) > min_chars]

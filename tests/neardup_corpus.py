"""Near-duplicates of real Korean documents, as reposts make them, with their exact Jaccard
similarity: the ground truth of the near-dedup tests and of bench/bench_corpus_quality.py."""
from __future__ import annotations

import random
from dataclasses import dataclass

from data_prep.minhash import shingle_text

BYLINES = ("홍길동 기자", "김철수 기자 kim@example.com", "(서울=연합뉴스) 이영희 기자",
           "박민수 특파원",
           "[사진=뉴스1]", "무단전재 및 재배포 금지", "저작권자 © 한국일보")


def shingles(text: str, n: int = 5) -> set[str]:
    """The reference shingle set: character n-grams of the text without whitespace."""
    s = shingle_text(text)
    return {s[i:i + n] for i in range(len(s) - n + 1)} or {s}


def jaccard(a: str, b: str) -> float:
    x, y = shingles(a), shingles(b)
    return len(x & y) / len(x | y)


def _edit_characters(text: str, rng: random.Random) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 5)):
        chars[rng.randrange(len(chars))] = chr(rng.randint(0xAC00, 0xD7A3))
    return "".join(chars)


def _change_byline(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    if lines[-1] in BYLINES:
        lines[-1] = rng.choice(BYLINES)
    else:
        lines.append(rng.choice(BYLINES))
    return "\n".join(lines)


def _drop_a_sentence(text: str, rng: random.Random) -> str:
    sentences = text.split(". ")
    if len(sentences) > 3:
        del sentences[rng.randrange(len(sentences))]
    return ". ".join(sentences)


def _respace(text: str, rng: random.Random) -> str:
    return text.replace(" ", "  ", rng.randint(1, 20)).replace("다. ", "다.\n", 2)


EDITS = (_edit_characters, _change_byline, _drop_a_sentence, _respace)


def near_copy(text: str, rng: random.Random) -> str:
    """A repost: one to three of the edits above."""
    for edit in rng.sample(EDITS, rng.randint(1, 3)):
        text = edit(text, rng)
    return text


@dataclass
class Injected:
    docs: list[str]
    original_of: list[int | None]  # per document: the original it copies, or None for an original


def inject(originals: list[str], share: float, seed: int = 0) -> Injected:
    """The originals in order, each followed (with probability `share`) by one or two near copies."""
    rng = random.Random(seed)
    docs: list[str] = []
    original_of: list[int | None] = []
    for text in originals:
        first = len(docs)
        docs.append(text)
        original_of.append(None)
        while rng.random() < share and len(docs) - first < 3:
            docs.append(near_copy(text, rng))
            original_of.append(first)
    return Injected(docs, original_of)


def recall_and_loss(corpus: Injected, dropped: list[bool], threshold: float = 0.85) -> tuple[float, float, int]:
    """(share of copies at Jaccard >= threshold to their original that were removed, share of the
    originals that were removed, number of such copies)."""
    similar = [i for i, o in enumerate(corpus.original_of)
               if o is not None and jaccard(corpus.docs[o], corpus.docs[i]) >= threshold]
    originals = [i for i, o in enumerate(corpus.original_of) if o is None]
    recall = sum(dropped[i] for i in similar) / max(len(similar), 1)
    return recall, sum(dropped[i] for i in originals) / len(originals), len(similar)


def distinct(texts: list[str], limit: float = 0.5) -> list[str]:
    """The texts, greedily thinned so that no two kept ones reach Jaccard `limit` (real corpora repeat
    boilerplate paragraphs: those would be near-duplicates before any injection)."""
    kept: list[set[str]] = []
    out = []
    for text in texts:
        s = shingles(text)
        if all(len(s & k) < limit * len(s | k) for k in kept):
            kept.append(s)
            out.append(text)
    return out


def reference_drop(bands: list[list]) -> list[bool]:
    """Plain union-find over every pair of documents sharing a key in some band (`bands[b][doc]`);
    each cluster keeps its smallest index: the slow, obvious version of near_dedup.cluster."""
    parent = list(range(len(bands[0]) if bands else 0))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x
    for band in bands:
        first: dict = {}
        for doc, key in enumerate(band):
            if key in first:
                a, b = find(first[key]), find(doc)
                parent[max(a, b)] = min(a, b)
            else:
                first[key] = doc
    return [find(i) != i for i in range(len(parent))]

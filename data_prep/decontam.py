"""`--decontaminate PATH...`: remove evaluation text from the training data.

Evaluation files are read by the same readers as inputs (plain text: one passage per line; JSON
lines, Parquet, ... with the --text-field path). Text is compared as NFC without whitespace (Korean
spacing varies between copies of one sentence) in character N-grams, N = 16: every sentence of
25 characters with at most 9 spaces holds one, and 16 Hangul characters (5-6 words) in a row are
specific enough that unrelated text does not share them (windows of a passage with fewer than
N/2 letters, such as rows of dashes, are not used). A document line (paragraph) that shares an
N-gram with any passage is removed; a document left without lines is dropped ("decontaminated").
Passages shorter than N are ignored.

The passages' N-gram hashes are loaded once, in the main process before the workers fork, into a
sorted array (with the evaluation file each came from first) behind a byte table indexed by the
hash's top bits, which rejects nearly every document N-gram with one vectorised lookup.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, replace

import numpy as np

from data_prep.clean import normalize
from data_prep.inputs import InputError, InputSpec, expand, file_identity, plan_units
from data_prep.problems import Problems
from data_prep.readers import READERS, ReadContext, ReadOptions
from data_prep.steps import Step

NGRAM = 16
_BASE = np.uint64(0x100000001B3)  # odd: invertible mod 2**64, so window hashes come from prefix sums
_BASE_INVERSE = np.uint64(pow(int(_BASE), -1, 2**64))


class EvalFileError(ValueError):
    """An evaluation file that cannot be used: missing, unreadable, malformed or without passages."""


@dataclass(frozen=True)
class EvalSet:
    files: tuple[str, ...]
    hashes: np.ndarray  # sorted unique N-gram hashes
    origin: np.ndarray  # index into `files` of the first file holding each hash
    table: np.ndarray  # uint8 presence by the hash's top `bits` bits
    bits: int
    digest: str  # of every hash and its file: decides the output, so part of the fingerprint

    def matches(self, grams: np.ndarray) -> np.ndarray | None:
        """Per N-gram hash: the index of its evaluation file, or -1; None if no hash matches."""
        maybe = np.flatnonzero(self.table[grams >> np.uint64(64 - self.bits)])
        if not len(maybe):
            return None
        # A long document meets a few of the table's false positives: settle them before allocating.
        where = np.searchsorted(self.hashes, grams[maybe]).clip(max=len(self.hashes) - 1)
        hit = self.hashes[where] == grams[maybe]
        if not hit.any():
            return None
        result = np.full(len(grams), -1, np.int64)
        result[maybe[hit]] = self.origin[where[hit]]
        return result


def _window_hashes(points: np.ndarray) -> np.ndarray:
    """Hash of every N-code-point window, from a polynomial prefix sum (so O(length), not O(length x N));
    few NumPy calls, since most documents are short."""
    count = len(points) - NGRAM + 1
    if count <= 0:
        return np.zeros(0, np.uint64)
    powers, inverse = _powers(len(points) + 1)
    prefix = np.empty(len(points) + 1, np.uint64)
    prefix[0] = 0
    np.cumsum((points + np.uint32(1)) * powers[: len(points)], out=prefix[1:])
    return (prefix[NGRAM:] - prefix[:count]) * inverse[:count]


_POWERS: list[np.ndarray] = [np.ones(1, np.uint64), np.ones(1, np.uint64)]


def _powers(n: int) -> list[np.ndarray]:
    """BASE**i and BASE**-i mod 2**64 for i < n at least (grown by doubling, shared by all documents)."""
    if len(_POWERS[0]) < n:
        size = 1 << max(16, (n - 1).bit_length())
        _POWERS[:] = [np.concatenate(([np.uint64(1)], np.cumprod(np.full(size - 1, base, np.uint64))))
                      for base in (_BASE, _BASE_INVERSE)]
    return _POWERS


def _wordy_windows(points: np.ndarray) -> np.ndarray:
    """The passage's window hashes, without windows of fewer than N/2 letters: a row of dashes or
    digits in a passage would match every table rule and number list of the corpus."""
    lower = points | 0x20
    letters = ((lower >= ord("a")) & (lower <= ord("z")) | (points >= 0x3131) & (points <= 0x318E)
               | (points >= 0x4E00) & (points <= 0x9FFF) | (points >= 0xAC00) & (points <= 0xD7A3))
    counts = np.convolve(letters, np.ones(NGRAM, np.int64), "valid") if len(points) >= NGRAM else np.zeros(0)
    return _window_hashes(points)[counts >= NGRAM // 2]


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), np.uint32)


def load_eval_set(paths: tuple[str, ...], read: ReadOptions) -> EvalSet:
    """Every passage's N-gram hashes; EvalFileError names the file that cannot be used."""
    parts, origins = [], []
    for index, path in enumerate(paths):
        grams = np.unique(np.concatenate([np.zeros(0, np.uint64)] + [
            _wordy_windows(_code_points(passage)) for passage in _passages(path, read)]))
        parts.append(grams)
        origins.append(np.full(len(grams), index, np.int64))
    hashes = np.concatenate(parts) if parts else np.zeros(0, np.uint64)
    origin = np.concatenate(origins) if origins else np.zeros(0, np.int64)
    order = np.lexsort((origin, hashes))
    hashes, origin = hashes[order], origin[order]
    first = np.concatenate(([True], hashes[1:] != hashes[:-1]))
    hashes, origin = hashes[first], origin[first]
    bits = min(27, max(16, int(len(hashes) * 64).bit_length()))  # 1/64 to 1/128 of the table set
    table = np.zeros(1 << bits, np.uint8)
    table[hashes >> np.uint64(64 - bits)] = 1
    digest = hashlib.sha256(hashes.tobytes() + origin.tobytes() + "\0".join(paths).encode()).hexdigest()
    return EvalSet(tuple(paths), hashes, origin, table, bits, digest)


def _passages(path: str, read: ReadOptions) -> list[str]:
    problems = Problems()
    ctx = ReadContext(replace(read, text_mode="line", invalid_utf8="replace"), problems)
    try:
        units = plan_units([InputSpec("eval", path)], None, "line", 1 << 62, problems)
        texts = [text for unit in units for text, _ in READERS[unit.fmt](unit, ctx)]
    except Exception as err:  # noqa: BLE001 - whatever the reader hit, the message names the file
        raise EvalFileError(f"--decontaminate {path}: {type(err).__name__}: {err}") from None
    found = problems.samples
    if found:
        raise EvalFileError(f"--decontaminate {path}: {len(found)} problem(s), first: {found[0]}")
    passages = [p for p in (normalize(t).replace(" ", "").replace("\n", "") for t in texts) if len(p) >= NGRAM]
    if not passages:
        raise EvalFileError(f"--decontaminate {path}: no passage of {NGRAM} or more characters")
    return passages


_LOADED: dict[tuple[str, ...], tuple[str, EvalSet]] = {}


def eval_set(paths: tuple[str, ...], read: ReadOptions | None = None) -> EvalSet:
    """Loaded once per process: the command line loads it (with its reading options) before the
    workers fork, so they share it. Loaded again if a file changed since (or `read` is given)."""
    identity = json.dumps([[str(f), file_identity(str(f))] for path in paths for f in _files(path)])
    cached = _LOADED.get(paths)
    if cached is None or cached[0] != identity or read is not None:
        _LOADED[paths] = identity, load_eval_set(paths, read or ReadOptions())
    return _LOADED[paths][1]


def _files(path: str) -> list:
    try:
        return expand(path)
    except InputError as err:
        raise EvalFileError(f"--decontaminate {path}: {err}") from None


def remove_overlaps(text: str, evals: EvalSet, counts: Counter) -> str | None:
    """`text` without the lines that share an N-gram with an evaluation passage (None if no line
    is left); counts the removed lines per evaluation file."""
    compact = text.replace(" ", "")
    if len(compact) < NGRAM:
        return text
    points = _code_points(compact)
    found = evals.matches(_window_hashes(points))
    if found is None:
        return text
    hits = np.flatnonzero(found >= 0)
    if not len(hits):
        return text
    line_of = np.cumsum(points == 10)
    # A window that spans a newline is not a passage's N-gram of one line: keep only those inside one.
    newlines_inside = line_of[hits + NGRAM - 1] - line_of[hits] + (points[hits] == 10)
    hits = hits[newlines_inside == 0]
    if not len(hits):
        return text
    lines = text.split("\n")
    bad: dict[int, int] = {}
    for line, origin in zip(line_of[hits].tolist(), found[hits].tolist()):
        bad.setdefault(line, origin)
    for origin in bad.values():
        counts[f"decontaminate.{evals.files[origin]}"] += 1
    kept = [line for i, line in enumerate(lines) if i not in bad]
    return "\n".join(kept).strip() or None


def decontam_steps(paths: tuple[str, ...]) -> list[Step]:
    if not paths:
        return []
    evals = eval_set(paths)
    return [Step("decontaminated", lambda text, counts: remove_overlaps(text, evals, counts))]

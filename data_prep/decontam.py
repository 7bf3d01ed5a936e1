"""`--decontaminate PATH...`: remove evaluation text from the training data.

Evaluation files are read by the same readers as inputs (plain text: one passage per line; JSON
lines, Parquet, ... with the --text-field path). Text is compared as NFC without whitespace (Korean
spacing varies between copies of one sentence) in character N-grams, N = 16 (decontam_kernels.NGRAM):
every sentence of 25 characters with at most 9 spaces holds one, and 16 Hangul characters (5-6
words) in a row are specific enough that unrelated text does not share them (windows of a passage with fewer than
N/2 letters, such as rows of dashes, are not used). A document line (paragraph) that shares an
N-gram with any passage is removed; a document left without lines is dropped ("decontaminated").
Passages shorter than N are ignored.

The passages' N-gram hashes are loaded once, in the main process before the workers fork, into a
sorted array (with the evaluation file each came from first) behind a table of one bit per value
of the hash's top bits, which rejects nearly every document N-gram with one load. The window
hashes and the lookup are compiled loops (decontam_kernels.py) over each document's code points.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, replace

import numpy as np

from data_prep.clean import normalize
from data_prep.inputs import InputError, InputSpec, expand, file_identity, plan_units
from data_prep.lazy import lazy_module
from data_prep.problems import Problems
from data_prep.readers import READERS, ReadContext, ReadOptions
from data_prep.steps import Step

decontam_kernels = lazy_module("data_prep.decontam_kernels")  # numba: loaded where evaluation files are given
text_stats = lazy_module("data_prep.text_stats")  # code points, encoded once for every step

class EvalFileError(ValueError):
    """An evaluation file that cannot be used: missing, unreadable, malformed or without passages."""


@dataclass(frozen=True)
class EvalSet:
    files: tuple[str, ...]
    hashes: np.ndarray  # sorted unique N-gram hashes
    origin: np.ndarray  # index into `files` of the first file holding each hash
    table: np.ndarray  # presence_bits(hashes, bits)
    bits: int
    digest: str  # of every hash and its file: decides the output, so part of the fingerprint


def load_eval_set(paths: tuple[str, ...], read: ReadOptions) -> EvalSet:
    """Every passage's N-gram hashes; EvalFileError names the file that cannot be used."""
    parts, origins = [], []
    for index, path in enumerate(paths):
        grams = np.unique(np.concatenate([np.zeros(0, np.uint64)] + [
            decontam_kernels.passage_grams(text_stats.code_points(passage)) for passage in _passages(path, read)]))
        if not len(grams):
            raise EvalFileError(f"--decontaminate {path}: no passage has {decontam_kernels.NGRAM} characters in a row "
                                "of which half are letters (digits and symbols alone match too much)")
        parts.append(grams)
        origins.append(np.full(len(grams), index, np.int64))
    hashes = np.concatenate(parts) if parts else np.zeros(0, np.uint64)
    origin = np.concatenate(origins) if origins else np.zeros(0, np.int64)
    order = np.lexsort((origin, hashes))
    hashes, origin = hashes[order], origin[order]
    first = np.concatenate(([True], hashes[1:] != hashes[:-1]))
    hashes, origin = hashes[first], origin[first]
    bits = min(27, max(16, int(len(hashes) * 64).bit_length()))  # 1/64 to 1/128 of the table set
    digest = hashlib.sha256(hashes.tobytes() + origin.tobytes() + "\0".join(paths).encode()).hexdigest()
    return EvalSet(tuple(paths), hashes, origin, presence_bits(hashes, bits), bits, digest)


def presence_bits(hashes: np.ndarray, bits: int) -> np.ndarray:
    """uint8 [2**bits / 8]: bit v % 8 of byte v // 8 set where v is the top `bits` bits of a hash;
    a bit rather than a byte per value, so that the table of a large evaluation set stays in cache."""
    table = np.zeros(1 << (bits - 3), np.uint8)
    top = hashes >> np.uint64(64 - bits)
    np.bitwise_or.at(table, top >> np.uint64(3), np.left_shift(1, top & np.uint64(7)).astype(np.uint8))
    return table


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
    passages = [p for p in (normalize(t).replace(" ", "").replace("\n", "") for t in texts) if len(p) >= decontam_kernels.NGRAM]
    if not passages:
        raise EvalFileError(f"--decontaminate {path}: no passage of {decontam_kernels.NGRAM} or more characters")
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
    found = decontam_kernels.overlapping_lines(text_stats.code_points(text), evals.table, evals.bits, evals.hashes, evals.origin)
    if not found:
        return text
    for _, origin in found:
        counts[f"decontaminate.{evals.files[origin]}"] += 1
    bad = {line for line, _ in found}
    kept = [line for i, line in enumerate(text.split("\n")) if i not in bad]
    return "\n".join(kept).strip() or None


def decontam_steps(paths: tuple[str, ...]) -> list[Step]:
    if not paths:
        return []
    evals = eval_set(paths)
    return [Step("decontaminated", lambda text, counts: remove_overlaps(text, evals, counts))]

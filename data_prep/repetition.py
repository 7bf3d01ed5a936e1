"""Repetition measures of one document, vectorised with NumPy: repeated-character runs, duplicate
lines, and the Gopher word n-gram fractions (Rae et al. 2021, table A1, as datatrove's
GopherRepetitionFilter computes them).

Words are whitespace-separated eojeol (datatrove splits Korean into kiwipiepy morphemes, about 2.3
per eojeol on Korean Wikipedia): an eojeol n-gram spans more text than a morpheme n-gram, so the
same thresholds are somewhat more lenient here. The n-gram fractions are measured in UTF-8 bytes,
what the model reads, where Gopher counts characters (the same for all-Hangul text); splitting
and hashing bytes costs half as much as str. Each word is hashed once and the n-gram hashes are
combined from those in NumPy, instead of joining n-gram strings in Python for every n.
"""
from __future__ import annotations

from functools import cached_property, lru_cache

import numpy as np

from data_prep.clean import HANGUL_RANGES

_MIX = np.uint64(0x9E3779B97F4A7C15)


def squeeze_runs(text: str, hangul_keep: int | None, any_keep: int) -> str:
    """Cut runs of one repeated character: Hangul to `hangul_keep` (None: left alone), any other
    non-space character to `any_keep`, as soynlp's repeat_normalize does for ㅋㅋㅋㅋ -> ㅋㅋ.

    The runs are found with one vectorised comparison of neighbouring code points; only a
    document that has one is rebuilt."""
    shortest = min(any_keep, hangul_keep or any_keep) + 1
    if len(text) < shortest:
        return text
    points = np.frombuffer(text.encode("utf-32-le"), np.uint32)
    same = points[1:] == points[:-1]
    window = same[: len(same) - shortest + 2].copy()
    for shift in range(1, shortest - 1):
        window &= same[shift: len(same) - shortest + 2 + shift]
    if not window.any():
        return text
    starts = np.flatnonzero(np.concatenate(([True], ~same)))
    lengths = np.diff(np.append(starts, len(points)))
    pieces, done = [], 0
    for start, length in zip(starts[lengths >= shortest].tolist(), lengths[lengths >= shortest].tolist()):
        char = text[start]
        keep = hangul_keep if hangul_keep and _is_hangul(char) else any_keep
        if char.isspace() or length <= keep:
            continue
        pieces += [text[done:start], char * keep]
        done = start + length
    return "".join(pieces) + text[done:] if pieces else text


def _is_hangul(char: str) -> bool:
    point = ord(char)
    return any(lo <= point <= hi for lo, hi in HANGUL_RANGES)


def _occurrences(values: np.ndarray) -> np.ndarray:
    """How often each of `values` occurs among them (one sort; a fast exit when all differ)."""
    if len(values) < 2:
        return np.ones(len(values), np.int64)
    order = np.argsort(values)
    ordered = values[order]
    new = np.empty(len(values), bool)
    new[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    if new.all():
        return np.ones(len(values), np.int64)
    sizes = np.diff(np.append(np.flatnonzero(new), len(values)))
    counts = np.empty(len(values), np.int64)
    counts[order] = np.repeat(sizes, sizes)
    return counts


_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(9)], np.uint64)
_MULTIPLIERS = [np.uint64(m) for m in (0xBF58476D1CE4E5B9, 0x94D049BB133111EB, 0xD6E8FEB86659FD93)]


def word_hashes(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(hash, length in bytes) of every space- or newline-separated word of UTF-8 `data`, vectorised:
    a word's hash mixes its first, middle and last 8 bytes (read as unaligned 64-bit words) and its
    length, so words of up to 24 bytes (8 Hangul syllables) are told apart exactly; longer ones
    agreeing in those 24 bytes and their length count as one (Python's split and a hash per word
    cost ~5x more)."""
    raw = np.frombuffer(data, np.uint8)
    gap = np.concatenate(([True], (raw == 0x20) | (raw == 0x0A), [True]))
    edges = np.flatnonzero(gap[1:] != gap[:-1])
    starts, ends = edges[::2], edges[1::2]
    lengths = ends - starts
    padded = data + bytes(8)
    windows = np.ndarray((len(data) + 1,), "<u8", padded, strides=(1,))
    mask = _MASKS[np.minimum(lengths, 8)]
    head = windows[starts] & mask
    middle = windows[starts + np.maximum((lengths - 8) // 2, 0)] & mask
    tail = windows[np.maximum(ends - 8, starts)] & mask
    mixed = (head ^ lengths.astype(np.uint64)) * _MULTIPLIERS[0]
    mixed = (mixed ^ (mixed >> np.uint64(31)) ^ middle) * _MULTIPLIERS[1]
    mixed = (mixed ^ (mixed >> np.uint64(29)) ^ tail) * _MULTIPLIERS[2]
    return mixed ^ (mixed >> np.uint64(32)), lengths


def duplicate_lines(lines: list[str]) -> tuple[int, int]:
    """(number of lines that repeat an earlier line, their characters), as datatrove's find_duplicates."""
    seen: set[str] = set()
    count = chars = 0
    for line in lines:
        if line in seen:
            count += 1
            chars += len(line)
        else:
            seen.add(line)
    return count, chars


@lru_cache(maxsize=1)
def repeated_word_share(text: str) -> float:
    """Bytes of the words that are not the first occurrence of their word, over the document's bytes:
    an upper bound of every duplicate n-gram fraction (a word covered by a repeated n-gram repeats a
    word of its first occurrence), from C-speed primitives, so most documents skip the n-gram pass."""
    data = text.encode("utf-8")
    words = data.split()
    return (sum(map(len, words)) - sum(map(len, set(words)))) / len(data)


class WordNgrams:
    """The word n-gram statistics of one document. Only n-grams whose every word bigram occurs
    twice or more can repeat (all occurrences of a repeated n-gram are such positions), so each n
    hashes and sorts just those candidate positions: few, in text that is not repetitive."""

    # Below this many bytes a Python set finds "no bigram repeats" faster than NumPy's calls.
    SMALL = 2000

    def __init__(self, text: str):
        data = text.encode("utf-8")
        self.size = len(data)
        self.longest = 0  # the longest chain of repeated bigrams: no n-gram with n > longest + 1 repeats
        if len(data) < self.SMALL:
            words = data.split()
            self.words = len(words)
            if len(words) < 2 or len(set(zip(words, words[1:]))) == len(words) - 1:
                return
        self.hashes, self.lengths = word_hashes(data)
        self.words = len(self.hashes)
        self.ends = np.concatenate(([0], np.cumsum(self.lengths)))
        self.bigram_counts = _occurrences(self.hashes[:-1] * _MIX + self.hashes[1:])
        repeated = self.bigram_counts > 1
        if not repeated.any():
            return
        # The longest run of repeated bigrams; `chain` (per position) only when an n-gram needs it.
        self.breaks = np.flatnonzero(np.concatenate(([True], ~repeated, [True])))
        self.longest = int(np.diff(self.breaks).max()) - 1

    @cached_property
    def chain(self) -> np.ndarray:
        """chain[i]: how many repeated bigrams follow one another from word i on."""
        positions = np.arange(len(self.bigram_counts))
        return self.breaks[np.searchsorted(self.breaks, positions + 1)] - 1 - positions

    def _candidates(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(start positions, hashes) of the n-grams that may occur more than once."""
        starts = np.flatnonzero(self.chain[: max(len(self.hashes) - n + 1, 0)] >= n - 1)
        combined = self.hashes[starts]
        for k in range(1, n):
            combined = combined * _MIX + self.hashes[starts + k]
        return starts, combined

    def top_fraction(self, n: int) -> float:
        """Bytes of the most frequent word n-gram (all its occurrences, joined by spaces) over the
        document's bytes. Only an n-gram that occurs twice or more counts (datatrove's
        counts a unique one too, which drops every document of fewer than about 1/limit n-grams);
        of equally frequent ones the longest counts, so the result does not depend on hash order."""
        if n - 1 > self.longest:
            return 0.0
        if n == 2:  # counted already: the candidates are the repeated bigrams
            starts = np.flatnonzero(self.bigram_counts > 1)
            per_start = self.bigram_counts[starts]
        else:
            starts, combined = self._candidates(n)
            per_start = _occurrences(combined)
        top = int(per_start.max())
        if top < 2:
            return 0.0
        spans = self.ends[starts + n] - self.ends[starts] + (n - 1)
        return top * int(spans[per_start == top].max()) / self.size

    def duplicate_fraction(self, n: int) -> float:
        """Bytes of the words covered by a word n-gram that already occurred earlier in the document,
        over the document's bytes: Gopher's duplicate n-gram character fraction
        (the union of the repeated n-grams, which datatrove approximates with a greedy skip)."""
        if n - 1 > self.longest:
            return 0.0
        starts, combined = self._candidates(n)
        _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
        repeats = starts[first[inverse] != np.arange(len(starts))]
        cover = np.zeros(len(self.lengths) + 1, np.int64)
        np.add.at(cover, repeats, 1)
        np.add.at(cover, repeats + n, -1)
        return int(self.lengths[np.cumsum(cover[:-1]) > 0].sum()) / self.size


@lru_cache(maxsize=1)
def word_ngrams(text: str) -> WordNgrams:
    """Cached: the n-gram filters look at the same document one after the other."""
    return WordNgrams(text)

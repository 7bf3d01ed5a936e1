"""Compiled loops (data_prep.jit) over one document's code points that number spans of it exactly
(lines, words, word n-grams: equal ones get equal ids, compared point by point; a hash only picks
the table slot) and the repetition measures built on the ids: duplicate lines, sentence-ending
lines, and the Gopher word n-gram byte counts.

Documents average a few KB, so a NumPy call per measure costs more in call overhead than in
arithmetic; a loop over the code points does all of one measure's work in one call. A kernel
calls kernels and reads constants of its own file only: numba's disk cache notices an edit of the
file a kernel is in, not of another file whose code it compiled in. Imported on first use only
(data_prep.lazy): numba costs 0.4 s to import.
"""
from __future__ import annotations

import numpy as np

from data_prep.jit import kernel

# A line "ends a sentence" if it ends in terminal punctuation (datatrove's FineWebQualityFilter
# stop characters, plus the CJK and closing-quote forms) or in a Korean sentence-final syllable
# without punctuation, common in comments and notes: ~다, ~요, ~죠, ~까, ~네, ~음, ~함, ~임.
SENTENCE_ENDS = tuple(".!?…。？！\"'”’」』)") + tuple("다요죠까네음함임")
_ENDS = np.array(sorted(map(ord, SENTENCE_ENDS)), np.int64)
# What bytes.split() splits the UTF-8 text at: ASCII whitespace.
_SPLIT = np.array([chr(point).encode().isspace() for point in range(128)])
_MULTIPLIERS = tuple(np.uint64(m) for m in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB,
                                            0xD6E8FEB86659FD93, 0xA0761D6478BD642F, 0xE7037ED1A0B428DB))
_PAIR = np.uint64(0x9E3779B97F4A7C15)
_FMIX = (np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53))


@kernel
def utf8_width(point: int) -> int:
    """Bytes of `point` in UTF-8 (the n-gram fractions are measured in what the model reads),
    without a branch: Korean text changes between 1 and 3 bytes at every space."""
    return 1 + (point >= 0x80) + (point >= 0x800) + (point >= 0x10000)


@kernel
def line_counts(points: np.ndarray) -> tuple[int, int, int, int, int]:
    """(non-empty lines, lines equal to an earlier one, their characters, characters of the
    non-empty lines, lines whose last character is one of SENTENCE_ENDS)."""
    starts = np.empty(len(points) // 2 + 1, np.int64)  # a non-empty line but the last ends in a newline
    ends = np.empty(len(starts), np.int64)
    lines = chars = finished = start = 0
    for i in range(len(points) + 1):
        if i < len(points) and points[i] != 0x0A:
            continue
        if i > start:  # a non-empty line
            starts[lines], ends[lines] = start, i
            lines += 1
            chars += i - start
            slot = np.searchsorted(_ENDS, points[i - 1])
            if slot < len(_ENDS) and _ENDS[slot] == points[i - 1]:
                finished += 1
        start = i + 1
    ids, first = span_ids(points, starts[:lines], ends[:lines])
    duplicates = duplicate_chars = 0
    for k in range(lines):
        if first[ids[k]] != k:
            duplicates += 1
            duplicate_chars += ends[k] - starts[k]
    return lines, duplicates, duplicate_chars, chars, finished


@kernel
def _table_size(items: int) -> int:
    """A power of two at least twice `items`: open addressing then rarely probes twice."""
    size = 1
    while size < 2 * items:
        size *= 2
    return size


@kernel
def _slot(h: np.uint64, size: int) -> int:
    """A table slot from hash `h`, through MurmurHash3's finaliser: the low bits of FNV and of a
    product hardly depend on the last input (without it, words probe seven slots on average)."""
    h = (h ^ (h >> np.uint64(33))) * _FMIX[0]
    h = (h ^ (h >> np.uint64(33))) * _FMIX[1]
    return np.int64(h >> np.uint64(33)) & (size - 1)


@kernel
def _span_hash(points: np.ndarray, start: int, length: int) -> np.uint64:
    """A hash of the span's length and its first, middle and last two points: a fixed cost per span
    (a word or line), unlike a hash of every point; spans it does not tell apart are compared.
    Products of independent multipliers, and no branch on the length (word lengths vary)."""
    if length == 0:
        return np.uint64(0)
    second, end = min(1, length - 1), start + length - 1
    h = np.uint64(length) * _MULTIPLIERS[0]
    h ^= np.uint64(points[start]) * _MULTIPLIERS[1] ^ np.uint64(points[start + second]) * _MULTIPLIERS[2]
    h ^= np.uint64(points[start + length // 2]) * _MULTIPLIERS[3]
    return h ^ np.uint64(points[end - second]) * _MULTIPLIERS[4] ^ np.uint64(points[end]) * _MULTIPLIERS[5]


@kernel
def _same(points: np.ndarray, a: int, b: int, length: int) -> bool:
    for i in range(length):
        if points[a + i] != points[b + i]:
            return False
    return True


@kernel
def _number(slots: np.ndarray, slot: int, k: int, ids: np.ndarray, first: np.ndarray, distinct: int) -> int:
    """Give item k the id of the equal item in `slot`, or, if the slot is empty (k is the first of
    its kind), the next id and the slot; returns the number of ids given."""
    if slots[slot] >= 0:
        ids[k] = ids[slots[slot]]
        return distinct
    slots[slot] = k
    first[distinct] = k
    ids[k] = distinct
    return distinct + 1


@kernel
def span_ids(points: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ids, first): equal spans points[starts[k]:ends[k]] get equal ids, numbered in order of first
    occurrence and compared point by point (the hash only picks the slot); first[id] is the k of
    the id's first occurrence."""
    size = _table_size(len(starts))
    slots = np.full(size, -1, np.int64)  # the k of the span in each slot
    ids = np.empty(len(starts), np.int64)
    first = np.empty(len(starts), np.int64)
    distinct = 0
    for k in range(len(starts)):
        start, length = starts[k], ends[k] - starts[k]
        slot = _slot(_span_hash(points, start, length), size)
        while slots[slot] >= 0:
            other = slots[slot]
            if ends[other] - starts[other] == length and _same(points, starts[other], start, length):
                break
            slot = (slot + 1) & (size - 1)
        distinct = _number(slots, slot, k, ids, first, distinct)
    return ids, first[:distinct]


@kernel
def pair_ids(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, counts, first) of the pairs (left[k], right[k]), numbered as span_ids numbers spans,
    exactly; counts[id]: how often the pair occurs."""
    size = _table_size(len(left))
    slots = np.full(size, -1, np.int64)
    ids = np.empty(len(left), np.int64)
    first = np.empty(len(left), np.int64)
    counts = np.zeros(len(left), np.int64)
    distinct = 0
    for k in range(len(left)):
        slot = _slot(np.uint64(left[k]) * _PAIR + np.uint64(right[k]), size)
        while slots[slot] >= 0 and not (left[slots[slot]] == left[k] and right[slots[slot]] == right[k]):
            slot = (slot + 1) & (size - 1)
        distinct = _number(slots, slot, k, ids, first, distinct)
        counts[ids[k]] += 1
    return ids, counts[:distinct], first[:distinct]


@kernel
def _word_ids(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(ids, first, UTF-8 bytes) of the words, split where bytes.split() splits the UTF-8 text
    (ids and first as span_ids gives them), and the UTF-8 bytes of the whole text."""
    bounds = np.empty(len(points) + 2, np.int64)  # where words begin and end, in turn
    at_bytes = np.empty(len(bounds), np.int64)  # the UTF-8 bytes before each bound
    bound = total = 0
    before = True  # whether the previous point splits (the text starts after one)
    # Without a branch (a word ends every few points): each point is written as a bound, and kept
    # by counting it only where splitting changes. DEL (0x7F) is no space and stands for every
    # non-ASCII point.
    for i in range(len(points)):
        split = _SPLIT[min(points[i], 0x7F)]
        bounds[bound], at_bytes[bound] = i, total
        bound += split != before
        before = split
        total += utf8_width(points[i])
    bounds[bound], at_bytes[bound] = len(points), total
    bound += not before  # the last word ends with the text
    words = bound // 2
    starts, ends, widths = np.empty(words, np.int64), np.empty(words, np.int64), np.empty(words, np.int64)
    for k in range(words):
        starts[k], ends[k] = bounds[2 * k], bounds[2 * k + 1]
        widths[k] = at_bytes[2 * k + 1] - at_bytes[2 * k]
    ids, first = span_ids(points, starts, ends)
    return ids, first, widths, total


@kernel
def _bigram_chain(ids: np.ndarray, distinct: int) -> np.ndarray:
    """chain[i]: how many repeated bigrams of word ids follow one another from word i on. Only a
    bigram of two words that each occur twice or more can repeat: the others (most bigrams of
    prose) are not numbered."""
    occurs = np.zeros(distinct, np.int64)
    for k in range(len(ids)):
        occurs[ids[k]] += 1
    bigrams = max(len(ids) - 1, 0)
    at = np.empty(bigrams, np.int64)  # the bigrams that may repeat
    candidates = 0
    for i in range(bigrams):
        at[candidates] = i
        candidates += (occurs[ids[i]] > 1) & (occurs[ids[i + 1]] > 1)
    left, right = np.empty(candidates, np.int64), np.empty(candidates, np.int64)
    for j in range(candidates):
        left[j], right[j] = ids[at[j]], ids[at[j] + 1]
    bigram, counts, _ = pair_ids(left, right)
    repeats = np.zeros(bigrams + 1, np.bool_)  # a last False ends every chain
    for j in range(candidates):
        repeats[at[j]] = counts[bigram[j]] > 1
    chain = np.zeros(bigrams + 1, np.int64)
    for i in range(bigrams - 1, -1, -1):
        if repeats[i]:
            chain[i] = 1 + chain[i + 1]
    return chain[:bigrams]


# The fields `measure` returns before its n-gram byte counts (text_stats.Measures names them).
MEASURE_FIELDS = 10


@kernel
def measure(points: np.ndarray, most: int, gate: float) -> np.ndarray:
    """Every line and word measure of the quality filters in one call: [non-empty lines, lines
    equal to an earlier one, their characters, characters of the non-empty lines, sentence-ending
    lines (line_counts), newlines, words, UTF-8 bytes of the words that repeat an earlier one,
    UTF-8 bytes of the text, longest chain of repeated bigrams (no n-gram with n > longest + 1
    repeats)], then ngram_bytes up to `most` (top, then covered). The n-grams are measured only
    where the repeated words' share of the bytes is above `gate` (zeros below it): that share
    bounds every duplicate n-gram fraction."""
    out = np.zeros(MEASURE_FIELDS + 2 * (most + 1), np.int64)
    out[0], out[1], out[2], out[3], out[4] = line_counts(points)
    for i in range(len(points)):
        out[5] += points[i] == 0x0A
    ids, first, widths, size = _word_ids(points)
    repeated = 0
    for k in range(len(ids)):
        if first[ids[k]] != k:
            repeated += widths[k]
    out[6], out[7], out[8] = len(ids), repeated, size
    if repeated == 0 or repeated / size <= gate:  # no word repeats: no n-gram does
        return out
    chain = _bigram_chain(ids, len(first))
    out[9] = chain.max() if len(chain) else 0
    if out[9] == 0:  # no bigram repeats, nor any longer n-gram
        return out
    prefix = np.zeros(len(ids) + 1, np.int64)  # prefix[k]: UTF-8 bytes of the words before word k
    for k in range(len(ids)):
        prefix[k + 1] = prefix[k] + widths[k]
    out[MEASURE_FIELDS:] = ngram_bytes(ids, prefix, chain, most).ravel()
    return out


@kernel
def ngram_bytes(ids: np.ndarray, prefix: np.ndarray, chain: np.ndarray, most: int) -> np.ndarray:
    """[top, covered] for n = 0..most: top[n] the bytes of all occurrences of the most frequent
    repeated word n-gram (of equally frequent ones the longest, so the result does not depend on
    numbering), covered[n] the bytes of the words covered by an n-gram that occurred earlier.

    The n-grams of each n are the pairs (their (n-1)-gram, their last word), numbered exactly, at
    the positions that may repeat: only an n-gram whose every bigram repeats can, and all its
    occurrences are such positions, the starts of n - 1 repeated bigrams (few in most text)."""
    measures = np.zeros((2, max(most + 1, 0)), np.int64)
    top, covered = measures[0], measures[1]
    positions = np.arange(len(ids))
    grams = ids.copy()  # the 1-grams
    for n in range(2, most + 1):
        kept = 0
        for k in range(len(positions)):  # in place: the candidates of n are among those of n - 1
            start = positions[k]
            if start < len(chain) and chain[start] >= n - 1:
                positions[kept], grams[kept] = start, grams[k]
                kept += 1
        if kept == 0:
            break
        positions, grams = positions[:kept], grams[:kept]
        last = np.empty(kept, np.int64)
        for k in range(kept):
            last[k] = ids[positions[k] + n - 1]
        grams, counts, first = pair_ids(grams, last)
        most_seen = span = 0
        for g in range(len(counts)):
            if counts[g] > 1:
                start = positions[first[g]]
                width = prefix[start + n] - prefix[start] + n - 1  # the words and the n - 1 spaces between
                if counts[g] > most_seen or (counts[g] == most_seen and width > span):
                    most_seen, span = counts[g], width
        top[n] = most_seen * span
        until = 0  # positions increase: the words covered so far end before `until`
        for k in range(kept):
            if first[grams[k]] != k:
                start = positions[k]
                covered[n] += prefix[start + n] - prefix[max(start, until)]
                until = start + n
    return measures

"""SpanCorruptionCollator against T5's algorithm (docs/ARCHITECTURE.md, Span corruption)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from data_prep.span_lengths import corrupted_lengths, noise_counts, raw_length_for_inputs
from pretrain.byte_vocab import BYTE_OFFSET, EOS_ID, FIRST_SENTINEL_ID, encode
from pretrain.collator import LABEL_PAD, SpanCorruptionCollator, span_counts


def t5_reference(chunk: bytes, rng: np.random.Generator, noise_density: float = 0.15,
                 mean_noise_span_length: float = 20.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-example NumPy port of seqio's random_spans_noise_mask + noise_span_to_unique_sentinel.

    Written from the seqio source as an independent reference (and the competitor of
    bench/bench_collator.py): shuffle a 0/1 vector per segmentation, cumsum to segment ids.
    """
    length = len(chunk)
    num_noise, num_spans = noise_counts(max(length, 2), noise_density, mean_noise_span_length)

    def random_segmentation(num_items: int, num_segments: int) -> np.ndarray:
        first_in_segment = (np.arange(num_items - 1) < num_segments - 1).astype(np.int64)
        rng.shuffle(first_in_segment)
        segment_id = np.cumsum(np.concatenate([[0], first_in_segment]))
        return np.bincount(segment_id, minlength=num_segments)

    noise_lengths = random_segmentation(num_noise, num_spans)
    keep_lengths = random_segmentation(max(length, 2) - num_noise, num_spans)
    interleaved = np.stack([keep_lengths, noise_lengths], axis=1).reshape(-1)
    span_starts = np.cumsum(interleaved)[:-1]
    indicator = np.zeros(max(length, 2), dtype=np.int64)
    indicator[span_starts] = 1
    is_noise = (np.cumsum(indicator) % 2 == 1)[:length]

    def to_sentinels(tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
        previous = np.concatenate([[False], mask[:-1]])
        first = mask & ~previous
        sentinel = FIRST_SENTINEL_ID + 1 - np.cumsum(first)
        return np.append(np.where(first, sentinel, tokens)[~(mask & previous)], EOS_ID)

    ids = encode(chunk)
    return to_sentinels(ids, is_noise), to_sentinels(ids, ~is_noise)


def unpadded(batch: dict[str, torch.Tensor], row: int) -> tuple[np.ndarray, np.ndarray]:
    inputs = batch["input_ids"][row][batch["attention_mask"][row].bool()].numpy()
    targets = batch["labels"][row][batch["decoder_attention_mask"][row].bool()].numpy()
    return inputs, targets


def reconstruct(inputs: np.ndarray, targets: np.ndarray, num_spans: int = 11) -> bytes:
    """Undo span corruption: splice each target span back in place of its sentinel.

    Ids above 258 - num_spans are taken for sentinels, so the chunk's bytes must stay below.
    """
    assert inputs[-1] == EOS_ID and targets[-1] == EOS_ID
    is_sentinel = targets[:-1] > FIRST_SENTINEL_ID - num_spans
    cut = np.flatnonzero(is_sentinel)
    spans = {int(targets[i]): targets[i + 1 : j] for i, j in zip(cut, list(cut[1:]) + [len(targets) - 1])}
    pieces = [spans.pop(int(t)) if t in spans else np.array([t]) for t in inputs[:-1]]
    assert not spans, "every target span has a sentinel in the inputs"
    ids = np.concatenate(pieces) if pieces else np.zeros(0, np.int64)
    assert ids.min(initial=BYTE_OFFSET) >= BYTE_OFFSET and ids.max(initial=BYTE_OFFSET) < BYTE_OFFSET + 256
    return (ids - BYTE_OFFSET).astype(np.uint8).tobytes()


def noise_span_lengths(targets: np.ndarray) -> list[int]:
    cut = list(np.flatnonzero(targets[:-1] > FIRST_SENTINEL_ID - 11)) + [len(targets) - 1]
    return [int(j - i - 1) for i, j in zip(cut[:-1], cut[1:])]


def utf8_chunk(rng: np.random.Generator, length: int, below: int = 0xF5) -> bytes:
    """Random bytes below `below`; the default never uses 0xF5..0xFF, like valid UTF-8."""
    return rng.integers(0, below, length, dtype=np.uint8).tobytes()


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 700), min_size=1, max_size=6),
    density=st.sampled_from([0.05, 0.15, 0.3, 0.5]),
    mean_span=st.sampled_from([1.0, 3.0, 8.0, 20.0]),
    seed=st.integers(0, 2**32),
    first_id=st.integers(0, 2**40),
)
def test_inputs_and_targets_reconstruct_the_chunk(lengths, density, mean_span, seed, first_id):
    collator = SpanCorruptionCollator(density, mean_span, seed=seed, allow_sentinel_collisions=True)
    rng = np.random.default_rng(seed)
    spans = max(noise_counts(max(n, 2), density, mean_span)[1] for n in lengths)
    chunks = [utf8_chunk(rng, n, below=max(256 - spans, 1)) for n in lengths]
    try:
        batch = collator(chunks, sample_ids=range(first_id, first_id + len(chunks)))
    except ValueError as err:  # settings seqio cannot corrupt (more spans than non-noise bytes)
        assert "non-noise bytes" in str(err) or "byte ids sentinels can take" in str(err)
        return
    for row, chunk in enumerate(chunks):
        inputs, targets = unpadded(batch, row)
        expected = corrupted_lengths(len(chunk), density, mean_span) if len(chunk) >= 2 else (len(chunk) + 1, 1)
        assert (len(inputs), len(targets)) == expected
        if len(chunk) >= 2:
            assert reconstruct(inputs, targets, spans) == chunk
        else:
            assert inputs.tolist() == list(encode(chunk)) + [EOS_ID] and targets.tolist() == [EOS_ID]


def test_counts_match_the_formulas_for_every_length():
    lengths = np.arange(2, 5000)
    for density, mean_span in [(0.15, 20.0), (0.15, 3.0), (0.5, 7.0)]:
        num_noise, num_spans = span_counts(lengths, density, mean_span)
        expected = np.array([noise_counts(int(n), density, mean_span) for n in lengths])
        np.testing.assert_array_equal(num_noise, expected[:, 0])
        np.testing.assert_array_equal(num_spans, expected[:, 1])
    collator = SpanCorruptionCollator()
    rng = np.random.default_rng(1)
    sizes = np.arange(2, 1400, 7)
    batch = collator([utf8_chunk(rng, n) for n in sizes], sample_ids=range(len(sizes)))
    expected = np.array([corrupted_lengths(int(n)) for n in sizes])
    np.testing.assert_array_equal(batch["attention_mask"].sum(1).numpy(), expected[:, 0])
    np.testing.assert_array_equal(batch["decoder_attention_mask"].sum(1).numpy(), expected[:, 1])


def test_bytet5_published_lengths():
    assert raw_length_for_inputs(1024) == 1193
    rng = np.random.default_rng(2)
    batch = SpanCorruptionCollator()([utf8_chunk(rng, 1193), utf8_chunk(rng, 1024)], sample_ids=[0, 1])
    assert batch["attention_mask"].sum(1).tolist() == [1024, 879]
    assert batch["decoder_attention_mask"].sum(1).tolist() == [189, 163]
    assert batch["input_ids"].shape == (2, 1024) and batch["labels"].shape == (2, 189)


def test_sentinels_are_258_down_in_order_and_mirror_between_inputs_and_targets():
    rng = np.random.default_rng(3)
    batch = SpanCorruptionCollator()([utf8_chunk(rng, 1193) for _ in range(16)], sample_ids=range(16))
    for row in range(16):
        inputs, targets = unpadded(batch, row)
        in_sentinels = inputs[inputs > FIRST_SENTINEL_ID - 11]
        tg_sentinels = targets[targets > FIRST_SENTINEL_ID - 11]
        num_spans = noise_counts(1193)[1]
        np.testing.assert_array_equal(in_sentinels, FIRST_SENTINEL_ID - np.arange(num_spans))
        np.testing.assert_array_equal(tg_sentinels, in_sentinels)
        assert targets[0] == FIRST_SENTINEL_ID  # first span is never noise
        assert inputs[-2] == FIRST_SENTINEL_ID - num_spans + 1  # last span is always noise
        assert inputs[0] != FIRST_SENTINEL_ID


def test_padding_label_masks_and_decoder_shift():
    rng = np.random.default_rng(4)
    chunks = [utf8_chunk(rng, n) for n in (1193, 300, 40)]
    collator = SpanCorruptionCollator(pad_inputs_to=1100, pad_targets_to=200)
    batch = collator(chunks, sample_ids=[7, 8, 9])
    assert batch["input_ids"].shape == (3, 1100) and batch["labels"].shape == (3, 200)
    assert all(t.dtype == torch.int64 for t in batch.values())
    mask = batch["attention_mask"].bool()
    assert (batch["input_ids"][~mask] == 0).all() and (batch["input_ids"][mask] != 0).all()
    dmask = batch["decoder_attention_mask"].bool()
    assert (batch["labels"][~dmask] == LABEL_PAD).all() and (batch["labels"][dmask] >= 1).all()
    expected = torch.cat([torch.zeros(3, 1, dtype=torch.int64), batch["labels"][:, :-1].clamp(min=0)], dim=1)
    assert torch.equal(batch["decoder_input_ids"], expected)
    assert mask.sum(1).tolist() == [corrupted_lengths(n)[0] for n in (1193, 300, 40)]
    with pytest.raises(ValueError, match="pad_inputs_to=1000"):
        SpanCorruptionCollator(pad_inputs_to=1000)(chunks, sample_ids=[7, 8, 9])


def test_refuses_more_spans_than_collision_free_sentinels():
    chunk = bytes(3000)
    with pytest.raises(ValueError, match=r"3000-byte chunk gets 22 noise spans.*only 11 sentinels"):
        SpanCorruptionCollator()([chunk], sample_ids=[0])
    batch = SpanCorruptionCollator(allow_sentinel_collisions=True)([chunk], sample_ids=[0])
    assert (batch["labels"] == FIRST_SENTINEL_ID - 21).sum() == 1
    SpanCorruptionCollator().check_lengths([1193, 1400])  # 11 spans at most: fine
    with pytest.raises(ValueError, match="0.0"):
        SpanCorruptionCollator(noise_density=0.0)


def test_deterministic_and_independent_of_batch_composition():
    rng = np.random.default_rng(5)
    chunks = [utf8_chunk(rng, n) for n in (1193, 900, 1193, 50, 400)]
    collator = SpanCorruptionCollator(seed=11)
    full = collator(chunks, sample_ids=[10, 11, 12, 13, 14])
    again = SpanCorruptionCollator(seed=11)(chunks, sample_ids=[10, 11, 12, 13, 14])
    assert all(torch.equal(full[k], again[k]) for k in full)
    cases = [
        (collator([chunks[2]], sample_ids=[12]), 0, 2),
        (collator([chunks[3], utf8_chunk(rng, 700), chunks[2]], sample_ids=[13, 99, 12]), 2, 2),
        (collator([chunks[4]], sample_ids=[14]), 0, 4),  # 3 spans alone, up to 9 in the full batch
        (collator([chunks[4], chunks[3]], sample_ids=[14, 13]), 1, 3),
    ]
    for batch, row, full_row in cases:
        for a, b in zip(unpadded(batch, row), unpadded(full, full_row)):
            np.testing.assert_array_equal(a, b)
    other_id = collator([chunks[0]], sample_ids=[99])
    other_seed = SpanCorruptionCollator(seed=12)([chunks[0]], sample_ids=[10])
    assert not np.array_equal(unpadded(other_id, 0)[1], unpadded(full, 0)[1])
    assert not np.array_equal(unpadded(other_seed, 0)[1], unpadded(full, 0)[1])
    by_content = collator([chunks[1], chunks[0]])
    np.testing.assert_array_equal(unpadded(collator([chunks[0]]), 0)[1], unpadded(by_content, 1)[1])


def composition_probability(total: int, parts: int, size: int) -> float:
    """P(a given part of a uniform random composition of total into parts has this size)."""
    if parts == 1:
        return float(size == total)
    return math.comb(total - size - 1, parts - 2) / math.comb(total - 1, parts - 1)


def test_span_lengths_follow_the_uniform_composition_law():
    collator = SpanCorruptionCollator()
    rng = np.random.default_rng(6)
    rows = 4000
    batch = collator([utf8_chunk(rng, 1193)] * rows, sample_ids=range(rows))
    num_noise, num_spans = noise_counts(1193)
    spans = np.array([noise_span_lengths(unpadded(batch, r)[1]) for r in range(rows)])
    assert spans.shape == (rows, num_spans) and (spans.sum(1) == num_noise).all()
    assert abs(spans.mean() - 20.0) < 0.2  # 179 / 9 = 19.9 per example, by construction
    # Each span's marginal law: P(size) = C(N - size - 1, S - 2) / C(N - 1, S - 1).
    sizes = np.arange(1, num_noise - num_spans + 2)
    expected = np.array([composition_probability(num_noise, num_spans, s) for s in sizes])
    observed = np.bincount(spans.ravel(), minlength=sizes[-1] + 1)[1:]
    bins = np.digitize(sizes, [3, 6, 10, 15, 20, 25, 30, 40, 55])
    obs = np.bincount(bins, weights=observed)
    exp = np.bincount(bins, weights=expected) * spans.size
    chi2 = ((obs - exp) ** 2 / exp).sum()
    assert chi2 < 30.0, (obs, exp)  # 9 degrees of freedom; 30 is p ~ 0.0004


def test_every_composition_is_equally_likely():
    """Tiny case with 12 possible masks: each one about equally often (chi-square)."""
    collator = SpanCorruptionCollator(noise_density=0.3, mean_noise_span_length=2.0)
    assert noise_counts(10, 0.3, 2.0) == (3, 2)  # noise 3 -> 2 compositions, keep 7 -> 6
    rows = 6000
    batch = collator([bytes(range(10))] * rows, sample_ids=range(rows))
    patterns = {}
    for r in range(rows):
        key = tuple(unpadded(batch, r)[1].tolist())
        patterns[key] = patterns.get(key, 0) + 1
    assert len(patterns) == 12
    counts = np.array(list(patterns.values()))
    chi2 = ((counts - rows / 12) ** 2 / (rows / 12)).sum()
    assert chi2 < 35.0  # 11 degrees of freedom; 35 is p ~ 0.0002


def test_floyd_collisions_keep_compositions_uniform():
    """Few gaps, several cuts: draws often repeat, and all 100 masks stay equally likely."""
    collator = SpanCorruptionCollator(noise_density=0.5, mean_noise_span_length=2.0)
    assert noise_counts(12, 0.5, 2.0) == (6, 3)  # 6 noise and 6 kept bytes, 3 spans: 10 x 10 masks
    rows = 20000
    batch = collator([bytes(range(12))] * rows, sample_ids=range(rows))
    patterns, counts = np.unique(batch["labels"].numpy(), axis=0, return_counts=True)
    assert len(patterns) == 100
    chi2 = ((counts - rows / 100) ** 2 / (rows / 100)).sum()
    assert chi2 < 160.0  # 99 degrees of freedom; 160 is p ~ 0.0001


def test_floyd_with_many_cuts_never_repeats_a_cut():
    """6 spans over 12 noise and 12 kept bytes: draws hit earlier tops too; 462 compositions each."""
    collator = SpanCorruptionCollator(noise_density=0.5, mean_noise_span_length=2.0)
    assert noise_counts(24, 0.5, 2.0) == (12, 6)
    rows = 46200
    batch = collator([bytes(range(24))] * rows, sample_ids=range(rows))
    inputs, labels = batch["input_ids"].numpy(), batch["labels"].numpy()
    assert inputs.shape == (rows, 19) and labels.shape == (rows, 19)
    for ids in (inputs[:, :-1], labels[:, 1:-1]):  # every span non-empty: no two sentinels in a row
        sentinel = ids >= FIRST_SENTINEL_ID - 5
        assert not (sentinel[:, 1:] & sentinel[:, :-1]).any()
    assert (labels[:, -2] < FIRST_SENTINEL_ID - 5).all() and (inputs[:, 0] < FIRST_SENTINEL_ID - 5).all()
    for ids in (inputs, labels):
        _, counts = np.unique(ids >= FIRST_SENTINEL_ID - 5, axis=0, return_counts=True)
        assert len(counts) == 462
        chi2 = ((counts - rows / 462) ** 2 / (rows / 462)).sum()
        assert chi2 < 600.0  # 461 degrees of freedom (sd 30); 600 is p ~ 1e-5


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    grid = np.union1d(a, b)
    cdf_a = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    cdf_b = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.abs(cdf_a - cdf_b).max())


def test_matches_the_per_example_t5_reference():
    rng = np.random.default_rng(7)
    lengths = np.concatenate([np.full(600, 1193), rng.integers(2, 1400, 600)])
    chunks = [utf8_chunk(rng, int(n)) for n in lengths]
    batch = SpanCorruptionCollator(seed=3)(chunks, sample_ids=range(len(chunks)))
    ours, theirs = [], []
    reference_rng = np.random.default_rng(123)
    for row, chunk in enumerate(chunks):
        ref_inputs, ref_targets = t5_reference(chunk, reference_rng)
        inputs, targets = unpadded(batch, row)
        assert (len(inputs), len(targets)) == (len(ref_inputs), len(ref_targets))
        np.testing.assert_array_equal(np.sort(inputs[inputs > FIRST_SENTINEL_ID - 11]),
                                      np.sort(ref_inputs[ref_inputs > FIRST_SENTINEL_ID - 11]))
        assert reconstruct(ref_inputs, ref_targets) == chunk  # the reference itself is sound
        ours += noise_span_lengths(targets)
        theirs += noise_span_lengths(ref_targets)
    ours, theirs = np.array(ours), np.array(theirs)
    assert len(ours) == len(theirs)
    # Two-sample KS at alpha = 0.001: critical value 1.95 * sqrt(2 / n).
    assert ks_statistic(ours, theirs) < 1.95 * math.sqrt(2 / len(ours))


def test_collate_padded_takes_rows_wider_than_the_chunks():
    rng = np.random.default_rng(8)
    chunks = [utf8_chunk(rng, 1193), utf8_chunk(rng, 500)]
    raw = np.zeros((2, 1300), dtype=np.uint8)
    for row, chunk in enumerate(chunks):
        raw[row, : len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
    collator = SpanCorruptionCollator()
    wide = collator.collate_padded(raw, np.array([1193, 500]), np.array([3, 4]))
    tight = collator(chunks, sample_ids=[3, 4])
    assert all(torch.equal(wide[k], tight[k]) for k in tight)
    with pytest.raises(ValueError, match="uint8 array for 2 lengths"):
        collator.collate_padded(raw[:, :600], np.array([1193, 500]), np.array([3, 4]))

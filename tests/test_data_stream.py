"""ShardStream and validation_batches: reading, mixing, sharding across ranks, exact resume."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from datasets import load_from_disk
from torch.utils.data import DataLoader

from data_prep.sample import SAMPLE_SOURCES, konlpy_corpus_dir
from data_prep.span_lengths import noise_counts
from pretrain.collator import SpanCorruptionCollator
from pretrain.data import ShardIndex, ShardStream, validation_batches
from pretrain.mixture import mixing_counts
from shard_fixtures import write_shard_dir
from test_collator import reconstruct, unpadded

COLLATOR = SpanCorruptionCollator(seed=5)


def labelled_chunks(tag: bytes, count: int, rng: np.random.Generator, low: int = 40, high: int = 400) -> list[bytes]:
    """Unique chunks: tag, row number, then random UTF-8-safe bytes of random length."""
    return [tag + b"%06d" % i + rng.integers(0, 0xF5, rng.integers(low, high), dtype=np.uint8).tobytes()
            for i in range(count)]


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("shards")
    big = labelled_chunks(b"A", 230, rng)
    small = labelled_chunks(b"B", 37, rng)
    write_shard_dir(root / "big", big, source="big", chunk_bytes=400, val_chunks=labelled_chunks(b"a", 45, rng), num_shards=3)
    write_shard_dir(root / "small", small, source="small", chunk_bytes=400, val_chunks=labelled_chunks(b"b", 8, rng))
    return {"big": (root / "big", big), "small": (root / "small", small)}


def split_rows(directory, split: str) -> list[bytes]:
    """What datasets itself reads from a split (the independent reader)."""
    return list(load_from_disk(str(directory / split))["chunk"])


def dirs_of(corpora, *names):
    return [corpora[n][0] for n in names]


def batch_chunks(batch: dict[str, torch.Tensor]) -> list[bytes]:
    return [reconstruct(*unpadded(batch, row)) for row in range(batch["input_ids"].shape[0])]


def take(stream: ShardStream, count: int) -> list[dict[str, torch.Tensor]]:
    it = iter(stream)
    return [next(it) for _ in range(count)]


def assert_same_batches(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def test_index_reads_the_rows_datasets_reads(corpora):
    index = ShardIndex(dirs_of(corpora, "big", "small"), "train")
    assert index.rows == [230, 37] and index.total_rows == 267
    expected = split_rows(corpora["big"][0], "train") + split_rows(corpora["small"][0], "train")
    rows = np.array([0, 229, 230, 266, 77, 150, 3, 3, 100])
    raw, lengths = index.gather(rows)
    assert [raw[i, : lengths[i]].tobytes() for i in range(len(rows))] == [expected[r] for r in rows]
    assert (raw[np.arange(raw.shape[1]) >= lengths[:, None]] == 0).all()


def test_batches_decode_to_the_planned_rows(corpora):
    stream = ShardStream(dirs_of(corpora, "big", "small"), batch_size=16, collator=COLLATOR, seed=1)
    everything = corpora["big"][1] + corpora["small"][1]
    for k in (0, 5, 40):
        rows, _ = stream.sample_plan(k)
        assert batch_chunks(stream.batch(k)) == [everything[r] for r in rows]


@pytest.mark.parametrize("world_size", [1, 2])
def test_an_epoch_splits_distinct_rows_between_ranks(corpora, world_size):
    streams = [ShardStream(dirs_of(corpora, "big"), batch_size=8, collator=COLLATOR, seed=3, rank=r,
                           world_size=world_size) for r in range(world_size)]
    per_epoch = streams[0].batches_per_epoch
    assert per_epoch == 230 // (8 * world_size) and all(s.batches_per_epoch == per_epoch for s in streams)
    epochs = []
    for epoch in range(2):
        plans = [np.concatenate([s.sample_plan(epoch * per_epoch + j)[0] for j in range(per_epoch)]) for s in streams]
        rows = np.concatenate(plans)
        assert len(np.unique(rows)) == len(rows) == per_epoch * 8 * world_size  # disjoint, no repeats
        epochs.append(rows)
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled every epoch
    it = iter(streams[0])
    for _ in range(per_epoch):
        next(it)
    assert streams[0].epoch == 1


def test_mixing_weights_and_temperature(corpora):
    dirs = dirs_of(corpora, "big", "small")
    assert mixing_counts([230, 37], 264, None, None).tolist() == [227, 37]
    assert mixing_counts([230, 37], 264, [1, 3], None).tolist() == [66, 198]
    p = np.array([230, 37]) ** 0.3
    assert np.abs(mixing_counts([230, 37], 264, None, 0.3) - 264 * p / p.sum()).max() < 1
    with pytest.raises(ValueError, match="not both"):
        mixing_counts([1, 2], 3, [1, 1], 0.3)
    with pytest.raises(ValueError, match="2 non-negative"):
        mixing_counts([1, 2], 3, [1], None)
    stream = ShardStream(dirs, batch_size=8, collator=COLLATOR, weights=[1, 3])
    per_epoch, big_rows = [], []
    for epoch in range(3):
        plans = [stream.sample_plan(epoch * stream.batches_per_epoch + j)[0] for j in range(stream.batches_per_epoch)]
        rows = np.concatenate(plans)
        per_epoch.append(rows[rows >= 230] - 230)
        assert len(per_epoch[-1]) == 198  # exactly the weight's share of every epoch
        big_rows.append(rows[rows < 230])
    # The big corpus is downsampled: 66 a epoch, three disjoint windows of one shuffled pass.
    assert len(np.unique(np.concatenate(big_rows))) == 3 * 66
    # The small corpus is upsampled by back-to-back shuffled passes: every row equally often.
    for draws in (per_epoch[0], np.concatenate(per_epoch)):
        counts = np.bincount(draws, minlength=37)
        assert counts.max() - counts.min() <= 1


@pytest.mark.parametrize("world_size", [1, 2])
def test_resume_gives_the_identical_sequence(corpora, world_size):
    dirs = dirs_of(corpora, "big", "small")
    make = lambda rank: ShardStream(dirs, batch_size=8, collator=COLLATOR, seed=9, rank=rank,  # noqa: E731
                                    world_size=world_size, temperature_alpha=0.5)
    total = make(0).batches_per_epoch + 4  # crosses an epoch boundary
    for rank in range(world_size):
        straight = take(make(rank), total)
        first = make(rank)
        head = take(first, 5)
        state = json.loads(json.dumps(first.state_dict()))
        resumed = make(rank)
        resumed.load_state_dict(state)
        assert_same_batches(head + take(resumed, total - 5), straight)
        assert resumed.epoch == 1


def test_dataloader_workers_keep_the_order_and_resume_exactly(corpora):
    dirs = dirs_of(corpora, "big", "small")
    plain = ShardStream(dirs, batch_size=8, collator=COLLATOR, seed=2, rank=1, world_size=2)
    straight = take(plain, 9)
    workers = ShardStream(dirs, batch_size=8, collator=COLLATOR, seed=2, rank=1, world_size=2, num_workers=2)
    head = take(workers, 4)
    state = workers.state_dict()
    assert state["batches"] == 4
    resumed = ShardStream(dirs, batch_size=8, collator=COLLATOR, seed=2, rank=1, world_size=2, num_workers=2)
    resumed.load_state_dict(state)
    assert_same_batches(head + take(resumed, 5), straight)
    external = ShardStream(dirs, batch_size=8, collator=COLLATOR, seed=2, rank=1, world_size=2)
    external.load_state_dict(state)
    loader = iter(DataLoader(external, batch_size=None, num_workers=2))
    assert_same_batches([next(loader) for _ in range(5)], straight[4:])


def test_global_sequence_depends_only_on_the_global_batch(corpora):
    dirs = dirs_of(corpora, "big", "small")
    one = ShardStream(dirs, batch_size=8, collator=COLLATOR, seed=4)
    two = [ShardStream(dirs, batch_size=4, collator=COLLATOR, seed=4, rank=r, world_size=2) for r in range(2)]
    for k in (0, 3, one.batches_per_epoch + 1):
        whole = one.batch(k)
        halves = [s.batch(k) for s in two]
        assert batch_chunks(whole) == batch_chunks(halves[0]) + batch_chunks(halves[1])
        for row in range(8):
            for a, b in zip(unpadded(whole, row), unpadded(halves[row // 4], row % 4)):
                np.testing.assert_array_equal(a, b)
    it = iter(two[0])
    next(it), next(it)
    one.load_state_dict(two[0].state_dict())  # elastic resume: 2 ranks x 4 -> 1 rank x 8
    assert batch_chunks(next(iter(one))) == batch_chunks(two[0].batch(2)) + batch_chunks(two[1].batch(2))
    other = ShardStream(dirs, batch_size=4, collator=COLLATOR, seed=4)
    with pytest.raises(ValueError, match="global_batch=8"):
        other.load_state_dict(one.state_dict())
    with pytest.raises(ValueError, match="seed"):
        ShardStream(dirs, batch_size=8, collator=COLLATOR, seed=5).load_state_dict(one.state_dict())


def test_stream_pickles_without_its_mappings(corpora):
    stream = ShardStream(dirs_of(corpora, "big"), batch_size=4, collator=COLLATOR)
    clone = pickle.loads(pickle.dumps(stream))
    assert clone._index is None
    assert_same_batches([clone.batch(7)], [stream.batch(7)])


def test_validation_batches_are_fixed_disjoint_and_balanced(corpora):
    dirs = dirs_of(corpora, "big", "small")
    first = validation_batches(dirs, batch_size=4, collator=COLLATOR)
    assert_same_batches(first, validation_batches(dirs, batch_size=4, collator=COLLATOR))
    everything = split_rows(dirs[0], "validation") + split_rows(dirs[1], "validation")
    seen = [c for b in first for c in batch_chunks(b)]
    assert sorted(seen) == sorted(everything) and len(first) == 14  # 53 rows, last batch of 1
    ranks = [validation_batches(dirs, batch_size=4, collator=COLLATOR, rank=r, world_size=3) for r in range(3)]
    assert [len(b) for b in ranks] == [5, 5, 5]  # 53 // 3 = 17 rows each: 4 + 4 + 4 + 4 + 1
    shares = [[c for b in r for c in batch_chunks(b)] for r in ranks]
    assert all(len(s) == 17 for s in shares)
    assert len(set(shares[0]) | set(shares[1]) | set(shares[2])) == 51
    # A row's corruption does not depend on the world size.
    by_chunk = {c: unpadded(b, i) for b in first for i, c in enumerate(batch_chunks(b))}
    for batch in ranks[1]:
        for i, chunk in enumerate(batch_chunks(batch)):
            np.testing.assert_array_equal(unpadded(batch, i)[1], by_chunk[chunk][1])
    assert len(validation_batches(dirs, batch_size=4, collator=COLLATOR, max_batches=2)) == 2


def test_no_validation_rows_gives_no_batches(tmp_path):
    empty = write_shard_dir(tmp_path / "noval", [b"abc" * 10] * 4, chunk_bytes=30)
    assert validation_batches([empty], batch_size=2, collator=COLLATOR, world_size=2) == []


def test_bad_directories_get_clear_errors(corpora, tmp_path):
    with pytest.raises(ValueError, match="manifest.json is missing"):
        ShardStream([tmp_path], batch_size=2, collator=COLLATOR)
    bad = write_shard_dir(tmp_path / "long", [b"x" * 10] * 4, chunk_bytes=3000)
    with pytest.raises(ValueError, match="3000-byte chunk gets 22 noise spans"):
        ShardStream([bad], batch_size=2, collator=COLLATOR)
    with pytest.raises(ValueError, match="fewer than one global batch"):
        ShardStream(dirs_of(corpora, "small"), batch_size=20, collator=COLLATOR, world_size=2)
    manifest = json.loads((bad / "manifest.json").read_text())
    (bad / "manifest.json").write_text(json.dumps({**manifest, "format_version": 2}))
    with pytest.raises(ValueError, match="format_version 2"):
        ShardStream([bad], batch_size=2, collator=COLLATOR)
    (bad / "manifest.json").write_text(json.dumps({**manifest, "chunk_bytes": 1000}))
    (bad / "train" / "state.json").write_text("{}")
    with pytest.raises(ValueError, match=r"train/state.json: not a datasets.save_to_disk split"):
        ShardStream([bad], batch_size=2, collator=COLLATOR)


def utf8_chunks(text: bytes, size: int) -> list[bytes]:
    """Cut text into chunks of at most `size` bytes, only before a UTF-8 lead byte."""
    chunks, start = [], 0
    while start < len(text):
        end = min(start + size, len(text))
        while end < len(text) and text[end] & 0xC0 == 0x80:
            end -= 1
        chunks.append(text[start:end])
        start = end
    return chunks


def test_korean_text_round_trips_and_never_meets_a_sentinel(tmp_path):
    corpus = konlpy_corpus_dir()  # the Korean sample every install has (constitution and bills)
    text = b"".join(path.read_bytes() for name in SAMPLE_SOURCES for path in sorted((corpus / name).iterdir()))
    text.decode("utf-8")
    chunks = utf8_chunks(text, 1193)
    chunks = chunks[: len(chunks) // 16 * 16]  # whole batches: one epoch sees every chunk
    assert len(chunks) >= 96
    shards = write_shard_dir(tmp_path / "fairytale", chunks, source="fairytale", chunk_bytes=1193)
    stream = ShardStream([shards], batch_size=16, collator=SpanCorruptionCollator(pad_inputs_to=1024, pad_targets_to=189))
    seen = []
    for batch in take(stream, stream.batches_per_epoch):
        assert batch["input_ids"].shape == (16, 1024) and batch["labels"].shape == (16, 189)
        for row in range(16):
            inputs, targets = unpadded(batch, row)
            seen.append(reconstruct(inputs, targets))
            # Korean UTF-8 never reaches ids 248..258: exactly the sentinels are that high.
            spans = noise_counts(len(seen[-1]))[1]
            assert (inputs >= 248).sum() == (targets >= 248).sum() == spans
    assert sorted(seen) == sorted(chunks)

"""Benchmark: the vectorised span-corruption collator and the whole shard stream, on one core.

Competitors, timed side by side in this run on the same 1193-byte chunks:
- "per-example seqio port": T5's algorithm one example at a time (mask, sentinels, filtering),
  the reference of tests/test_collator.py;
- "HF/nanoT5 style": a per-example noise-mask loop, then sentinel ids and filtering done on the
  whole (equal-length) batch, as Hugging Face's run_t5_mlm_flax.py and nanoT5 collate.
All three return the same five tensors. Then the stream (memory-mapped shards -> mixing/shuffle
-> gather -> collate) in examples/s.

    .venv/bin/python bench/bench_collator.py [--rounds 100] [--batches 200] [--batch-size 64]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # per-core figures

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from data_prep.span_lengths import noise_counts  # noqa: E402
from pretrain.byte_vocab import BYTE_OFFSET, EOS_ID, FIRST_SENTINEL_ID  # noqa: E402
from pretrain.collator import SpanCorruptionCollator, pad_chunks  # noqa: E402
from pretrain.data import ShardStream  # noqa: E402
from shard_fixtures import write_shard_dir  # noqa: E402
from test_collator import t5_reference  # noqa: E402


def complete_batch(inputs: np.ndarray, labels: np.ndarray) -> dict[str, torch.Tensor]:
    """The collator's five fields from padded inputs (pad 0) and labels (pad -100), for equal output."""
    decoder_input_ids = np.zeros_like(labels)
    decoder_input_ids[:, 1:] = np.maximum(labels[:, :-1], 0)
    return {"input_ids": torch.from_numpy(inputs), "attention_mask": torch.from_numpy((inputs != 0).astype(np.int64)),
            "labels": torch.from_numpy(labels), "decoder_input_ids": torch.from_numpy(decoder_input_ids),
            "decoder_attention_mask": torch.from_numpy((labels != -100).astype(np.int64))}


def per_example_collate(chunks: list[bytes], rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """The per-example seqio port, padded into tensors like a DataLoader collate_fn would."""
    pairs = [t5_reference(c, rng) for c in chunks]
    inputs = np.zeros((len(pairs), max(len(p[0]) for p in pairs)), dtype=np.int64)
    labels = np.full((len(pairs), max(len(p[1]) for p in pairs)), -100, dtype=np.int64)
    for row, (i, t) in enumerate(pairs):
        inputs[row, : len(i)], labels[row, : len(t)] = i, t
    return complete_batch(inputs, labels)


def hf_style_collate(chunks: list[bytes], rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """Per-example mask (np.random permutations), then batch-wide sentinels and filtering."""
    ids = np.stack([np.frombuffer(c, dtype=np.uint8) for c in chunks]).astype(np.int64) + BYTE_OFFSET
    rows, length = ids.shape
    num_noise, num_spans = noise_counts(length)

    def segmentation(items: int) -> np.ndarray:
        marks = np.zeros(items - 1, dtype=np.int64)
        marks[rng.permutation(items - 1)[: num_spans - 1]] = 1
        return np.bincount(np.cumsum(np.concatenate([[0], marks])), minlength=num_spans)

    def noise_mask() -> np.ndarray:
        spans = np.stack([segmentation(length - num_noise), segmentation(num_noise)], axis=1).reshape(-1)
        starts = np.zeros(length, dtype=np.int64)
        starts[np.cumsum(spans)[:-1]] = 1
        return np.cumsum(starts) % 2 == 1

    mask = np.stack([noise_mask() for _ in range(rows)])

    def filtered(noise: np.ndarray) -> np.ndarray:
        first = noise & ~np.pad(noise[:, :-1], ((0, 0), (1, 0)))
        later = noise & ~first
        sentinel = np.where(first, FIRST_SENTINEL_ID + 1 - np.cumsum(first, axis=1), 0)
        kept = np.where(first, sentinel, ids)[~later].reshape(rows, -1)
        return np.concatenate([kept, np.full((rows, 1), EOS_ID)], axis=1)

    return complete_batch(filtered(mask), filtered(~mask))


def interleaved_seconds(methods: dict, batches: dict, rounds: int) -> dict[str, np.ndarray]:
    """Seconds per batch of each method in each round; the methods take turns every few ms, so
    load from other processes on a shared machine hits them alike."""
    for fn in methods.values():
        fn()  # warm up
    times = {name: np.empty(rounds) for name in methods}
    for r in range(rounds):
        for name, fn in methods.items():
            start = time.perf_counter()
            for _ in range(batches[name]):
                fn()
            times[name][r] = (time.perf_counter() - start) / batches[name]
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=200, help="stream batches per round")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=100, help="interleaved rounds of the collator comparison")
    parser.add_argument("--stream-rounds", type=int, default=5)
    parser.add_argument("--stream-rows", type=int, default=40_000, help="rows of the temporary shards")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    chunks = [rng.integers(0, 0xF5, 1193, dtype=np.uint8).tobytes() for _ in range(args.batch_size)]
    collator = SpanCorruptionCollator()
    ids = np.arange(args.batch_size)
    raw, lengths = pad_chunks(chunks)
    methods = {
        "vectorised collator (bytes in)": lambda: collator(chunks, sample_ids=ids),
        "vectorised collator (padded uint8 in)": lambda: collator.collate_padded(raw, lengths, ids),
        "HF/nanoT5 style": lambda: hf_style_collate(chunks, rng),
        "per-example seqio port": lambda: per_example_collate(chunks, rng),
    }
    batches = {name: 10 if name.startswith("vectorised") else 1 for name in methods}
    times = interleaved_seconds(methods, batches, args.rounds)
    ours = times["vectorised collator (bytes in)"]
    print(f"collator, batches of {args.batch_size} x 1193 bytes, one core, {args.rounds} interleaved rounds"
          " (ms/batch median and best; time relative to ours: median of per-round ratios, ratio of bests):")
    for name, seconds in times.items():
        median, best = float(np.median(seconds)), float(seconds.min())
        print(f"  {name:38s} {median * 1e3:7.3f} {best * 1e3:7.3f} ms/batch {args.batch_size / median:8.0f} examples/s"
              f"  {np.median(seconds / ours):5.1f}x {best / ours.min():5.1f}x")

    with tempfile.TemporaryDirectory() as tmp:
        corpus = rng.integers(0, 0xF5, (args.stream_rows, 1193), dtype=np.uint8)
        half = args.stream_rows // 2
        write_shard_dir(Path(tmp) / "a", [bytes(r) for r in corpus[:half]], chunk_bytes=1193, num_shards=4)
        write_shard_dir(Path(tmp) / "b", [bytes(r) for r in corpus[half:]], chunk_bytes=1193, num_shards=4)
        seconds = {workers: stream_seconds(ShardStream([Path(tmp) / "a", Path(tmp) / "b"], batch_size=args.batch_size,
                                                     collator=collator, temperature_alpha=0.3, num_workers=workers),
                                         args.batches, args.stream_rounds)
                   for workers in (0, 1)}
    print(f"stream (2 directories, 8 shard files, alpha 0.3, mmap -> collated batches), best of {args.stream_rounds}:")
    print(f"  in process (one core)      {seconds[0] * 1e3:8.3f} ms/batch {args.batch_size / seconds[0]:9.0f} examples/s")
    print(f"  num_workers=1 (+ IPC)      {seconds[1] * 1e3:8.3f} ms/batch {args.batch_size / seconds[1]:9.0f} examples/s")


def stream_seconds(stream: ShardStream, batches: int, rounds: int) -> float:
    """Best-of-rounds seconds per batch while a consumer holds the last few batches."""
    it = iter(stream)
    held = [next(it) for _ in range(4)]
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(batches):
            held = [*held[1:], next(it)]
        best = min(best, (time.perf_counter() - start) / batches)
    return best


if __name__ == "__main__":
    main()

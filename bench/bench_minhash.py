"""Benchmark behind near-dedup's two choices, on real Korean documents from the shared corpora (--corpora) with
injected near copies (tests/neardup_corpus.py).

1. Hashing (the same shingles, character 5-grams without whitespace, 112 hashes): datasketch's
   MinHash.update_batch, rensa's RMinHash (Rust), xxhash per shingle + NumPy multiply-shift hashing
   (112 permutations), and ours (data_prep/minhash.py: one compiled hash per shingle, one-permutation
   MinHash). Printed: MB per CPU second, and the error of each signature's Jaccard estimate against the
   exact Jaccard of near-copy pairs.
2. Shingles (the same LSH, 14 bands of 8, over a k-permutation MinHash of each kind): character
   5-grams of the NFC text without whitespace, UTF-8 byte 15-grams (five Hangul syllables)
   without whitespace, and kiwipiepy morpheme 5-grams (datatrove's Korean shingles). Printed: the
   share of injected copies found (recall), the share of distinct originals removed, the share of
   removals that are copies (precision), and MB per CPU second of shingling.

    .venv/bin/python bench/bench_minhash.py [--mb 2] [--corpora DIR]
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "bench")]
import bench_corpus_quality  # noqa: E402
from data_prep.minhash import NearDedupOptions, band_keys, shingle_text  # noqa: E402
from neardup_corpus import inject, jaccard, reference_drop, shingles  # noqa: E402

HASHES, BANDS, ROWS = 112, 14, 8
_rng = np.random.default_rng(0)
_A = _rng.integers(0, 1 << 63, HASHES, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
_B = _rng.integers(0, 1 << 63, HASHES, dtype=np.uint64)


def kperm_signature(hashes: np.ndarray) -> np.ndarray:
    """112 multiply-shift hashes ((a*h + b) mod 2^64) >> 32 of the shingles' 32-bit hashes -> minima."""
    h = hashes & np.uint64(0xFFFFFFFF)
    return ((h[:, None] * _A[None, :] + _B[None, :]) >> np.uint64(32)).min(axis=0)


def xxhash_kperm(text: str) -> np.ndarray:
    import xxhash
    grams = sorted(shingles(text))
    return kperm_signature(np.fromiter((xxhash.xxh64_intdigest(g.encode()) for g in grams), np.uint64, len(grams)))


def time_per_doc(docs: list[str], fn: Callable[[str], object]) -> tuple[float, list]:
    start = time.process_time()  # CPU time: the machine is shared
    out = [fn(d) for d in docs]
    return time.process_time() - start, out


def hashing(docs: list[str], pairs: list[tuple[int, int]]) -> None:
    from datasketch import MinHash
    from rensa import RMinHash

    def datasketch_sig(text):
        m = MinHash(num_perm=HASHES, seed=1)
        m.update_batch([g.encode() for g in shingles(text)])
        return m.hashvalues

    def rensa_sig(text):
        m = RMinHash(num_perm=HASHES, seed=1)
        m.update(list(shingles(text)))
        return np.array(m.digest())

    mb = sum(len(d.encode()) for d in docs) / 1e6
    print(f"\n1. hashing, {mb:.1f} MB, {len(docs)} documents, {HASHES} hashes; Jaccard estimate error on {len(pairs)} "
          f"near-copy pairs")
    print(f"{'method':<40} {'MB/CPU-s':>8} {'mean err':>9} {'sd err':>8}")
    exact = np.array([jaccard(docs[a], docs[b]) for a, b in pairs])
    for name, fn in (("datasketch MinHash.update_batch", datasketch_sig), ("rensa RMinHash", rensa_sig),
                     ("xxhash per shingle + NumPy 112 hashes", xxhash_kperm)):
        seconds, sigs = time_per_doc(docs, fn)
        est = np.array([(sigs[a] == sigs[b]).mean() for a, b in pairs])
        print(f"{name:<40} {mb / seconds:>8.1f} {np.mean(est - exact):>9.3f} {np.std(est - exact):>8.3f}")
    one_bin = NearDedupOptions(True, threshold=0.01)  # 112 bands of one bin: the bins themselves
    band_keys(docs[:1], NearDedupOptions(True))  # numba's start-up and the cached kernel, once per worker
    start = time.process_time()
    for i in range(0, len(docs), 200):
        band_keys(docs[i:i + 200], NearDedupOptions(True))
    seconds = time.process_time() - start
    bins = band_keys(docs, one_bin)
    est = np.array([(bins[:, a] == bins[:, b]).mean() for a, b in pairs])
    print(f"{'ours: compiled one-permutation (keys)':<40} {mb / seconds:>8.1f} {np.mean(est - exact):>9.3f} "
          f"{np.std(est - exact):>8.3f}")


def char_grams(text: str) -> list[bytes]:
    s = shingle_text(text)
    return [s[i:i + 5].encode() for i in range(max(len(s) - 4, 1))]


def byte_grams(text: str) -> list[bytes]:
    b = shingle_text(text).encode()
    return [b[i:i + 15] for i in range(max(len(b) - 14, 1))]


def morpheme_grams(text: str, kiwi=None) -> list[bytes]:
    tokens = [t.form for t in kiwi.tokenize(text)]
    return [" ".join(tokens[i:i + 5]).encode() for i in range(max(len(tokens) - 4, 1))]


def lsh_drop(signatures: list[np.ndarray]) -> np.ndarray:
    return np.array(reference_drop([[sig[band * ROWS:(band + 1) * ROWS].tobytes() for sig in signatures]
                                    for band in range(BANDS)]))


def shingle_kinds(docs: list[str], original_of: list[int | None]) -> None:
    import xxhash
    from kiwipiepy import Kiwi

    kiwi = Kiwi()
    mb = sum(len(d.encode()) for d in docs) / 1e6
    copies = np.array([o is not None for o in original_of])
    print(f"\n2. shingles, {mb:.1f} MB, {len(docs)} documents of which {copies.sum()} injected copies; "
          f"LSH {BANDS}x{ROWS}")
    print(f"{'shingles':<34} {'recall':>7} {'originals lost':>15} {'precision':>10} {'MB/CPU-s':>15}")
    for name, fn in (("characters, 5-grams (ours)", char_grams), ("UTF-8 bytes, 15-grams", byte_grams),
                     ("kiwipiepy morphemes, 5-grams", lambda t: morpheme_grams(t, kiwi))):
        seconds, grams = time_per_doc(docs, fn)
        sigs = [kperm_signature(np.fromiter((xxhash.xxh64_intdigest(g) for g in set(gs)), np.uint64)) for gs in grams]
        drop = lsh_drop(sigs)
        print(f"{name:<34} {drop[copies].mean():>7.3f} {drop[~copies].mean():>15.2%} "
              f"{drop[copies].sum() / max(drop.sum(), 1):>10.3f} {mb / seconds:>15.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=2, help="megabytes of original documents")
    parser.add_argument("--corpora", type=Path, default=bench_corpus_quality.CORPORA)
    args = parser.parse_args()
    bench_corpus_quality.CORPORA = args.corpora
    real = bench_corpus_quality.real_documents()
    random.Random(0).shuffle(real)
    originals, size = [], 0
    while size < args.mb * 1e6:
        originals.append(real.pop())
        size += len(originals[-1].encode())
    corpus = inject(originals, share=0.3, seed=0)
    pairs = [(o, i) for i, o in enumerate(corpus.original_of) if o is not None]
    hashing(corpus.docs, pairs)
    shingle_kinds(corpus.docs, corpus.original_of)


if __name__ == "__main__":
    main()

"""Benchmark: the CPU cost of each corpus-quality step alone, per worker, on the documents of
bench_corpus_quality.py's corpus (real multi-line Korean documents with injected near copies, and
its KorSTS evaluation file for the decontamination), after the cleaning every document gets.

Steps: decontamination, PII masking, the quality presets curated and web, and near-dedup's band
keys (a worker's BandKeySpill: batches, then the per-band sort and write); the JSON Lines reader
(of the raw corpus) with its orjson fast path beside the standard parser alone; clean.normalize
(of the raw documents) beside its compiled twin, each followed by the next step's code points. Printed: MB of cleaned
text per CPU second (the fastest of --repeat passes), and the CPU seconds of each step's first call
on one short document: for the compiled steps, loading the kernels from the disk cache (compiling
them, on a checkout's first run), a fixed cost per worker that 220 GB does not notice.

    .venv/bin/python bench/bench_steps.py [--mb 8] [--repeat 3] [--corpora DIR]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "bench")]
import bench_corpus_quality  # noqa: E402
import orjson  # noqa: E402
from data_prep.inputs import InputSpec, plan_units  # noqa: E402
from data_prep.problems import Problems  # noqa: E402
from data_prep.readers import READERS, ReadContext, ReadOptions, jsonl  # noqa: E402
from test_data_prep_readers_jsonl import StandardOnly  # noqa: E402
from data_prep import text_stats  # noqa: E402
from data_prep.clean import CleanOptions, cleaning_steps, normalize, normalize_compiled  # noqa: E402
from data_prep.decontam import decontam_steps  # noqa: E402
from data_prep.minhash import BandKeySpill, NearDedupOptions  # noqa: E402
from data_prep.pii import pii_steps  # noqa: E402
from data_prep.quality import quality_steps  # noqa: E402
from data_prep.steps import Pipeline  # noqa: E402

SHORT = "짧은 문서 하나로 첫 호출의 비용을 잰다. 연락처 010-1234-5678.\n둘째 줄."


def cpu_seconds(fn: Callable[[], object]) -> float:
    start = time.process_time()  # CPU time: the machine is shared
    fn()
    return time.process_time() - start


def band_keys_pass(docs: list[str], work: Path) -> None:
    spill = BandKeySpill(work / "keys.npy", NearDedupOptions(True))
    for doc in docs:
        spill.add(doc)
    spill.commit()


def read_pass(path: Path) -> None:
    for unit in plan_units([InputSpec("bench", str(path))], None, "line", 1 << 62, Problems()):
        for _ in READERS[unit.fmt](unit, ReadContext(ReadOptions())):
            pass


def reader_rates(path: Path, repeat: int) -> dict[str, float]:
    """MB of JSON Lines per CPU second, with orjson and with the standard parser (interleaved, so
    that a noisy neighbour slows both alike)."""
    best: dict[str, float] = {}
    for _ in range(repeat):
        for name, parser in (("orjson", orjson), ("standard json", StandardOnly)):
            jsonl.orjson = parser
            best[name] = min(best.get(name, float("inf")), cpu_seconds(lambda: read_pass(path)))
    jsonl.orjson = orjson
    return {name: path.stat().st_size / 1e6 / seconds for name, seconds in best.items()}


def normalize_rates(raw: list[str], repeat: int) -> dict[str, float]:
    """MB of raw documents per CPU second through clean.normalize and normalize_compiled
    (interleaved), each followed by text_stats.code_points of its result, as in a run with kernels:
    the next step's encoding, which the compiled one's cached code points spare."""
    mb = sum(len(doc.encode("utf-8")) for doc in raw) / 1e6
    best: dict[str, float] = {}
    for _ in range(repeat):
        for name, fn in (("python", normalize), ("compiled", normalize_compiled)):
            seconds = cpu_seconds(lambda: [text_stats.code_points(fn(doc)) for doc in raw])
            best[name] = min(best.get(name, float("inf")), seconds)
    return {name: mb / seconds for name, seconds in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=8, help="corpus size")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes per step; the fastest counts")
    parser.add_argument("--corpora", type=Path, default=bench_corpus_quality.CORPORA)
    args = parser.parse_args()
    bench_corpus_quality.CORPORA = args.corpora
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        raw, _, eval_file = bench_corpus_quality.build(work / "corpus.jsonl", args.mb)
        clean = Pipeline.of(cleaning_steps("jsonl", CleanOptions()))
        docs = [text for text in map(clean, raw) if text is not None]
        mb = sum(len(d.encode("utf-8")) for d in docs) / 1e6
        steps = {}
        load = cpu_seconds(lambda: steps.update(decontamination=decontam_steps((str(eval_file),))))
        steps.update({"PII masking": pii_steps("mask"), "quality curated": quality_steps("curated"),
                      "quality web": quality_steps("web")})
        print(f"{len(docs)} cleaned documents, {mb:.1f} MB; loading the evaluation file (the main process's "
              f"job, numba's start-up included) {load:.2f} CPU s")
        print(f"{'step':<22} {'first call CPU s':>16} {'MB/CPU-s':>9}")
        for name, step_list in steps.items():
            # Through a pipeline, as extraction runs them: the quality filters measure a document once.
            first = cpu_seconds(lambda: Pipeline.of(step_list)(SHORT))
            pipeline = Pipeline.of(step_list)
            best = min(cpu_seconds(lambda: [pipeline(d) for d in docs]) for _ in range(args.repeat))
            print(f"{name:<22} {first:>16.2f} {mb / best:>9.1f}")
        first = cpu_seconds(lambda: band_keys_pass([SHORT], work))
        best = min(cpu_seconds(lambda: band_keys_pass(docs, work)) for _ in range(args.repeat))
        print(f"{'near-dedup band keys':<22} {first:>16.2f} {mb / best:>9.1f}")
        rates = normalize_rates(raw, args.repeat)
        print(f"normalize (+ the next step's code points), MB per CPU s: Python {rates['python']:.1f}, compiled "
              f"{rates['compiled']:.1f} ({rates['compiled'] / rates['python']:.2f}x)")
        rates = reader_rates(work / "corpus.jsonl", args.repeat)
        print(f"JSON Lines reader, MB of input per CPU s: orjson {rates['orjson']:.1f}, standard json alone "
              f"{rates['standard json']:.1f} ({rates['orjson'] / rates['standard json']:.2f}x)")


if __name__ == "__main__":
    main()

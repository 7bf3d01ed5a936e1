"""Benchmark: the JSON Lines reader (readers/jsonl.py) with its orjson fast path, and with the
standard parser alone (UTF-8 decode, then json with strict=False), side by side on
bench_corpus_quality.py's corpus of real Korean documents. Printed: MB of input per CPU second,
the fastest of --repeat passes, and the ratio.

    .venv/bin/python bench/bench_jsonl.py [--mb 24] [--repeat 3] [--corpora DIR]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "bench")]
import bench_corpus_quality  # noqa: E402
from data_prep.inputs import InputSpec, plan_units  # noqa: E402
from data_prep.problems import Problems  # noqa: E402
from data_prep.readers import READERS, ReadContext, ReadOptions, jsonl  # noqa: E402
from test_data_prep_readers_jsonl import StandardOnly  # noqa: E402


def read_cpu_seconds(path: Path) -> float:
    units = plan_units([InputSpec("bench", str(path))], None, "line", 1 << 62, Problems())
    start = time.process_time()  # CPU time: the machine is shared
    for unit in units:
        for _ in READERS[unit.fmt](unit, ReadContext(ReadOptions())):
            pass
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=float, default=24, help="corpus size")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes per parser; the fastest counts")
    parser.add_argument("--corpora", type=Path, default=bench_corpus_quality.CORPORA)
    args = parser.parse_args()
    bench_corpus_quality.CORPORA = args.corpora
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.jsonl"
        bench_corpus_quality.build(corpus, args.mb)
        mb = corpus.stat().st_size / 1e6
        best = {}
        for _ in range(args.repeat):  # interleaved, so that a noisy neighbour slows both alike
            for name, module in (("orjson", orjson), ("standard json", StandardOnly)):
                jsonl.orjson = module
                best[name] = min(best.get(name, float("inf")), read_cpu_seconds(corpus))
        jsonl.orjson = orjson
        print(f"{mb:.1f} MB of JSON Lines")
        for name, seconds in best.items():
            print(f"{name:<14} {mb / seconds:>7.1f} MB/CPU-s")
        print(f"ratio          {best['standard json'] / best['orjson']:>7.2f}x")


if __name__ == "__main__":
    main()

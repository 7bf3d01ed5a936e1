"""Benchmark: what the xxh3-64 checksums of checkpoint files cost, at the large preset's size.

A large-preset checkpoint (bf16 weights, ZeRO-2) is 2 bytes per parameter of bf16 weights in
mp_rank_00_model_states.pt (rank 0) plus 12 bytes per parameter of fp32 master weights and Adam's
two moments, split evenly over the ranks' *_optim_states.pt. Each rank hashes only the files it
writes, while writing them, so a save costs each rank the hashing of its own share; resuming reads
every file once more to verify it (the node's ranks share that work).

Side by side on the biggest file one rank writes (`--ranks` GPUs): DeepSpeed's plain torch.save to a
path, the same through SafeCheckpointEngine.save (hashing while writing), and reading the file back
to verify it; plus xxh3-64 over the bytes in memory (the CPU cost alone).

    .venv/bin/python bench/bench_checkpoint_checksum.py [--ranks 8] [--scale 1.0] [--dir /tmp]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import xxhash

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pretrain.checkpoint_engine import SafeCheckpointEngine, file_checksum  # noqa: E402
from pretrain.modeling import GBSWT5Config, GBSWT5ForConditionalGeneration  # noqa: E402


def large_preset_parameters() -> int:
    with torch.device("meta"):
        model = GBSWT5ForConditionalGeneration(GBSWT5Config.from_preset("large"))
    return sum(p.numel() for p in model.parameters())


def best_times(repeats: int, **works) -> dict[str, float]:
    """The best of `repeats` runs of each work, interleaved so that disk write-back from one does
    not land on the same competitor every time."""
    best = {name: float("inf") for name in works}
    for _ in range(repeats):
        for name, work in works.items():
            start = time.perf_counter()
            work()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=8, help="GPUs the optimizer states are split over")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the real file size to write")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where to write (the checkpoint disk)")
    args = parser.parse_args()

    params = large_preset_parameters()
    weights, optimizer = 2 * params, 12 * params
    per_rank = max(weights, optimizer // args.ranks)  # rank 0's model states, or one optimizer share
    size = int(per_rank * args.scale) // 4 * 4
    print(f"large preset: {params / 1e9:.3f} B parameters; checkpoint {(weights + optimizer) / 1e9:.1f} GB "
          f"(bf16 weights {weights / 1e9:.2f} GB + fp32 master and Adam states {optimizer / 1e9:.1f} GB); "
          f"over {args.ranks} ranks the biggest file one rank writes is {per_rank / 1e9:.2f} GB; "
          f"benchmarking {size / 1e9:.2f} GB")

    state = {"single_partition_of_fp32_groups": [torch.rand(size // 4)]}
    engine = SafeCheckpointEngine()
    path = Path(tempfile.mkdtemp(dir=args.dir)) / "zero_pp_rank_0_mp_rank_00_optim_states.pt"
    try:
        data = state["single_partition_of_fp32_groups"][0].numpy().data
        best = best_times(args.repeats, plain=lambda: torch.save(state, path),
                          hashed=lambda: engine.save(state, str(path)), verify=lambda: file_checksum(path),
                          in_memory=lambda: xxhash.xxh3_64(data).hexdigest())
        plain, hashed, verify, in_memory = best["plain"], best["hashed"], best["verify"], best["in_memory"]
    finally:
        path.unlink(missing_ok=True)
        path.parent.rmdir()
    gbps = size / 1e9
    print(f"{'torch.save (DeepSpeed)':36s} {plain:7.2f} s  {gbps / plain:6.2f} GB/s")
    print(f"{'save hashing while writing':36s} {hashed:7.2f} s  {gbps / hashed:6.2f} GB/s  "
          f"x{hashed / plain:.2f} of torch.save, +{hashed - plain:.2f} s")
    print(f"{'xxh3-64 in memory (CPU cost)':36s} {in_memory:7.2f} s  {gbps / in_memory:6.2f} GB/s  "
          f"{in_memory / plain:.0%} of torch.save")
    print(f"{'verify on resume (read + hash)':36s} {verify:7.2f} s  {gbps / verify:6.2f} GB/s  "
          f"(page cache: the file was just written)")
    total = (weights + optimizer) * args.scale
    print(f"per save, each rank's added time is about {hashed - plain:.2f} s (ranks hash in parallel); "
          f"verifying all {total / 1e9:.1f} GB on resume at this read rate: {total / (size / verify):.0f} s "
          f"shared among a node's ranks")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()

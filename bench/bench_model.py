"""Side-by-side CPU benchmarks of the GBSWT5 model against its competitors, in one run.

(a) GBST forward+backward: ours vs charformer-pytorch's GBST (blocks 1,2,3,6,9, downsample 3,
    consensus on, batch 8 x 1024 bytes, d_model 512).
(b) One training step (forward, backward, AdamW update): GBSWT5 vs T5ForConditionalGeneration of
    the same dimensions (ByT5 layout: encoder 3x the decoder depth; 1024-byte inputs, 189-byte targets).
(c) The same GBSWT5 step with torch's scaled_dot_product_attention (relative position bias as the
    additive mask; the default on accelerators) vs transformers' eager attention (the default on CPU,
    chosen from this comparison).

Timings interleave the two sides and report medians, so load from other processes hits both alike.
Usage: python bench/bench_model.py [--repeats N] [--part gbst|step|attn|all]
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn
from transformers import T5Config, T5ForConditionalGeneration

from pretrain.modeling import GBST, GBSWT5Config, GBSWT5ForConditionalGeneration

BLOCKS = (1, 2, 3, 6, 9)


def interleaved_medians(ours: Callable[[], None], theirs: Callable[[], None], repeats: int) -> tuple[float, float]:
    ours(), theirs()  # warm-up (allocator, one-time kernel selection)
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for side, fn in enumerate((ours, theirs)):
            start = time.perf_counter()
            fn()
            times[side].append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def bench_gbst(repeats: int) -> float:
    from charformer_pytorch import GBST as CharformerGBST

    torch.manual_seed(0)
    dim, batch, length = 512, 8, 1024
    ids = torch.randint(3, 259, (batch, length))
    mask = torch.ones(batch, length, dtype=torch.bool)
    ours = GBST(nn.Embedding(384, dim), BLOCKS, downsample_factor=3, score_consensus_attn=True)
    theirs = CharformerGBST(num_tokens=384, dim=dim, blocks=tuple((m, 0) for m in BLOCKS), downsample_factor=3,
                            score_consensus_attn=True)

    def step(module: nn.Module) -> Callable[[], None]:
        def run() -> None:
            module.zero_grad(set_to_none=True)
            out, _ = module(ids, mask)
            out.mean().backward()
        return run

    t_ours, t_theirs = interleaved_medians(step(ours), step(theirs), repeats)
    print(f"(a) GBST fwd+bwd, batch {batch} x {length} bytes, d_model {dim}: ours {t_ours * 1e3:.1f} ms, "
          f"charformer-pytorch {t_theirs * 1e3:.1f} ms, speed-up {t_theirs / t_ours:.2f}x")
    return t_theirs / t_ours


STEP_DIMS = dict(d_model=384, d_ff=1024, num_layers=6, num_decoder_layers=2, num_heads=6, d_kv=64)
STEP_BATCH, STEP_INPUTS, STEP_TARGETS = 4, 1024, 189


def training_step(model: nn.Module) -> Callable[[], None]:
    torch.manual_seed(0)
    inputs = torch.randint(3, 259, (STEP_BATCH, STEP_INPUTS))
    labels = torch.randint(3, 259, (STEP_BATCH, STEP_TARGETS))
    mask = torch.ones_like(inputs)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def run() -> None:
        optimizer.zero_grad(set_to_none=True)
        model(input_ids=inputs, attention_mask=mask, labels=labels, use_cache=False).loss.backward()
        optimizer.step()
    return run


def step_description() -> str:
    layout = ", ".join(f"{k} {v}" for k, v in STEP_DIMS.items())
    return f"training step, batch {STEP_BATCH}, {STEP_INPUTS}/{STEP_TARGETS} bytes, {layout}"


def bench_step(repeats: int) -> float:
    # Both sides use eager attention, the faster one on CPU (part c), so only the architecture differs.
    torch.manual_seed(0)
    gbswt5 = GBSWT5ForConditionalGeneration._from_config(GBSWT5Config.from_preset("tiny", **STEP_DIMS),
                                                         attn_implementation="eager")
    byt5_config = T5Config(vocab_size=384, feed_forward_proj="gated-gelu", dropout_rate=0.0, tie_word_embeddings=False,
                           decoder_start_token_id=0, **STEP_DIMS)
    byt5 = T5ForConditionalGeneration._from_config(byt5_config, attn_implementation="eager")
    t_ours, t_theirs = interleaved_medians(training_step(gbswt5), training_step(byt5), repeats)
    print(f"(b) {step_description()}, eager attention: GBSWT5 {t_ours * 1e3:.0f} ms, "
          f"T5ForConditionalGeneration {t_theirs * 1e3:.0f} ms, "
          f"speed-up {t_theirs / t_ours:.2f}x")
    return t_theirs / t_ours


def bench_attention(repeats: int) -> float:
    config = GBSWT5Config.from_preset("tiny", **STEP_DIMS)
    sdpa = GBSWT5ForConditionalGeneration._from_config(config, attn_implementation="sdpa")
    eager = GBSWT5ForConditionalGeneration._from_config(config, attn_implementation="eager")
    eager.load_state_dict(sdpa.state_dict())
    t_sdpa, t_eager = interleaved_medians(training_step(sdpa), training_step(eager), repeats)
    print(f"(c) GBSWT5 {step_description()}: sdpa {t_sdpa * 1e3:.0f} ms, eager {t_eager * 1e3:.0f} ms, "
          f"sdpa speed-up {t_eager / t_sdpa:.2f}x")
    return t_eager / t_sdpa


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--part", choices=("gbst", "step", "attn", "all"), default="all")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if args.part in ("gbst", "all"):
        bench_gbst(args.repeats)
    if args.part in ("step", "all"):
        bench_step(args.repeats)
    if args.part in ("attn", "all"):
        bench_attention(args.repeats)


if __name__ == "__main__":
    main()

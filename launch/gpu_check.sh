#!/usr/bin/env bash
# Throughput check on one GPU: the large preset (GBST-KEByT5-large, ZeRO-2, bf16, 1024-byte
# inputs) for a few dozen steps on synthetic Korean shards; prints examples/s, MFU and peak memory.
#
#   bash launch/gpu_check.sh                        # H200: large, micro batch 32, 30 steps
#   INIT_FROM=/models/byt5-large bash launch/gpu_check.sh   # warm start from a local ByT5 checkpoint
#   CONFIG=ds_configs/tiny.json MICRO=2 STEPS=4 INPUT_LENGTH=128 bash launch/gpu_check.sh   # CPU dry run
#   ATTENTION=flex COMPILE=true LOSS=chunked CHECKPOINTING=true bash launch/gpu_check.sh   # run.model kernels
#
# MFU counts model FLOPs (pretrain/flops.py; docs/ARCHITECTURE.md, FLOPs and MFU) against the
# device's dense bf16 peak (H100/H200 989 TFLOP/s; PEAK_TFLOPS overrides). The first WARMUP steps
# are not counted.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
DEEPSPEED="${DEEPSPEED:-$(dirname "$PY")/deepspeed}"
CONFIG="${CONFIG:-$ROOT/ds_configs/large.json}"
MICRO="${MICRO:-32}"
STEPS="${STEPS:-30}"
WARMUP="${WARMUP:-5}"
INPUT_LENGTH="${INPUT_LENGTH:-1024}"
INIT_FROM="${INIT_FROM:-none}"
ATTENTION="${ATTENTION:-auto}"
COMPILE="${COMPILE:-false}"
LOSS="${LOSS:-logits}"
CHECKPOINTING="${CHECKPOINTING:-false}"
WORK="${WORK:-$(mktemp -d)}"
cd "$ROOT"

# Synthetic Korean text (random syllables and spaces, one document per line), packed by the
# real pipeline into chunks whose span-corrupted inputs are INPUT_LENGTH ids.
mkdir -p "$WORK"
"$PY" - "$WORK/synthetic.txt" "$INPUT_LENGTH" "$MICRO" <<'PYEOF'
import sys
import numpy as np
from data_prep.span_lengths import raw_length_for_inputs

path, input_length, micro = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
count = 64 * micro * raw_length_for_inputs(input_length) // 2  # ~2.6 bytes a character: 64 micro-batches, with room
chars = np.where(rng.random(count) < 0.2, 0x20, rng.integers(0xAC00, 0xD7A4, count))
text = "".join(map(chr, chars))
with open(path, "w", encoding="utf-8") as out:
    out.writelines(text[i:i + 100] + "\n" for i in range(0, len(text), 100))
PYEOF
"$PY" -m data_prep "synthetic=$WORK/synthetic.txt" -o "$WORK/shards" --input-length "$INPUT_LENGTH" --val-docs 0

"$DEEPSPEED" --num_gpus 1 launch/pretrain.py --config "$CONFIG" --data "$WORK/shards" --output_dir "$WORK/run" \
  --max_steps "$STEPS" --init_from "$INIT_FROM" \
  --set train_micro_batch_size_per_gpu="$MICRO" --set gradient_accumulation_steps=1 \
  --set data.input_length="$INPUT_LENGTH" --set data.num_workers=2 --set schedule.warmup_steps=1 \
  --set logging.interval=1 --set logging.wandb=false --set eval.batches=0 \
  --set model.attention="$ATTENTION" --set model.compile="$COMPILE" --set model.loss="$LOSS" \
  --set model.gradient_checkpointing="$CHECKPOINTING" \
  --set checkpoint.interval=1000000 --set checkpoint.save_final=false \
  ${PEAK_TFLOPS:+--set logging.peak_tflops="$PEAK_TFLOPS"}

"$PY" - "$WORK/run/metrics.jsonl" "$WARMUP" <<'PYEOF'
import json, statistics, sys
records = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
train = [r for r in records if r["kind"] == "train"][int(sys.argv[2]):]
if not train:
    sys.exit("no steps after the warmup steps; raise STEPS")
median = lambda key: statistics.median(r[key] for r in train if r.get(key) is not None)
print(f"steps measured: {len(train)} (after {sys.argv[2]} warmup steps)")
print(f"examples/s: {median('examples_per_s'):.2f}   input bytes/s: {median('input_bytes_per_s'):.0f}   "
      f"model TFLOP/s: {median('model_tflops'):.1f}")
print(f"MFU: {median('mfu'):.1%}" if any("mfu" in r for r in train) else "MFU: n/a (no known peak for this device; set PEAK_TFLOPS)")
peak = max(r.get("peak_mem_gb", r.get("peak_rss_gb", 0)) for r in train)
print(f"peak memory: {peak:.1f} GiB ({'GPU allocated' if 'peak_mem_gb' in train[-1] else 'CPU RSS'})")
print(f"final loss: {train[-1]['loss']:.3f}")
PYEOF

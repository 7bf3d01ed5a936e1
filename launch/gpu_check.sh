#!/usr/bin/env bash
# The GPU measurement matrix on one device: the large preset (GBST-KEByT5-large, ZeRO-2, bf16,
# 1024-byte inputs) at several micro-batches, attention kernels, compile and checkpointing, a
# float32 reference, then plain ByT5-large, each for STEPS steps on synthetic Korean shards.
# launch/gpu_check.py runs them in one process; pretrain/gpu_matrix.py says which combinations
# are run, which are skipped and why. REPORT_DIR gets gpu_check.json and gpu_check.md, rewritten
# after every configuration; configurations that would end after BUDGET_S are recorded as skipped.
#
#   bash launch/gpu_check.sh                                 # H200: the whole matrix in 480 s
#   MICROS=32,64 ATTENTIONS=sdpa BYT5=off bash launch/gpu_check.sh   # a part of it
#   CONFIG=ds_configs/tiny.json MICROS=2,4 ATTENTIONS=eager,sdpa COMPILE=off STEPS=3 WARMUP=1 INPUT_LENGTH=128 bash launch/gpu_check.sh   # CPU dry run
#
# MFU counts model FLOPs (pretrain/flops.py; docs/ARCHITECTURE.md, FLOPs and MFU) against the
# device's dense bf16 peak (H100/H200 989 TFLOP/s; PEAK_TFLOPS overrides). The first WARMUP
# steps of each configuration are not measured. INIT_FROM warm-starts every configuration.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ -z "${PY:-}" ]]; then
  PY="$ROOT/.venv/bin/python"
  [[ -x "$PY" ]] || PY=python3  # a machine without the venv (the GPU machine: see .whl/ in the README)
fi
WORK="${WORK:-$(mktemp -d)}"
cd "$ROOT"
exec "$PY" launch/gpu_check.py --config "${CONFIG:-ds_configs/large.json}" --report-dir "${REPORT_DIR:-runs/gpu_check}" \
  --work "$WORK" --micros "${MICROS:-16,32,48}" --attentions "${ATTENTIONS:-sdpa,eager,flex}" \
  --compile "${COMPILE:-on}" --byt5 "${BYT5:-on}" --steps "${STEPS:-12}" --warmup "${WARMUP:-4}" \
  --input-length "${INPUT_LENGTH:-1024}" --budget-s "${BUDGET_S:-480}" --init-from "${INIT_FROM:-none}" \
  --rows "${ROWS:-4096}" ${PEAK_TFLOPS:+--peak-tflops "$PEAK_TFLOPS"}

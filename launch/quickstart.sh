#!/usr/bin/env bash
# The README's main job: the whole pipeline on the Korean sample that ships in the konlpy wheel
# (the constitution and ten bills), on a CPU in minutes.
#
#   1. .venv set-up                      launch/setup_venv.sh
#   2. corpus -> shards + validation      python -m data_prep
#   3. pretraining, stopped half way and resumed from the checkpoint
#                                         deepspeed launch/pretrain.py --config ds_configs/tiny.json
#   4. export to Hugging Face format      python -m pretrain.export
#   5. span filling with the export       python -m pretrain.fill
#
# Settings (environment):
#   QUICKSTART_DIR    where everything goes (default runs/quickstart; replaced on each run)
#   QUICKSTART_STEPS  training steps in all (default 300; CI runs fewer)
#   QUICKSTART_INPUT_LENGTH  span-corrupted input length in ids (default 1024, ByT5's; the
#                     shards then hold 1193-byte chunks)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup_venv.sh"
cd "$ROOT"
export PATH="$VENV/bin:$PATH"
# Without a GPU, tell DeepSpeed so at once; otherwise every process warns that it fell back to CPU.
if ! "$PY" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
  export DS_ACCELERATOR=cpu
fi
# wandb: the run logs offline unless the user configured otherwise (WANDB_MODE is respected).
export WANDB_MODE="${WANDB_MODE:-offline}"

OUT="${QUICKSTART_DIR:-runs/quickstart}"
STEPS="${QUICKSTART_STEPS:-300}"
INPUT_LENGTH="${QUICKSTART_INPUT_LENGTH:-1024}"
HALF=$((STEPS / 2))
SHARDS="$OUT/shards"
RUN="$OUT/run"
EXPORT="$OUT/hf_model"
rm -rf "$OUT"
mkdir -p "$OUT"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1/4 data_prep: Korean constitution + bills -> shards ($SHARDS)"
"$PY" -m data_prep prepare --konlpy-sample -o "$SHARDS" --text-mode block \
  --input-length "$INPUT_LENGTH" --val-fraction 0.1

# --stop_at ends the first invocation half way without shortening the LR schedule, as a
# time-limited cluster job would; the second invocation finds the checkpoint and resumes.
train() {
  deepspeed --log_level warning --num_gpus 1 launch/pretrain.py --config ds_configs/tiny.json \
    --data "$SHARDS" --output_dir "$RUN" --max_steps "$STEPS" \
    --set data.input_length="$INPUT_LENGTH" --set eval.interval=50 --set checkpoint.interval=50 \
    --set logging.interval=10 "$@"
}
step "2/4 pretraining the tiny preset: steps 1-$HALF, then stop"
train --stop_at "$HALF"
step "3/4 resuming from the step-$HALF checkpoint: steps $((HALF + 1))-$STEPS"
train

step "4/4 export to Hugging Face format ($EXPORT) and span filling"
"$PY" -m pretrain.export "$RUN" "$EXPORT"
# A model this small fills spans with its most frequent bytes; the point is the round trip.
"$PY" -m pretrain.fill "$EXPORT" --max-new-tokens 40 "대한민국은 민주<mask>이다." "모든 국민은 <mask>의 자유를 가진다."

final_eval=$("$PY" - "$RUN/metrics.jsonl" <<'PYEOF'
import sys
from pathlib import Path
from pretrain.metrics import read_metrics
last = [r for r in read_metrics(Path(sys.argv[1])) if r["kind"] == "eval"][-1]
print(f"step {last['step']}: loss {last['loss']:.3f}, byte accuracy {last['byte_accuracy']:.1%}")
PYEOF
)

step "where everything went"
printf '%-22s %s\n' \
  "final evaluation" "$final_eval" \
  "shards" "$SHARDS  (python -m data_prep inspect $SHARDS)" \
  "run directory" "$RUN" \
  "metrics" "$RUN/metrics.jsonl" \
  "loss curve" "$RUN/loss_curve.png" \
  "checkpoints" "$RUN/checkpoints" \
  "exported model" "$EXPORT  (AutoModelForSeq2SeqLM.from_pretrained(..., trust_remote_code=True))"

#!/usr/bin/env bash
# launch/gpu_check.sh on a GPU machine without network and without this project's venv: the
# wheels that launch/gpu_wheels.sh collected in .whl/ go into .pydeps/ (listed wheels only, no
# resolver, nothing written into the machine's Python environment), then the check runs with
# the machine's Python (PY, default python3) and .pydeps/ first on its path. The same settings
# as gpu_check.sh (REPORT_DIR, BUDGET_S, MICROS, ...); WHEELS and DEPS move .whl/ and .pydeps/.
#
#   REPORT_DIR=/some/dir BUDGET_S=420 bash launch/gpu_check_offline.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PY="${PY:-python3}"
WHEELS="${WHEELS:-$ROOT/.whl}"
DEPS="${DEPS:-$ROOT/.pydeps}"
install() {  # install REQUIREMENTS-FILE
  "$PY" -m pip install --quiet --no-index --no-deps --find-links "$WHEELS" --target "$DEPS" --upgrade -r "$1"
}
if [[ ! -f "$WHEELS/requirements.txt" ]]; then
  echo "gpu_check_offline: no $WHEELS/requirements.txt: run launch/gpu_wheels.sh where there is network" >&2
  exit 2
fi
install "$WHEELS/requirements.txt"
install "$WHEELS/requirements-datasets.txt" || echo "gpu_check_offline: datasets not installed (the check does not need it)" >&2
PYTHONPATH="$DEPS" "$PY" -c "import sys, torch, transformers, deepspeed; print('python', sys.version.split()[0], 'torch', torch.__version__, 'transformers', transformers.__version__, 'deepspeed', deepspeed.__version__, 'cuda', torch.cuda.is_available())"
export PYTHONPATH="$DEPS${PYTHONPATH:+:$PYTHONPATH}"
exec bash "$ROOT/launch/gpu_check.sh"

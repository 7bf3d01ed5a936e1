#!/usr/bin/env bash
# Create (or reuse) the virtual environment at .venv in the repo root and install the project.
# Sourced by launch/quickstart.sh and tests/run.sh; leaves PY pointing at the venv's python.
#
# torch is chosen before the project is installed, because a plain `pip install torch` pulls a
# CUDA build of several GB:
#   * a torch already importable by the system python3 (a GPU box) is reused as it is, through
#     --system-site-packages, and never reinstalled;
#   * otherwise, with an NVIDIA driver present, pip's default (CUDA) torch is installed;
#   * otherwise the CPU build, TORCH_SPEC (default torch==2.13.0, which these machines hold on local
#     disk; elsewhere set PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1

# pip, minus one warning that some machines' pip configuration prints per missing index folder.
pip_install() {
  "$PY" -m pip install -q "$@" 2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
}

if [ ! -x "$PY" ]; then
  if python3 -c 'import torch' >/dev/null 2>&1; then
    echo "[setup] reusing the system torch ($(python3 -c 'import torch; print(torch.__version__)'))"
    python3 -m venv --system-site-packages "$VENV"
  else
    python3 -m venv "$VENV"
  fi
fi

if ! "$PY" -c 'import torch' >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
    echo "[setup] installing torch (CUDA build)"
    pip_install torch
  else
    echo "[setup] installing ${TORCH_SPEC:-torch==2.13.0} (CPU build)"
    pip_install "${TORCH_SPEC:-torch==2.13.0}"
  fi
fi

# Reinstall the project only when its packaging changed; a reused venv starts in a second.
stamp="$VENV/.gbst-kebyt5-installed"
want="$(cat "$ROOT/setup.cfg" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing the project and its dependencies into .venv"
  pip_install -e "$ROOT[dev]"
  # The Korean sample corpus (constitution and bills) ships in the konlpy wheel. Only its data
  # files are used, so its JVM dependencies are not installed.
  pip_install --no-deps 'konlpy==0.6.0'
  echo "$want" > "$stamp"
fi
export PY

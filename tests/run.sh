#!/usr/bin/env bash
# The README's test command: set up .venv, then run the whole test suite.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../launch/setup_venv.sh"
cd "$ROOT"
exec "$PY" -m pytest -q "$@"

#!/usr/bin/env bash
# The README's main-job command.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup_venv.sh"
cd "$ROOT"
echo "main job not wired yet"

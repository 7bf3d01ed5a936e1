#!/usr/bin/env bash
# .whl/: what a GPU machine without network lacks to run launch/gpu_check.sh, collected here from
# the package registry. It has torch, transformers (and what they require), pyarrow and tqdm; it
# gets DeepSpeed (a pure-Python wheel built from its sdist with no op prebuilt: ZeRO-2 with
# torch's AdamW JIT-builds none) with its requirements, pydantic, xxhash, ijson and Liger
# Kernel (requirements.txt), and datasets with its requirements (requirements-datasets.txt: training
# does not import it), for every Python in PYTHONS (the machine's is not known here; datasets
# for DATASETS_PYTHONS: pandas is 12 MB a Python), each at this environment's version where the
# registry offers it for that Python, else its newest.
# Not carried: numba and llvmlite (llvmlite's wheel alone is ~60 MB; gpu_check writes its shards
# without data prep, so nothing imports them), matplotlib (no loss-curve PNG then), wandb.
#
#   bash launch/gpu_wheels.sh                       # .whl/, checked against LIMIT_MIB (60)
#   PYTHONS=3.12 DATASETS_PYTHONS=3.12 bash launch/gpu_wheels.sh   # one Python only
#
# On the GPU machine (the listed wheels only: no resolver, nothing written into its environment):
#   python3 -m pip install --no-index --no-deps --find-links .whl --target .pydeps -r .whl/requirements.txt
#   python3 -m pip install --no-index --no-deps --find-links .whl --target .pydeps -r .whl/requirements-datasets.txt
#   PYTHONPATH=$PWD/.pydeps PY=python3 bash launch/gpu_check.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
DEST="${DEST:-$ROOT/.whl}"
PYTHONS="${PYTHONS:-3.10 3.11 3.12 3.13 3.14}"
DATASETS_PYTHONS="${DATASETS_PYTHONS:-3.11 3.12 3.13}"
LIMIT_MIB="${LIMIT_MIB:-60}"
STAGE="$DEST.partial"
rm -rf "$STAGE"
mkdir -p "$STAGE"

# name==version a line: the requirements of what is carried, recursively, minus those of what
# the machine has (pydantic is always carried: transformers requires it only in some versions).
"$PY" - "$STAGE" <<'PYEOF'
import importlib.metadata as md
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def closure(*names):
    seen, todo = set(), [canonicalize_name(n) for n in names]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            reqs = (Requirement(text) for text in md.requires(name) or [])
            todo += [canonicalize_name(r.name) for r in reqs if r.marker is None or r.marker.evaluate({"extra": ""})]
    return seen


present = closure("torch", "transformers", "pyarrow", "tqdm") - (closure("pydantic") - closure("torch"))
training = closure("deepspeed", "pydantic", "xxhash", "ijson") - present
datasets = closure("datasets") - present - training
for file, names in (("requirements.txt", training), ("requirements-datasets.txt", datasets)):
    Path(sys.argv[1], file).write_text("".join(f"{n}=={md.version(n)}\n" for n in sorted(names)))
# run.model.loss=liger on CUDA: pure Python over the machine's torch and triton; not installed
# here (no CUDA), so its newest.
with Path(sys.argv[1], "requirements.txt").open("a") as out:
    out.write("liger-kernel\n")
PYEOF

fetch() {  # fetch PYTHON REQUIREMENT: its binary or pure wheel for that Python, into the stage
  "$PY" -m pip download --quiet --no-deps --only-binary :all: --python-version "$1" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d "$STAGE" "$2" 2>/dev/null
}
collect() {  # collect REQUIREMENTS-FILE PYTHONS...
  local file="$1" pin version
  shift
  for pin in $(cat "$file"); do
    if [[ "$pin" == deepspeed==* ]]; then
      DS_BUILD_OPS=0 "$PY" -m pip wheel --quiet --no-deps --no-build-isolation --no-binary deepspeed "$pin" -w "$STAGE"
      continue
    fi
    for version in "$@"; do
      fetch "$version" "$pin" || { fetch "$version" "${pin%%==*}" &&
        echo "gpu_wheels: $pin is not offered for Python $version; took the newest that is" >&2; } ||
        echo "gpu_wheels: no wheel of ${pin%%==*} for Python $version" >&2
    done
  done
}
collect "$STAGE/requirements.txt" $PYTHONS
collect "$STAGE/requirements-datasets.txt" $DATASETS_PYTHONS
# The wheelhouse pins the versions; unpinned names let pip take the one built for its Python.
sed -i 's/==.*//' "$STAGE/requirements.txt" "$STAGE/requirements-datasets.txt"

size_kib="$(du -sk "$STAGE" | cut -f1)"
if (( size_kib > LIMIT_MIB * 1024 )); then
  echo "gpu_wheels: $STAGE holds $((size_kib / 1024)) MiB, over LIMIT_MIB=$LIMIT_MIB; fewer PYTHONS?" >&2
  exit 1
fi
rm -rf "$DEST"
mv "$STAGE" "$DEST"
echo "gpu_wheels: $DEST: $(ls "$DEST"/*.whl | wc -l) wheels, $((size_kib / 1024)) MiB; Python $PYTHONS (datasets: $DATASETS_PYTHONS)"

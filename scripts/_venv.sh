# Sourced by the run-* scripts: make .venv (once) and install vidsift with the given extras.
# torch is pinned to the CPU build that these machines carry locally; with CUDA machines,
# install your torch first and it is kept.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
python -c "import torch" 2>/dev/null || python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[${1:-test}]"

# Sourced by the run-* scripts: make .venv (once) and install vidsift with the given extras
# (`_venv.sh test` for the suite; `_venv.sh main`: vidsift alone, no extras, for the main job).
# torch is pinned to the CPU build that these machines carry locally; with CUDA machines,
# install your torch first and it is kept. Re-installs only when pyproject.toml changes;
# pip's output goes to .venv/install.log and is shown only when the install fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
extra=${1:-test}
if [ "$extra" = main ]; then spec="."; else spec=".[$extra]"; fi
stamp=".venv/.installed-${extra}-$(sha1sum pyproject.toml | cut -c1-12)"
if [ ! -e "$stamp" ]; then
  echo "installing vidsift${spec#.} into .venv (log: .venv/install.log) ..." >&2
  if ! { python -m pip install --upgrade pip \
         && { python -c "import torch" 2>/dev/null || python -m pip install "torch==2.13.0"; } \
         && python -m pip install -e "$spec"; } > .venv/install.log 2>&1; then
    tail -n 30 .venv/install.log >&2
    echo "error: installing vidsift failed (full log: .venv/install.log)" >&2
    exit 1
  fi
  touch "$stamp"
fi

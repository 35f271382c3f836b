# Sourced by the run-* scripts and scripts/vidsift: make .venv (once) and install vidsift with the
# given extras (`_venv.sh test` for the suite; `_venv.sh main`: vidsift alone, no extras).
# torch is pinned to the CPU build that these machines carry locally; with CUDA machines,
# install your torch first and it is kept. Re-installs only when pyproject.toml changes.
# Each step prints one line when it starts and one when it is done (with its seconds) on stderr;
# pip's own output goes to .venv/install.log and is shown only when a step fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}

_step() {  # _step "what" command...: one line before, one after, the log's tail on failure
  local what=$1 t0=$SECONDS
  shift
  echo "vidsift set-up: $what ..." >&2
  if ! "$@" >> .venv/install.log 2>&1; then
    tail -n 30 .venv/install.log >&2
    echo "error: $what failed (full log: .venv/install.log)" >&2
    exit 1
  fi
  echo "vidsift set-up: $what done ($((SECONDS - t0)) s)" >&2
}

if [ ! -x .venv/bin/python ]; then
  echo "vidsift set-up: creating .venv ..." >&2
  "$PY" -m venv .venv
fi
. .venv/bin/activate
extra=${1:-test}
if [ "$extra" = main ]; then spec="."; else spec=".[$extra]"; fi
stamp=".venv/.installed-${extra}-$(sha1sum pyproject.toml | cut -c1-12)"
# The tests also run the opt-in torchcodec decoding backend: 0.13.0 is the release that loads with
# torch 2.13 CPU (--no-deps keeps that torch); it links the system FFmpeg (.ci/run installs it).
torchcodec="torchcodec==0.13.0"
if [ "$extra" = test ]; then stamp="${stamp}-${torchcodec}"; fi
if [ ! -e "$stamp" ]; then
  : > .venv/install.log
  _step "upgrading pip" python -m pip install --upgrade pip
  if ! python -c "import torch" 2>/dev/null; then
    _step "installing torch 2.13.0 (the largest download; a minute or two)" python -m pip install "torch==2.13.0"
  fi
  _step "installing vidsift${spec#.} and its dependencies" python -m pip install -e "$spec"
  if [ "$extra" = test ]; then
    _step "installing $torchcodec" python -m pip install "$torchcodec" --no-deps
  fi
  touch "$stamp"
  echo "vidsift set-up: done; 'source .venv/bin/activate' puts vidsift on your PATH (or run scripts/vidsift ...)" >&2
fi

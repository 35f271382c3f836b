#!/usr/bin/env bash
# The grounded probe's accuracy-vs-budget table (README, "Grounded probe"): the shipped probe model
# through `vidsift eval --dataset probe` on held-out seed 0 (24 clips x 6 families + 4 stream clips),
# every method configuration at 100/50/25/10% and the presets. CPU is fine (about 15 min on 2 cores).
# Writes results.jsonl, results.summary.json (with the CPU model and flags) and results.png into
# benchmarks/results/probe/, plus the training log and loss curve of the shipped checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh test
OUT=benchmarks/results/probe
ROOT=${PROBE_ROOT:-$(mktemp -d)/probe-seed0}
mkdir -p "$OUT"
rm -f "$OUT/results.jsonl"
vidsift eval --dataset probe --root "$ROOT" --seed 0 --out "$OUT/results.jsonl" --no-progress \
  --presets fast,balanced,faithful,mustdrop "$@"   # presets run only when asked
cp vidsift/probe/checkpoint/train_log.json vidsift/probe/checkpoint/loss.png vidsift/probe/checkpoint/MANIFEST.json "$OUT/"

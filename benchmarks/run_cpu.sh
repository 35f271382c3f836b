#!/usr/bin/env bash
# The CPU benchmark behind benchmarks/README.md: TTFT, KV bytes and vidsift's own overhead at
# 50%, 25%, 10% of the visual tokens vs the full run, for a 32-frame and a 128-frame video,
# on random-weight checkpoints of published 0.5B-class architectures (no downloads needed).
# Usage: bash benchmarks/run_cpu.sh [32|128|ray|all]   (results land in benchmarks/results/)
# ALLOCATION=lean: every budget's plan encodes at most 1.2x the tokens it keeps (folders get -lean)
set -euo pipefail
cd "$(dirname "$0")/.."
RES=benchmarks/results
WHAT=${1:-all}
# float32 (`auto` on a CPU; bf16 is fast only with AMX, which this CPU lacks: see environment.machine.cpu_flags).
# Two rounds, the settings alternated in each (full, 50, 25, 10, full, ...): medians per setting, every
# run's load average in bench.json (rows[].each), the CPU flags in environment.machine.
THREADS=${VIDSIFT_THREADS:-1}
common=(--budgets ${BUDGETS:-100%,50%,25%,10%} --repeat ${REPEAT:-2} --warmup ${WARMUP:-1} --warmup-mode cheapest --device cpu --dtype auto
        --max-new-tokens 8 --threads "$THREADS" --json ${ALLOCATION:+--allocation $ALLOCATION})
TAG=${ALLOCATION:+-$ALLOCATION}

if [[ $WHAT == 32 || $WHAT == all ]]; then
  # LLaVA-OneVision-0.5B (SigLIP-400M + Qwen2-0.5B, 196 tokens/frame): 32 frames = 6272 visual tokens
  python -m vidsift bench --model random:llava-onevision-0.5b --synthetic 64 --frames 32 "${common[@]}" \
    --out $RES/llava-onevision-0.5b-32f-fp32$TAG > $RES/llava-onevision-0.5b-32f-fp32$TAG.json
fi
if [[ $WHAT == 128 || $WHAT == all ]]; then
  # SmolVLM2-500M (SigLIP-93M + SmolLM2-360M, 64 tokens/frame): 128 frames = 8192 visual tokens
  python -m vidsift bench --model random:smolvlm2-500m --synthetic 128 --frames 128 "${common[@]}" \
    --out $RES/smolvlm2-500m-128f-fp32$TAG > $RES/smolvlm2-500m-128f-fp32$TAG.json
fi
if [[ $WHAT == ray || $WHAT == all ]]; then
  python benchmarks/batch_engines.py --out $RES/batch_engines.json
fi

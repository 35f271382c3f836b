"""Tokens encoded per token kept in the prompt (issue 24 item 4), per model family.

Every family here encodes a kept frame at its full tokens and merges it down to its share of the
budget, so a plan that keeps K frames at half their tokens makes the vision tower do 2x the work
the prompt holds. This asks one question about a probe-world clip (64 s, a 2-s star at 30 s,
64 candidates at 1 fps) with each family's random-weight model at 25% and 10%, the relevance
scores coming from the shipped probe model's `mllm` scorer (a real trained scorer, so relevance is
concentrated on the star), and records from each answer's stats: frames encoded, tokens encoded,
tokens in the prompt, the budget, and which allocation planned it (relevance, or spread when the
relevant frames do not fit). Allocations: ``relevance`` (coverage frames at half their tokens),
``lean`` (relevance encoding at most 1.2x the tokens kept; the code before it has no ``lean``),
``spread`` (the budget over k frames at half their tokens: the uniform scorer's plan, as in the
README's speed tables).

    python benchmarks/encode_ratio.py --out benchmarks/results/encode_ratio/after.json \
        [--archs tiny-qwen2-vl,...,smolvlm2-500m] [--budgets 25%,10%]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

ARCHS = "tiny-qwen2-vl,tiny-qwen2.5-vl,tiny-qwen3-vl,tiny-smolvlm2,tiny-llava-onevision,smolvlm2-500m"
QUESTION = "What colour was the star?"


def probe_clip(path: Path, seconds: float = 64.0, star_at: float = 30.0) -> Path:
    """A probe-world clip: drifting discs, distractor shapes every ~12 s, one 2-s star."""
    from vidsift.probe.generate import needle_scene
    from vidsift.probe.scene import BACKGROUNDS, write_video

    rng = random.Random(0)
    backgrounds = [(0.0, rng.choice(list(BACKGROUNDS)))]
    return write_video(needle_scene(rng, seconds, star_at=star_at, backgrounds=backgrounds), path, fps=2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--archs", default=ARCHS)
    parser.add_argument("--budgets", default="25%,10%")
    parser.add_argument("--allocation", default="relevance,lean,spread")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    import vidsift
    from vidsift import Pipeline
    from vidsift.bench.machine import machine_info
    from vidsift.pipeline.scorers.mllm import MllmScorer

    checkpoint = Path(vidsift.__file__).parent / "probe" / "checkpoint"
    scorer = MllmScorer(adapter=Pipeline.from_pretrained(str(checkpoint), device="cpu").adapter)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        video = str(probe_clip(Path(tmp) / "star.mp4"))
        for arch in args.archs.split(","):
            pipe = Pipeline.from_pretrained(f"random:{arch}", device="cpu")
            for budget in args.budgets.split(","):
                for allocation in args.allocation.split(","):
                    t0 = time.perf_counter()
                    answer = pipe.ask(video, QUESTION, budget=budget, scorer=scorer, allocation=allocation, max_new_tokens=1)
                    s, plan = answer.stats, answer.plan
                    row = {"arch": arch, "family": pipe.adapter.family, "group": pipe.adapter.frames_per_group,
                           "budget": budget, "allocation_asked": allocation,
                           "allocation": plan.settings.get("allocation"), "encode_ratio": plan.settings.get("encode_ratio"),
                           "relevant_frames": plan.stats.get("relevant_frames", 0),
                           "frames_candidates": s.get("frames_candidates"), "frames_encoded": s.get("frames_planned"),
                           "tokens_full": s.get("tokens_full"), "tokens_budget": s.get("tokens_budget"),
                           "tokens_encoded": s.get("tokens_encoded"), "tokens_in_prompt": s.get("tokens_in_prompt"),
                           "encoded_per_kept": round(s["tokens_encoded"] / s["tokens_in_prompt"], 3),
                           "encode_s": (s.get("time_s") or {}).get("encode"), "wall_s": round(time.perf_counter() - t0, 2)}
                    assert row["tokens_in_prompt"] <= row["tokens_budget"], row  # the budget contract
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    out = {"question": QUESTION, "video": "probe-world clip, 64 s, star at 30-32 s, 64 candidates at 1 fps",
           "scorer": "mllm (shipped probe checkpoint)", "machine": machine_info(), "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

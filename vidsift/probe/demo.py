"""The main job's demo: ask the trained probe model about a generated clip under a budget.

    python -m vidsift.probe.demo [--model M] [--budget 25%] [--family now] [--seed 0] [--json]

Writes one probe clip (seeded, into ``--dir``, default ``~/.cache/vidsift/probe-demo``), asks
its question through `Pipeline.ask` with the query-aware plan (``mllm`` scorer, ``topk``
selector) and prints the answer next to the expected one. ``--model`` asks any other checkpoint
the same question (its answer then means what that model means).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="checkpoint folder or Hub id (default: the shipped probe model)")
    parser.add_argument("--budget", default="25%")
    parser.add_argument("--family", default="now", help="now (the default: the family the shipped model answers best), "
                        "needle, count, order, when or global")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", default=None, help="where the clip is written")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    from ..errors import VidsiftError
    from ..eval.extract import extract_choice
    from ..eval.items import LETTERS
    from ..pipeline import Pipeline
    from . import FAMILIES, checkpoint_path, generate, load_items
    from .generate import VERSION
    from .model import mc_text

    try:
        if args.family not in FAMILIES:
            raise VidsiftError(args.family, f"unknown family; choose one of: {', '.join(FAMILIES)}")
        base = Path(args.dir or Path(os.environ.get("VIDSIFT_CACHE", Path.home() / ".cache" / "vidsift")) / "probe-demo")
        root = base / f"v{VERSION}" / f"seed{args.seed}"  # a clip of an older generator is never reused
        if not (root / "items.jsonl").exists():
            generate(root, seed=args.seed, videos=1, stream_videos=0)
        item = next(i for i in load_items(root)[1] if i.family == args.family)
        model = args.model or str(checkpoint_path())
        pipe = Pipeline.from_pretrained(model, budget=args.budget, scorer="mllm", selector="topk")
        question = mc_text(item.question, item.options)
        answer = pipe.ask(str(root / item.video), question, max_new_tokens=4)
    except VidsiftError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    chosen = extract_choice(answer.text, item.options)
    result = {"video": str(root / item.video), "question": item.question,
              "options": {LETTERS[i]: o for i, o in enumerate(item.options)},
              "expected": f"{LETTERS[item.answer]}. {item.options[item.answer]}", "answer": answer.text,
              "correct": chosen == item.answer, "budget": args.budget,
              "frames": [round(f.pts_seconds, 1) for f in answer.plan.frames],
              "evidence_s": item.evidence, "tokens_in_prompt": answer.stats.get("tokens_in_prompt"),
              "tokens_full": answer.stats.get("tokens_full"), "model": model}
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"video:     {result['video']}")
        print(f"question:  {item.question}  " + "  ".join(f"{k}. {v}" for k, v in result["options"].items()))
        print(f"budget:    {args.budget} -> {result['tokens_in_prompt']} of {result['tokens_full']} visual tokens, "
              f"frames at {result['frames']} s (evidence {item.evidence} s)")
        print(f"answer:    {answer.text}")
        print(f"expected:  {result['expected']}  ->  {'correct' if result['correct'] else 'WRONG'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Does the probe model count appearances or sampled frames? Clips with exactly one triangle, held
on screen for 1 to 8 of the 1 fps samples (`hold_triangle` lengthens it), or frozen (`write_video`
``times``) on the triangle's first frame for 1-4 extra samples; the `count` question at full
tokens through the user path (`run_questions`, as `vidsift eval`). Per number of samples showing
the triangle: the share answered "1" and the answers.

    python benchmarks/probe_count_hold_curve.py --model vidsift/probe/checkpoint --name NAME [--seed 77] [--clips 24]

Writes ``benchmarks/results/probe_v4/count_hold_curve_{NAME}.json``. Evaluation seed ``77`` is
used by nothing else here (scenes drawn at ``EVAL_SEED_BASE + seed``, as `generate` does).
"""

from __future__ import annotations

import argparse
import json
import math
import random
from collections import Counter, defaultdict
from pathlib import Path

OUT = Path(__file__).parent / "results" / "probe_v4"


def build(root: Path, seed: int, clips: int) -> list[dict]:
    from vidsift.probe.counterfactual import hold_triangle
    from vidsift.probe.generate import EVAL_SEED_BASE, make_scene
    from vidsift.probe.scene import write_video

    rng = random.Random(EVAL_SEED_BASE + seed)
    (root / "videos").mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    made = 0
    while made < clips:
        try:
            scene, _ = make_scene(rng, round(rng.uniform(20.0, 32.0), 1), triangles=1)
        except ValueError:
            continue
        times = range(math.ceil(scene.duration_s - 1e-9))
        shown = lambda sc: sum(any(e.shape == "triangle" and e.visible(float(t)) for e in sc.events) for t in times)  # noqa: E731
        variants = {0: scene}
        for hold in range(1, 8):
            held = hold_triangle(scene, random.Random(f"{seed}-{made}-{hold}"), float(hold))
            if held is not None:
                variants[hold] = held
        for hold, sc in variants.items():
            video = f"videos/c{made:03d}-hold{hold}.mp4"
            write_video(sc, root / video)
            rows.append({"video": video, "edit": "held", "samples": shown(sc), "duration_s": sc.duration_s})
        tri = next(e for e in scene.events if e.shape == "triangle")
        frames = [i / 4 for i in range(int(round(scene.duration_s * 4)))]
        first = next(i for i, t in enumerate(frames) if tri.visible(t))
        for extra in range(1, 5):  # frozen on the triangle's first frame for `extra` more 1 fps samples
            video = f"videos/c{made:03d}-freeze{extra}.mp4"
            write_video(scene, root / video, times=frames[:first] + [frames[first]] * (4 * extra) + frames[first:])
            rows.append({"video": video, "edit": "frozen", "samples": shown(scene) + extra,
                         "duration_s": len(frames) / 4 + extra})
        made += 1
    return rows


def main() -> None:
    from vidsift.batch.results import ResultsFile
    from vidsift.eval.runner import add_choice
    from vidsift.probe.evaluate import run_questions
    from vidsift.probe.generate import OPTIONS, QUESTIONS, ProbeItem

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--seed", type=int, default=77)
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--work", default="/tmp/probe_count_hold")
    args = ap.parse_args()
    root = Path(args.work) / f"seed{args.seed}-{args.clips}"
    if (root / "rows.json").exists():
        rows = json.loads((root / "rows.json").read_text())
    else:
        rows = build(root, args.seed, args.clips)
        (root / "rows.json").write_text(json.dumps(rows))
    options = list(OPTIONS["count"])
    items = [ProbeItem(qid=f"{Path(r['video']).stem}-count", video=r["video"], family="count", question=QUESTIONS["count"],
                       options=options, answer=1, duration_s=r["duration_s"]) for r in rows]
    out = Path(args.work) / f"answers-{args.name}.jsonl"
    run_questions(items, root, {"full@100%": {"budget": "100%"}}, model=args.model, out=out, progress=False)
    said = {}
    for r in ResultsFile(out).latest().values():
        r = add_choice(r)
        if r.get("pred") is not None:
            said[r["meta"]["qid"]] = options["ABCDEFGHIJ".index(r["pred"])]
    table: dict = defaultdict(lambda: defaultdict(Counter))
    for r in rows:
        table[r["edit"]][r["samples"]][said.get(f"{Path(r['video']).stem}-count", "none")] += 1
    report = {"model": args.model, "seed": args.seed, "clips": args.clips, "question": QUESTIONS["count"], "right": "1",
              "per_edit": {edit: {n: {"clips": sum(c.values()), "answered_1": round(c["1"] / sum(c.values()), 3),
                                      "answers": dict(sorted(c.items()))} for n, c in sorted(by.items())}
                           for edit, by in table.items()}}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"count_hold_curve_{args.name}.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report["per_edit"]))


if __name__ == "__main__":
    main()

"""`--respond auto` (LION-FS-style fast/slow path) on the probe's stream clips: does the session
answer when the standing query's evidence is on screen, and stay silent otherwise?

For each stream clip of the probe (evaluation seed 0) the standing query is the clip's `recall`
question ("What colour was the star?" with its options); a `StreamSession` with
``respond="auto"`` reads the clip as a live source (not real time). A fire is *true* when its
frame time lies within 2 s of the evidence interval; an interval is *hit* when a fire lands in
``[start, end + 2 s]``. Precision = true fires / fires, recall = hit intervals / intervals, and
each answer's correctness against the item's option.

    python benchmarks/respond_auto.py --root DIR [--model DIR] [--triggers 0.2,0.35,0.5] [--cooldown 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def run(pipe, root: Path, items, *, trigger: float, cooldown_s: float) -> dict:
    from vidsift.eval import extract_choice
    from vidsift.probe.model import mc_text
    from vidsift.stream import open_session

    rows = []
    for it in [i for i in items if i.stream and i.family == "recall"]:
        with open_session(pipe.adapter, str(root / it.video), budget=300, fps=1.0, realtime=False, max_new_tokens=4,
                          query=mc_text(it.question, it.options), respond="auto", trigger=trigger,
                          cooldown_s=cooldown_s) as session:
            answers = [e for e in session.events(timeout_s=600) if e["event"] == "answer"]
        evidence = [tuple(map(float, iv)) for iv in it.evidence]
        fires = [e["trigger"]["frame_t"] for e in answers]
        rows.append({
            "video": it.video, "evidence": evidence, "fires": fires,
            "answers": [e["answer"] for e in answers],
            "correct": [extract_choice(e["answer"], it.options) == it.answer for e in answers],
            "true_fires": sum(any(a - 2 <= f <= b + 2 for a, b in evidence) for f in fires),
            "intervals_hit": sum(any(a <= f <= b + 2 for f in fires) for a, b in evidence),
        })
    fires = sum(len(r["fires"]) for r in rows)
    intervals = sum(len(r["evidence"]) for r in rows)
    return {"trigger": trigger, "cooldown_s": cooldown_s, "fires": fires, "evidence_intervals": intervals,
            "precision": round(sum(r["true_fires"] for r in rows) / fires, 3) if fires else None,
            "recall": round(sum(r["intervals_hit"] for r in rows) / intervals, 3) if intervals else None,
            "answers_correct": sum(sum(r["correct"]) for r in rows), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="probe folder (generated here when empty)")
    parser.add_argument("--triggers", default="0.2,0.35,0.5")
    parser.add_argument("--cooldown", type=float, default=5.0)
    parser.add_argument("--model", default="", help="checkpoint folder (default: the shipped probe model)")
    parser.add_argument("--out", default="")
    args = parser.parse_args()

    from vidsift.pipeline import Pipeline
    from vidsift.probe import checkpoint_path
    from vidsift.probe.evaluate import ensure_items

    root = Path(args.root)
    items = ensure_items(root, seed=0, videos=24, stream_videos=4)
    if not any(i.stream and i.family == "recall" for i in items):
        raise SystemExit(f"{root}: holds no probe stream clips (generated with --streams 0?); give an empty folder")
    pipe = Pipeline.from_pretrained(args.model or str(checkpoint_path()), device="cpu", dtype="float32")
    runs = {t: run(pipe, root, items, trigger=float(t), cooldown_s=args.cooldown) for t in args.triggers.split(",")}
    for t, r in runs.items():
        print(f"trigger {t}: precision {r['precision']} recall {r['recall']} fires {r['fires']} "
              f"answers correct {r['answers_correct']}/{r['fires']}")
    if args.out:
        Path(args.out).write_text(json.dumps({"what": __doc__.splitlines()[0], "runs": runs}, indent=1))


if __name__ == "__main__":
    main()

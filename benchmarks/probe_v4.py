"""Probe v4 report (issue 25 / 22): a checkpoint at full tokens on unseen evaluation seeds (per
family mean and min-max), its counterfactual pairs, and the long split at full tokens.

    python benchmarks/probe_v4.py --model vidsift/probe/checkpoint --name new --seeds 23,4711,9001 \\
        [--dev-seed 1] [--counterfactual-seeds 23] [--long-durations 120,600] --work /tmp/pv4

Full tokens: `vidsift eval --dataset probe --methods uniform --budget 100% --preset none --streams 0
--no-relevance` (only the ``full@100%`` row). Long split: `generate_long` (seed 0), every question
at ``budget=100%`` with the default sampling (1 fps, at most 64 frames spread over the video, as
the default pipeline). Writes ``benchmarks/results/probe_v4/{name}.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "results" / "probe_v4"


def full_tokens(model: str, seed: int, work: Path) -> dict:
    from vidsift.probe.evaluate import evaluate

    t = time.time()
    s = evaluate(work / f"seed{seed}", model=model, seed=seed, methods=["uniform"], budgets=(1.0,), presets=(),
                 out=work / f"seed{seed}-{Path(model).name}.jsonl", videos=24, stream_videos=0, relevance_eval=False,
                 progress=False)
    row = next(r for r in s["settings"] if r["setting"] == "full@100%")
    return {"seed": seed, "n": row["n"], "accuracy": row["accuracy"], "per_family": row["per_family"],
            "seconds": round(time.time() - t, 1)}


def spread(rows: list[dict]) -> dict:
    fams = sorted({f for r in rows for f in r["per_family"]})
    cell = lambda v: {"mean": round(float(np.mean(v)), 4), "min": min(v), "max": max(v)}  # noqa: E731
    return {"overall": cell([r["accuracy"] for r in rows]),
            "per_family": {f: cell([r["per_family"][f] for r in rows]) for f in fams}}


def pool(runs: list[dict]) -> dict:
    """Counterfactual pairs pooled over seeds: per edit the pairs, how many follow the edit and how
    many originals were answered right; per family the share that follows."""
    per_edit: dict = {}
    for run in runs:
        for name, e in run["per_edit"].items():
            row = per_edit.setdefault(name, {"family": e["family"], "pairs": 0, "follows": 0, "original_right": 0})
            row["pairs"] += e["pairs"]
            row["follows"] += round(e["follows"] * e["pairs"])
            row["original_right"] += round(e["original_right"] * e["pairs"])
    fam: dict = defaultdict(lambda: [0, 0])
    for row in per_edit.values():
        row["follows_share"] = round(row["follows"] / row["pairs"], 4)
        row["original_right_share"] = round(row["original_right"] / row["pairs"], 4)
        fam[row["family"]][0] += row["follows"]
        fam[row["family"]][1] += row["pairs"]
    return {"seeds": [r["seed"] for r in runs], "per_edit": per_edit,
            "per_family": {f: round(a / b, 4) for f, (a, b) in sorted(fam.items())}}


def long_split(model: str, durations: tuple[int, ...], work: Path, videos: int = 6) -> dict:
    from vidsift.batch.results import ResultsFile
    from vidsift.eval.runner import add_choice
    from vidsift.probe.evaluate import evidence_hit, run_questions
    from vidsift.probe.generate import generate_long, load_items

    root = work / ("long-" + "-".join(map(str, durations)))
    if (root / "items.jsonl").exists():
        _, items = load_items(root)
    else:
        items = generate_long(root, seed=0, durations=durations, videos=videos)
    out = work / f"long-{Path(model).name}.jsonl"
    t = time.time()
    # search off: the 64-frame default cap this split measures (with `search=auto` a long file is
    # searched, and at 100% every 1 fps candidate would be kept)
    run_questions(items, root, {"full@100%": {"budget": "100%", "search": "off"}}, model=model, out=out)
    by = {i.qid: i for i in items}
    acc: dict = defaultdict(lambda: defaultdict(list))
    recall: dict = defaultdict(lambda: defaultdict(list))
    answers: dict = defaultdict(lambda: defaultdict(list))
    frames = defaultdict(list)
    for r in ResultsFile(out).latest().values():
        r = add_choice(r)
        item = by[r["meta"]["qid"]]
        d = int(item.duration_s)
        acc[d][item.family].append(bool(r["correct"]))
        answers[d][item.family].append(r.get("pred"))
        hit = evidence_hit(r.get("plan"), item.evidence)
        if hit is not None:
            recall[d][item.family].append(hit)
        if r.get("plan"):
            frames[d].append(len(r["plan"]["frames"]))
    share = lambda v: round(sum(v) / len(v), 4) if v else None  # noqa: E731
    return {"seed": 0, "videos_per_duration": videos, "sampling": "default (1 fps, at most 64 frames)", "budget": "100%",
            "seconds": round(time.time() - t, 1),
            "per_duration": {d: {"accuracy": {f: share(v) for f, v in sorted(acc[d].items())},
                                 "n": {f: len(v) for f, v in sorted(acc[d].items())},
                                 "evidence_recall": {f: share(v) for f, v in sorted(recall[d].items())},
                                 "frames_mean": round(float(np.mean(frames[d])), 1) if frames[d] else None,
                                 "answers": {f: v for f, v in sorted(answers[d].items())}}
                             for d in sorted(acc)}}


def long_search_like(model: str, durations: tuple[int, ...], work: Path, coverage: int = 20) -> dict:
    """`needle` and `when` of the long split on the frames a temporal search would keep: ``coverage``
    frames spread over the whole video plus every 1 fps frame inside the star's interval (decoded
    from the file, answered at full tokens by `Pipeline.ask` on those frames; the adapter places
    each group by its real time). Tells whether the model reads long-range time once the star is
    in view, apart from whether the default 64-frame grid samples it."""
    from vidsift.eval.extract import extract_choice
    from vidsift.frames import open_video, sample
    from vidsift.pipeline import Pipeline
    from vidsift.probe.generate import load_items
    from vidsift.probe.model import mc_text

    root = work / ("long-" + "-".join(map(str, durations)))
    _, items = load_items(root)
    pipe = Pipeline.from_pretrained(model, device="cpu", dtype="float32", budget="100%")
    hits: dict = defaultdict(lambda: defaultdict(list))
    t = time.time()
    for video in sorted({i.video for i in items}):
        its = {i.family: i for i in items if i.video == video}
        reader = open_video(str(root / video))
        try:
            frames = sample(reader)  # every frame (2 fps)
        finally:
            reader.close()
        pts, D = frames.pts_seconds, its["needle"].duration_s
        want = [(k + 0.5) * D / coverage for k in range(coverage)]
        want += [float(x) for a, b in its["needle"].evidence for x in np.arange(np.ceil(a), b)]
        keep = np.unique([int(np.argmin(np.abs(pts - w))) for w in want])
        chosen = frames[keep]
        for fam in ("needle", "when"):
            item = its[fam]
            answer = pipe.ask(chosen, mc_text(item.question, item.options), max_new_tokens=4)
            hits[int(D)][fam].append(extract_choice(answer.text, item.options) == item.answer)
    return {"coverage_frames": coverage, "plus": "every 1 fps frame inside the star's interval", "budget": "100%",
            "seconds": round(time.time() - t, 1),
            "per_duration": {d: {f: round(sum(v) / len(v), 4) for f, v in fams.items()} for d, fams in sorted(hits.items())}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--seeds", default="23,4711,9001")
    ap.add_argument("--dev-seed", type=int, default=None, help="the seed used to choose (reported apart)")
    ap.add_argument("--counterfactual-seeds", default="23")
    ap.add_argument("--long-durations", default="120,600")
    ap.add_argument("--work", default="/tmp/probe_v4")
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: full, counterfactual, long, search")
    args = ap.parse_args()
    work, skip = Path(args.work), set(filter(None, args.skip.split(",")))
    work.mkdir(parents=True, exist_ok=True)
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{args.name}.json"
    report = json.loads(path.read_text()) if path.exists() else {}
    report.update({"model": args.model, "generator_version": 4})
    if "full" not in skip:
        rows = [full_tokens(args.model, int(s), work) for s in args.seeds.split(",")]
        report["full_tokens"] = {"seeds": rows, "unseen": spread(rows)}
        if args.dev_seed is not None:
            report["full_tokens"]["dev_seed"] = full_tokens(args.model, args.dev_seed, work)
        print(json.dumps(report["full_tokens"]["unseen"]))
    if "counterfactual" not in skip:
        from vidsift.probe.counterfactual import counterfactual

        report["counterfactual"] = [counterfactual(work / f"cf{s}", model=args.model, seed=int(s),
                                                   out=work / f"cf{s}-{Path(args.model).name}.jsonl", progress=False)
                                    for s in args.counterfactual_seeds.split(",")]
        report["counterfactual_pooled"] = pool(report["counterfactual"])
        print(json.dumps(report["counterfactual_pooled"]))
    if "long" not in skip:
        report["long"] = long_split(args.model, tuple(int(d) for d in args.long_durations.split(",")), work)
        print(json.dumps(report["long"]["per_duration"]))
    if "search" not in skip:
        report["long_search_like"] = long_search_like(args.model, tuple(int(d) for d in args.long_durations.split(",")), work)
        print(json.dumps(report["long_search_like"]["per_duration"]))
    path.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()

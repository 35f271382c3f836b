"""The long-video probe split: can a fixed budget find a 2-s moment in minutes to an hour?

``evaluate_long(root, ...)`` generates (`generate_long`, once per folder) probe videos of each
duration with the families a fixed budget can answer (``needle``, ``when``, ``order``, ``count``
with 0-2 triangles), then asks every item through `Pipeline.ask` at one fixed budget (52 visual
tokens by default) with each of `LONG_METHODS`:

==================  ==============================================================================
before              the default flags before the search: at most 64 candidates, kcenter selection
uniform             the capped grid: at most 64 candidates over the video, uniform selection
search              default flags: the temporal search (1-fps index, the model's P(yes) on a share of
                    it, coarse to fine) and relevance-true allocation, real times
search-compact      the same with ``timeline="compact"`` (the kept frames' times mapped onto 32 s:
                    the probe model reads a clip's thirds only over the spans it was trained on)
search-spread       search-compact with the budget spread as before (``allocation="spread"``)
dense               search-compact scoring every 1-fps candidate (the dense pass the search's calls
                    are measured against)
==================  ==============================================================================

Per method and duration it reports accuracy (overall and per family), **evidence recall** (the
share of items with evidence whose plan keeps a frame inside an evidence interval; model-free), scorer calls and
seconds per question; per video the cheap pass's decode time alone and the first question's time
(index not on disk: what a user's first question costs). The summary is written beside ``out``,
with a plot of accuracy and time against length.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .generate import LONG_FAMILIES, ProbeItem, generate_long, load_items

LONG_METHODS: dict[str, dict[str, Any]] = {
    "before": {"search": "off"},  # the default flags before the search: 64 capped candidates, kcenter
    "uniform": {"search": "off", "selector": "uniform", "scorer": "uniform"},
    "search": {},
    "search-compact": {"timeline": "compact"},
    "search-spread": {"allocation": "spread", "timeline": "compact"},
    "dense": {"search": "dense", "timeline": "compact"},
}
DURATIONS = (120, 600, 1800, 3600)
BUDGET = 52


def ensure_long_items(root: str | Path, *, seed: int, durations: tuple[float, ...], videos: int) -> list[ProbeItem]:
    """The long items in ``root``, generated there when it holds none (or holds another seed,
    version or set of durations: never reused silently)."""
    from .generate import VERSION

    path = Path(root, "items.jsonl")
    if path.is_file():
        header, items = load_items(root)
        if (header.get("long") and header.get("probe") == VERSION and header.get("seed") == seed
                and [float(d) for d in header.get("durations", [])] == [float(d) for d in durations]
                and header.get("videos") == videos):
            return items
        from ..errors import ConfigError

        raise ConfigError(str(root), "holds other probe items (another seed, version or durations); use an empty folder")
    return generate_long(root, seed=seed, durations=tuple(int(d) for d in durations), videos=videos)


def _decode_alone(video: str) -> float:
    """Seconds to decode the cheap pass's candidates (1 fps, scan size), nothing else."""
    from ..frames import open_for_planning
    from ..frames.sampling import plan_indices
    from ..selectors.video_index import SCAN_FPS, SCAN_MAX_PIXELS

    t0 = time.perf_counter()
    with open_for_planning(video, max_pixels=SCAN_MAX_PIXELS) as reader:
        wanted = plan_indices(reader, fps=SCAN_FPS)
        for lo in range(0, wanted.size, 128):
            reader.read(wanted[lo:lo + 128])
    return time.perf_counter() - t0


def _kept_evidence(plan: Any, evidence: list[tuple[float, float]]) -> bool | None:
    """Whether the plan keeps a frame inside an evidence interval; None when the item has none
    (no triangle to count): such items do not enter evidence recall."""
    if not evidence:
        return None
    times = np.array([f.pts_seconds for f in plan.frames])
    return any(((times >= a) & (times < b)).any() for a, b in evidence)


def evaluate_long(root: str | Path, *, model: str | None = None, seed: int = 0, durations: tuple[float, ...] = DURATIONS,
                  videos: int = 6, budget: int | str = BUDGET, methods: list[str] | None = None,
                  families: tuple[str, ...] = LONG_FAMILIES, out: str | Path | None = None,
                  progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Ask every long item with every method (see the module docstring); returns the summary and
    writes ``out`` (JSONL rows) and ``out``'s ``.summary.json`` and ``.png`` when given."""
    from ..errors import ConfigError
    from ..eval.extract import extract_choice
    from ..pipeline.pipeline import Pipeline
    from . import checkpoint_path
    from .model import mc_text

    chosen = list(LONG_METHODS) if methods is None else list(methods)
    unknown = [m for m in chosen if m not in LONG_METHODS]
    if unknown:
        raise ConfigError(", ".join(unknown), f"unknown long-split method; choose from: {', '.join(LONG_METHODS)}")
    items = [it for it in ensure_long_items(root, seed=seed, durations=durations, videos=videos) if it.family in families]
    pipe = Pipeline.from_pretrained(model or checkpoint_path(), device="cpu" if model is None else "auto")
    pipe.index_cache = False  # every first question pays the cheap pass (what is measured)
    by_video: dict[str, list[ProbeItem]] = defaultdict(list)
    for it in items:
        by_video[it.video].append(it)
    rows, per_video = [], []
    total, done = len(items) * len(chosen), 0
    for video, its in by_video.items():
        path = str(Path(root) / video)
        pipe.clear_cache()
        decode_s = _decode_alone(path)
        t0 = time.perf_counter()  # the first question with default flags, nothing cached: index, search, answer
        pipe.ask(path, mc_text(its[0].question, its[0].options), budget=budget, max_new_tokens=3)
        per_video.append({"video": video, "duration_s": its[0].duration_s, "decode_s": round(decode_s, 4),
                          "first_question_s": round(time.perf_counter() - t0, 4)})
        for method in chosen:
            for it in its:
                t0 = time.perf_counter()
                answer = pipe.ask(path, mc_text(it.question, it.options), budget=budget, max_new_tokens=3, **LONG_METHODS[method])
                seconds = time.perf_counter() - t0
                stats = answer.plan.stats
                rows.append({"qid": it.qid, "video": video, "duration_s": it.duration_s, "family": it.family, "method": method,
                             "correct": extract_choice(answer.text, it.options) == it.answer, "answer": answer.text,
                             "evidence_kept": _kept_evidence(answer.plan, it.evidence), "tokens": answer.plan.total_tokens,
                             "scorer_calls": stats.get("scorer_calls"), "candidates": stats.get("n_candidates"),
                             "frames_decoded": stats.get("frames_decoded_scan", stats.get("n_candidates")),
                             "allocation": answer.plan.settings.get("allocation"), "seconds": round(seconds, 4)})
                done += 1
                if progress is not None:
                    progress(done, total)
    summary = summarise(rows, per_video, budget=budget, seed=seed)
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(r) + "\n" for r in rows))
        out.with_suffix(".summary.json").write_text(json.dumps(summary, indent=1))
        plot_long(summary, out.with_suffix(".png"))
        summary["files"] = [str(out), str(out.with_suffix(".summary.json")), str(out.with_suffix(".png"))]
    return summary


def summarise(rows: list[dict[str, Any]], per_video: list[dict[str, Any]], *, budget: Any, seed: int) -> dict[str, Any]:
    """Per method and duration: accuracy (and per family), evidence recall, scorer calls, seconds."""
    cells: dict[str, dict[str, Any]] = defaultdict(dict)
    groups: dict[tuple[str, float], list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["method"], r["duration_s"])].append(r)
    for (method, dur), rs in sorted(groups.items()):
        fam: dict[str, list[bool]] = defaultdict(list)
        for r in rs:
            fam[r["family"]].append(r["correct"])
        calls = [r["scorer_calls"] for r in rs if r["scorer_calls"] is not None]
        cells[method][f"{dur:g}"] = {
            "n": len(rs), "accuracy": round(float(np.mean([r["correct"] for r in rs])), 4),
            "families": {f: round(float(np.mean(v)), 4) for f, v in sorted(fam.items())},
            "evidence_recall": round(float(np.mean([r["evidence_kept"] for r in rs if r["evidence_kept"] is not None])), 4),
            "scorer_calls": round(float(np.mean(calls)), 1) if calls else 0,
            "candidates": round(float(np.mean([r["candidates"] for r in rs])), 1),
            "seconds": round(float(np.mean([r["seconds"] for r in rs])), 4),
            "max_tokens": int(max(r["tokens"] for r in rs)),
        }
    videos: dict[str, dict[str, float]] = defaultdict(dict)
    for dur in sorted({v["duration_s"] for v in per_video}):
        vs = [v for v in per_video if v["duration_s"] == dur]
        videos[f"{dur:g}"] = {"decode_s": round(float(np.mean([v["decode_s"] for v in vs])), 4),
                               "first_question_s": round(float(np.mean([v["first_question_s"] for v in vs])), 4),
                               "first_over_decode_max": round(max(v["first_question_s"] / max(v["decode_s"], 1e-9) for v in vs), 3)}
    return {"budget": budget, "seed": seed, "methods": dict(cells), "videos": dict(videos), "per_video": per_video}


def plot_long(summary: dict[str, Any], path: str | Path) -> None:
    """Accuracy and seconds per question against video length, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (acc, sec) = plt.subplots(1, 2, figsize=(10, 4))
    for method, cells in summary["methods"].items():
        mins = [float(d) / 60 for d in cells]
        acc.plot(mins, [100 * c["accuracy"] for c in cells.values()], marker="o", label=method)
        sec.plot(mins, [c["seconds"] for c in cells.values()], marker="o", label=method)
    mins = [float(d) / 60 for d in summary["videos"]]
    sec.plot(mins, [v["decode_s"] for v in summary["videos"].values()], "k--", label="cheap-pass decode alone")
    acc.set(xscale="log", xlabel="video length (min)", ylabel="accuracy (%)", ylim=(0, 102),
            title=f"long probe split, {summary['budget']} visual tokens")
    sec.set(xscale="log", yscale="log", xlabel="video length (min)", ylabel="seconds per question")
    for ax in (acc, sec):
        ax.set_xticks(mins, [f"{m:g}" for m in mins])
        ax.minorticks_off()
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

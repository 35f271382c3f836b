"""Accuracy against retained visual tokens, per method and question family, on the probe.

``evaluate(root, model=..., seed=...)`` generates the items into ``root`` when it holds none,
then measures, all through the unchanged user path (`Pipeline` via the batch engine,
`StreamSession` for live sources):

- **multiple choice** per method configuration x budget (`METHODS` x ``budgets``) and per
  preset: accuracy overall and per family (needle, count, order, when, global, now), the mean
  visual tokens in the prompt, and **evidence recall** (model-free: the share of items whose
  plan keeps at least one frame inside an evidence interval);
- **relevance**: the ``mllm`` (QuoTA) scorer's per-frame yes/no against the evidence labels
  (accuracy at P(yes) = 0.5 and ROC AUC), over every sampled frame of every clip;
- **stream** families: ``now`` and ``recall`` asked at the end of minutes-long clips played as
  live sources through a `StreamSession` whose memory holds a share of the stream's tokens.

How each method meets a budget fraction ``b`` (the x axis is always the visual tokens the LLM
receives, or keeps in its deeper layers / cache):

==============  ============================================================================
plan methods    ``budget=b`` with that selector / scorer / merger: tokens removed before the LLM
fastv           every token in, FastV keeps ``b`` of the visual tokens from layer 2 on
pdrop           every token in, 4 stages (layers 1, 2, 3) keeping ``b^(1/3)``, ``b^(2/3)``, ``b``
drop_after      every token in, all visual tokens dropped after layer ``max(1, round(4b))``
snapkv/h2o/...  every token in, the press keeps ``b`` of each layer's prompt cache
quantize        plan at ``b``, cache quantized to 8 bits (the rest of the budget's meaning is
                the plan's)
==============  ============================================================================
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import ConfigError
from ..bench.machine import machine_info
from ..pipeline.presets import PRESETS
from .generate import FAMILIES, VERSION, ProbeItem, generate, load_items

BUDGETS = (1.0, 0.5, 0.25, 0.1)
LLM_LAYERS = 4  # the probe model's decoder layers (pdrop / drop_after schedules)


def _plan(**fixed: Any) -> Callable[[float], dict[str, Any]]:
    return lambda b: {"budget": f"{b:.0%}", **fixed}


METHODS: dict[str, Callable[[float], dict[str, Any]]] = {
    # frame selection (uniform scorer) — uniform is the naive baseline every method must beat
    "uniform": _plan(selector="uniform"),
    "kcenter": _plan(selector="kcenter"),
    "maxmin": _plan(selector="maxmin"),
    "kmeans": _plan(selector="kmeans"),
    "mmr": _plan(selector="mmr"),
    # query-aware: the model's own P(yes) per frame (QuoTA) with the proportional allocator
    "mllm+kcenter": _plan(scorer="mllm", selector="kcenter", allocator="proportional"),
    "mllm+topk": _plan(scorer="mllm", selector="topk", allocator="proportional"),
    # the same frames' scores with the budget spread (k frames at a share of their tokens): the
    # planner before relevance-true allocation
    "mllm+topk/spread": _plan(scorer="mllm", selector="topk", allocator="proportional", allocation="spread"),
    "mllm+kcenter/spread": _plan(scorer="mllm", selector="kcenter", allocator="proportional", allocation="spread"),
    # the same with at most 1.2x the kept tokens encoded (fewer, fuller frames: `--allocation lean`);
    # kcenter/lean is the plan of flat scores (the uniform scorer), as `vidsift bench --allocation lean`
    "mllm+topk/lean": _plan(scorer="mllm", selector="topk", allocator="proportional", allocation="lean"),
    "mllm+kcenter/lean": _plan(scorer="mllm", selector="kcenter", allocator="proportional", allocation="lean"),
    "kcenter/lean": _plan(selector="kcenter", allocation="lean"),
    # token mergers (kcenter frames)
    "tome": _plan(merger="tome"),
    "adjacent": _plan(merger="adjacent"),
    "saliency": _plan(merger="saliency"),
    "diverse": _plan(merger="diverse"),
    "tome+temporal": _plan(merger="tome", temporal="temporal"),
    "ficoco_v": _plan(merger="ficoco_v"),  # FiCoCo-V: filter, correlate, one-to-many compress
    "hired": _plan(merger="hired"),  # HiRED: budget split over 2x2 partitions by attention, then top-k in each
    # inside the LLM: every token in, pruned during prefill
    "fastv": lambda b: {"budget": "100%", "prune": f"fastv:k=2,keep={b:g}"},
    "pdrop": lambda b: {"budget": "100%", "prune": "pdrop:layers=1/2/3,keep=" + "/".join(f"{b ** (j / 3):.4g}" for j in (1, 2, 3))},
    "drop_after": lambda b: {"budget": "100%", "prune": f"drop_after:layer={max(1, round(LLM_LAYERS * b))}"},
    "ficoco_l": lambda b: {"budget": "100%", "prune": f"ficoco_l:k=2,keep={b:g}"},  # FiCoCo-L at layer 2
    # ZipVL at layer 2: keeps the fewest tokens holding 90% of the text's attention, at most the share
    "zipvl": lambda b: {"budget": "100%", "prune": f"zipvl:k=2,tau=0.9,max_keep={b:g}"},
    # ToDRE stage 2: the text's most attended share at layer 2, all visual tokens out once the
    # text gives them under 10% of its attention
    "todre": lambda b: {"budget": "100%", "prune": f"todre:k=2,keep={b:g},migrated=0.1"},
    # MustDrop's three stages: key-protected adjacent merging to the budget, the dual-attention
    # filter at layer 2, the output-aware press keeping half of the visual cache
    "mustdrop": lambda b: {"budget": f"{b:.0%}", "merger": "mustdrop:threshold=0.8", "prune": "mustdrop:k=2",
                           "kv": "mustdrop:ratio=0.5"},
    # the decoding cache
    "snapkv": lambda b: {"budget": "100%", "kv": f"snapkv:ratio={b:g}"},
    "h2o": lambda b: {"budget": "100%", "kv": f"h2o:ratio={b:g}"},
    "prefixkv": lambda b: {"budget": "100%", "kv": f"prefixkv:ratio={b:g}"},
    "quantize": lambda b: {"budget": f"{b:.0%}", "kv": "quantize:ratio=0.1,bits=8"},
    "dycoke": lambda b: {"budget": "100%", "kv": f"dycoke:ratio={b:g},layer=2"},  # decode steps only
    "zipvl_kv": lambda b: {"budget": f"{b:.0%}", "kv": "zipvl:tau=0.9,bits=8"},  # ZipVL's mixed-precision cache
}
PRESET_NAMES = tuple(PRESETS)


@dataclass(frozen=True)
class Setting:
    """One evaluated configuration: a method at a budget fraction (or a preset)."""

    name: str
    method: str
    fraction: float | None
    overrides: dict[str, Any]


def settings(methods: list[str] | None = None, budgets: tuple[float, ...] = BUDGETS,
             presets: tuple[str, ...] = PRESET_NAMES) -> list[Setting]:
    """``full`` once, then every method at every budget below 100%, then the presets."""
    chosen = list(METHODS) if methods is None else methods
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise ConfigError(", ".join(unknown), f"unknown probe method; choose from: {', '.join(METHODS)}")
    out = [Setting("full@100%", "full", 1.0, {"budget": "100%"})]
    out += [Setting(f"{m}@{b:.0%}", m, b, METHODS[m](b)) for m in chosen for b in budgets if b < 1.0]
    out += [Setting(f"preset:{p}", f"preset:{p}", None, {"budget": p}) for p in presets]
    return out


def ensure_items(root: str | Path, *, seed: int = 0, videos: int = 24, stream_videos: int = 4) -> list[ProbeItem]:
    """The items in ``root``; generated there (seeded) when it holds none. A folder generated
    with another seed is refused rather than silently mixed."""
    root = Path(root)
    if (root / "items.jsonl").exists():
        header, items = load_items(root)
        if header.get("seed") != seed:
            raise ConfigError(str(root), f"holds probe items of seed {header.get('seed')}, not {seed}; use another folder")
        if header.get("probe") != VERSION:
            raise ConfigError(str(root), f"holds probe items of generator version {header.get('probe')}, not {VERSION}; "
                                         "use another folder")
        return items
    if root.exists() and any(root.iterdir()):
        raise ConfigError(str(root), "not empty and holds no probe items.jsonl; give an empty or new folder")
    return generate(root, seed=seed, videos=videos, stream_videos=stream_videos)


def evidence_hit(plan: dict[str, Any] | None, evidence: list[tuple[float, float]]) -> bool | None:
    """Whether a plan keeps a frame inside any evidence interval (None: no plan or no evidence)."""
    if not plan or not evidence:
        return None
    return any(a <= f["pts_seconds"] < b for f in plan["frames"] for a, b in evidence)


def _auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    pos, neg = scores[labels], scores[~labels]
    if not len(pos) or not len(neg):
        return None
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def relevance(pipe, items: list[ProbeItem], root: Path) -> dict[str, Any]:
    """The ``mllm`` scorer's per-frame P(yes) against the evidence labels of each item."""
    from ..selectors import SCORERS
    from .model import mc_text

    scorer = SCORERS.build("mllm", adapter=pipe.adapter)
    scores, labels, fams = [], [], []
    for item in items:
        if item.stream or item.family == "global":  # global: every frame is evidence
            continue
        frames = pipe.candidates(str(root / item.video))
        question = mc_text(item.question, item.options)
        s = scorer.score(frames, question).scores
        lab = np.array([any(a <= t < b for a, b in item.evidence) for t in frames.pts_seconds])
        scores.append(s)
        labels.append(lab)
        fams += [item.family] * len(s)
    s, lab = np.concatenate(scores), np.concatenate(labels)
    fams_a = np.array(fams)
    per = {f: {"accuracy": round(float(((s[fams_a == f] > 0.5) == lab[fams_a == f]).mean()), 4),
               "auc": _auc(s[fams_a == f], lab[fams_a == f]), "frames": int((fams_a == f).sum())}
           for f in dict.fromkeys(fams)}
    return {"frames": int(len(s)), "positives": int(lab.sum()), "accuracy": round(float(((s > 0.5) == lab).mean()), 4),
            "auc": _auc(s, lab), "per_family": per}


def stream_eval(adapter, items: list[ProbeItem], root: Path, *, fractions: tuple[float, ...] = BUDGETS,
                fps: float = 1.0) -> list[dict[str, Any]]:
    """``now`` and ``recall`` asked at the end of each stream clip, played through a
    `StreamSession` whose memory budget is a share of the stream's full tokens."""
    from ..eval.extract import extract_choice
    from ..stream import open_session
    from .model import mc_text

    by_video: dict[str, list[ProbeItem]] = defaultdict(list)
    for item in items:
        if item.stream:
            by_video[item.video].append(item)
    from .scene import SIZE

    tokens_per_frame = adapter.tokens_per_frame(SIZE, SIZE)
    rows = []
    for frac in fractions:
        hits: dict[str, list[bool]] = defaultdict(list)
        kept: list[bool] = []
        tokens_held = []
        for video, its in by_video.items():
            full = int(math.ceil(math.ceil(its[0].duration_s * fps) * tokens_per_frame))
            budget = max(int(math.ceil(2 * tokens_per_frame)), int(round(frac * full)))
            with open_session(adapter, str(root / video), budget=budget, fps=fps, realtime=False,
                              max_new_tokens=4) as session:
                session.wait(600)
                if session.error:
                    raise ConfigError(video, f"stream failed: {session.error}")
                times = [e.t_s for e in session.memory.entries]
                tokens_held.append(session.memory.n_tokens)
                for item in its:
                    reply = session.ask(mc_text(item.question, item.options))
                    hits[item.family].append(extract_choice(reply.text, item.options) == item.answer)
                    if item.family == "recall":  # an entry covers its group's frames: [t, t + 1/fps * group)
                        kept.append(any(a - 2.0 / fps < t < b for t in times for a, b in item.evidence))
        rows.append({"fraction": frac, "budget_tokens": budget, "memory_tokens_mean": float(np.mean(tokens_held)),
                     **{f: round(sum(h) / len(h), 4) for f, h in sorted(hits.items())},
                     "n": {f: len(h) for f, h in sorted(hits.items())},
                     "recall_evidence_in_memory": round(sum(kept) / len(kept), 4) if kept else None})
    return rows


def _chance(items: list[ProbeItem]) -> dict[str, float]:
    per: dict[str, list[float]] = defaultdict(list)
    for item in items:
        per[item.family].append(1.0 / len(item.options))
    return {f: round(float(np.mean(v)), 4) for f, v in sorted(per.items())}


def summarize(records: list[dict[str, Any]], chosen: list[Setting], items: list[ProbeItem]) -> list[dict[str, Any]]:
    by_qid = {i.qid: i for i in items}
    rows = []
    for s in chosen:
        recs = [r for r in records if (r.get("meta") or {}).get("setting") == s.name]
        fam: dict[str, list[bool]] = defaultdict(list)
        ev: dict[str, list[bool]] = defaultdict(list)
        for r in recs:
            item = by_qid[r["meta"]["qid"]]
            fam[item.family].append(bool(r.get("correct")))
            hit = evidence_hit(r.get("plan"), item.evidence)
            if hit is not None and item.family != "global":
                ev[item.family].append(hit)
        toks = [r["stats"].get("tokens_in_prompt") for r in recs if r.get("stats")]
        full = [r["stats"].get("tokens_full") for r in recs if r.get("stats")]
        n = len(recs)
        rows.append({
            "setting": s.name, "method": s.method, "fraction": s.fraction, "overrides": s.overrides, "n": n,
            "accuracy": round(sum(bool(r.get("correct")) for r in recs) / n, 4) if n else None,
            "failed": sum(1 for r in recs if r.get("error")),
            "errors": sorted({r["error"] for r in recs if r.get("error")})[:5],
            "tokens_in_prompt_mean": round(float(np.mean(toks)), 1) if toks else None,
            "tokens_full_mean": round(float(np.mean(full)), 1) if full else None,
            "per_family": {f: round(sum(v) / len(v), 4) for f, v in sorted(fam.items())},
            "evidence_recall": {f: round(sum(v) / len(v), 4) for f, v in sorted(ev.items())},
        })
    return rows


def run_questions(items: list[ProbeItem], root: str | Path, settings: dict[str, dict[str, Any]], *, model: str,
                  out: str | Path, progress: bool = False, resume: bool = True) -> Any:
    """Ask every offline probe question of ``items`` under each named setting (option overrides)
    through the batch path `vidsift eval` uses; records go to ``out``; returns the eval report."""
    from ..batch import WorkerSpec
    from ..batch.local import LocalEngine
    from ..eval import EvalItem
    from ..eval.runner import EvalSetting, run_eval

    eval_items = [EvalItem(dataset="probe", qid=i.qid, video=str(Path(root) / i.video), question=i.question,
                           options=i.options, answer=i.answer, task=i.family) for i in items]
    spec = WorkerSpec(model=model, device="cpu", dtype="float32", max_new_tokens=4)
    return run_eval(eval_items, spec, engine=LocalEngine(workers=1), out=out,
                    settings=[EvalSetting(name, overrides) for name, overrides in settings.items()], progress=progress,
                    resume=resume)


def evaluate(root: str | Path, *, model: str | None = None, seed: int = 0, methods: list[str] | None = None,
             budgets: tuple[float, ...] = BUDGETS, presets: tuple[str, ...] = PRESET_NAMES,
             out: str | Path | None = None, videos: int = 24, stream_videos: int = 4, relevance_eval: bool = True,
             progress: bool = True, resume: bool = True) -> dict[str, Any]:
    """Run the probe evaluation on the first ``videos`` clips and ``stream_videos`` stream clips of
    ``root`` (generated there when it holds no items); returns the summary, also written beside
    ``out`` (``.summary.json``) with the plot (``.png``). Answers already in ``out`` for the same
    model, options, clip content and question are kept unless ``resume`` is False."""
    from ..batch.results import ResultsFile
    from ..eval.runner import add_choice
    from ..pipeline import Pipeline
    from . import checkpoint_path

    root = Path(root)
    model = model or str(checkpoint_path())
    items = ensure_items(root, seed=seed, videos=videos, stream_videos=stream_videos)
    clips = sorted({i.video for i in items if not i.stream})[:videos]
    streams = sorted({i.video for i in items if i.stream})[:stream_videos]
    items = [i for i in items if i.video in clips or i.video in streams]
    offline = [i for i in items if not i.stream]
    chosen = settings(methods, budgets, presets)
    out = Path(out) if out else root / "results.jsonl"
    run_questions(offline, root, {s.name: dict(s.overrides) for s in chosen}, model=model, out=out, progress=progress,
                  resume=resume)
    latest = ResultsFile(out).latest()
    records = [add_choice(r) for r in latest.values() if (r.get("meta") or {}).get("dataset") == "probe"]
    summary: dict[str, Any] = {
        "dataset": "probe", "seed": seed, "model": model, "items": len(offline),
        "videos": len({i.video for i in offline}), "families": list(FAMILIES), "chance": _chance(items),
        "settings": summarize(records, chosen, offline), "machine": machine_info(),
    }
    pipe = None
    if relevance_eval or streams:
        pipe = Pipeline.from_pretrained(model, device="cpu", dtype="float32")
    if relevance_eval:
        summary["relevance"] = relevance(pipe, offline, root)
    if streams:
        summary["stream"] = stream_eval(pipe.adapter, items, root, fractions=budgets)
    path = out.with_suffix(".summary.json")
    path.write_text(json.dumps(summary, indent=1))
    plot(summary, out.with_suffix(".png"))
    return summary


def plot(summary: dict[str, Any], path: str | Path) -> None:
    """The field's standard figure: accuracy against visual tokens, one line per method, with
    the full-token accuracy as a dashed reference; overall and needle-only panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary["settings"]
    full = next(r for r in rows if r["method"] == "full")
    methods = [m for m in dict.fromkeys(r["method"] for r in rows) if m != "full" and not m.startswith("preset:")]
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    for ax, key, title in ((axes[0], None, "all families"), (axes[1], "needle", "needle")):
        acc = (lambda r: r["accuracy"]) if key is None else (lambda r: r["per_family"].get(key))  # noqa: E731
        ref = acc(full)
        cmap = plt.get_cmap("tab20")
        for j, m in enumerate(methods):
            pts = sorted([(r["fraction"], acc(r)) for r in rows if r["method"] == m] + [(1.0, ref)])
            ax.plot([100 * p[0] for p in pts], [100 * p[1] for p in pts], marker="o", ms=3, lw=1.2, color=cmap(j % 20),
                    label=m, ls="-" if j < 10 else "--")  # marker + ls, not "o-" + ls (matplotlib warns of both)
        ax.axhline(100 * ref, color="k", ls=":", lw=1, label="full tokens")
        chance = summary["chance"].get(key) if key else float(np.mean(list(summary["chance"].values())))
        ax.axhline(100 * chance, color="grey", ls="-.", lw=0.8, label="chance")
        ax.set_xscale("log")
        ax.set_xticks([10, 25, 50, 100], ["10%", "25%", "50%", "100%"])
        ax.set_xlabel("visual tokens retained (share of full)")
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(0, 102)
        ax.set_title(f"probe: {title}")
    axes[1].legend(fontsize=7, ncol=2, loc="lower right")
    fig.suptitle(f"vidsift probe (synthetic domain), {summary['items']} questions, seed {summary['seed']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

"""G-Search: a greedy search for the per-layer visual-token keep schedule, on a held-out probe split.

Zhao et al., "Accelerating Multimodal Large Language Models by Searching Optimal Vision Token
Reduction", CVPR 2025, https://arxiv.org/abs/2412.00556. The paper's G-Search walks the layers
from shallow to deep and keeps, per layer, the fewest vision tokens that do not lower the score,
assuming the number of essential tokens never grows with depth; P-Sigmoid then fits a parametric
sigmoid to such schedules (its parameters tuned by Bayesian optimisation).

Here (budgeted greedy, as issue 14 asks): start from keep-all; at every step try lowering each
layer's keep fraction to the next value of ``grid`` (deeper layers clipped to it, so the schedule
never grows with depth), score each candidate on the search split, take the one that costs least
(ties: the deepest layer), and stop when the average keep over layers (visual-token FLOPs of the
LLM, relative) reaches ``target_ratio``; the last step lands exactly on the target. The objective
is the mean log-likelihood of the correct option among the options' answer words (one prefill
per question, no decoding): smoother than accuracy on a few dozen questions, which is reported
beside it. The searched schedule is written as a ``schedule:keep=...`` spec, and the P-Sigmoid
parameters (``schedule:mid=..,slope=..,floor=..``) are fitted to it by least squares (grid, then
pattern search; no scipy).

    python -m vidsift.probe.gsearch --root DIR --seed 7 --limit 12 --target 0.25 --out gsearch.json \\
        [--eval-root DIR0 --eval-seed 0 --eval-limit 24]

The search split must be held out: probe seeds are drawn from ``EVAL_SEED_BASE + seed``, disjoint
from training; use a seed other than the evaluation's (0).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..bench.machine import machine_info
from ..errors import ConfigError
from ..pipeline.prune.base import sigmoid_keep
from .evaluate import ensure_items, run_questions
from .generate import ProbeItem

GRID = (1.0, 0.75, 0.5, 0.375, 0.25, 0.125, 0.0625, 0.0)
DECIMALS = 4  # keep fractions are rounded (down) to this many decimals, so the spec is exact


@dataclass(frozen=True)
class Score:
    """One schedule's result on the search split: the objective (higher is better) and accuracy."""

    objective: float
    accuracy: float | None = None


Objective = Callable[[tuple[float, ...]], "Score | float"]


def average_keep(keep: tuple[float, ...]) -> float:
    """Mean keep fraction over layers: the LLM's visual-token compute relative to keeping all."""
    return float(sum(keep)) / len(keep)


def keep_spec(keep: tuple[float, ...]) -> str:
    """``schedule:keep=1/0.5/0.25/0.25`` (every value exact at ``DECIMALS`` decimals)."""
    return "schedule:keep=" + "/".join(f"{v:g}" for v in keep)


def _lowered(keep: tuple[float, ...], layer: int, value: float) -> tuple[float, ...]:
    """``keep`` with ``layer`` set to ``value`` and every deeper layer clipped to it."""
    return keep[:layer] + tuple(min(k, value) for k in keep[layer:])


def _floor(value: float) -> float:
    scale = 10 ** DECIMALS
    return math.floor(value * scale + 1e-9) / scale


def _landing(keep: tuple[float, ...], layer: int, lo: float, target: float) -> float:
    """The value in [lo, keep[layer]] at which lowering ``layer`` brings the average to ``target``
    (rounded down, so the average meets it)."""
    a, b = lo, keep[layer]
    for _ in range(60):  # average_keep(_lowered(...)) is continuous and non-decreasing in the value
        mid = 0.5 * (a + b)
        a, b = (mid, b) if average_keep(_lowered(keep, layer, mid)) < target else (a, mid)
    return max(_floor(b), lo)


def candidates(keep: tuple[float, ...], *, grid: tuple[float, ...], target: float,
               first_layer: int = 0) -> list[tuple[int, tuple[float, ...]]]:
    """Every one-step reduction of ``keep``: (layer, new schedule), deepest layer first."""
    out = []
    for layer in reversed(range(first_layer, len(keep))):
        lower = [g for g in grid if g < keep[layer] - 1e-12]
        if not lower:
            continue
        value = max(lower)
        if average_keep(_lowered(keep, layer, value)) < target - 1e-12:
            value = _landing(keep, layer, value, target)
        out.append((layer, _lowered(keep, layer, value)))
    return out


def _as_score(result: "Score | float") -> Score:
    return result if isinstance(result, Score) else Score(float(result))


@dataclass
class SearchResult:
    """The searched schedule and the search's trace."""

    keep: tuple[float, ...]
    target_ratio: float
    steps: list[dict[str, Any]] = field(default_factory=list)

    @property
    def spec(self) -> str:
        return keep_spec(self.keep)

    def to_dict(self) -> dict[str, Any]:
        return {"keep": list(self.keep), "spec": self.spec, "average_keep": round(average_keep(self.keep), 6),
                "target_ratio": self.target_ratio, "steps": self.steps}


def g_search(objective: Objective, *, n_layers: int, target_ratio: float, grid: tuple[float, ...] = GRID,
             first_layer: int = 0, log: Callable[[str], None] | None = None) -> SearchResult:
    """Greedy search from keep-all down to an average keep of ``target_ratio``.

    objective: schedule (one keep fraction per layer) -> `Score` or float, higher is better.
    first_layer: layers before it keep every token (the paper leaves layer 0 whole; with few
    layers and a low target that leaves little room).
    """
    if not isinstance(n_layers, int) or n_layers < 1:
        raise ConfigError(f"n_layers={n_layers!r}", "must be an int >= 1")
    if not 0.0 <= target_ratio <= 1.0:
        raise ConfigError(f"target_ratio={target_ratio!r}", "must be in [0, 1]")
    if not 0 <= first_layer < n_layers:
        raise ConfigError(f"first_layer={first_layer!r}", f"must be in 0..{n_layers - 1}")
    floor_avg = first_layer / n_layers
    if target_ratio < floor_avg - 1e-12:
        raise ConfigError(f"target_ratio={target_ratio}", f"below {floor_avg:g}, the least average with layers "
                                                          f"0..{first_layer - 1} whole")
    keep = (1.0,) * n_layers
    start = _as_score(objective(keep))
    result = SearchResult(keep=keep, target_ratio=target_ratio)
    result.steps.append({"step": 0, "layer": None, "keep": list(keep), "average_keep": 1.0, **asdict(start)})
    while average_keep(keep) > target_ratio + 1e-12:
        best = None
        for layer, cand in candidates(keep, grid=grid, target=target_ratio, first_layer=first_layer):
            score = _as_score(objective(cand))
            if best is None or score.objective > best[2].objective:  # strict: ties stay with the deeper layer
                best = (layer, cand, score)
        if best is None:
            break  # every allowed layer is at the grid's lowest value
        layer, keep, score = best
        result.keep = keep
        step = {"step": len(result.steps), "layer": layer, "keep": list(keep),
                "average_keep": round(average_keep(keep), 6), **asdict(score)}
        result.steps.append(step)
        if log:
            log(json.dumps(step))
    return result


# -- P-Sigmoid fit ---------------------------------------------------------------------------------

SLOPE_RANGE = (0.1, 100.0)


def _sse(keep: np.ndarray, mid: float, slope: float, floor: float) -> float:
    curve = np.asarray(sigmoid_keep(len(keep), mid=mid, slope=slope, floor=floor))
    return float(((curve - keep) ** 2).sum())


def fit_sigmoid(keep: tuple[float, ...] | list[float]) -> dict[str, float]:
    """Least-squares P-Sigmoid (``mid``, ``slope``, ``floor``) for a per-layer schedule: a grid over
    the three parameters, then a pattern search around the best point (steps halved until tiny).
    Returns the parameters, the squared error and the spec."""
    target = np.asarray(keep, dtype=float)
    if target.ndim != 1 or len(target) < 2:
        raise ConfigError(str(keep), "fitting a sigmoid needs at least two layers")
    lo_s, hi_s = math.log(SLOPE_RANGE[0]), math.log(SLOPE_RANGE[1])
    # the slope is searched in log space; x = (mid, log slope, floor)
    bounds = np.array([[0.0, 1.0], [lo_s, hi_s], [0.0, 1.0]])

    def cost(x: np.ndarray) -> float:
        return _sse(target, float(x[0]), math.exp(float(x[1])), float(x[2]))

    axes = [np.linspace(0, 1, 21), np.linspace(lo_s, hi_s, 31), np.linspace(0, 1, 21)]
    best = min((np.array(p) for p in itertools.product(*axes)), key=cost)
    best_cost = cost(best)
    step0 = np.array([0.05, (hi_s - lo_s) / 30, 0.05])
    step = step0
    moves = [np.array(m) for m in itertools.product((-1, 0, 1), repeat=3) if any(m)]
    for _ in range(2000):  # a move that helps doubles the step (up to the grid's), one that does not halves it
        if step.max() < 1e-7:
            break
        trial = min((np.clip(best + m * step, bounds[:, 0], bounds[:, 1]) for m in moves), key=cost)
        trial_cost = cost(trial)
        if trial_cost < best_cost - 1e-12 * (1.0 + best_cost):
            best, best_cost, step = trial, trial_cost, np.minimum(step * 2, step0)
        else:
            step = step / 2
    mid, slope, floor = round(float(best[0]), DECIMALS), round(math.exp(float(best[1])), 3), round(float(best[2]), DECIMALS)
    return {"mid": mid, "slope": slope, "floor": floor, "sse": _sse(target, mid, slope, floor),
            "spec": f"schedule:mid={mid:g},slope={slope:g},floor={floor:g}",
            "keep": [round(v, 6) for v in sigmoid_keep(len(target), mid=mid, slope=slope, floor=floor)]}


def pdrop_spec(n_layers: int, target_ratio: float) -> str:
    """PyramidDrop's uniform shape at the same average keep: every layer keeps ``r`` times the
    previous one's (layer l keeps ``r^(l+1)``), ``r`` solved so the average is ``target_ratio``."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        r = 0.5 * (lo + hi)
        lo, hi = (r, hi) if np.mean([r ** (j + 1) for j in range(n_layers)]) < target_ratio else (lo, r)
    layers = "/".join(str(j) for j in range(n_layers))
    return f"pdrop:layers={layers},keep=" + "/".join(f"{hi ** (j + 1):.4g}" for j in range(n_layers))


# -- the probe objective -----------------------------------------------------------------------------


class OptionLikelihood:
    """Schedule -> `Score` on probe questions: the mean log-probability of the correct option
    among the options' answer words (the probe answers with the option's one word) at the first
    generated position, and the share where it is the most likely. Inputs are built once per
    question (every token in, ``budget=100%``); each schedule is one prefill per question through
    the ``schedule`` pruner."""

    def __init__(self, pipe: Any, items: list[ProbeItem], root: str | Path) -> None:
        from .model import mc_text

        if not items:
            raise ConfigError(str(root), "no probe questions to search on")
        self.pipe = pipe
        tok = pipe.adapter.tokenizer
        self.prepared = []
        for item in items:
            inputs, _ = pipe.prepare(str(Path(root) / item.video), mc_text(item.question, item.options), budget="100%")
            ids = [tok.encode(o, add_special_tokens=False)[0] for o in item.options]
            self.prepared.append((inputs, ids, item.answer))
        self.calls = 0

    def __call__(self, keep: tuple[float, ...]) -> Score:
        import torch

        from ..pipeline import CacheLayout
        from ..pipeline.prune import PRUNERS

        self.calls += 1
        pruner = PRUNERS.build(keep_spec(keep))
        adapter, total, hits = self.pipe.adapter, 0.0, 0
        for inputs, ids, answer in self.prepared:
            with torch.no_grad(), contextlib.ExitStack() as stack:
                if min(keep) < 1.0:
                    stack.enter_context(CacheLayout(adapter, inputs)).add(pruner)
                logits = adapter.model(**inputs.kwargs, use_cache=False, logits_to_keep=1).logits[0, -1]
            logp = logits.float()[ids].log_softmax(-1)
            total += float(logp[answer])
            hits += int(int(logp.argmax()) == answer)
        n = len(self.prepared)
        return Score(objective=round(total / n, 6), accuracy=round(hits / n, 6))


def probe_items(root: str | Path, *, seed: int, limit: int) -> list[ProbeItem]:
    """The offline questions of the first ``limit`` clips of a probe folder (generated when empty)."""
    items = [i for i in ensure_items(root, seed=seed, videos=limit, stream_videos=0) if not i.stream]
    clips = sorted({i.video for i in items})[:limit]
    return [i for i in items if i.video in clips]


def eval_accuracy(specs: dict[str, str | None], *, root: str | Path, seed: int, limit: int, model: str,
                  out: str | Path) -> dict[str, Any]:
    """Generated-answer accuracy of each prune spec (None: every token) on a probe split, through
    the same batch path as `vidsift eval --dataset probe` (every token in, pruned in the LLM)."""
    settings = {name: {"budget": "100%", **({"prune": spec} if spec else {})} for name, spec in specs.items()}
    report = run_questions(probe_items(root, seed=seed, limit=limit), root, settings, model=model, out=out)
    return {row["setting"]: {"spec": specs[row["setting"]], "n": row["n"], "failed": row["failed"],
                             "accuracy": row["accuracy"],
                             "per_family": {t: v["accuracy"] for t, v in row["per_task"].items()}}
            for row in report.rows}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from ..pipeline import Pipeline
    from . import checkpoint_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="checkpoint folder (default: the shipped probe model)")
    parser.add_argument("--root", required=True, help="search split folder (generated there when empty)")
    parser.add_argument("--seed", type=int, default=7, help="search split seed (not the evaluation's)")
    parser.add_argument("--limit", type=int, default=12, help="clips of the search split (6 questions each)")
    parser.add_argument("--target", type=float, default=0.25, help="average keep over layers to reach")
    parser.add_argument("--grid", default="/".join(f"{g:g}" for g in GRID), help="keep values a layer may step through")
    parser.add_argument("--first-layer", type=int, default=0, help="layers before it keep every token")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--eval-root", default=None, help="evaluation split folder: also measure generated accuracy")
    parser.add_argument("--eval-seed", type=int, default=0)
    parser.add_argument("--eval-limit", type=int, default=24)
    args = parser.parse_args(argv)
    if args.eval_root and args.eval_seed == args.seed:
        raise ConfigError(f"--seed {args.seed}", "the search split must differ from the evaluation split")
    grid = tuple(sorted({float(g) for g in args.grid.split("/")}, reverse=True))
    model = args.model or str(checkpoint_path())
    pipe = Pipeline.from_pretrained(model, device="cpu", dtype="float32")
    n_layers = len(pipe.adapter.decoder_layers)
    t0 = time.perf_counter()
    objective = OptionLikelihood(pipe, probe_items(args.root, seed=args.seed, limit=args.limit), args.root)
    found = g_search(objective, n_layers=n_layers, target_ratio=args.target, grid=grid, first_layer=args.first_layer,
                     log=print)
    search_s = time.perf_counter() - t0
    fit = fit_sigmoid(found.keep)
    pdrop = pdrop_spec(n_layers, args.target)
    specs = {"full": None, "pdrop": pdrop, "gsearch": found.spec, "psigmoid": fit["spec"]}
    summary: dict[str, Any] = {
        "method": "G-Search (greedy, budgeted) + P-Sigmoid fit, arXiv:2412.00556",
        "model": args.model or "vidsift/probe/checkpoint (shipped)",
        "objective": "mean log P(correct option | options) at the answer position (search split), accuracy beside it",
        "split": {"root": str(args.root), "seed": args.seed, "limit": args.limit, "questions": len(objective.prepared)},
        "n_layers": n_layers, "grid": list(grid), "first_layer": args.first_layer, **found.to_dict(),
        "objective_calls": objective.calls, "search_s": round(search_s, 1), "psigmoid": fit, "pdrop_spec": pdrop,
        "search_split": {},
    }
    for name, spec in specs.items():  # every compared schedule, scored on the search split too
        keep = _spec_keep(spec, n_layers)
        summary["search_split"][name] = {"spec": spec, "keep": [round(v, 6) for v in keep],
                                         "average_keep": round(average_keep(keep), 6), **asdict(objective(keep))}
    if args.eval_root:
        t0 = time.perf_counter()
        summary["eval"] = {"root": str(args.eval_root), "seed": args.eval_seed, "limit": args.eval_limit,
                           "accuracy": eval_accuracy(specs, root=args.eval_root, seed=args.eval_seed,
                                                     limit=args.eval_limit, model=model,
                                                     out=Path(args.out).with_suffix(".eval.jsonl"))}
        summary["eval"]["eval_s"] = round(time.perf_counter() - t0, 1)
    summary["machine"] = machine_info()  # CPU model and flags, torch threads
    Path(args.out).write_text(json.dumps(summary, indent=1))
    return summary


def _spec_keep(spec: str | None, n_layers: int) -> tuple[float, ...]:
    """Per-layer keep fractions of a prune spec (None: every token)."""
    if spec is None:
        return (1.0,) * n_layers
    from ..pipeline.prune import PRUNERS

    sched = PRUNERS.build(spec).schedule(n_layers)
    keep, last = [], 1.0
    for layer in range(n_layers):
        last = sched.get(layer, last)
        keep.append(float(last))
    return tuple(keep)


if __name__ == "__main__":
    main()

"""Counterfactual pairs: does the probe model's answer follow a change of the video?

Each evaluation clip of a seed (the same scenes `generate` draws for that seed) is re-rendered with
one edit, and the edited family is asked of both videos at full tokens through the user path
(`run_questions`, as `vidsift eval`). An edit either changes the answer (the model must follow)
or must leave it alone (a shortcut would move it):

========================  =======  =============================================  ===============
edit                      family   what changes                                   answer
========================  =======  =============================================  ===============
recolour_star             needle   the star gets another colour                   the new colour
swap_square_cross         order    the square and the cross trade places          the other one
move_star                 when     the star moves into another third              that third
remove_triangles          count    every triangle is removed (clips with some)    0
main_not_first            global   the main background's opening piece trades     unchanged
                                   places with the next scene (same shares)
triangle_held_longer      count    one triangle stays 2 s longer                  unchanged
repeated_triangle_frame   count    the video freezes 2 s on a triangle's frame    unchanged
final_replaced            now      the final shape becomes another now-type       the new shape
final_type_earlier        now      a shape of the final shape's type is shown     unchanged
                                   earlier
========================  =======  =============================================  ===============

``counterfactual(root, seed=...)`` writes the videos and ``pairs.json`` into ``root`` and returns
the summary: per edit and per family, the share of pairs whose edited answer is the expected one
(``follows``) beside the share of originals answered right.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError
from .generate import EVAL_SEED_BASE, NOW_SHAPES, QUESTIONS, OPTIONS, TRIANGLE_GAP, VERSION, WHEN, ProbeItem, _pos, draw_scene
from .scene import COLOURS, Event, Scene, write_video

HOLD_S = 2.0  # seconds a triangle is held longer / a triangle's frame is frozen
Edit = Callable[[Scene, dict[str, Any], random.Random], "tuple[Scene, str, list[float] | None] | None"]
EDITS: dict[str, tuple[str, Edit]] = {}


def edit(name: str, family: str) -> Callable[[Edit], Edit]:
    def register(fn: Edit) -> Edit:
        EDITS[name] = (family, fn)
        return fn
    return register


def _one(scene: Scene, shape: str) -> Event:
    return next(e for e in scene.events if e.shape == shape)


def _final(scene: Scene) -> Event:
    return max((e for e in scene.events if e.shape in NOW_SHAPES), key=lambda e: e.start_s)


def _replace(scene: Scene, old: Event, new: Event | None) -> Scene:
    events = [e for e in scene.events if e is not old] + ([new] if new is not None else [])
    return dataclasses.replace(scene, events=events)


def _free(scene: Scene, start: float, end: float, *, skip: tuple[Event, ...] = ()) -> bool:
    """``[start, end)`` keeps 1 s from every other event (triangles: TRIANGLE_GAP from triangles)
    and from the final shape's window, and holds a whole-second (1 fps) sample."""
    final = _final(scene)
    if start < 0.5 or end > final.start_s - 1.0 or int(start) == int(end) and start != int(start):
        return False
    for e in scene.events:
        if e in skip or e is final:
            continue
        if not (end + 1.0 <= e.start_s or start >= e.end_s + 1.0):
            return False
    return True


def _place(scene: Scene, rng: random.Random, length: float, lo: float, hi: float, **kw: Any) -> float | None:
    for _ in range(300):
        if hi - lo < length:
            return None
        s = rng.uniform(lo, hi - length)
        if _free(scene, s, s + length, **kw):
            return s
    return None


@edit("recolour_star", "needle")
def recolour_star(scene, q, rng):
    star = _one(scene, "star")
    colour = rng.choice([c for c in COLOURS if c != star.colour])
    return _replace(scene, star, dataclasses.replace(star, colour=colour)), colour, None


@edit("swap_square_cross", "order")
def swap_square_cross(scene, q, rng):
    sq, cr = _one(scene, "square"), _one(scene, "cross")
    scene = _replace(_replace(scene, sq, dataclasses.replace(sq, shape="cross")), cr, dataclasses.replace(cr, shape="square"))
    return scene, "cross" if sq.start_s < cr.start_s else "square", None


@edit("move_star", "when")
def move_star(scene, q, rng):
    star = _one(scene, "star")
    width = (_final(scene).start_s - 1.0) / 3  # the thirds `when` means (of the time before the final shape)
    now = q["options"][q["answer"]]
    for third in rng.sample([i for i in range(3) if WHEN[i] != now], 2):
        s = _place(scene, rng, star.end_s - star.start_s, third * width + 0.15 * width, third * width + 0.85 * width,
                   skip=(star,))
        if s is not None:
            moved = dataclasses.replace(star, start_s=s, end_s=s + star.end_s - star.start_s)
            return _replace(scene, star, moved), WHEN[third], None
    return None


@edit("remove_triangles", "count")
def remove_triangles(scene, q, rng):
    if not any(e.shape == "triangle" for e in scene.events):
        return None
    return dataclasses.replace(scene, events=[e for e in scene.events if e.shape != "triangle"]), "0", None


@edit("main_not_first", "global")
def main_not_first(scene, q, rng):
    main = q["options"][q["answer"]]
    if scene.backgrounds[0][1] != main or len(scene.backgrounds) < 2:
        return None
    bounds = [s for s, _ in scene.backgrounds[1:]] + [scene.duration_s]
    pieces = [(name, end - start) for (start, name), end in zip(scene.backgrounds, bounds)]
    pieces[0], pieces[1] = pieces[1], pieces[0]
    out, t = [], 0.0
    for name, length in pieces:
        if not out or out[-1][1] != name:
            out.append((round(t, 3), name))
        t += length
    return dataclasses.replace(scene, backgrounds=out), main, None


def hold_triangle(scene: Scene, rng: random.Random, hold_s: float = HOLD_S) -> Scene | None:
    """``scene`` with one triangle (tried in random order) on screen ``hold_s`` longer, later or
    earlier, still `TRIANGLE_GAP` from the other triangles and 1 s from every other event (the
    number of appearances is unchanged); None when no triangle has room. Training uses it too."""
    tris = [e for e in scene.events if e.shape == "triangle"]
    for tri in rng.sample(tris, len(tris)):
        others = [e for e in tris if e is not tri]
        for start, end in ((tri.start_s, tri.end_s + hold_s), (tri.start_s - hold_s, tri.end_s)):
            apart = all(end + TRIANGLE_GAP <= e.start_s or start >= e.end_s + TRIANGLE_GAP for e in others)
            if apart and _free(scene, start, end, skip=(tri,)):
                return _replace(scene, tri, dataclasses.replace(tri, start_s=start, end_s=end))
    return None


@edit("triangle_held_longer", "count")
def triangle_held_longer(scene, q, rng):
    held = hold_triangle(scene, rng)
    return None if held is None else (held, q["options"][q["answer"]], None)


@edit("repeated_triangle_frame", "count")
def repeated_triangle_frame(scene, q, rng, *, fps: int = 4):
    tris = [e for e in scene.events if e.shape == "triangle"]
    if not tris:
        return None
    tri = rng.choice(tris)
    t0 = next(t / fps for t in range(int(tri.start_s * fps), int(tri.end_s * fps) + 1) if tri.visible(t / fps))
    times = [i / fps for i in range(int(round(scene.duration_s * fps)))]
    cut = times.index(t0) if t0 in times else next(i for i, t in enumerate(times) if t >= t0)
    times = times[:cut] + [times[cut]] * int(HOLD_S * fps) + times[cut:]
    return scene, q["options"][q["answer"]], times


@edit("final_replaced", "now")
def final_replaced(scene, q, rng):
    final = _final(scene)
    shape = rng.choice([s for s in NOW_SHAPES if s != final.shape])
    return _replace(scene, final, dataclasses.replace(final, shape=shape)), shape, None


@edit("final_type_earlier", "now")
def final_type_earlier(scene, q, rng):
    final = _final(scene)
    length = rng.uniform(1.0, 2.0)
    s = _place(scene, rng, length, 0.5, final.start_s - 1.0)
    if s is None:
        return None
    extra = Event(final.shape, rng.choice(list(COLOURS)), s, s + length, *_pos(rng, final.radius), radius=final.radius)
    return dataclasses.replace(scene, events=[*scene.events, extra]), q["options"][q["answer"]], None


def eval_scenes(seed: int, videos: int, duration_s: tuple[float, float] = (20.0, 32.0)) -> list[tuple[Scene, dict[str, Any]]]:
    """The first ``videos`` offline clips `generate` draws for ``seed`` (same rng sequence)."""
    rng = random.Random(EVAL_SEED_BASE + int(seed))
    out = []
    for _ in range(videos):
        dur = round(rng.uniform(*duration_s), 1)
        out.append(draw_scene(rng, dur))
    return out


def make_pairs(root: str | Path, *, seed: int = 0, videos: int = 24, edits: list[str] | None = None) -> list[dict[str, Any]]:
    """Write the original clips and their edited versions into ``root/videos`` and the pairs
    into ``root/pairs.json`` (reused when seed, videos, edits and generator version match)."""
    names = list(EDITS) if edits is None else edits
    unknown = [n for n in names if n not in EDITS]
    if unknown:
        raise ConfigError(", ".join(unknown), f"unknown counterfactual edit; choose from: {', '.join(EDITS)}")
    root = Path(root)
    head = {"probe": VERSION, "seed": seed, "videos": videos, "edits": names}
    if (root / "pairs.json").exists():
        saved = json.loads((root / "pairs.json").read_text())
        if saved.get("header") == head:
            return saved["pairs"]
        raise ConfigError(str(root), f"holds counterfactual pairs of {saved.get('header')}, not {head}; use another folder")
    (root / "videos").mkdir(parents=True, exist_ok=True)
    pairs = []
    for v, (scene, questions) in enumerate(eval_scenes(seed, videos)):
        original = f"videos/clip{v:03d}.mp4"
        write_video(scene, root / original)
        for name in names:
            family, fn = EDITS[name]
            got = fn(scene, questions[family], random.Random(f"{seed}-{v}-{name}"))
            if got is None:
                continue
            new, expected, times = got
            video = f"videos/clip{v:03d}-{name}.mp4"
            write_video(new, root / video, times=times)
            q = questions[family]
            pairs.append({"clip": v, "edit": name, "family": family, "original_video": original, "video": video,
                          "answer": q["options"][q["answer"]], "expected": expected,
                          "duration_s": new.duration_s if times is None else len(times) / 4})
    (root / "pairs.json").write_text(json.dumps({"header": head, "pairs": pairs}, indent=1))
    return pairs


def counterfactual(root: str | Path, *, model: str | None = None, seed: int = 0, videos: int = 24,
                   edits: list[str] | None = None, out: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Ask each pair's family of the original and the edited video at full tokens; returns (and
    writes beside ``out`` as ``.summary.json``) per edit and per family the share of pairs whose
    edited answer is the expected one."""
    from ..batch.results import ResultsFile
    from ..eval.runner import add_choice
    from . import checkpoint_path
    from .evaluate import run_questions

    root = Path(root)
    model = model or str(checkpoint_path())
    pairs = make_pairs(root, seed=seed, videos=videos, edits=edits)
    items: dict[str, ProbeItem] = {}
    for p in pairs:
        fam = p["family"]
        for kind, video in (("orig", p["original_video"]), (p["edit"], p["video"])):
            qid = f"s{seed}-{Path(video).stem}-{fam}"
            answer = p["answer"] if kind == "orig" else p["expected"]
            items[qid] = ProbeItem(qid=qid, video=video, family=fam, question=QUESTIONS[fam], options=list(OPTIONS[fam]),
                                   answer=list(OPTIONS[fam]).index(answer), duration_s=p["duration_s"])
    out = Path(out) if out else root / "counterfactual.jsonl"
    run_questions(list(items.values()), root, {"full@100%": {"budget": "100%"}}, model=model, out=out, progress=progress)
    said = {}
    for r in ResultsFile(out).latest().values():
        r = add_choice(r)
        qid = (r.get("meta") or {}).get("qid")
        if qid in items and r.get("pred") is not None:
            said[qid] = items[qid].options["ABCDEFGHIJ".index(r["pred"])]
    rows: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for p in pairs:
        orig = said.get(f"s{seed}-{Path(p['original_video']).stem}-{p['family']}")
        new = said.get(f"s{seed}-{Path(p['video']).stem}-{p['family']}")
        row = rows[p["edit"]]
        row["follows"].append(new == p["expected"])
        row["original_right"].append(orig == p["answer"])
        row["both"].append(new == p["expected"] and orig == p["answer"])
        row["answers"].append(new)
    share = lambda v: round(sum(v) / len(v), 4) if v else None  # noqa: E731
    per_edit = {name: {"family": EDITS[name][0], "pairs": len(r["follows"]), "follows": share(r["follows"]),
                       "original_right": share(r["original_right"]), "both_right": share(r["both"]),
                       "answers": dict(sorted(((str(a), r["answers"].count(a)) for a in set(r["answers"])), key=str))}
                for name, r in rows.items()}
    fam: dict[str, list[bool]] = defaultdict(list)
    for name, r in rows.items():
        fam[EDITS[name][0]] += r["follows"]
    summary = {"dataset": "probe", "counterfactual": True, "seed": seed, "model": model, "videos": videos,
               "pairs": len(pairs), "per_edit": per_edit, "per_family": {f: share(v) for f, v in sorted(fam.items())}}
    out.with_suffix(".summary.json").write_text(json.dumps(summary, indent=1))
    return summary

"""Procedural video-QA items whose answers need specific evidence, deterministic from a seed.

One probe video (``make_scene``) is long relative to its events: 3-5 background scenes (one
colour covers most of the time; it opens and closes the clip, only opens it, only closes it or
does neither, evenly), three grey discs drifting all along, and short events of 1-2 s: one star,
0-4 triangles (half of them held 2-4 s, over several 1 fps samples: `count` counts appearances,
not frames), a square and a cross (which comes first: a fair coin), 0-2 now-type shapes
(diamond, ring, bar) as distractors, and a final now-type shape held over the last seconds
(`now` asks what is on screen at the end, not which now-type shape appears).
Each shape is drawn inside one cell of the frame's 2x2 grid of 28-px cells, the pixels
of one LLM token (a 2x2 merge of 14-px patches): an object is one token, as a word is, so a
model as small as the probe's learns shapes in minutes (measured after 500 caption steps:
shape named right 74% with cell-aligned shapes, 31% with shapes anywhere). Every video carries one
question of each family:

==========  ================================================  ====================================
family      question                                          evidence (seconds)
==========  ================================================  ====================================
needle      What colour was the star?                          the star's interval
count       How many times did a triangle appear?              every triangle's interval
order       Which appeared first, the square or the cross?     both intervals
when        When did the star appear?  (beginning/middle/end)  the star's interval
global      What was the main background colour?               the dominant background's scenes
now         What shape is on screen now?                       the final shape's interval
==========  ================================================  ====================================

Stream videos (``stream=True``, minutes long) carry ``now`` and ``recall`` (the needle question,
asked at the end, about a star shown minutes before). ``relevance`` is not a separate item: its
per-frame yes/no labels are whether a frame's time falls inside an item's evidence, asked with
the ``mllm`` scorer's prompt about that item's question.

Long videos (``make_long_scene``, ``generate_long``: 2-60 minutes) carry ``needle``, ``when`` (the
third of the whole video), ``order`` and ``count`` (0-2 triangles), with a distractor shape about
every 12 s and a background change every 20-90 s.

``time_scale`` stretches every duration (scenes, events) by a factor, so a video sampled at
``1 / time_scale`` frames per second shows the same frames as the unstretched one at 1 fps:
training uses it to meet the long time spans (M-RoPE temporal positions) of streams.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .scene import BACKGROUNDS, COLOURS, SIZE, Distractor, Event, Scene, write_video

FAMILIES = ("needle", "count", "order", "when", "global", "now")
STREAM_FAMILIES = ("now", "recall")
NOW_SHAPES = ("diamond", "ring", "bar")
WHEN = ("beginning", "middle", "end")
QUESTIONS = {
    "needle": "What colour was the star?",
    "recall": "What colour was the star?",
    "count": "How many times did a triangle appear?",
    "order": "Which appeared first, the square or the cross?",
    "when": "When did the star appear?",
    "global": "What was the main background colour?",
    "now": "What shape is on screen now?",
}
# options: one word each, in one fixed order per family. The probe model answers with the option's
# word (every family has its own answer words, so a small model trained from scratch learns the
# families without one family's letters interfering with another's); `vidsift.eval.extract_choice`
# reads a letter or an option's text alike. The model still has to see the evidence, which is
# what the probe measures.
OPTIONS = {"needle": tuple(COLOURS), "recall": tuple(COLOURS), "count": ("0", "1", "2", "3", "4"),
           "order": ("square", "cross"), "when": WHEN, "global": tuple(BACKGROUNDS), "now": NOW_SHAPES}
# training seeds are drawn below this; evaluation seeds start here (never overlap)
EVAL_SEED_BASE = 1_000_000
# the drawn world's version, written in every items.jsonl header: one seed's items and pixels change
# when it does (2: shapes inside one token cell; 3: triangles TRIANGLE_GAP s apart; 4: the main
# background may open, close or neither, now-type shapes also appear earlier, triangles last 1-4 s),
# so folders of another version are never reused
VERSION = 4
# seconds between two triangles. Sampled at 1 fps and paired into Qwen temporal patches of 2 frames,
# triangles at least 3 s apart never fall in the same or in neighbouring patches, so each is a
# separate run of tokens (2 s apart, two triangles could fill neighbouring patches and read as one)
TRIANGLE_GAP = 3.0
# how many now-type distractors (diamond/ring/bar) a clip shows before its final shape: drawn from
# this tuple (v4; about two clips in three have at least one)
EARLY_NOW = (0, 1, 1, 2)


@dataclass
class ProbeItem:
    """One multiple-choice question about one probe video; ``options[answer]`` is correct."""

    qid: str
    video: str
    family: str
    question: str
    options: list[str]
    answer: int
    evidence: list[tuple[float, float]] = field(default_factory=list)
    duration_s: float = 0.0
    stream: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self))


BG_LAYOUTS = ("both", "opens", "closes", "neither")  # where the main background sits (v4: balanced)


def _backgrounds(rng: random.Random, duration: float) -> list[tuple[float, str]]:
    """3-5 scenes; the main one covers 55-75% of the time in 1-3 pieces and, drawn evenly from
    `BG_LAYOUTS`, opens and closes the clip, only opens it, only closes it, or does neither (v3:
    always both, so "the first frame's colour" answered `global`). Every piece lasts >= 8% of
    the clip (1.6 s of a 20 s clip), so a 1 fps sample sees it."""
    names = list(BACKGROUNDS)
    rng.shuffle(names)
    layout = rng.choice(BG_LAYOUTS)
    n_other = rng.randint(2, 3) if layout == "neither" else rng.randint(1, 2)
    dominant, others = names[0], names[1 : 1 + n_other]
    share = rng.uniform(0.55, 0.75)
    # the main background's pieces sit between the others ("both": also at both ends)
    dom_parts = {"both": n_other + 1, "opens": n_other, "closes": n_other, "neither": n_other - 1}[layout]
    weights = [rng.uniform(1.0, 2.0) for _ in range(dom_parts)]
    dom_len = [share * duration * w / sum(weights) for w in weights]
    other_len = (1 - share) * duration / n_other
    seq: list[tuple[str, float]] = []
    if layout in ("both", "opens"):
        seq.append((dominant, dom_len.pop(0)))
    for i, name in enumerate(others):
        seq.append((name, other_len))
        if dom_len and (i < n_other - 1 or layout in ("both", "closes")):
            seq.append((dominant, dom_len.pop(0)))
    out, t = [], 0.0
    for name, length in seq:
        out.append((round(t, 3), name))
        t += length
    return out


def _place(rng: random.Random, taken: list[tuple[float, float]], lo: float, hi: float, dur: float,
           gap: float) -> tuple[float, float] | None:
    for _ in range(200):
        if hi - lo < dur:
            return None
        s = rng.uniform(lo, hi - dur)
        if all(s + dur + gap <= a or s >= b + gap for a, b in taken):
            return (s, s + dur)
    return None


CELL = SIZE // 2  # one LLM token's square of pixels (a 2x2 merge of 14-px patches)


def _pos(rng: random.Random, r: int) -> tuple[int, int]:
    """A shape's centre: inside one token cell (the frame's 2x2 grid of cells), jittered so its
    ``r``-radius box (``2r + 1`` pixels, ends included) never crosses into a neighbouring cell."""
    j = CELL // 2 - r - 1
    return (rng.randrange(2) * CELL + CELL // 2 + rng.randint(-j, j),
            rng.randrange(2) * CELL + CELL // 2 + rng.randint(-j, j))


def make_scene(rng: random.Random, duration_s: float, *, stream: bool = False, time_scale: float = 1.0,
               event_scale: float = 1.0, triangles: int | None = None) -> tuple[Scene, dict[str, dict[str, Any]]]:
    """A probe scene and its questions: ``{family: {question, options, answer, evidence}}``.

    ``duration_s`` is in unstretched seconds; the scene lasts ``duration_s * time_scale``.
    ``event_scale`` > 1 lengthens the events (training's curriculum: long events first).
    ``triangles`` fixes the number of triangles (default: drawn from 0-4).
    """
    D, k = float(duration_s), float(time_scale)
    scene = Scene(duration_s=D * k, backgrounds=[(s * k, n) for s, n in _backgrounds(rng, D)])
    for _ in range(3):
        x, y = rng.uniform(5, SIZE - 5), rng.uniform(5, SIZE - 5)
        speed, angle = rng.uniform(4, 15) / k, rng.uniform(0, 6.283)
        scene.distractors.append(Distractor(x, y, speed * math.cos(angle), speed * math.sin(angle),
                                            rng.randint(3, 4), rng.randint(90, 170)))
    dur = lambda: rng.uniform(1.0, 2.0) * event_scale  # noqa: E731  event length (unstretched seconds)
    now_len = rng.uniform(1.6, 2.4)
    end = D - now_len - 1.0  # other events end before the final shape's window
    taken: list[tuple[float, float]] = []
    # the star: beginning, middle or end third (well inside it); streams show it early
    if stream:
        third, span = 0, (3.0, min(30.0, end))
    else:
        third = rng.randrange(3)
        width = end / 3
        span = (third * width + 0.15 * width, third * width + 0.85 * width)
    star = _place(rng, taken, *span, min(dur(), 0.9 * (span[1] - span[0])), 1.0)
    if star is None:
        raise ValueError(f"probe scene of {D:.1f} s too short for its events; use a longer duration")
    taken.append(star)
    tri: list[tuple[float, float]] = []
    for _ in range(rng.randint(0, 4) if triangles is None else triangles):
        # TRIANGLE_GAP s apart from each other (so no two share or touch a temporal patch), 1 s from the rest
        d = triangle_length(rng) * min(event_scale, 1.5)
        apart = TRIANGLE_GAP - 1.0
        got = _place(rng, taken + [(a - apart, b + apart) for a, b in tri], 0.5, end, d, 1.0)
        if got is None:
            raise ValueError(f"probe scene of {D:.1f} s too short for {len(tri) + 1} triangles")
        tri.append(got)
        taken.append(got)
    sq = _place(rng, taken, 0.5, end, min(dur(), end / 8), 1.0)
    cr = sq and _place(rng, taken + [sq], 0.5, end, min(dur(), end / 8), 1.0)
    if sq is None or cr is None:
        raise ValueError(f"probe scene of {D:.1f} s too short for its events; use a longer duration")
    if rng.random() < 0.5:  # which of the two comes first: a fair coin (order balanced by construction)
        sq, cr = cr, sq
    taken += [sq, cr]
    # v4: now-type shapes also appear earlier (distractors of any now-type, the final one's too), so
    # `now` means "on screen at the end", not "which of these shapes appears at all"
    early = []
    for _ in range(rng.choice(EARLY_NOW)):
        got = _place(rng, taken, 0.5, end, min(dur(), end / 8), 1.0)
        if got is not None:
            early.append(got)
            taken.append(got)
    now_shape = rng.choice(NOW_SHAPES)
    now = (D - now_len, D)

    def event(shape: str, iv: tuple[float, float], colour: str | None = None, r: int = 12) -> Event:
        return Event(shape, colour or rng.choice(list(COLOURS)), iv[0] * k, iv[1] * k, *_pos(rng, r), radius=r)

    star_colour = rng.choice(list(COLOURS))
    scene.events += [event("star", star, star_colour), *[event("triangle", iv) for iv in tri],
                     event("square", sq), event("cross", cr), *[event(rng.choice(NOW_SHAPES), iv, r=13) for iv in early],
                     event(now_shape, now, r=13)]
    scaled = lambda iv: (round(iv[0] * k, 3), round(iv[1] * k, 3))  # noqa: E731

    def mc(family: str, correct: str, evidence: list[tuple[float, float]]) -> dict[str, Any]:
        options = list(OPTIONS[family])  # a fixed order per family: the letter names the answer
        return {"question": QUESTIONS[family], "options": options, "answer": options.index(correct),
                "evidence": [scaled(iv) for iv in evidence]}

    dominant = max(scene.background_share().items(), key=lambda kv: kv[1])[0]
    bounds = [s for s, _ in scene.backgrounds[1:]] + [scene.duration_s]
    dom_ivs = [(s / k, e / k) for (s, n), e in zip(scene.backgrounds, bounds) if n == dominant]
    questions = {
        "needle": mc("needle", star_colour, [star]),
        "count": mc("count", str(len(tri)), tri),
        "order": mc("order", "square" if sq[0] < cr[0] else "cross", [sq, cr]),
        "when": mc("when", WHEN[third], [star]),
        "global": mc("global", dominant, dom_ivs),
        "now": mc("now", now_shape, [now]),
    }
    if stream:
        questions = {"now": questions["now"], "recall": {**questions["needle"], "question": QUESTIONS["recall"]}}
    return scene, questions


LONG_FAMILIES = ("needle", "when", "order", "count")


def make_long_scene(rng: random.Random, duration_s: float) -> tuple[Scene, dict[str, dict[str, Any]]]:
    """A long probe scene (minutes to an hour) and its questions, as `make_scene`'s dict for
    `LONG_FAMILIES`: one star shown 1.5-2 s (in a third drawn evenly), a square and a cross once
    each, 0-2 triangles of 1-2 s, another shape (now-type, random colour) about every 12 s,
    backgrounds changing every 20-90 s and three grey discs drifting. ``when`` names the third
    of the whole video that holds the star."""
    D = float(duration_s)
    if D < 60:
        raise ValueError(f"long probe scene of {D:.1f} s: use at least 60 s")
    names, bgs, t = list(BACKGROUNDS), [], 0.0
    while t < D:
        bgs.append((round(t, 3), rng.choice([n for n in names if not bgs or n != bgs[-1][1]])))
        t += rng.uniform(20.0, 90.0)
    scene = Scene(duration_s=D, backgrounds=bgs)
    for _ in range(3):
        x, y = rng.uniform(5, SIZE - 5), rng.uniform(5, SIZE - 5)
        speed, angle = rng.uniform(4, 15), rng.uniform(0, 6.283)
        scene.distractors.append(Distractor(x, y, speed * math.cos(angle), speed * math.sin(angle),
                                            rng.randint(3, 4), rng.randint(90, 170)))
    third, width = rng.randrange(3), D / 3
    taken: list[tuple[float, float]] = []
    star = _place(rng, taken, third * width + 0.1 * width, third * width + 0.9 * width, rng.uniform(1.5, 2.0), 1.0)
    taken.append(star)
    tri: list[tuple[float, float]] = []
    for _ in range(rng.randint(0, 2)):
        got = _place(rng, taken, 1.0, D - 1.0, rng.uniform(1.0, 2.0), TRIANGLE_GAP)
        tri.append(got)
        taken.append(got)
    sq = _place(rng, taken, 1.0, D - 1.0, rng.uniform(1.0, 2.0), 1.0)
    taken.append(sq)
    cr = _place(rng, taken, 1.0, D - 1.0, rng.uniform(1.0, 2.0), 1.0)
    taken.append(cr)
    others, t = [], rng.uniform(2.0, 12.0)
    while t < D - 3.0:  # a distractor about every 12 s, skipped where it would touch an event
        iv = (t, t + rng.uniform(1.0, 2.0))
        if all(iv[1] + 1.0 <= a or iv[0] >= b + 1.0 for a, b in taken):
            others.append(iv)
        t += rng.uniform(9.0, 15.0)

    def event(shape: str, iv: tuple[float, float], colour: str | None = None, r: int = 12) -> Event:
        return Event(shape, colour or rng.choice(list(COLOURS)), iv[0], iv[1], *_pos(rng, r), radius=r)

    star_colour = rng.choice(list(COLOURS))
    scene.events += [event("star", star, star_colour), *[event("triangle", iv) for iv in tri],
                     event("square", sq), event("cross", cr),
                     *[event(rng.choice(NOW_SHAPES), iv, r=13) for iv in others]]
    scene.events.sort(key=lambda e: e.start_s)

    def mc(family: str, correct: str, evidence: list[tuple[float, float]]) -> dict[str, Any]:
        options = list(OPTIONS[family])
        return {"question": QUESTIONS[family], "options": options, "answer": options.index(correct),
                "evidence": [(round(a, 3), round(b, 3)) for a, b in evidence]}

    return scene, {"needle": mc("needle", star_colour, [star]), "when": mc("when", WHEN[third], [star]),
                   "order": mc("order", "square" if sq[0] < cr[0] else "cross", sorted([sq, cr])),
                   "count": mc("count", str(len(tri)), sorted(tri))}


def draw_scene(rng: random.Random, duration_s: float, **options: Any) -> tuple[Scene, dict[str, dict[str, Any]]]:
    """`make_scene`, drawn again (from the same ``rng``, so still seeded) while its events do not fit.

    The number of triangles is drawn first and kept for up to ``PLACEMENTS`` layouts, so every
    count that fits the duration is about equally likely (four triangles need about 22 s; drawn
    anew with each layout, they were 9% of the clips)."""
    for attempt in range(200 * PLACEMENTS):
        if attempt % PLACEMENTS == 0:
            triangles = rng.randint(0, 4)
        try:
            return make_scene(rng, duration_s, triangles=triangles, **options)
        except ValueError:
            continue
    raise ValueError(f"no probe scene of {duration_s:.1f} s fits its events")


PLACEMENTS = 60  # layouts tried for one drawn number of triangles (4 long triangles need a few tries)


def needle_scene(rng: random.Random, seconds: float, *, star_at: float, colour: str = "red",
                 backgrounds: list[tuple[float, str]]) -> Scene:
    """A plain needle-in-a-haystack scene for benchmarks and tests: ``backgrounds`` as given, three
    drifting discs, a now-type distractor shape every 9-15 s (none within 4 s of the star) and one
    2-s ``colour`` star at ``star_at``, each shape inside one token cell. Drawn from ``rng``."""
    scene = Scene(duration_s=seconds, backgrounds=backgrounds)
    for _ in range(3):
        a = rng.uniform(0, 6.28)
        scene.distractors.append(Distractor(rng.uniform(5, 50), rng.uniform(5, 50), 8 * math.cos(a), 8 * math.sin(a), 3, 140))
    cell = lambda: (rng.randrange(2) * 28 + 14, rng.randrange(2) * 28 + 14)  # noqa: E731
    t = 3.0
    while t < seconds - 4:
        if not (star_at - 4 < t < star_at + 3):
            shape = rng.choice(("diamond", "ring", "bar"))
            scene.events.append(Event(shape, rng.choice(list(COLOURS)), t, t + rng.uniform(1, 2), *cell(), radius=12))
        t += rng.uniform(9, 15)
    scene.events.append(Event("star", colour, star_at, star_at + 2.0, *cell(), radius=12))
    return scene


def triangle_length(rng: random.Random) -> float:
    """Seconds a triangle stays on screen (v4): half of them 1-2 s, half 2-4 s, so many span
    two to four 1 fps samples and only counting appearances (not frames) gives `count`."""
    return rng.uniform(1.0, 2.0) if rng.random() < 0.5 else rng.uniform(2.0, 4.0)


def generate(root: str | Path, *, seed: int = 0, videos: int = 24, stream_videos: int = 4,
             duration_s: tuple[float, float] = (20.0, 32.0), stream_duration_s: float = 150.0) -> list[ProbeItem]:
    """Write ``videos`` offline clips and ``stream_videos`` long stream clips with their items
    into ``root`` (``videos/*.mp4`` + ``items.jsonl``); returns the items. The items and the drawn
    pictures are a function of ``seed`` (evaluation uses ``EVAL_SEED_BASE + seed``, disjoint from
    every training seed); the H.264 bytes may differ in a few low bits between encodes."""
    root = Path(root)
    (root / "videos").mkdir(parents=True, exist_ok=True)
    rng = random.Random(EVAL_SEED_BASE + int(seed))
    items: list[ProbeItem] = []
    for v in range(videos + stream_videos):
        stream = v >= videos
        dur = stream_duration_s if stream else round(rng.uniform(*duration_s), 1)
        # streams: unstretched layout of a short clip, stretched to minutes (events stay 1-2 s long)
        scene, questions = draw_scene(rng, dur, stream=stream)
        name = f"{'stream' if stream else 'clip'}{v:03d}.mp4"
        write_video(scene, root / "videos" / name)
        for family, q in questions.items():
            items.append(ProbeItem(qid=f"s{seed}-{name[:-4]}-{family}", video=f"videos/{name}", family=family,
                                   question=q["question"], options=q["options"], answer=q["answer"],
                                   evidence=q["evidence"], duration_s=scene.duration_s, stream=stream))
    with open(root / "items.jsonl", "w") as fh:
        fh.write(json.dumps({"probe": VERSION, "seed": seed, "videos": videos, "stream_videos": stream_videos}) + "\n")
        for item in items:
            fh.write(item.to_json() + "\n")
    return items


def generate_long(root: str | Path, *, seed: int = 0, durations: tuple[float, ...] = (120, 600, 1800, 3600),
                  videos: int = 6) -> list[ProbeItem]:
    """Write ``videos`` long probe videos of each duration (seconds) and their `LONG_FAMILIES`
    items into ``root`` (``videos/long{dur}_{i}.mp4`` + ``items.jsonl``, header ``"long": true``);
    returns the items. Drawn from ``EVAL_SEED_BASE + 500_000 + seed``: disjoint from the short
    split's seeds and from training's. Written at 2 fps (the pipeline samples at most 1 fps)."""
    root = Path(root)
    (root / "videos").mkdir(parents=True, exist_ok=True)
    rng = random.Random(EVAL_SEED_BASE + 500_000 + int(seed))
    items: list[ProbeItem] = []
    for dur in durations:
        for i in range(videos):
            scene, questions = make_long_scene(rng, float(dur))
            name = f"long{dur:g}_{i}.mp4"
            write_video(scene, root / "videos" / name, fps=2)
            for family, q in questions.items():
                items.append(ProbeItem(qid=f"s{seed}-{name[:-4]}-{family}", video=f"videos/{name}", family=family,
                                       question=q["question"], options=q["options"], answer=q["answer"],
                                       evidence=q["evidence"], duration_s=scene.duration_s))
    with open(root / "items.jsonl", "w") as fh:
        fh.write(json.dumps({"probe": VERSION, "long": True, "seed": seed, "durations": list(durations),
                             "videos": videos}) + "\n")
        for item in items:
            fh.write(item.to_json() + "\n")
    return items


def load_items(root: str | Path) -> tuple[dict[str, Any], list[ProbeItem]]:
    """The header and items of a generated probe folder."""
    lines = Path(root, "items.jsonl").read_text().splitlines()
    header = json.loads(lines[0])
    items = []
    for line in lines[1:]:
        d = json.loads(line)
        d["evidence"] = [tuple(iv) for iv in d["evidence"]]
        items.append(ProbeItem(**d))
    return header, items

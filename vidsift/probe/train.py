"""Train the probe model from scratch on CPU, at full tokens only, through the stock forward.

    python -m vidsift.probe.train --out DIR [--seed 0] [--minutes 40]

Each step draws fresh probe scenes (seeded; training seeds never reach ``EVAL_SEED_BASE``),
renders the frames the Pipeline would sample (1 fps, or 1/time_scale fps for stretched
scenes), and builds every example with the adapter's own ``pixel_inputs`` (the adapter's pixels,
grids and prompt in the stock model's input format; the equivalence tests compare them with the
transformers processors) so training sees exactly the prompt and preprocessing that inference sees. The vision tower runs once per video; its features are
shared by that video's questions through the stock ``mm_encoder_outputs`` forward argument.
Loss is cross-entropy on the answer token(s) and the end-of-turn token.

Examples per step: ``videos`` clips x ``questions`` multiple-choice questions (the prompt of
`vidsift.eval.MCPrompt`; the target is the option's one word), ``images`` two-frame questions
(two neighbouring samples, one Qwen temporal patch, are the whole video: the star's colour, the
shape, the background, ...: cheap perception; a 1-2 s event often fills only one frame of the
pair, as it does in sampled videos), and ``relevance`` single frames asked with the ``mllm``
scorer's prompt (half inside the evidence, half outside). ``captions`` adds "Describe every
frame." per clip (per sampled frame: background, then colour and shape of each shape shown) and
``frame_captions`` that many captions of one or two neighbouring frames. ``count_windows`` asks
``count`` again of that many random stretches of each clip (at least 4 samples, the stretch is the
whole video; the answer counts the triangles seen in its samples), so counting is practised over
many spans and answers rather than once per clip. A clip's caption also carries its time line: "beginning", "middle" or "end" opens each third of the clip (which the
``when`` question needs) and each new triangle names the running count (which ``count`` needs).

``long_clips`` (issue 22) adds that many long scenes a step (`make_long_scene`, 2-60 min,
log-uniform), asked the `LONG_FAMILIES` their samples answer: ``long_uniform`` of them sampled as
the default pipeline's cap (64 frames spread over the video), the rest as a temporal search keeps
them (12-24 coverage frames plus 1 fps frames inside 1-2 questions' evidence). Their groups are
unevenly spaced in time, so ``pixel_inputs`` returns the ``position_ids`` the adapter gives them at
inference (each group placed by its real time, up to ~7,200 at an hour) and the batched forward
passes those (``Examples.positions``) instead of letting the stock forward spread them evenly.

Stage 1 (``pretrain_steps``): frame captions only, ``pretrain_batch`` a step. Dense targets teach
colour and shape far sooner than one-word answers do (measured: colour 93% after ~550 caption
steps, where one-word questions took ~1,500 steps to learn it).
Stage 2, curriculum over ``curriculum_steps``: clips grow from ``duration0_s`` to ``duration_s`` while
events shrink from ``event_scale0`` times their length to their real 1-2 s; a scene any of whose
events falls between two samples is drawn again, so every label is visible.
No token reduction of any kind is ever used in training.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import math
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..frames.types import FrameBatch
from .generate import FAMILIES, LONG_FAMILIES, NOW_SHAPES, PLACEMENTS, WHEN, make_long_scene, make_scene
from .model import CAPTION_PROMPT, RELEVANCE_PROMPT, build_untrained, mc_text
from .scene import render

RELEVANCE_FAMILIES = ("needle", "count", "order", "when", "now")
IMAGE_FAMILIES = ("needle", "global", "now", "count", "order")


@dataclass
class TrainConfig:
    seed: int = 0
    steps: int = 3800  # length of the learning-rate schedule (about 45-50 min on 2 idle cores)
    minutes: float = 50.0  # wall-clock cap; training stops at whichever comes first
    stop_step: int = 0  # stop after this step (0: run the schedule); reproduces a time-capped run exactly
    videos: int = 3  # clips per step
    questions: int = 6  # questions per clip (of the 6 families)
    relevance: int = 6  # single-frame yes/no examples per step
    images: int = 24  # single-frame questions per step (cheap perception: the star's colour, the shape, ...)
    captions: bool = True  # per clip, also "Describe every frame.": background, then colour + shape of what is shown
    pretrain_steps: int = 1200  # stage 1: this many steps of frame captions only (dense, cheap perception)
    pretrain_batch: int = 48  # caption examples per stage-1 step
    frame_captions: int = 8  # stage 2: caption examples (one or two frames) per step, beside the questions
    count_windows: int = 2  # stage 2: per clip, count questions about random stretches of it
    count_holds: int = 0  # stage 2: per clip, count asked of a copy with a triangle held longer or a frame frozen (same answer)
    long_triangles: float = 0.0  # stage 2: share of clips whose triangles are held 1-6 samples longer, for every question on them
    long_clips: int = 0  # stage 2: long scenes (2-60 min) per step, sampled as a search plan or the default cap would
    long_uniform: float = 0.3  # share of long scenes sampled as the default pipeline does (64 evenly spread frames)
    lr: float = 1.5e-3
    warmup: int = 100
    weight_decay: float = 0.01
    curriculum_steps: int = 1500
    event_scale0: float = 4.0
    duration_s: tuple[float, float] = (16.0, 32.0)  # clip lengths after the curriculum
    duration0_s: tuple[float, float] = (10.0, 14.0)  # clip lengths at its start (short clips are cheap)
    time_scales: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 4.0)
    noise: float = 2.0  # Gaussian pixel noise (grey levels), a stand-in for codec noise
    eval_every: int = 200
    eval_videos: int = 48
    init: str = ""  # continue from this checkpoint folder instead of a random init


def _frames(scene, times: np.ndarray, rng: np.random.Generator, noise: float) -> FrameBatch:
    data = np.stack([render(scene, float(t)) for t in times]).astype(np.float32)
    if noise:
        data += rng.normal(0, noise, data.shape).astype(np.float32)
    data = np.clip(np.rint(data), 0, 255).astype(np.uint8)
    return FrameBatch(data, times.astype(np.float64), np.arange(len(times), dtype=np.int64))



def _longest_hold(rng: random.Random, scene, step: float, *, most: int):
    """``scene`` with one triangle held longer (`hold_triangle`): the longest hold of 1 to a random
    count of at most ``most`` samples that has room; None when none has."""
    from .counterfactual import hold_triangle

    for samples in range(rng.randint(1, most), 0, -1):
        if (held := hold_triangle(scene, rng, samples * step)) is not None:
            return held
    return None

class Examples:
    """Builds training batches with the adapter's ``pixel_inputs``."""

    def __init__(self, adapter, cfg: TrainConfig) -> None:
        self.adapter, self.cfg = adapter, cfg
        tok = adapter.tokenizer
        self.eos = tok.convert_tokens_to_ids("<|im_end|>")
        self.pad = tok.convert_tokens_to_ids("<|endoftext|>")
        self.yes, self.no = tok.convert_tokens_to_ids("yes"), tok.convert_tokens_to_ids("no")

    def word(self, text: str) -> int:
        """The one token of an answer word (the probe's options are single words)."""
        ids = self.adapter.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise ValueError(f"answer {text!r} is not one token")
        return ids[0]

    def mc_text(self, q: dict[str, Any]) -> str:
        return mc_text(q["question"], q["options"])

    def clip(self, rng: random.Random, *, frac: float):
        """A scene at curriculum position ``frac`` (0: long events in short clips, 1: real ones) and
        the times the Pipeline would sample (1/k fps over a scene stretched k times). A scene any of
        whose events falls between two samples is drawn again, so every label is visible."""
        cfg = self.cfg
        lo = cfg.duration0_s[0] + (cfg.duration_s[0] - cfg.duration0_s[0]) * frac
        hi = cfg.duration0_s[1] + (cfg.duration_s[1] - cfg.duration0_s[1]) * frac
        event_scale = 1.0 + (cfg.event_scale0 - 1.0) * (1.0 - frac)
        # as `draw_scene`, the count is kept while layouts are tried, once events have their real
        # length (during the curriculum long events rarely fit four triangles, and failed layouts cost)
        keep = PLACEMENTS if frac >= 1.0 else 1
        for attempt in range(200 * keep):
            if attempt % keep == 0:
                D, k, triangles = rng.uniform(lo, hi), rng.choice(cfg.time_scales), rng.randint(0, 4)
            try:
                scene, qs = make_scene(rng, D, time_scale=k, event_scale=event_scale, triangles=triangles)
            except ValueError:  # long curriculum events that do not fit a short clip
                continue
            times = np.arange(math.ceil(D - 1e-9)) * k
            if all(((times >= e.start_s) & (times < e.end_s)).any() for e in scene.events):
                return scene, qs, times
        raise ValueError(f"no probe scene fits {lo:.0f}-{hi:.0f} s at event scale {event_scale:.1f}")

    def batch(self, rng: random.Random, nrng: np.random.Generator, frac: float) -> list[dict[str, Any]]:
        """[(frames, question text, answer token id, family)] for one step."""
        out = []
        for _ in range(self.cfg.videos):
            scene, qs, times = self.clip(rng, frac=frac)
            if rng.random() < self.cfg.long_triangles:
                scene = self.lengthen_triangles(rng, scene, times)
            frames = _frames(scene, times, nrng, self.cfg.noise)
            for fam in rng.sample(FAMILIES, self.cfg.questions):
                word = qs[fam]["options"][qs[fam]["answer"]]
                out.append({"frames": frames, "text": self.mc_text(qs[fam]), "target": self.word(word), "family": fam})
            if self.cfg.captions:
                out.append(self.caption(scene, times, nrng, frames, timeline=True))
            for _ in range(self.cfg.count_windows if len(times) > 4 else 0):
                out.append(self.count_window(rng, scene, qs["count"], times, nrng))
            for i in range(self.cfg.count_holds):
                out += self.count_hold(rng, scene, qs["count"], times, nrng, caption=i == 0)
        for _ in range(self.cfg.long_clips):
            scene, qs, times, families = self.long_clip(rng)
            frames = _frames(scene, times, nrng, self.cfg.noise)
            for fam in families:
                word = qs[fam]["options"][qs[fam]["answer"]]
                out.append({"frames": frames, "text": self.mc_text(qs[fam]), "target": self.word(word), "family": f"long/{fam}"})
        for _ in range(self.cfg.frame_captions):
            out.append(self.frame_caption(rng, nrng, frac))
        for _ in range(self.cfg.images):  # two neighbouring samples are the whole video: the question about them
            scene, qs, times = self.clip(rng, frac=frac)
            fam = rng.choice(IMAGE_FAMILIES)
            pair, word = self._frame_pair(rng, scene, fam, times)
            frames = _frames(scene, np.array(pair), nrng, self.cfg.noise)
            out.append({"frames": frames, "text": self.mc_text(qs[fam]), "target": self.word(word), "family": f"{fam}/1"})
        for _ in range(self.cfg.relevance):
            scene, qs, times = self.clip(rng, frac=frac)
            fam = rng.choice(RELEVANCE_FAMILIES)
            ev = [(a * 1.0, b * 1.0) for a, b in qs[fam]["evidence"]]
            inside = [t for t in times if any(a <= t < b for a, b in ev)]
            outside = [t for t in times if not any(a <= t < b for a, b in ev)]
            want = bool(inside) and (rng.random() < 0.5 or not outside)
            t = rng.choice(inside if want else outside)
            frames = _frames(scene, np.array([t]), nrng, self.cfg.noise)
            text = RELEVANCE_PROMPT.format(question=self.mc_text(qs[fam]))
            out.append({"frames": frames, "text": text, "target": self.yes if want else self.no, "family": "relevance"})
        return out

    def long_clip(self, rng: random.Random) -> tuple[Any, dict[str, dict[str, Any]], np.ndarray, list[str]]:
        """A long scene (2-60 min, log-uniform) and the times a plan would sample, with the families
        those samples answer. ``long_uniform`` of them: the default pipeline's cap, the centres of
        64 equal slices (on the 2 fps grid of the written long videos), asking what those frames
        show in full (the star seen for ``needle``/``when``, both square and cross for ``order``,
        every triangle for ``count``). The rest, as a temporal search keeps them: 12-24 coverage
        frames spread over the whole video plus 1 fps frames inside the evidence of 1-2 questions,
        so M-RoPE temporal positions reach thousands with irregular spacing (the adapter places
        each group by its real time, as at inference)."""
        for _ in range(100):
            D = math.exp(rng.uniform(math.log(120.0), math.log(3600.0)))
            scene, qs = make_long_scene(rng, D)
            grid = lambda t: np.floor(np.asarray(t) * 2) / 2  # noqa: E731  the written videos' 2 fps frames
            if rng.random() < self.cfg.long_uniform:
                n = min(64, math.ceil(D))
                times = np.unique(grid((np.arange(n) + 0.5) * D / n))
                asked: list[str] = []
            else:
                n = rng.randint(12, 24)
                cover = grid((np.arange(n) + np.array([rng.random() for _ in range(n)])) * D / n)
                asked = rng.sample(LONG_FAMILIES, rng.randint(1, 2))
                inside = [np.arange(math.ceil(a), b) for fam in asked for a, b in qs[fam]["evidence"]]
                times = np.unique(np.concatenate([cover, *inside]))
            seen = lambda ivs: all(((times >= a) & (times < b)).any() for a, b in ivs)  # noqa: E731
            # (an empty `count` evidence is "seen" by any sample: only asked when drawn, so "0" is not favoured)
            families = [f for f in LONG_FAMILIES if f in asked or (qs[f]["evidence"] and seen(qs[f]["evidence"]))]
            if families:
                return scene, qs, times.astype(np.float64), families
        raise ValueError("no long probe scene gave an answerable sample")

    def count_window(self, rng: random.Random, scene, question: dict[str, Any], times: np.ndarray,
                     nrng: np.random.Generator) -> dict[str, Any]:
        """``count`` asked of a random stretch of >= 4 samples of the clip, which is then the whole
        video: the answer is the number of triangles visible in at least one of its samples."""
        n = rng.randint(4, len(times) - 1)
        lo = rng.randint(0, len(times) - n)
        window = times[lo:lo + n]
        seen = {id(e) for e in scene.events for t in window if e.shape == "triangle" and e.visible(float(t))}
        frames = _frames(scene, window, nrng, self.cfg.noise)
        return {"frames": frames, "text": self.mc_text(question), "target": self.word(str(len(seen))), "family": "count/window"}

    @staticmethod
    def lengthen_triangles(rng: random.Random, scene, times: np.ndarray):
        """``scene`` after one hold per triangle it has: each lengthens a triangle with room by 1-6
        samples (`hold_triangle`), so triangles span up to ten samples and only counting appearances
        answers ``count`` (the generator's own span at most four). No answer changes: triangles stay
        `TRIANGLE_GAP` apart and clear of every other event; the caption follows the edit."""
        step = float(times[1] - times[0]) if len(times) > 1 else 1.0
        for _ in range(sum(e.shape == "triangle" for e in scene.events)):
            scene = _longest_hold(rng, scene, step, most=6) or scene
        return scene

    def count_hold(self, rng: random.Random, scene, question: dict[str, Any], times: np.ndarray,
                   nrng: np.random.Generator, *, caption: bool = False) -> list[dict[str, Any]]:
        """``count`` asked of an edited copy of the clip whose answer is still the number of
        triangles that appeared: half the time one triangle stays 1-4 samples longer
        (`hold_triangle`), else the video freezes for 1-4 samples on one picture (in three of four
        on a triangle's: a held or frozen triangle fills more samples but is one appearance; frame
        times stay evenly spaced, as in a frozen video). With ``caption`` also the copy's time-line
        caption, whose running count names each triangle once, on its first frame."""
        step = float(times[1] - times[0]) if len(times) > 1 else 1.0
        tris = [e for e in scene.events if e.shape == "triangle"]
        content = np.asarray(times, dtype=np.float64)
        held = _longest_hold(rng, scene, step, most=4) if tris and rng.random() < 0.5 else None
        if held is not None:
            scene = held
        else:
            shown = [float(t) for t in times if any(e.visible(float(t)) for e in tris)]
            c = rng.choice(shown) if shown and rng.random() < 0.75 else float(rng.choice(times))
            content = np.sort(np.concatenate([content, np.full(rng.randint(1, 4), c)]))
        data = _frames(scene, content, nrng, self.cfg.noise)
        frames = FrameBatch(data.data, np.arange(len(content), dtype=np.float64) * step, data.index)
        out = [{"frames": frames, "text": self.mc_text(question), "target": self.word(question["options"][question["answer"]]),
                "family": "count/hold"}]
        if caption:
            out.append(self.caption(scene, content, nrng, frames, timeline=True))
        return out

    def caption(self, scene, times, nrng: np.random.Generator, frames: FrameBatch | None = None, *,
                timeline: bool = False) -> dict[str, Any]:
        """"Describe every frame.": per sampled frame its background, then colour and shape of each
        shape shown; frames separated by commas. ``timeline`` (a whole clip) adds two dense signals
        of where in the clip a frame is: the words "beginning", "middle" and "end" open the frames
        of each third (the thirds the ``when`` question means: of the time before the final shape's
        window), and a triangle's first frame names how many triangles have appeared so far
        ("red triangle 2"), a running count whose last value answers ``count``."""
        words: list[str] = []
        if timeline:  # the final shape's window starts one sample step after `end`
            step = float(times[1] - times[0]) if len(times) > 1 else 1.0
            end = max(e.start_s for e in scene.events if e.shape in NOW_SHAPES) - step  # the final shape starts last
        phase, counted = None, []
        for t in times:
            if timeline and phase != (p := WHEN[min(2, int(3 * float(t) / end))]):
                words.append(phase := p)
            words += [scene.background_at(float(t))]
            for e in scene.events:
                if e.visible(float(t)):
                    words += [e.colour, e.shape]
                    if timeline and e.shape == "triangle" and e not in counted:
                        counted.append(e)
                        words.append(str(len(counted)))
            words.append(",")
        frames = frames if frames is not None else _frames(scene, np.asarray(times, dtype=np.float64), nrng, self.cfg.noise)
        return {"frames": frames, "text": CAPTION_PROMPT, "target": [self.word(w) for w in words[:-1]], "family": "caption"}

    def frame_caption(self, rng: random.Random, nrng: np.random.Generator, frac: float) -> dict[str, Any]:
        """The caption of one sample or of two neighbouring samples (one temporal patch); three in
        four show a shape, so colour and shape are learnt early and densely."""
        scene, _, times = self.clip(rng, frac=frac)
        shown = [float(t) for t in times if any(e.visible(float(t)) for e in scene.events)]
        t = rng.choice(shown) if shown and rng.random() < 0.75 else float(rng.choice(times))
        if rng.random() < 0.5 and len(times) > 1:
            return self.caption(scene, _with_neighbour(rng, t, times, scene.duration_s), nrng)
        return self.caption(scene, [t], nrng)

    @staticmethod
    def _frame_pair(rng: random.Random, scene, family: str, times: np.ndarray) -> tuple[list[float], str]:
        """Two neighbouring sample times (one Qwen temporal patch, as in a sampled video) and the
        answer of ``family``'s question when they are the whole video. One of them shows what the
        question asks about (or, for half the ``count`` pairs, neither does); the other is the
        sample before or after it, so a 1-2 s event often fills only one frame of the pair, as it
        does in the videos."""
        final = max((e for e in scene.events if e.shape in NOW_SHAPES), key=lambda e: e.start_s)
        # `now` is the final shape (earlier now-type shapes are distractors, not "on screen now")
        shown = lambda t, shapes: {e for e in scene.events if e.shape in shapes and e.visible(t)  # noqa: E731
                                   and (family != "now" or e is final)}
        wanted = {"needle": ("star",), "now": NOW_SHAPES, "count": ("triangle",), "order": ("square", "cross"),
                  "global": ()}[family]
        if family == "global":
            firsts = [float(t) for t in times]
        else:
            firsts = [float(t) for t in times if shown(float(t), wanted)]
            if family == "count" and (not firsts or rng.random() < 0.5):
                firsts = [float(t) for t in times if not shown(float(t), wanted)] or firsts
        def answer(ts: list[float]) -> str | None:
            """The family's answer when ``ts`` is the whole video; None when it is ambiguous."""
            if family == "global":
                names = {scene.background_at(t) for t in ts}
                return names.pop() if len(names) == 1 else None
            seen = set().union(*(shown(t, wanted) for t in ts))
            if family == "count":
                return str(len(seen))
            if len(seen) != 1:  # a pair shows at most one square/cross (they are >= 1 s apart)
                return None
            event = seen.pop()
            return {"needle": event.colour, "now": event.shape, "order": event.shape}[family]

        for _ in range(50):
            pair = _with_neighbour(rng, rng.choice(firsts), times, scene.duration_s)
            word = answer(pair)
            if word is not None:
                return pair, word
        t = rng.choice(firsts)  # no clean pair here: the frame alone (a duplicated temporal patch)
        return [t], answer([t])

    def forward(self, examples: list[dict[str, Any]]):
        """Logits at the answer position and the loss over (answer, end-of-turn) tokens."""
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        adapter, model = self.adapter, self.adapter.model
        videos: dict[int, int] = {}  # id(frames) -> video slot
        stock: list[dict[str, Any]] = []
        for ex in examples:
            stock.append(adapter.pixel_inputs(ex["frames"], ex["text"]))
            videos.setdefault(id(ex["frames"]), len(videos))
        first = {}
        for ex, st in zip(examples, stock):
            first.setdefault(id(ex["frames"]), st)
        pix = torch.cat([first[k]["pixel_values_videos"] for k in videos])
        grid = torch.cat([first[k]["video_grid_thw"] for k in videos])
        feats = model.model.get_video_features(pix, grid, return_dict=True).pooler_output  # one per video
        L = max(st["input_ids"].shape[1] + len(_as_list(ex["target"])) + 1 for ex, st in zip(examples, stock))
        B = len(examples)
        ids = torch.full((B, L), self.pad, dtype=torch.long)
        mask = torch.zeros((B, L), dtype=torch.long)
        types = torch.zeros((B, L), dtype=torch.long)
        labels = torch.full((B, L), -100, dtype=torch.long)
        answer_pos = []
        for b, (ex, st) in enumerate(zip(examples, stock)):
            n = st["input_ids"].shape[1]
            target = torch.tensor([*_as_list(ex["target"]), self.eos])
            ids[b, :n] = st["input_ids"][0]
            ids[b, n : n + len(target)] = target
            mask[b, : n + len(target)] = 1
            types[b, :n] = st["mm_token_type_ids"][0]
            labels[b, n : n + len(target)] = target
            answer_pos.append(n - 1)
        order = [videos[id(ex["frames"])] for ex in examples]
        kwargs = {"video_grid_thw": torch.cat([stock[b]["video_grid_thw"] for b in range(B)])}
        if "second_per_grid_ts" in stock[0]:
            kwargs["second_per_grid_ts"] = torch.cat([stock[b]["second_per_grid_ts"] for b in range(B)])
        if any("position_ids" in st for st in stock):  # irregular frames: the pipeline's positions, not the stock ones
            kwargs["position_ids"] = self.positions(examples, stock, L)
        enc = BaseModelOutputWithPooling(pooler_output=tuple(feats[v] for v in order))
        out = model(input_ids=ids, attention_mask=mask, mm_token_type_ids=types, mm_encoder_outputs={"video": enc},
                    labels=labels, **kwargs)
        logits = out.logits[torch.arange(B), torch.tensor(answer_pos)]  # (B, V) next-token logits at the answer
        return out.loss, logits


    def positions(self, examples: list[dict[str, Any]], stock: list[dict[str, Any]], length: int) -> torch.Tensor:
        """``position_ids`` (4, B, ``length``) of a padded batch: each prompt's own (``pixel_inputs``'
        ``position_ids`` where it gives them: frames unevenly spaced in time, which the adapter
        places by their real times as the pipeline does at inference; else the stock
        ``get_rope_index`` of that prompt), then the answer and padding one step further each (as
        text after a prompt is placed); row 0 is the plain index 0..L-1 (as `build_inputs`)."""
        rope = self.adapter.model.model.get_rope_index
        out = torch.zeros((4, len(examples), length), dtype=torch.long)
        out[0] = torch.arange(length)
        for b, st in enumerate(stock):
            if "position_ids" in st:
                pos = st["position_ids"][1:, 0]
            else:
                extra = {k: st[k] for k in ("video_grid_thw", "second_per_grid_ts") if k in st}
                pos = rope(st["input_ids"], mm_token_type_ids=st["mm_token_type_ids"], **extra)[0][:, 0]
            n = pos.shape[1]
            out[1:, b, :n] = pos
            out[1:, b, n:] = pos[:, -1:] + torch.arange(1, length - n + 1)
        return out


def _with_neighbour(rng: random.Random, t: float, times: np.ndarray, duration_s: float) -> list[float]:
    """``t`` and the sample before or after it (the other one at the clip's ends), in time order."""
    step = float(times[1] - times[0]) if len(times) > 1 else 1.0
    u = t + rng.choice((-step, step))
    if not 0 <= u < duration_s:
        u = 2 * t - u
    return sorted((t, u))


def _as_list(target: int | list[int]) -> list[int]:
    return list(target) if isinstance(target, (list, tuple)) else [target]


def _accuracy(examples: list[dict[str, Any]], logits: torch.Tensor) -> dict[str, list[int]]:
    """First answer token right, per family (captions are not scored)."""
    hits: dict[str, list[int]] = {}
    pred = logits.argmax(-1).tolist()
    for ex, p in zip(examples, pred):
        if ex["family"] != "caption":
            hits.setdefault(ex["family"], []).append(int(p == ex["target"]))
    return hits


def train(out: str | Path, cfg: TrainConfig, *, log=print) -> dict[str, Any]:
    """Train into ``out`` (a checkpoint folder); returns the run summary (also ``train_log.json``)."""
    out = Path(out)
    torch.manual_seed(cfg.seed)
    flush = torch.set_flush_denormal(True)  # tiny weights/grads as denormals slow CPU kernels many times over
    try:
        return _train(out, cfg, log)
    finally:
        if flush:
            torch.set_flush_denormal(False)  # process-wide: give it back


def _train(out: Path, cfg: TrainConfig, log) -> dict[str, Any]:
    from ..pipeline.loader import load_adapter

    if cfg.init:
        import shutil

        shutil.copytree(cfg.init, out, dirs_exist_ok=True)
    else:
        build_untrained(out, seed=cfg.seed)
    adapter = load_adapter(str(out), device="cpu", dtype="float32")
    model = adapter.model
    model.train()
    ex = Examples(adapter, cfg)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    other = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay}, {"params": other, "weight_decay": 0.0}],
                            lr=cfg.lr, betas=(0.9, 0.98))
    rng, nrng = random.Random(cfg.seed), np.random.default_rng(cfg.seed)
    # a fixed validation set at real event lengths (training seeds: disjoint from evaluation)
    vrng, vnrng = random.Random(cfg.seed + 10_000), np.random.default_rng(cfg.seed + 10_000)
    val = [ex.batch(vrng, vnrng, 1.0) for _ in range(max(1, cfg.eval_videos // max(1, cfg.videos)))]  # real lengths
    history: list[dict[str, Any]] = []
    start = time.time()
    step = 0
    for step in range(1, cfg.steps + 1):
        frac = min(1.0, max(0, step - 1 - cfg.pretrain_steps) / max(1, cfg.curriculum_steps))
        lr = cfg.lr * min(1.0, step / cfg.warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, step / cfg.steps))))
        for group in opt.param_groups:
            group["lr"] = lr
        if step <= cfg.pretrain_steps:
            batch = [ex.frame_caption(rng, nrng, 0.0) for _ in range(cfg.pretrain_batch)]
        else:
            batch = ex.batch(rng, nrng, frac)
        loss, _ = ex.forward(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        rec = {"step": step, "loss": round(float(loss.detach()), 4), "lr": round(lr, 6), "curriculum": round(frac, 3),
               "elapsed_s": round(time.time() - start, 1)}
        done = step == cfg.steps or step == cfg.stop_step or time.time() - start > cfg.minutes * 60
        if step % cfg.eval_every == 0 or done:
            model.eval()
            hits: dict[str, list[int]] = {}
            with torch.no_grad():
                for vb in val:
                    for fam, h in _accuracy(vb, ex.forward(vb)[1]).items():
                        hits.setdefault(fam, []).extend(h)
            model.train()
            rec["val"] = {fam: round(sum(h) / len(h), 3) for fam, h in sorted(hits.items())}
            rec["val_overall"] = round(sum(sum(h) for h in hits.values()) / max(1, sum(len(h) for h in hits.values())), 3)
        history.append(rec)
        if step % 20 == 0 or "val" in rec:
            log(json.dumps(rec))
        if done:
            break
    model.eval()
    model.save_pretrained(str(out))
    summary = {"config": dataclasses.asdict(cfg), "steps": step, "train_seconds": round(time.time() - start, 1),
               "parameters": sum(p.numel() for p in model.parameters()), "torch_threads": torch.get_num_threads(),
               "final_val": history[-1].get("val"), "history": history, "earlier": earlier_runs(out)}
    (out / "train_log.json").write_text(json.dumps(summary, indent=1))
    return summary


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}


def earlier_runs(folder: Path) -> list[dict[str, Any]]:
    """The logs of the runs a continued run (``init``) started from, oldest first: read from the
    ``train_log.json`` copied in with the checkpoint, before this run's replaces it."""
    path = folder / "train_log.json"
    if not path.exists():
        return []
    prev = json.loads(path.read_text())
    return [*prev.get("earlier", []), {k: prev[k] for k in ("config", "steps", "train_seconds", "final_val", "history")}]


def write_manifest(folder: str | Path, summary: dict[str, Any]) -> dict[str, Any]:
    """``MANIFEST.json``: the training config, seed, steps, time, size and every file's sha256."""
    import hashlib
    import platform

    folder = Path(folder)
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
             if p.is_file() and p.name != "MANIFEST.json"}
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    cfg = summary["config"]
    changed = {k: v for k, v in cfg.items() if k not in ("stop_step", "minutes", "init") and v != _DEFAULTS[k]
               and not isinstance(v, (list, tuple))}  # the command line takes the scalar options
    command = " ".join(["python -m vidsift.probe.train --out DIR", *(f"--{k.replace('_', '-')} {v:g}" if isinstance(v, float)
                                                                     else f"--{k.replace('_', '-')} {v}" for k, v in changed.items()),
                        f"--stop-step {summary['steps']} --minutes 1000"])
    if cfg.get("init") and (folder / "MANIFEST.json").exists():  # a continued run: the runs before it first
        before = json.loads((folder / "MANIFEST.json").read_text())["reproduce"]
        stage = f"STAGE{len(summary.get('earlier', [])) or 1}"
        command = f"{before.replace('--out DIR', f'--out {stage}')} && {command} --init {stage}"
    manifest = {"model": "vidsift probe (stock Qwen2.5-VL, word-level tokenizer)", "seed": cfg["seed"],
                "config": cfg, "steps": summary["steps"], "train_seconds": summary["train_seconds"],
                "parameters": summary["parameters"], "torch_threads": summary["torch_threads"],
                "final_val": summary["final_val"], "torch": torch.__version__, "cpu": cpu, "machine": platform.machine(),
                "reproduce": command, "continues": [{k: run[k] for k in ("config", "steps", "train_seconds", "final_val")}
                                                    for run in summary.get("earlier", [])], "files": files}
    (folder / "MANIFEST.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def plot_loss(summary: dict[str, Any], path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hist, offset = [], 0
    for run in [*summary.get("earlier", []), summary]:  # a continued run: its earlier runs first
        hist += [{**h, "step": h["step"] + offset} for h in run["history"]]
        offset += run["steps"]
    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [h["step"] for h in hist]
    losses = np.array([h["loss"] for h in hist])
    k = 25
    smooth = np.convolve(losses, np.ones(k) / k, mode="valid") if len(losses) > k else losses
    ax.plot(steps, losses, alpha=0.25, color="tab:blue")
    ax.plot(steps[len(steps) - len(smooth):], smooth, color="tab:blue", label="train loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax2 = ax.twinx()
    vals = [(h["step"], h["val_overall"]) for h in hist if "val_overall" in h]
    if vals:
        ax2.plot(*zip(*vals), "o-", color="tab:green", label="validation accuracy")
    ax2.set_ylim(0, 1)
    ax2.set_ylabel("validation accuracy")
    ax.set_title("probe model training (CPU)")
    fig.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="checkpoint folder to write")
    comments = dict(re.findall(r"^    (\w+): [^=]+= [^#\n]+#\s*(.+)$", inspect.getsource(TrainConfig), re.M))
    for f in dataclasses.fields(TrainConfig):
        if f.type in ("int", "float", "str"):
            parser.add_argument(f"--{f.name.replace('_', '-')}", type={"int": int, "float": float, "str": str}[f.type],
                                default=f.default, help=f"{comments.get(f.name, f.name.replace('_', ' '))} (default: {f.default!r})")
    args = parser.parse_args(argv)
    if args.init and not (Path(args.init) / "config.json").is_file():
        parser.error(f"--init {args.init}: not a checkpoint folder (no config.json)")
    cfg = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(args, f.name)})
    summary = train(args.out, cfg)
    plot_loss(summary, Path(args.out) / "loss.png")
    write_manifest(args.out, summary)
    print(json.dumps({k: v for k, v in summary.items() if k != "history"}))


if __name__ == "__main__":
    main()

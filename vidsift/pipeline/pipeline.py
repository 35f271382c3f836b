"""`Pipeline`: ask a video MLLM questions about a video under a visual-token budget.

    pipe = Pipeline.from_pretrained("llava-hf/llava-onevision-qwen2-0.5b-ov-hf", budget="25%")
    answer = pipe.ask("match.mp4", "Who scores the first goal?")
    answer.text, answer.plan, answer.stats

One question runs: open the video -> sample candidate frames (cached per video + sampling) ->
score them and plan frames and tokens per frame (``plan_frames``, budget resolved against the
full video's tokens) -> encode ONLY the planned frames (cached per video + frame indices, so
several questions on one video encode once) -> merge each group down to its planned count
(``reduce_tokens``) -> build the prompt -> enter the prefill pruners and cache presses ->
generate. With an unlimited budget and no pruning nothing is dropped or merged, and the answer
equals the vanilla model's on the same frames.

``resize=True`` (opt-in; adapters whose ``max_pixels_for_tokens`` gives caps, i.e. the
variable-resolution Qwen2-VL / Qwen2.5-VL / Qwen3-VL families) spends the budget as a *resolution* before encoding:
each encoded group (a frame, or a Qwen temporal pair whose two frames share one resolution and
the pair's summed planned tokens) is encoded at the largest resolution Qwen's resize rule allows
whose token count is <= its planned tokens (never below the processor's ``min_pixels``), so the
vision tower does less work; ``reduce_tokens`` then merges only what remains above the plan.
Positions follow the smaller grid, i.e. what the stock model sees for a lower-resolution video;
groups of different grids form separate video blocks in the prompt. Because the resize rule keeps
the aspect ratio on a patch*merge lattice, a group can land below its planned count (e.g. 24
planned -> a 4x5 grid = 20), so the prompt may hold *fewer* than ``plan.total_tokens`` visual
tokens (``stats["tokens_in_prompt"]``), never more unless ``min_pixels`` forces a floor that is
then merged down. Without that capability, or with an unlimited budget, ``resize`` changes
nothing (same frames, same cache entry, same answer), and ``stats["resized"]`` stays False.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from collections import OrderedDict
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import ConfigError, FrameSizeError
from ..types import Answer, Budget, FrameBatch, TokenPlan, VisualTokens
from ..registry import parse_spec
from ..selectors import score_frames
from ..selectors.planner import DECODE_MAX_PIXELS, SAMPLE_FPS, SAMPLE_MAX_FRAMES
from .adapters.base import ModelAdapter
from .hooks import CacheLayout
from .options import NAMES, AskOptions, AskRun, resolve
from .presets import Compression
from .stats import StatsRecorder, kv_cache_bytes
from .types import ModelInputs

ASK_OPTIONS = NAMES  # the option names (`AskOptions`'s fields), for callers that list them
# The options of a question are `AskOptions` (pipeline/options.py: fields, defaults, validation);
# `Pipeline.resolve` layers a question's over the pipeline's defaults and builds its members once
# (`AskRun`), and every stage below reads that object. scorer None: "mllm" when the temporal search
# runs, else "uniform". search "auto": on for a video file with more candidates (1/fps over its
# duration) than the default cap SAMPLE_MAX_FRAMES, i.e. where the capped grid would leave gaps a
# short event falls through, unless the caller set its own max_frames (a capped grid, asked for);
# "on" / "off" force it; "dense" scores every candidate (the dense pass the search is measured
# against). allocation "relevance": concentrated relevance keeps full tokens (`allocate_relevance`);
# "spread": k frames at a share of their tokens each. timeline "true": the model sees each kept
# frame at its real time; "compact" (or a number of seconds): the kept frames' times are mapped
# linearly onto COMPACT_SPAN_S (32) seconds (order and relative position kept, as Qwen2-VL's
# patch-index positions do), for a model that reads time only over the spans it was trained on;
# the plan keeps the real times


class _LRU(OrderedDict):
    """A tiny least-recently-used cache (per pipeline: never shared between pipelines)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def lookup(self, key: Any) -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        return None

    def store(self, key: Any, value: Any) -> Any:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)
        return value


def _video_key(video: str | os.PathLike | FrameBatch) -> tuple:
    if isinstance(video, FrameBatch):
        digest = hashlib.blake2b(np.ascontiguousarray(video.data).data, digest_size=16)
        digest.update(video.index.tobytes())
        return ("frames", digest.hexdigest())
    path = Path(video)
    try:
        st = path.stat()
    except OSError:
        return ("path", str(video))  # let the decoder raise its own error
    return ("path", str(path.resolve()), st.st_mtime_ns, st.st_size)


@contextmanager
def naming_video(label: str, family: str = "this model"):
    """Re-raise a `FrameSizeError` from the adapter (its subject is only a frame size) as one naming
    the video: ``clip.mp4: its 1000x4 frames cannot be encoded by qwen2_5_vl: aspect ratio ...``."""
    try:
        yield
    except FrameSizeError as err:
        if err.subject == label:
            raise
        raise FrameSizeError(label, f"its {err.subject} frames cannot be encoded by {family}: {err.reason}") from None


def group_targets(tokens: VisualTokens, plan: TokenPlan) -> list[int]:
    """Planned tokens per encoded group: plan tokens are per *frame*, groups may span several
    frames (Qwen2-VL / Qwen2.5-VL temporal pairs). Each group gets the sum over the planned frames
    it covers (group g covers frame indices in [index[g], index[g + 1])), capped at what it has."""
    starts = np.asarray(tokens.index, dtype=np.int64)  # (G,) first frame index of each group
    owner = np.searchsorted(starts, plan.indices, side="right") - 1  # (K,) group of each frame
    want = np.bincount(np.clip(owner, 0, None), weights=[f.tokens for f in plan.frames], minlength=len(starts))
    return [min(int(round(w)), have) for w, have in zip(want, tokens.tokens_per_group)]


def _join_groups(parts: list[tuple[list[int], VisualTokens]], n_groups: int) -> VisualTokens:
    """One `VisualTokens` from parts encoded separately; ``parts[i][0]`` are the group slots (in
    0..n_groups-1) that part i's groups fill, in order."""
    slot: list[tuple[int, int]] = [(-1, -1)] * n_groups  # group -> (part, group within part)
    for p, (groups, tok) in enumerate(parts):
        if tok.n_groups != len(groups):
            raise ValueError(f"VisualTokens: a part has {tok.n_groups} groups, expected {len(groups)}")
        for j, g in enumerate(groups):
            slot[g] = (p, j)
    toks = [t for _, t in parts]
    take = lambda f: [getattr(toks[p], f)[j] for p, j in slot]  # noqa: E731
    opt = lambda f: None if any(getattr(t, f) is None for t in toks) else take(f)  # noqa: E731
    return VisualTokens(
        embeds=take("embeds"), coords=take("coords"), size=take("size"),
        grid_thw=torch.stack([toks[p].grid_thw[j] for p, j in slot]),
        pts_seconds=np.asarray([toks[p].pts_seconds[j] for p, j in slot]),
        index=np.asarray([toks[p].index[j] for p, j in slot]),
        saliency=opt("saliency"), deepstack=opt("deepstack"),
    )


def compact_times(frames: FrameBatch, span: float) -> FrameBatch:
    """``frames`` with their times mapped linearly from [first, last] onto [0, span] (only when
    they cover more than ``span``): what the model sees with ``timeline="compact"``."""
    t = frames.pts_seconds
    if len(t) < 2 or t[-1] - t[0] <= span:
        return frames
    return FrameBatch(frames.data, (t - t[0]) * (span / (t[-1] - t[0])), frames.index, decode=frames.decode)


class Pipeline:
    """A loaded model adapter plus default budget, compression and plan options; answers questions."""

    def __init__(self, adapter: ModelAdapter, *, budget: Budget | int | float | str | None = None,
                 name: str = "", **plan_defaults: Any) -> None:
        self.adapter = adapter
        self.name = name or str(getattr(adapter.model, "name_or_path", "") or adapter.family)
        self.defaults = AskOptions.from_kwargs(budget=budget, **plan_defaults)  # what the pipeline was given
        self.base = resolve(self.defaults)  # what the defaults resolve to (every question resolves over them)
        self._candidates = _LRU(4)  # (video, sampling) -> FrameBatch
        self._encoded = _LRU(8)  # (video, sampling, frame indices) -> VisualTokens
        self._indexes = _LRU(2)  # (video, scan settings) -> VideoIndex (the search's cheap pass)
        self._facts = _LRU(8)  # (video, decode limit) -> (duration s, frame size): what the search asks first
        self.index_dir: str | os.PathLike | None = None  # where video indexes are kept (None: $VIDSIFT_CACHE/index)
        self.index_cache = True  # False: build the index of every video again, keep nothing on disk
        self._scorers: dict[str, Any] = {}
        self.decode_max_pixels = DECODE_MAX_PIXELS  # decode larger videos downscaled (as `plan` does)
        self.encode_calls = 0  # how many times the vision tower ran (observable by tests and benches)
        self.on_stage: Any = None  # callable(stage name) as each stage of a question starts (the CLI's status line)

    @classmethod
    def from_pretrained(cls, model_id_or_path: str | os.PathLike, *, device: str = "auto", dtype: str = "auto",
                        attn_implementation: str | None = None, budget: Budget | int | float | str | None = None,
                        **plan_defaults: Any) -> "Pipeline":
        """Load a checkpoint (folder, Hub id, or ``random:<arch>``) and wrap it in a Pipeline."""
        from .loader import load_adapter

        adapter = load_adapter(model_id_or_path, device=device, dtype=dtype, attn_implementation=attn_implementation)
        return cls(adapter, budget=budget, name=str(model_id_or_path), **plan_defaults)

    def clear_cache(self) -> None:
        """Forget the decoded candidate frames and encoded visual tokens kept per video, so the
        next call decodes and encodes again (benchmarks, or to free memory). Scorers stay built;
        ``encode_calls`` keeps counting."""
        self._candidates.clear()
        self._encoded.clear()
        self._indexes.clear()
        self._facts.clear()  # a cold run probes the video again too

    # -- options --------------------------------------------------------------------------------
    def resolve(self, ask_options: AskOptions | AskRun | None = None, **overrides: Any) -> AskRun:
        """One question's options over this pipeline's defaults, validated, with its members built
        (once: every stage reads the result). ``ask_options`` (an `AskOptions`) or keywords
        (`AskOptions.from_kwargs`); an `AskRun` (built by `check_ask`) is used as it is."""
        if ask_options is not None and overrides:
            raise ConfigError(", ".join(sorted(overrides)), "give these in ask_options, or give keywords alone")
        if isinstance(ask_options, AskRun):
            return ask_options
        given = ask_options if ask_options is not None else AskOptions.from_kwargs(**overrides)
        if not isinstance(given, AskOptions):
            raise ConfigError(repr(given), "ask_options must be an AskOptions or an AskRun")
        return AskRun.build(resolve(self.defaults, given), scorer=False)  # the scorer: `_scorer`, once per pipeline

    @property
    def budget(self) -> Budget:
        """The default visual-token budget."""
        return self.base.budget

    @property
    def compression(self) -> Compression:
        """The default in-model options (prefill pruner, cache press, a preset's merger)."""
        return self.base.compression

    def _scorer_of(self, run: AskRun, default: str) -> Any:
        """The question's scorer: the one its run holds (built by `check_ask`; a member that needs
        the model gets this adapter), else built from its spec (or ``default``) once per pipeline."""
        if run.scorer is None:
            return self._scorer(run.settings.options.scorer or default)
        if "adapter" in getattr(run.scorer, "__dataclass_fields__", {}) and run.scorer.adapter is None:
            run.scorer.adapter = self.adapter
        return run.scorer

    def _scorer(self, spec: Any) -> Any:
        """Build a scorer once per spec; members that need the model (``mllm``) get this adapter."""
        if not isinstance(spec, str):
            return spec
        if spec not in self._scorers:
            from ..selectors import SCORERS, scorer_spec

            name, _ = parse_spec(scorer_spec(spec))  # CLI shorthand clip:/path -> clip:model=/path
            factory = SCORERS.get(name)
            fields = {f.name for f in dataclasses.fields(factory)} if dataclasses.is_dataclass(factory) else set()
            self._scorers[spec] = SCORERS.build(scorer_spec(spec), **({"adapter": self.adapter} if "adapter" in fields else {}))
        return self._scorers[spec]

    # -- stages ---------------------------------------------------------------------------------
    def candidates(self, video: str | os.PathLike | FrameBatch, ask_options: AskOptions | AskRun | None = None,
                   **overrides: Any) -> FrameBatch:
        """The sampled candidate frames of ``video`` (decoded once per video + sampling)."""
        return self._sample(video, self.resolve(ask_options, **overrides).settings.options)[0]

    def _sample(self, video: Any, opts: AskOptions) -> tuple[FrameBatch, tuple]:
        sampling = (opts.fps, opts.max_frames, opts.start_s, opts.end_s)
        key = (_video_key(video), sampling)
        cached = self._candidates.lookup(key)
        if cached is not None:
            return cached, key
        if isinstance(video, FrameBatch):
            frames = video
        else:
            from ..frames import open_for_planning, sample

            reader = open_for_planning(video, max_pixels=self.decode_max_pixels)
            try:
                frames = sample(reader, fps=opts.fps, max_frames=opts.max_frames, start_s=opts.start_s, end_s=opts.end_s,
                                exact_count=True)
            finally:
                close = getattr(reader, "close", None)
                if close is not None:
                    close()
        if len(frames) == 0:
            raise ConfigError(str(video), "no frames were sampled (check --start/--end and the video)")
        return self._candidates.store(key, frames), key

    def _encode(self, key: tuple, frames: FrameBatch, max_pixels: int | None = None) -> VisualTokens:
        ekey = (key, tuple(int(i) for i in frames.index), max_pixels)  # resolution is part of the key
        cached = self._encoded.lookup(ekey)
        if cached is not None:
            return cached
        self.encode_calls += 1
        out = self.adapter.encode(frames) if max_pixels is None else self.adapter.encode(frames, max_pixels=max_pixels)
        return self._encoded.store(ekey, out)

    def _encode_resized(self, key: tuple, frames: FrameBatch, plan: TokenPlan) -> tuple[VisualTokens, bool]:
        """Encode each group at the largest resolution within its planned tokens (see module
        docstring). Groups sharing a resolution are encoded together (one tower call each).
        Also returns whether any group was encoded below its full resolution."""
        cap_for, per = self.adapter.max_pixels_for_tokens, self.adapter.frames_per_group
        want = np.asarray([f.tokens for f in plan.frames], dtype=np.int64)  # (K,) aligned with frames (time order)
        h, w = (int(x) for x in frames.data.shape[1:3])
        n_groups = -(-len(frames) // per)
        caps = [cap_for(h, w, max(1, int(want[g * per:(g + 1) * per].sum()))) for g in range(n_groups)]
        if all(c is None for c in caps):  # a fixed-resolution family, or every full group fits
            return self._encode(key, frames), False
        parts: list[tuple[list[int], VisualTokens]] = []
        for cap in dict.fromkeys(caps):  # distinct resolutions, first-seen order
            groups = [g for g, c in enumerate(caps) if c == cap]
            rows = np.concatenate([np.arange(g * per, min((g + 1) * per, len(frames))) for g in groups])
            parts.append((groups, self._encode(key, frames[rows], cap)))
        return _join_groups(parts, n_groups), True

    def plan(self, video: Any, question: str | None = None, ask_options: AskOptions | AskRun | None = None,
             **overrides: Any) -> TokenPlan:
        """Only the plan (no encoding, no generation)."""
        run = self.resolve(ask_options, **overrides)
        label = str(video) if not isinstance(video, FrameBatch) else "<frames>"
        if self.searching(video, run):
            return self._search_plan(video, question, run, label, StatsRecorder())[1]  # no frame decoded at full size
        candidates, _ = self._sample(video, run.settings.options)
        return self._plan(candidates, question, run, label, None)[0]

    def _plan(self, candidates: FrameBatch, question: str | None, run: AskRun, video: str,
              rec: StatsRecorder | None) -> tuple[TokenPlan, int, int]:
        from ..selectors import plan_frames

        h, w = candidates.data.shape[1:3]
        with naming_video(video, self.adapter.family):
            tpf = float(self.adapter.tokens_per_frame(int(h), int(w)))
            full = self.adapter.tokens_for_frames(len(candidates), int(h), int(w))  # what encoding them all gives
        budget_tokens = run.settings.budget.resolve(full)
        scorer = self._scorer_of(run, "uniform")
        rec = rec or StatsRecorder()
        with rec.stage("score"):
            scores = score_frames(scorer, candidates, question, "" if video == "<frames>" else video)
        with rec.stage("select"):
            plan = plan_frames(candidates, question, budget_tokens=budget_tokens, tokens_per_frame=tpf,
                               k=run.settings.options.frames, scorer=scorer, video=video, scores=scores,
                               group=self.adapter.frames_per_group, **run.plan_members())
        run.name_members(plan)
        if candidates.decode is not None:  # the file's decode report reaches --json and batch rows
            plan.stats["decode"] = candidates.decode
        return plan, full, budget_tokens

    # -- temporal search (long videos) ----------------------------------------------------------
    def searching(self, video: Any, run: AskRun) -> bool:
        """Whether a question about ``video`` plans with the temporal search (option ``search``)."""
        mode, opts = run.search_mode, run.settings.options
        if mode == "off" or isinstance(video, FrameBatch):
            return False
        if mode in ("on", "dense"):
            return True
        duration, _ = self._video_facts(video)
        t0 = float(opts.start_s or 0.0)
        t1 = min(float(opts.end_s or math.inf), duration)
        cap = opts.max_frames  # a cap chosen by the caller asks for the capped grid
        return cap == SAMPLE_MAX_FRAMES and (t1 - t0) * float(opts.fps or SAMPLE_FPS) > cap

    def _video_facts(self, video: str | os.PathLike) -> tuple[float, tuple[int, int]]:
        """The video's duration in seconds and its frame size as decoded (``decode_max_pixels``),
        opened once per video (keyed by path, size, modification time and the decode size limit)
        for every question."""
        key = (_video_key(video), self.decode_max_pixels)
        facts = self._facts.lookup(key)
        if facts is None:
            from ..frames import open_for_planning

            with open_for_planning(video, max_pixels=self.decode_max_pixels) as reader:
                facts = (float(reader.info.duration_s or 0.0), tuple(int(x) for x in reader.frame_size))
            self._facts.store(key, facts)
        return facts

    def index(self, video: str | os.PathLike, ask_options: AskOptions | AskRun | None = None, *, progress: Any = None,
              **overrides: Any) -> Any:
        """The video's `VideoIndex` (the search's cheap pass: every ``1/fps`` candidate at the scan
        size, with features), from memory, from ``index_dir`` on disk, or built now."""
        return self._index(video, self.resolve(ask_options, **overrides).settings.options, progress=progress)

    def _index(self, video: str | os.PathLike, opts: AskOptions, *, progress: Any = None) -> Any:
        from ..selectors.video_index import load_index

        fps = float(opts.fps or SAMPLE_FPS)
        key = (_video_key(video), fps, opts.start_s, opts.end_s)
        entry = self._indexes.lookup(key)
        if entry is None:
            entry = load_index(video, fps=fps, start_s=opts.start_s, end_s=opts.end_s,
                               cache_dir=self.index_dir, use_cache=self.index_cache, progress=progress)
            self._indexes.store(key, entry)
        return entry

    def _search_plan(self, video: Any, question: str | None, run: AskRun, label: str,
                     rec: StatsRecorder) -> tuple[Any, TokenPlan, int, int]:
        """The index entry, the plan, the full video's tokens and the budget (nothing decoded at full size)."""
        from ..selectors.planner import plan_search

        with rec.stage("decode"):
            entry = self._index(video, run.settings.options)
        _, (h, w) = self._video_facts(video)
        with naming_video(label, self.adapter.family):
            tpf = float(self.adapter.tokens_per_frame(int(h), int(w)))
            full = self.adapter.tokens_for_frames(len(entry), int(h), int(w))
        budget_tokens = run.settings.budget.resolve(full)
        with rec.stage("score"):
            plan = plan_search(entry, question, budget_tokens=budget_tokens, tokens_per_frame=tpf, search=run.search,
                               scorer=self._scorer_of(run, "mllm"), group=self.adapter.frames_per_group,
                               video=label, k=run.settings.options.frames, **run.plan_members())
        run.name_members(plan)
        plan.stats["decode"] = entry.decode
        plan.stats["frame_size"] = [int(h), int(w)]  # the size the kept frames are encoded at
        return entry, plan, full, budget_tokens

    def kept_frames(self, video: str | os.PathLike, entry: Any, plan: TokenPlan) -> FrameBatch:
        """A search plan's frames at full size: from the index when its scan size is the full size,
        else decoded again (only these few)."""
        from ..frames import open_for_planning

        h, w = plan.stats["frame_size"]
        same = tuple(entry.frames.shape[1:3]) == (h, w)
        plan.stats["frames_decoded_full"] = 0 if same else len(plan.frames)
        if same:  # the scan size is the full size: no second decode
            return entry.batch(np.searchsorted(entry.index, plan.indices))
        with open_for_planning(video, max_pixels=self.decode_max_pixels) as reader:
            chosen = reader.read(plan.indices)
        if len(chosen) != len(plan.frames):
            raise ConfigError(str(video), f"{len(plan.frames) - len(chosen)} planned frame(s) no longer decode")
        return chosen

    # -- questions ------------------------------------------------------------------------------
    def prepare(self, video: str | os.PathLike | FrameBatch, question: str, ask_options: AskOptions | AskRun | None = None,
                **overrides: Any) -> tuple[ModelInputs, TokenPlan]:
        """Everything before generation: the model inputs (exactly the planned visual tokens,
        injected) and the plan. ``adapter.model(**inputs.kwargs)`` runs the prefill."""
        run = self.resolve(ask_options, **overrides)
        inputs, plan, _ = self._prepare(video, question, run, StatsRecorder(self.adapter.device))
        return inputs, plan

    def _prepare(self, video: Any, question: str, run: AskRun, rec: StatsRecorder) -> tuple[ModelInputs, TokenPlan, dict]:
        if not isinstance(question, str) or not question.strip():
            raise ConfigError(repr(question), "the question must be a non-empty string")
        opts = run.settings.options
        label = "<frames>" if isinstance(video, FrameBatch) else str(video)
        if self.searching(video, run):
            entry, plan, full, budget_tokens = self._search_plan(video, question, run, label, rec)
            with rec.stage("keyframes"):
                chosen = self.kept_frames(video, entry, plan)
            key, n_candidates = (_video_key(video), ("search", entry.meta.get("key"))), len(entry)
        else:
            with rec.stage("decode"):
                candidates, key = self._sample(video, opts)
            plan, full, budget_tokens = self._plan(candidates, question, run, label, rec)
            chosen = candidates[np.searchsorted(candidates.index, plan.indices)]  # plan frames, in time order
            n_candidates = len(candidates)
        span = run.timeline_span
        if span is not None:  # the model sees the kept frames over `span` seconds (the plan keeps real times)
            chosen, key = compact_times(chosen, span), (*key, ("timeline", span))
            plan.settings["timeline_span_s"] = span
        with rec.stage("encode"), naming_video(label, self.adapter.family):
            resize = bool(opts.resize) and budget_tokens < full
            tokens, resized = self._encode_resized(key, chosen, plan) if resize else (self._encode(key, chosen), False)
        encoded = tokens.n_tokens
        with rec.stage("reduce"):
            if budget_tokens < full:  # unlimited: nothing is merged, the vanilla model's tokens exactly
                from ..selectors import reduce_tokens

                targets = group_targets(tokens, plan)
                if targets != tokens.tokens_per_group or run.temporal is not None:
                    tokens = reduce_tokens(tokens, targets, merger=run.merger, temporal=run.temporal)
        with rec.stage("build"):
            inputs = self.adapter.build_inputs(tokens, question)
        counts = dict(frames_candidates=n_candidates, frames_planned=len(plan.frames), tokens_full=full,
                      tokens_budget=budget_tokens, tokens_planned=plan.total_tokens, tokens_encoded=encoded,
                      tokens_in_prompt=int(inputs.visual_mask.sum()), prompt_len=inputs.prompt_len,
                      resized=resized)
        return inputs, plan, counts

    def ask(self, video: str | os.PathLike | FrameBatch, question: str, ask_options: AskOptions | AskRun | None = None,
            **overrides: Any) -> Answer:
        """Answer one question about ``video`` (a path, or already decoded frames). Options as
        keywords (``fps=2, budget="25%"``), an `AskOptions`, or an `AskRun` already built."""
        run = self.resolve(ask_options, **overrides)  # validated, members built: a bad spec fails before any frame is decoded
        adapter = self.adapter
        rec = StatsRecorder(adapter.device, on_stage=self.on_stage)
        members = {"prune": run.prune, "kv": run.kv}
        inputs, plan, counts = self._prepare(video, question, run, rec)
        with ExitStack() as stack:  # one layout for this call's pruners and presses; their hooks go when it ends
            layout = stack.enter_context(CacheLayout(adapter, inputs)) if any(members.values()) else None
            observed = layout.observe() if layout else {}  # the call's stats (KV bytes, outside the cache too)
            member_stats = {kind: [(m, layout.add(m)) for m in ms] for kind, ms in members.items()}
            if "past_key_values" not in inputs.kwargs:  # our own cache object, to measure its size after
                from transformers import DynamicCache

                inputs.kwargs["past_key_values"] = DynamicCache(config=adapter.model.config.get_text_config())
            streamer = rec.streamer()
            rec.announce("generate")  # prefill, then decoding
            new_ids = adapter.generate(inputs, max_new_tokens=int(run.settings.options.max_new_tokens), streamer=streamer)
        rec.record_generation(streamer, int(new_ids.shape[1]))
        text = adapter.decode(new_ids)[0].strip()
        # bytes the cache object holds; under a layout its observer's count, which adds what a press keeps
        # outside the cache (quantize's packed entries)
        kv_bytes = kv_cache_bytes(inputs.kwargs.get("past_key_values"))
        rec.set(
            model=self.name, **counts, kv_bytes=int(observed.get("kv_bytes", kv_bytes)),
            kv_bytes_in_cache=kv_bytes, encode_calls=self.encode_calls,
            **{kind: [{"method": getattr(m, "name", type(m).__name__), **dict(s)} for m, s in pairs]
               for kind, pairs in member_stats.items() if pairs},
        )
        return Answer(text=text, plan=plan, stats=rec.finish())

    def ask_many(self, video: str | os.PathLike | FrameBatch, questions: Sequence[str],
                 ask_options: AskOptions | AskRun | None = None, **overrides: Any) -> list[Answer]:
        """Answer several questions about one video: frames decode once, and planned frames
        encode once for every plan they appear in."""
        if isinstance(questions, str):
            raise ConfigError(repr(questions), "ask_many takes a list of questions; use ask() for one")
        return [self.ask(video, q, ask_options, **overrides) for q in questions]

    def __repr__(self) -> str:
        return f"Pipeline(model={self.name!r}, family={self.adapter.family!r}, budget={self.budget}, compression={self.compression})"

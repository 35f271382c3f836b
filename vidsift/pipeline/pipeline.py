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
from ..selectors import check_specs, score_frames
from ..selectors.planner import ALLOCATIONS, DECODE_MAX_PIXELS, SAMPLE_FPS, SAMPLE_MAX_FRAMES
from .adapters.base import ModelAdapter
from .hooks import CacheLayout
from .presets import Compression, Preset
from .press import PRESSES
from .prune import PRUNERS
from .stats import StatsRecorder, kv_cache_bytes
from .types import ModelInputs

PLAN_OPTIONS = ("fps", "max_frames", "start_s", "end_s", "frames", "scorer", "selector", "allocator", "merger", "temporal",
                "search", "allocation", "timeline")
ASK_OPTIONS = (*PLAN_OPTIONS, "budget", "preset", "prune", "kv", "max_new_tokens", "resize")
# scorer None: "mllm" when the temporal search runs, else "uniform". search "auto": on for a video
# file with more candidates (1/fps over its duration) than the default cap SAMPLE_MAX_FRAMES, i.e.
# where the capped grid would leave gaps a short event falls through, unless the caller set its own
# max_frames (a capped grid, asked for); "on" / "off" force it; "dense" scores every candidate (the
# dense pass the search is measured against). allocation "relevance": concentrated relevance keeps
# full tokens (`allocate_relevance`); "spread": k frames at a share of their tokens each. timeline
# "true": the model sees each kept frame at its real time; "compact" (or a number of seconds): the
# kept frames' times are mapped linearly onto COMPACT_SPAN_S seconds (order and relative position
# kept, as Qwen2-VL's patch-index positions do), for a model that reads time only over the spans
# it was trained on; the plan keeps the real times
DEFAULTS: dict[str, Any] = {"fps": SAMPLE_FPS, "max_frames": SAMPLE_MAX_FRAMES, "scorer": None, "max_new_tokens": 64,
                            "resize": False, "search": "auto", "allocation": "relevance", "timeline": "true"}
COMPACT_SPAN_S = 32.0
SEARCH_MODES = ("auto", "on", "off", "dense")


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


def resolve_options(defaults: dict[str, Any], base: Preset, overrides: dict[str, Any]) -> dict[str, Any]:
    """Ask options: ``defaults`` updated with the non-None ``overrides`` (unknown names and bad
    values raise `ConfigError`); ``opts["budget"]`` and ``opts["compression"]`` are ``base``'s
    with the preset, size, pruner and press overrides applied (`Preset.apply`)."""
    unknown = sorted(set(overrides) - set(ASK_OPTIONS))
    if unknown:
        raise ConfigError(", ".join(unknown), f"unknown option; choose from: {', '.join(ASK_OPTIONS)}")
    opts = {**defaults, **{k: v for k, v in overrides.items() if v is not None}}
    resolved = base.apply(**{k: opts.pop(k) for k in ("preset", "budget", "prune", "kv") if k in opts})
    opts["budget"], opts["compression"] = resolved.budget, resolved.compression
    if opts.get("merger") is None and resolved.compression.merger:  # a preset's merger; an explicit one wins
        opts["merger"] = resolved.compression.merger
    cap = opts["budget"].max_frames  # a cap on frames encoded (keyframes), not on candidates
    if cap is not None:
        opts["frames"] = min(opts.get("frames") or cap, cap)
    if int(opts["max_new_tokens"]) < 1:
        raise ConfigError(f"max_new_tokens={opts['max_new_tokens']}", "must be >= 1")
    search_spec(opts.get("search", "auto"))  # a bad mode or setting fails before any frame is decoded
    timeline_span(opts.get("timeline", "true"))  # a bad value fails before any frame is decoded
    if opts.get("allocation", "relevance") not in ALLOCATIONS:
        raise ConfigError(f"allocation={opts['allocation']!r}", f"choose from: {', '.join(ALLOCATIONS)}")
    return opts


def timeline_span(value: Any) -> float | None:
    """The ``timeline`` option as the seconds the kept frames are spread over (None: real time)."""
    if value in (None, "true"):
        return None
    if value == "compact":
        return COMPACT_SPAN_S
    try:
        span = float(value)
    except (TypeError, ValueError):
        span = float("nan")
    if not span > 0 or span == float("inf"):
        raise ConfigError(f"timeline={value!r}", "choose true, compact, or seconds > 0")
    return span


def compact_times(frames: FrameBatch, span: float) -> FrameBatch:
    """``frames`` with their times mapped linearly from [first, last] onto [0, span] (only when
    they cover more than ``span``): what the model sees with ``timeline="compact"``."""
    t = frames.pts_seconds
    if len(t) < 2 or t[-1] - t[0] <= span:
        return frames
    return FrameBatch(frames.data, (t - t[0]) * (span / (t[-1] - t[0])), frames.index, decode=frames.decode)


def search_spec(spec: Any) -> tuple[str, Any]:
    """``"auto"``, ``"on"``, ``"off"``, ``"dense"``, or a mode with `TemporalSearch` settings
    (``"on:call_share=0.1,grid=8"``) -> (mode, TemporalSearch); "dense" scores every candidate."""
    from ..selectors.search import TemporalSearch

    mode, params = parse_spec(str(spec))
    if mode not in SEARCH_MODES:
        raise ConfigError(f"search={spec!r}", f"choose from: {', '.join(SEARCH_MODES)} (with settings: on:call_share=0.1)")
    if mode == "dense":
        params = {**params, "call_share": 1.0}
    try:
        return mode, TemporalSearch(**params)
    except ConfigError as err:
        raise ConfigError(f"search={spec!r}", f"{err.subject}: {err.reason}") from None
    except TypeError:
        fields = ", ".join(f.name for f in dataclasses.fields(TemporalSearch))
        raise ConfigError(f"search={spec!r}", f"unknown setting; the search takes: {fields}") from None


def build_members(compression: Compression) -> dict[str, list[Any]]:
    """Prefill pruners (``compression.prune``) and cache presses (``compression.kv``), built from specs."""
    return {"prune": PRUNERS.build_many(compression.prune) if compression.prune else [],
            "kv": PRESSES.build_many(compression.kv) if compression.kv else []}


class Pipeline:
    """A loaded model adapter plus default budget, compression and plan options; answers questions."""

    def __init__(self, adapter: ModelAdapter, *, budget: Budget | int | float | str | None = None,
                 name: str = "", **plan_defaults: Any) -> None:
        unknown = sorted(set(plan_defaults) - set(ASK_OPTIONS))
        if unknown:
            raise ConfigError(", ".join(unknown), f"unknown option; choose from: {', '.join(ASK_OPTIONS)}")
        self.adapter = adapter
        self.name = name or str(getattr(adapter.model, "name_or_path", "") or adapter.family)
        self.defaults = {**DEFAULTS, **plan_defaults}
        parts = {k: self.defaults.pop(k) for k in ("preset", "prune", "kv") if k in self.defaults}
        self.base = Preset().apply(budget=budget, **parts)  # every question starts from these
        self._candidates = _LRU(4)  # (video, sampling) -> FrameBatch
        self._encoded = _LRU(8)  # (video, sampling, frame indices) -> VisualTokens
        self._indexes = _LRU(2)  # (video, scan settings) -> VideoIndex (the search's cheap pass)
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

    # -- options --------------------------------------------------------------------------------
    def _options(self, overrides: dict[str, Any]) -> dict[str, Any]:
        return resolve_options(self.defaults, self.base, overrides)

    @property
    def budget(self) -> Budget:
        """The default visual-token budget."""
        return self.base.budget

    @property
    def compression(self) -> Compression:
        """The default in-model options (prefill pruner, cache press, a preset's merger)."""
        return self.base.compression

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
    def candidates(self, video: str | os.PathLike | FrameBatch, **overrides: Any) -> FrameBatch:
        """The sampled candidate frames of ``video`` (decoded once per video + sampling)."""
        opts = self._options(overrides)
        return self._sample(video, opts)[0]

    def _sample(self, video: Any, opts: dict[str, Any]) -> tuple[FrameBatch, tuple]:
        sampling = tuple(opts.get(k) for k in ("fps", "max_frames", "start_s", "end_s"))
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
                frames = sample(reader, fps=opts.get("fps"), max_frames=opts.get("max_frames"),
                                start_s=opts.get("start_s"), end_s=opts.get("end_s"), exact_count=True)
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

    def plan(self, video: Any, question: str | None = None, **overrides: Any) -> TokenPlan:
        """Only the plan (no encoding, no generation)."""
        opts = self._options(overrides)
        label = str(video) if not isinstance(video, FrameBatch) else "<frames>"
        if self.searching(video, opts):
            return self._search_plan(video, question, opts, label, StatsRecorder())[1]  # no frame decoded at full size
        candidates, _ = self._sample(video, opts)
        return self._plan(candidates, question, opts, label, None)[0]

    def _plan(self, candidates: FrameBatch, question: str | None, opts: dict[str, Any], video: str,
              rec: StatsRecorder | None) -> tuple[TokenPlan, int, int]:
        from ..selectors import plan_frames

        h, w = candidates.data.shape[1:3]
        with naming_video(video, self.adapter.family):
            tpf = float(self.adapter.tokens_per_frame(int(h), int(w)))
            full = self.adapter.tokens_for_frames(len(candidates), int(h), int(w))  # what encoding them all gives
        budget_tokens = opts["budget"].resolve(full)
        scorer = self._scorer(opts["scorer"] or "uniform")
        rec = rec or StatsRecorder()
        with rec.stage("score"):
            scores = score_frames(scorer, candidates, question, "" if video == "<frames>" else video)
        kwargs = {k: opts[k] for k in ("selector", "allocator", "allocation") if opts.get(k) is not None}
        with rec.stage("select"):
            plan = plan_frames(candidates, question, budget_tokens=budget_tokens, tokens_per_frame=tpf, k=opts.get("frames"),
                               scorer=scorer, video=video, scores=scores, group=self.adapter.frames_per_group, **kwargs)
        plan.settings.setdefault("merger", opts.get("merger") or "tome")
        plan.settings.setdefault("temporal", opts.get("temporal"))
        if candidates.decode is not None:  # the file's decode report reaches --json and batch rows
            plan.stats["decode"] = candidates.decode
        return plan, full, budget_tokens

    # -- temporal search (long videos) ----------------------------------------------------------
    def searching(self, video: Any, opts: dict[str, Any]) -> bool:
        """Whether a question about ``video`` plans with the temporal search (option ``search``)."""
        mode = search_spec(opts.get("search", "auto"))[0]
        if mode == "off" or isinstance(video, FrameBatch):
            return False
        if mode in ("on", "dense"):
            return True
        from ..frames import open_for_planning

        with open_for_planning(video, max_pixels=self.decode_max_pixels) as reader:
            t0 = float(opts.get("start_s") or 0.0)
            t1 = min(float(opts.get("end_s") or math.inf), float(reader.info.duration_s or 0.0))
        cap = opts.get("max_frames")  # a cap chosen by the caller asks for the capped grid
        return cap == SAMPLE_MAX_FRAMES and (t1 - t0) * float(opts.get("fps") or SAMPLE_FPS) > cap

    def index(self, video: str | os.PathLike, *, progress: Any = None, **overrides: Any) -> Any:
        """The video's `VideoIndex` (the search's cheap pass: every ``1/fps`` candidate at the scan
        size, with features), from memory, from ``index_dir`` on disk, or built now."""
        from ..selectors.video_index import load_index

        opts = self._options(overrides)
        fps = float(opts.get("fps") or SAMPLE_FPS)
        key = (_video_key(video), fps, opts.get("start_s"), opts.get("end_s"))
        entry = self._indexes.lookup(key)
        if entry is None:
            entry = load_index(video, fps=fps, start_s=opts.get("start_s"), end_s=opts.get("end_s"),
                               cache_dir=self.index_dir, use_cache=self.index_cache, progress=progress)
            self._indexes.store(key, entry)
        return entry

    def _search_plan(self, video: Any, question: str | None, opts: dict[str, Any], label: str,
                     rec: StatsRecorder) -> tuple[Any, TokenPlan, int, int]:
        """The index entry, the plan, the full video's tokens and the budget (nothing decoded at full size)."""
        from ..frames import open_for_planning
        from ..selectors.planner import plan_search

        with rec.stage("decode"):
            entry = self.index(video, **{k: opts.get(k) for k in ("fps", "start_s", "end_s")})
        with open_for_planning(video, max_pixels=self.decode_max_pixels) as reader:
            h, w = reader.frame_size
        with naming_video(label, self.adapter.family):
            tpf = float(self.adapter.tokens_per_frame(int(h), int(w)))
            full = self.adapter.tokens_for_frames(len(entry), int(h), int(w))
        budget_tokens = opts["budget"].resolve(full)
        with rec.stage("score"):
            kwargs = {k: opts[k] for k in ("selector", "allocator", "allocation") if opts.get(k) is not None}
            plan = plan_search(entry, question, budget_tokens=budget_tokens, tokens_per_frame=tpf,
                               search=search_spec(opts.get("search", "auto"))[1],
                               scorer=self._scorer(opts.get("scorer") or "mllm"), group=self.adapter.frames_per_group,
                               video=label, k=opts.get("frames"), **kwargs)
        plan.settings.setdefault("merger", opts.get("merger") or "tome")
        plan.settings.setdefault("temporal", opts.get("temporal"))
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
    def prepare(self, video: str | os.PathLike | FrameBatch, question: str, **overrides: Any) -> tuple[ModelInputs, TokenPlan]:
        """Everything before generation: the model inputs (exactly the planned visual tokens,
        injected) and the plan. ``adapter.model(**inputs.kwargs)`` runs the prefill."""
        inputs, plan, _ = self._prepare(video, question, self._options(overrides), StatsRecorder(self.adapter.device))
        return inputs, plan

    def _prepare(self, video: Any, question: str, opts: dict[str, Any], rec: StatsRecorder) -> tuple[ModelInputs, TokenPlan, dict]:
        if not isinstance(question, str) or not question.strip():
            raise ConfigError(repr(question), "the question must be a non-empty string")
        check_specs(**{k: opts.get(k) for k in ("selector", "allocator", "merger", "temporal")})
        label = "<frames>" if isinstance(video, FrameBatch) else str(video)
        if self.searching(video, opts):
            entry, plan, full, budget_tokens = self._search_plan(video, question, opts, label, rec)
            with rec.stage("keyframes"):
                chosen = self.kept_frames(video, entry, plan)
            key, n_candidates = (_video_key(video), ("search", entry.meta.get("key"))), len(entry)
        else:
            with rec.stage("decode"):
                candidates, key = self._sample(video, opts)
            plan, full, budget_tokens = self._plan(candidates, question, opts, label, rec)
            chosen = candidates[np.searchsorted(candidates.index, plan.indices)]  # plan frames, in time order
            n_candidates = len(candidates)
        span = timeline_span(opts.get("timeline", "true"))
        if span is not None:  # the model sees the kept frames over `span` seconds (the plan keeps real times)
            chosen, key = compact_times(chosen, span), (*key, ("timeline", span))
            plan.settings["timeline_span_s"] = span
        with rec.stage("encode"), naming_video(label, self.adapter.family):
            resize = bool(opts.get("resize")) and budget_tokens < full
            tokens, resized = self._encode_resized(key, chosen, plan) if resize else (self._encode(key, chosen), False)
        encoded = tokens.n_tokens
        with rec.stage("reduce"):
            if budget_tokens < full:  # unlimited: nothing is merged, the vanilla model's tokens exactly
                from ..selectors import reduce_tokens

                targets = group_targets(tokens, plan)
                if targets != tokens.tokens_per_group or opts.get("temporal"):
                    tokens = reduce_tokens(tokens, targets, merger=opts.get("merger") or "tome", temporal=opts.get("temporal"))
        with rec.stage("build"):
            inputs = self.adapter.build_inputs(tokens, question)
        counts = dict(frames_candidates=n_candidates, frames_planned=len(plan.frames), tokens_full=full,
                      tokens_budget=budget_tokens, tokens_planned=plan.total_tokens, tokens_encoded=encoded,
                      tokens_in_prompt=int(inputs.visual_mask.sum()), prompt_len=inputs.prompt_len,
                      resized=resized)
        return inputs, plan, counts

    def ask(self, video: str | os.PathLike | FrameBatch, question: str, **overrides: Any) -> Answer:
        """Answer one question about ``video`` (a path, or already decoded frames)."""
        opts = self._options(overrides)
        adapter = self.adapter
        rec = StatsRecorder(adapter.device, on_stage=self.on_stage)
        members = build_members(opts["compression"])  # a bad spec fails before any frame is decoded
        inputs, plan, counts = self._prepare(video, question, opts, rec)
        with ExitStack() as stack:  # one layout for this call's pruners and presses; their hooks go when it ends
            layout = stack.enter_context(CacheLayout(adapter, inputs)) if any(members.values()) else None
            observed = layout.observe() if layout else {}  # the call's stats (KV bytes, outside the cache too)
            member_stats = {kind: [(m, layout.add(m)) for m in ms] for kind, ms in members.items()}
            if "past_key_values" not in inputs.kwargs:  # our own cache object, to measure its size after
                from transformers import DynamicCache

                inputs.kwargs["past_key_values"] = DynamicCache(config=adapter.model.config.get_text_config())
            streamer = rec.streamer()
            rec.announce("generate")  # prefill, then decoding
            new_ids = adapter.generate(inputs, max_new_tokens=int(opts["max_new_tokens"]), streamer=streamer)
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

    def ask_many(self, video: str | os.PathLike | FrameBatch, questions: Sequence[str], **overrides: Any) -> list[Answer]:
        """Answer several questions about one video: frames decode once, and planned frames
        encode once for every plan they appear in."""
        if isinstance(questions, str):
            raise ConfigError(repr(questions), "ask_many takes a list of questions; use ask() for one")
        return [self.ask(video, q, **overrides) for q in questions]

    def __repr__(self) -> str:
        return f"Pipeline(model={self.name!r}, family={self.adapter.family!r}, budget={self.budget}, compression={self.compression})"

"""`AskOptions`: the options of one question, as one typed table.

Every entry point speaks this table: ``vidsift ask``'s flags (`from_cli`), the server's
``options`` / ``vidsift`` field (`from_json`), a manifest row's ``overrides`` (`from_row`), an eval
setting and ``Pipeline.ask(**kw)`` (`from_kwargs`). Each field carries its flag, its help text and
where it may be set (`OPTION_GROUPS`, `fields_for`), so the CLI's help, the server schema, the
manifest schema and the README table come from here, and tests check each surface against it.

A field left ``None`` is *not given*: the pipeline's default applies, then the library's
(`library_defaults`). Values are validated when the object is made; an error names what the user
typed (``fps=0: must be > 0`` from Python, ``--fps 0: must be > 0`` from the CLI,
``options.fps: must be > 0`` from JSON).

One question resolves its options once (`resolve`: the layers, e.g. a pipeline's defaults then the
question's, into `AskSettings`: the budget and compression after presets, every plan setting
filled) and builds its members once (`AskRun.build`: selector, allocator, mergers, pruners,
presses, the search and the timeline); the stages receive them and build nothing.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Literal, Mapping, get_args

from ..errors import ConfigError, VidsiftError
from ..registry import parse_spec
from ..types import Budget
from .presets import OFF, Compression, Preset

__all__ = ["AskOptions", "AskRun", "AskSettings", "library_defaults", "OPTION_GROUPS", "fields_for", "options_table",
           "check_names", "resolve", "search_spec", "timeline_span"]

Allocation = Literal["relevance", "lean", "spread"]
SearchMode = Literal["auto", "on", "off", "dense"]
Timeline = Literal["true", "compact"]  # or a number of seconds
ALLOCATIONS: tuple[str, ...] = get_args(Allocation)
SEARCH_MODES: tuple[str, ...] = get_args(SearchMode)
COMPACT_SPAN_S = 32.0

# where a group of options may be set: a manifest row sets the budget and plan settings only (it may
# not change what the model does inside, nor the generation); the server and the CLI set them all
OPTION_GROUPS: dict[str, tuple[str, ...]] = {
    "cli": ("budget", "compression", "plan", "generation"),
    "server": ("budget", "compression", "plan", "generation"),
    "manifest": ("budget", "plan"),
}


def _opt(flag: str, group: str, help: str, json: tuple[type, ...]) -> Any:
    return field(default=None, metadata={"flag": flag, "group": group, "help": help, "json": json})


@dataclass(frozen=True, kw_only=True)
class AskOptions:
    """The options of one question (None: not given). See the module docstring."""

    budget: Budget | int | float | str | None = _opt(
        "--budget", "budget", "Visual tokens: a count (2048), a share (0.25, 1.0 = all) or a percentage (25%), or a preset "
        "(fast, balanced, faithful, mustdrop). Default: all.", (str, int, float))
    preset: str | None = _opt(
        "--preset", "budget", "Named budget preset: fast, balanced, faithful or mustdrop (--budget/--prune/--kv override its fields).",
        (str,))
    prune: str | None = _opt("--prune", "compression", "Prefill pruner spec, e.g. fastv:k=2,keep=0.5 (none: off).", (str,))
    kv: str | None = _opt("--kv", "compression", "KV cache press spec, e.g. snapkv:ratio=0.25 (join with +; none: off).", (str,))
    fps: float | None = _opt("--fps", "plan", "Candidate frames per second (default 1).", (int, float))
    max_frames: int | None = _opt(
        "--max-frames", "plan", "Cap on candidate frames (default 64; a cap you set turns --search auto off).", (int,))
    frames: int | None = _opt("--frames", "plan", "Keyframes to select (default: the planner decides).", (int,))
    start_s: float | None = _opt("--start", "plan", "Start time in seconds.", (int, float))
    end_s: float | None = _opt("--end", "plan", "End time in seconds.", (int, float))
    scorer: Any = _opt(
        "--scorer", "plan", "Relevance scorer spec (uniform, clip, text, mllm[:decouple=true]). Default: mllm with the search, "
        "else uniform.", (str,))
    selector: Any = _opt("--selector", "plan", "Keyframe selector spec (uniform, topk, kcenter, maxmin, kmeans, mmr).", (str,))
    allocator: Any = _opt("--allocator", "plan", "Budget allocator spec (proportional, uniform).", (str,))
    merger: Any = _opt("--merger", "plan", "Token merger spec (default tome, or the preset's).", (str,))
    temporal: Any = _opt("--temporal", "plan", "Temporal merger spec (e.g. temporal:threshold=0.9).", (str,))
    search: str | None = _opt(
        "--search", "plan", "Temporal search over the whole video (a 1-fps index, the scorer on a share of it, coarse to fine): "
        "auto (on when the video has more than 64 candidates and --max-frames is not set), on, off, dense (score every "
        "candidate); settings after a colon, e.g. on:call_share=0.1 (the share of candidates the scorer may see).", (str,))
    allocation: Allocation | None = _opt(
        "--allocation", "plan", "How a query-aware plan spends the budget: relevance (relevant frames keep their full tokens, "
        "coverage gets the rest at half tokens; flat relevance spreads), lean (as relevance, with fewer, fuller coverage "
        "frames, and fewer, fuller frames where relevance is flat: at most 1.2x the prompt's tokens encoded) or spread (k "
        "frames at a share of their tokens).", (str,))
    timeline: Timeline | float | str | None = _opt(
        "--timeline", "plan", "How the model sees the kept frames' times: true (real seconds), compact (mapped onto 32 s, "
        "order and relative position kept: for a model trained on short clips, as the probe model), or a number of "
        "seconds.", (str, int, float))
    max_new_tokens: int | None = _opt("--max-new-tokens", "generation", "Tokens to generate at most (default 64).", (int,))
    resize: bool | None = _opt(
        "--resize", "generation", "Spend the budget as a lower resolution per frame before encoding (Qwen2/2.5/3-VL; less "
        "vision compute). No effect on other families or an unlimited budget.", (bool,))

    def __post_init__(self) -> None:
        parsed: dict[str, Any] = {}  # what a check parsed (the search, the timeline): parsed once, kept
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                try:
                    parsed[f.name] = _CHECKS[f.name](value)
                except _Bad:
                    raise
                except VidsiftError as err:  # a budget or registry error names the value itself
                    raise _Bad(f.name, value, str(err), inner=err) from None
        object.__setattr__(self, "_parsed", parsed)
        if self.start_s is not None and self.end_s is not None and not self.end_s > self.start_s:
            raise _Bad("end_s", self.end_s, f"must be > start_s={self.start_s!r}")

    # -- constructors: one per entry point, each naming the input as the user typed it ------------
    @classmethod
    def from_kwargs(cls, **given: Any) -> "AskOptions":
        """From Python keywords (``Pipeline.ask(video, q, fps=2)``); errors read ``fps=0: must be > 0``."""
        unknown = sorted(set(given) - set(NAMES))
        if unknown:
            raise ConfigError(", ".join(unknown), f"unknown option; choose from: {', '.join(NAMES)}")
        try:
            return cls(**given)
        except _Bad as err:
            raise err.inner or ConfigError(f"{err.name}={err.value!r}", err.why) from None

    @classmethod
    def from_cli(cls, **given: Any) -> "AskOptions":
        """From the CLI's parsed flags (by field name; None: not given); errors read ``--fps 0: must be > 0``."""
        try:
            return cls(**given)
        except _Bad as err:
            raise err.inner or ConfigError(f"{FLAGS[err.name]} {_typed(err.value)}", err.why) from None

    @classmethod
    def from_json(cls, raw: Mapping[str, Any], *, where: str = "options", surface: str = "server") -> "AskOptions":
        """From a JSON object (the server's ``options`` / ``vidsift`` field): the names `fields_for`
        ``surface`` allows, each of its JSON types; errors read ``options.fps: must be > 0``."""
        if not isinstance(raw, Mapping):
            raise ConfigError(where, f"must be a JSON object, got {type(raw).__name__}")
        allowed = fields_for(surface)
        given: dict[str, Any] = {}
        for key, value in raw.items():
            if value is None:
                continue
            if key not in allowed:
                raise ConfigError(f"{where}.{key}", f"unknown option; choose from: {', '.join(sorted(allowed))}")
            types = _FIELDS[key].metadata["json"]
            if isinstance(value, bool) and bool not in types or not isinstance(value, types):
                raise ConfigError(f"{where}.{key}", f"wrong type {type(value).__name__}")
            given[key] = value
        try:
            return cls(**given)
        except _Bad as err:
            raise ConfigError(f"{where}.{err.name}", err.why) from None

    @classmethod
    def from_row(cls, overrides: Any, *, where: str, number: int) -> "AskOptions":
        """From a manifest row's ``overrides`` (plan settings only, `fields_for("manifest")`);
        errors read ``manifest.jsonl: line 3: overrides.fps: must be > 0``."""
        if not isinstance(overrides, dict):
            raise ConfigError(where, f"line {number}: 'overrides' must be an object of plan settings")
        allowed = fields_for("manifest")
        bad = sorted(set(overrides) - set(allowed))
        if bad:
            raise ConfigError(where, f"line {number}: a row may only override plan settings ({', '.join(allowed)}), "
                                     f"not {', '.join(bad)}")
        try:
            return cls.from_json(overrides, where="overrides", surface="manifest")
        except ConfigError as err:
            raise ConfigError(where, f"line {number}: {err}") from None

    from_setting = from_kwargs  # an eval setting's overrides are Python keywords

    @classmethod
    def _merged(cls, layers: "list[tuple[dict[str, Any], AskOptions | None]]") -> "AskOptions":
        """Values already checked (each with the layer that gave them, whose parse is kept), as one
        object, not checked again: how `resolve` layers options without re-parsing any."""
        out = cls.__new__(cls)
        parsed: dict[str, Any] = {}
        for name in NAMES:
            object.__setattr__(out, name, None)
        for values, source in layers:
            for name, value in values.items():
                object.__setattr__(out, name, value)
                if source is not None and name in source._parsed:
                    parsed[name] = source._parsed[name]
                else:
                    parsed.pop(name, None)
        object.__setattr__(out, "_parsed", parsed)
        return out

    def parsed(self, name: str) -> Any:
        """Field ``name`` as its check parsed it (``search``: (mode, TemporalSearch); ``timeline``:
        seconds or None), parsed on first use when the value came from the defaults."""
        if name not in self._parsed:
            self._parsed[name] = _CHECKS[name](getattr(self, name))
        return self._parsed[name]

    # -- views ------------------------------------------------------------------------------------
    def given(self) -> dict[str, Any]:
        """The fields that were given, by name (what `from_kwargs` takes back)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    def canonical(self) -> dict[str, Any]:
        """Every field as plain JSON, numbers normalised (``2`` and ``2.0`` fps are one setting)."""
        out = {f.name: _canonical(getattr(self, f.name)) for f in fields(self)}
        for name in ("fps", "start_s", "end_s"):  # seconds and rates: 2 and 2.0 are one setting
            if isinstance(out[name], int):
                out[name] = float(out[name])
        return out


class _Bad(ConfigError):
    """A field's value broke its rule: ``fps=0: must be > 0`` (``AskOptions(...)`` made directly
    raises it; the constructors re-raise it naming the input as typed). ``inner``: the budget's or
    registry's own error, which names the value itself."""

    def __init__(self, name: str, value: Any, reason: str, *, inner: VidsiftError | None = None) -> None:
        if inner is not None:
            super().__init__(inner.subject, inner.reason)
        else:
            super().__init__(f"{name}={value!r}", reason)
        self.name, self.value, self.inner, self.why = name, value, inner, reason


_FIELDS = {f.name: f for f in fields(AskOptions)}
NAMES: tuple[str, ...] = tuple(_FIELDS)
FLAGS: dict[str, str] = {name: f.metadata["flag"] for name, f in _FIELDS.items()}
HELP: dict[str, str] = {name: f.metadata["help"] for name, f in _FIELDS.items()}


def fields_for(surface: str) -> tuple[str, ...]:
    """The options ``surface`` ("cli", "server", "manifest") may set, in table order."""
    groups = OPTION_GROUPS[surface]
    return tuple(name for name, f in _FIELDS.items() if f.metadata["group"] in groups)


def _typed(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _canonical(value: Any) -> Any:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, Budget):
        return {"budget": dataclasses.asdict(value)}
    if dataclasses.is_dataclass(value):  # a member given already built: its class and settings
        return {"member": f"{type(value).__module__}.{type(value).__qualname__}", **{
            f.name: _canonical(getattr(value, f.name)) for f in fields(value) if f.name != "adapter"}}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return repr(value)


# -- the rule of each field ----------------------------------------------------------------------------
def _number(name: str, *, low: float, strict: bool) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value) or math.isinf(value):
            raise _Bad(name, value, "must be a number")
        if value < low or (strict and value == low):
            raise _Bad(name, value, f"must be {'>' if strict else '>='} {low:g}")
    return check


def _count(name: str, reason: str = "must be an int >= 1") -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise _Bad(name, value, reason)
    return check


def _spec(registry: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:  # a name the registry knows (nothing imported); a built member passes
        if isinstance(value, str):
            check_names(**{registry: value})
    return check


def check_names(*, scorer: Any = None, selector: Any = None, allocator: Any = None, merger: Any = None,
                temporal: Any = None, prune: Any = None, kv: Any = None) -> None:
    """Raise the registry's `ConfigError` for an unknown method name or a malformed spec, without
    importing any member (so without torch). Built members (not strings) pass; options are checked
    when the members are built."""
    from ..selectors.base import ALLOCATORS, MERGERS, SCORERS, SELECTORS
    from .press import PRESSES
    from .prune import PRUNERS

    for registry, spec in ((SELECTORS, selector), (ALLOCATORS, allocator), (MERGERS, merger), (MERGERS, temporal)):
        if isinstance(spec, str):
            registry.check(spec)
    if isinstance(scorer, str):
        SCORERS.check(scorer.partition(":")[0] or scorer)  # "clip:/path" is shorthand for clip:model=/path
    for registry, spec in ((PRUNERS, prune), (PRESSES, kv)):
        if isinstance(spec, str) and spec:
            parts = spec.split("+")
            if any(not part.strip() for part in parts):
                raise ConfigError(spec, "empty method in a '+' list; join methods as a+b")
            for part in parts:
                registry.check(part)


def _budget(value: Any) -> None:
    Budget.parse(value)  # its own error names the value (``1.5: a fractional budget is ...``)


def _preset(value: Any) -> None:
    if not isinstance(value, str):
        raise _Bad("preset", value, "must be a preset name")
    Preset.named(value)


def _compression(name: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if not isinstance(value, str):
            raise _Bad(name, value, "must be a method spec (name:key=value) or none")
        if value.strip().lower() not in OFF:  # "none", "off", "": the stage switched off
            _spec(name)(value)
    return check


def _allocation(value: Any) -> None:
    if value not in ALLOCATIONS:
        raise _Bad("allocation", value, f"choose from: {', '.join(ALLOCATIONS)}")


def _resize(value: Any) -> None:
    if not isinstance(value, bool):
        raise _Bad("resize", value, "must be true or false")


_CHECKS: dict[str, Callable[[Any], None]] = {
    "budget": _budget, "preset": _preset, "prune": _compression("prune"), "kv": _compression("kv"),
    "fps": _number("fps", low=0, strict=True), "max_frames": _count("max_frames"), "frames": _count("frames"),
    "start_s": _number("start_s", low=0, strict=False), "end_s": _number("end_s", low=0, strict=True),
    "scorer": _spec("scorer"), "selector": _spec("selector"), "allocator": _spec("allocator"), "merger": _spec("merger"),
    "temporal": _spec("temporal"), "search": lambda v: search_spec(v), "allocation": _allocation,
    "timeline": lambda v: timeline_span(v),
    "max_new_tokens": _count("max_new_tokens", "must be >= 1"), "resize": _resize,
}


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
    if isinstance(value, bool) or not span > 0 or span == float("inf"):
        raise _Bad("timeline", value, "choose true, compact, or seconds > 0")
    return span


def search_spec(spec: Any) -> tuple[str, Any]:
    """``"auto"``, ``"on"``, ``"off"``, ``"dense"``, or a mode with `TemporalSearch` settings
    (``"on:call_share=0.1,grid=8"``) -> (mode, TemporalSearch); "dense" scores every candidate."""
    from ..selectors.search import TemporalSearch

    if not isinstance(spec, str):
        raise _Bad("search", spec, "must be a mode (auto, on, off, dense)")
    try:
        mode, params = parse_spec(spec)
    except ConfigError as err:
        raise _Bad("search", spec, err.reason) from None
    if mode not in SEARCH_MODES:
        raise _Bad("search", spec, f"choose from: {', '.join(SEARCH_MODES)} (with settings: on:call_share=0.1)")
    if mode == "dense":
        params = {**params, "call_share": 1.0}
    try:
        return mode, TemporalSearch(**params)
    except ConfigError as err:
        raise _Bad("search", spec, f"{err.subject}: {err.reason}") from None
    except TypeError:
        names = ", ".join(f.name for f in fields(TemporalSearch))
        raise _Bad("search", spec, f"unknown setting; the search takes: {names}") from None


# -- one question's options resolved, and its members built ------------------------------------------
def library_defaults() -> dict[str, Any]:
    """What a field neither the question nor the pipeline gives is (the sampling constants live
    with the planner, imported here on first use: the CLI's options table imports nothing heavy)."""
    from ..selectors.planner import SAMPLE_FPS, SAMPLE_MAX_FRAMES

    return {"fps": SAMPLE_FPS, "max_frames": SAMPLE_MAX_FRAMES, "selector": "kcenter", "allocator": "proportional",
            "max_new_tokens": 64, "resize": False, "search": "auto", "allocation": "relevance", "timeline": "true"}


_BUDGET_PARTS = ("budget", "preset", "prune", "kv")


@dataclass(frozen=True, kw_only=True)
class AskSettings:
    """One question's options resolved (`resolve`): ``options`` holds every plan and generation
    setting (given, else a lower layer's, else `library_defaults()`; ``frames`` capped by the
    budget's ``max_frames``) and no budget part: those are ``budget`` and ``compression`` after the
    presets (`Preset.apply`, layer by layer). ``merger`` stays None unless given (the preset's, else
    ``tome``: `merger_spec`)."""

    options: AskOptions
    budget: Budget
    compression: Compression

    @property
    def merger_spec(self) -> Any:
        """The spatial merger a reduction uses: the one given, else the preset's, else ``tome``."""
        return self.options.merger or self.compression.merger or "tome"

    def canonical(self) -> dict[str, Any]:
        """Everything that changes the answer, as plain JSON (the resume keys hash it)."""
        out = {k: v for k, v in self.options.canonical().items() if k not in _BUDGET_PARTS}
        out["merger"] = _canonical(self.merger_spec)
        return {**out, "budget": dataclasses.asdict(self.budget), "compression": dataclasses.asdict(self.compression)}


def resolve(*layers: AskOptions) -> AskSettings:
    """The layers (lowest first: a pipeline's defaults, then the question's) as one `AskSettings`
    on top of the library's defaults: the budget parts applied layer by layer (`Preset.apply`: a
    preset replaces both parts, then the size, then prune and kv), every other field the last one
    given; a budget's frame cap bounds ``frames`` once, from the budget all layers resolve to."""
    preset, plan = Preset(), [(library_defaults(), None)]
    for layer in layers:
        preset = preset.apply(preset=layer.preset, budget=layer.budget, prune=layer.prune, kv=layer.kv)
        plan.append(({k: v for k, v in layer.given().items() if k not in _BUDGET_PARTS}, layer))
    cap = preset.budget.max_frames  # a cap on frames encoded (keyframes), not on candidates
    if cap is not None:
        frames = next((values["frames"] for values, _ in reversed(plan) if values.get("frames") is not None), None)
        plan.append(({"frames": min(frames or cap, cap)}, None))
    return AskSettings(options=AskOptions._merged(plan), budget=preset.budget, compression=preset.compression)


@dataclass(frozen=True, kw_only=True)
class AskRun:
    """One question's settings and its members, built once (`build`) and handed to every stage.

    scorer: the scorer given, built (None: the pipeline builds its default, once per pipeline)
    search_mode / search: the ``search`` option parsed (a `TemporalSearch`)
    timeline_span: the ``timeline`` option in seconds (None: real time)
    """

    settings: AskSettings
    scorer: Any
    selector: Any
    allocator: Any
    merger: Any
    temporal: Any
    prune: list[Any]
    kv: list[Any]
    search_mode: str
    search: Any
    timeline_span: float | None

    @classmethod
    def build(cls, settings: AskSettings, *, scorer: bool = True) -> "AskRun":
        """Build every member once (cheap: nothing loads weights). ``scorer=False`` leaves the
        scorer to the caller (a `Pipeline` builds it once with its adapter)."""
        from ..selectors import ALLOCATORS, SCORERS, SELECTORS, scorer_spec
        from ..selectors.reduce import build_merger
        from .press import PRESSES
        from .prune import PRUNERS

        o, comp = settings.options, settings.compression
        mode, search = o.parsed("search")  # parsed when the options were checked (or now, the default's)
        built_scorer = None
        if scorer and o.scorer is not None:
            built_scorer = SCORERS.build(scorer_spec(o.scorer) if isinstance(o.scorer, str) else o.scorer)
        return cls(
            settings=settings, scorer=built_scorer,
            selector=SELECTORS.build(o.selector), allocator=ALLOCATORS.build(o.allocator),
            merger=build_merger(settings.merger_spec, "spatial", "merger"),
            temporal=build_merger(o.temporal, "temporal", "temporal") if o.temporal is not None else None,
            prune=PRUNERS.build_many(comp.prune) if comp.prune else [],
            kv=PRESSES.build_many(comp.kv) if comp.kv else [],
            search_mode=mode, search=search, timeline_span=o.parsed("timeline"))

    def checkpoints(self) -> list[str]:
        """The checkpoints the given scorer will load (folders or Hub ids), for an early check."""
        model = getattr(self.scorer, "model", None)
        return [model] if isinstance(model, str) and model else []

    def plan_members(self) -> dict[str, Any]:
        """The selector, allocator and allocation the planner takes (built)."""
        return {"selector": self.selector, "allocator": self.allocator, "allocation": self.settings.options.allocation}

    def name_members(self, plan: Any) -> None:
        """The plan's settings name the members as given (``mmr:weight=0.7``, not the built
        member's ``mmr``), as a plan made from specs names them."""
        o = self.settings.options
        for key in ("selector", "allocator"):
            if key in plan.settings and isinstance(getattr(o, key), str):
                plan.settings[key] = getattr(o, key)
        plan.settings.setdefault("merger", self.settings.merger_spec)
        plan.settings.setdefault("temporal", o.temporal)


def options_table() -> str:
    """The README's options table (Markdown), generated from `AskOptions`."""
    rows = ["| option (Python, JSON) | flag | set in | what it does |", "|---|---|---|---|"]
    for name, f in _FIELDS.items():
        where = ", ".join(s for s, groups in OPTION_GROUPS.items() if f.metadata["group"] in groups)
        rows.append(f"| `{name}` | `{f.metadata['flag']}` | {where} | {f.metadata['help']} |")
    return "\n".join(rows)


if __name__ == "__main__":  # python -m vidsift.pipeline.options: the README's table
    print(options_table())

"""`AskOptions` (issue 26, item 1): one typed table of a question's options.

Every surface is checked against the dataclass by what it accepts, not by a list it keeps: ``ask``'s
flags, the server's ``options`` field, a manifest row's ``overrides`` and the README's table each
name exactly its fields; a bad value is named as the user typed it; and one question builds each
member once, counted by wrapping the registries' and the search's constructors, through
``Pipeline.ask`` and through ``vidsift ask`` (whose early check builds them, and hands them on)."""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import typer

from vidsift.batch import Job, WorkerSpec, read_manifest
from vidsift.batch.keys import job_key, options_key
from vidsift.errors import ConfigError
from vidsift.pipeline.check import check_ask
from vidsift.pipeline.options import FLAGS, NAMES, AskOptions, fields_for, options_table, resolve
from vidsift.types import FrameBatch
from vidsift.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = {  # a valid value of every option (a new field needs one here, so every surface is probed for it)
    "budget": "25%", "preset": "fast", "prune": "fastv:k=1,keep=0.5", "kv": "snapkv:ratio=0.5", "fps": 2,
    "max_frames": 8, "frames": 4, "start_s": 0, "end_s": 5, "scorer": "uniform", "selector": "topk",
    "allocator": "uniform", "merger": "tome", "temporal": "temporal:threshold=0.9", "search": "off",
    "allocation": "spread", "timeline": "compact", "max_new_tokens": 4, "resize": True,
}


def test_every_field_has_a_sample_a_flag_and_help():
    assert set(SAMPLES) == set(NAMES)
    for f in dataclasses.fields(AskOptions):
        assert f.kw_only and f.default is None and f.metadata["help"] and f.metadata["flag"].startswith("--"), f.name
    with pytest.raises(dataclasses.FrozenInstanceError):
        AskOptions(fps=2).fps = 3
    with pytest.raises(TypeError):
        AskOptions(2)  # keyword-only


def test_ask_flags_are_the_fields_and_the_command_flags():
    from vidsift.cli.app import app
    from vidsift.cli.ask import COMMAND_FLAGS

    params = typer.main.get_command(app).commands["ask"].params
    flags = {next(o for o in p.opts if o.startswith("--")) for p in params if p.param_type_name == "option"}
    assert flags - set(COMMAND_FLAGS) == {FLAGS[n] for n in fields_for("cli")}
    assert set(fields_for("cli")) == set(NAMES)
    helps = {next(o for o in p.opts if o.startswith("--")): p.help for p in params if p.param_type_name == "option"}
    for name in NAMES:  # the CLI's help is the field's (mergers, pruners, presses add the names they know)
        assert helps[FLAGS[name]].startswith(AskOptions.__dataclass_fields__[name].metadata["help"]), name


def test_the_server_takes_exactly_its_fields_and_the_question_options():
    from vidsift.serve import ServeConfig
    from vidsift.serve._ask import ask_options
    from vidsift.serve._errors import HTTPProblem

    config = ServeConfig(port=0)
    for name in NAMES:
        assert getattr(ask_options({name: SAMPLES[name]}, config).ask, name) == SAMPLES[name], name
    assert ask_options({"options": ["a", "b"]}, config).choices == ["a", "b"]
    with pytest.raises(HTTPProblem) as err:
        ask_options({"fsp": 2}, config)
    listed = re.search(r"choose from: (.*)", err.value.message).group(1).split(", ")
    assert sorted(listed) == sorted([*fields_for("server"), "options"])


@pytest.mark.parametrize("search", ["dense", " dense", "dense ", "dense:grid=4"])
def test_the_server_refuses_a_dense_search_however_it_is_spelled(search):
    """A dense search scores every frame: the server refuses it by the mode the option parses to,
    so padding the name does not get it through; auto, on and off pass."""
    from vidsift.serve import ServeConfig
    from vidsift.serve._ask import ask_options
    from vidsift.serve._errors import HTTPProblem

    config = ServeConfig(port=0)
    with pytest.raises(HTTPProblem, match="this server allows auto, on or off"):
        ask_options({"search": search}, config)
    for allowed in ("auto", " on", "off"):
        assert ask_options({"search": allowed}, config).ask.search == allowed


def test_a_manifest_row_takes_exactly_the_manifest_fields(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    taken = set()
    for name in [*NAMES, "fsp"]:
        path = tmp_path / "m.jsonl"
        path.write_text(json.dumps({"video": "a.mp4", "question": "q", "overrides": {name: SAMPLES.get(name, 1)}}) + "\n")
        try:
            (job,) = read_manifest(path)
        except ConfigError as err:
            assert "may only override" in str(err), str(err)
            continue
        assert job.overrides == {name: SAMPLES[name]}
        taken.add(name)
    assert taken == set(fields_for("manifest")) and {"budget", "fps", "search"} <= taken and "kv" not in taken


def test_the_readme_table_is_the_dataclass():
    text = (ROOT / "README.md").read_text()
    table = text.split("<!-- options table: begin -->\n", 1)[1].split("\n<!-- options table: end -->", 1)[0]
    assert table == options_table()
    rows = [line.split("|")[1].strip().strip("`") for line in table.splitlines()[2:]]
    assert rows == list(NAMES)


@pytest.mark.parametrize("make, message", [
    (lambda: AskOptions.from_kwargs(fps=0), "fps=0: must be > 0"),
    (lambda: AskOptions.from_cli(fps=0.0), "--fps 0: must be > 0"),
    (lambda: AskOptions.from_json({"fps": 0}), "options.fps: must be > 0"),
    (lambda: AskOptions.from_json({"fps": 0}, where="vidsift"), "vidsift.fps: must be > 0"),
    (lambda: AskOptions.from_json({"fps": "2"}), "options.fps: wrong type str"),
    (lambda: AskOptions.from_json({"budget": "lots"}), "options.budget: lots: not a budget"),
    (lambda: AskOptions.from_row({"fps": 0}, where="m.jsonl", number=3), "m.jsonl: line 3: overrides.fps: must be > 0"),
    (lambda: AskOptions.from_cli(start_s=-1.0), "--start -1: must be >= 0"),
    (lambda: AskOptions.from_cli(max_new_tokens=0), "--max-new-tokens 0: must be >= 1"),
    (lambda: AskOptions.from_kwargs(allocation="even"), "allocation='even': choose from: relevance, lean, spread"),
    (lambda: AskOptions.from_cli(search="sometimes"), "--search sometimes: choose from: auto, on, off, dense"),
    (lambda: AskOptions.from_cli(timeline="-3"), "--timeline -3: choose true, compact, or seconds > 0"),
    (lambda: AskOptions.from_kwargs(selector="nope"), "nope: unknown selector"),
    (lambda: AskOptions.from_kwargs(fsp=2), "fsp: unknown option; choose from: budget, preset"),
    (lambda: AskOptions.from_json(["fps", 2]), "options: must be a JSON object, got list"),
    (lambda: check_ask(FrameBatch(np.zeros((2, 8, 8, 3), np.uint8), np.arange(2.0), np.arange(2)), "q",
                       ask_options={"fps": 2}), "{'fps': 2}: ask_options must be an AskOptions"),
])
def test_errors_name_what_the_user_typed(make, message):
    with pytest.raises(ConfigError) as err:
        make()
    assert str(err.value).startswith(message), str(err.value)


def test_resume_keys_follow_the_resolved_options():
    spec = WorkerSpec(model="m", answerer="test_batch:echo_answerer")

    def key(**overrides):
        return job_key(Job(id="1", video="a.mp4", question="q", overrides=overrides), spec, video_digest="d", model="m")

    assert key(fps=2) == key(fps=2.0) and key(budget="25%") == key(budget=0.25)  # one setting, two spellings
    assert key(preset="fast") == key(budget="fast")  # both parts of the preset, however named
    assert len({key(), key(fps=2), key(timeline="compact"), key(search="on"), key(merger="adjacent"),
                key(budget="fast", kv="none")}) == 6
    assert resolve(AskOptions(fps=2)).canonical()["fps"] == 2.0
    for overrides in ({name: SAMPLES[name]} for name in NAMES):  # every valid option keys by its resolved form
        assert "unparsed" not in options_key(spec, overrides), overrides
    assert options_key(spec, {"kv": "off", "prune": "none"})["compression"] == {"prune": None, "kv": None, "merger": None}
    # the generation length as the worker asks it: the spec's, over any in its pipeline options
    both = WorkerSpec(model="m", answerer="test_batch:echo_answerer", max_new_tokens=7, options={"max_new_tokens": 5})
    assert options_key(both, {})["max_new_tokens"] == 7 and options_key(both, {"max_new_tokens": 3})["max_new_tokens"] == 3


@pytest.fixture()
def builds(monkeypatch):
    """Member builds by kind (a spec string built by a registry; a built member passing through is
    no build), `TemporalSearch`es made, timelines parsed and budgets resolved."""
    from vidsift.pipeline import options
    from vidsift.pipeline.presets import Preset
    from vidsift.selectors.search import TemporalSearch

    counts: Counter = Counter()
    build, post, span, apply = Registry.build, TemporalSearch.__post_init__, options.timeline_span, Preset.apply

    def counted_build(self, spec, **defaults):
        if isinstance(spec, str):
            counts[f"{self.kind}:{spec}"] += 1
        return build(self, spec, **defaults)

    def counted(name, fn):
        def wrapper(*args, **kwargs):
            counts[name] += 1
            return fn(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(Registry, "build", counted_build)
    monkeypatch.setattr(TemporalSearch, "__post_init__", counted("search", post))
    monkeypatch.setattr(options, "timeline_span", counted("timeline", span))
    monkeypatch.setattr(Preset, "apply", counted("budget", apply))
    return counts


ASKED = dict(budget="50%", scorer="uniform", selector="topk", allocator="uniform", merger="tome",
             temporal="temporal:threshold=0.9", prune="fastv:k=1,keep=0.5", kv="snapkv:ratio=0.5", timeline="compact",
             allocation="spread", fps=2.0, max_new_tokens=1)


def _each_member_once(builds: Counter) -> None:
    members = {k: n for k, n in builds.items() if ":" in k}
    assert {k.split(":")[0] for k in members} == {"scorer", "selector", "allocator", "merger", "prefill pruner",
                                                  "cache press"}, builds
    assert len(members) == 7 and set(members.values()) == {1}, builds  # the two mergers: spatial and temporal
    assert builds["search"] == 1 and builds["timeline"] == 1, builds


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from vidsift.pipeline.archs import build_checkpoint

    return build_checkpoint("tiny-qwen2.5-vl", tmp_path_factory.mktemp("ckpt"))


@pytest.fixture()
def pipe(checkpoint):
    """A fresh pipeline: it keeps the scorers it built, so a second question builds none."""
    from vidsift.pipeline import Pipeline

    return Pipeline.from_pretrained(checkpoint, device="cpu")


@pytest.mark.parametrize("search", ["off", "on"])
def test_one_ask_builds_each_member_once(search, pipe, tmp_video, builds):
    pipe.ask(tmp_video, "What moves?", search=search, **ASKED)
    _each_member_once(builds)
    assert builds["budget"] == 2, builds  # the pipeline's defaults and the question's budget parts, once each


def test_a_question_budget_replaces_the_defaults_frame_cap(checkpoint):
    """A pipeline whose default budget caps the frames (``max_frames``) and a question with a budget
    that does not: the question runs uncapped, as its resume key (`options_key`) says. The cap the
    defaults derived is not carried over as if ``frames`` had been given."""
    from vidsift.pipeline import Pipeline
    from vidsift.types import Budget

    pipe = Pipeline.from_pretrained(checkpoint, device="cpu", budget=Budget(fraction=0.5, max_frames=8))
    assert pipe.resolve().settings.options.frames == 8  # the defaults' own cap
    for question in (dict(budget=Budget(fraction=0.5)), dict(preset="fast")):
        settings = pipe.resolve(**question).settings
        assert settings.options.frames == resolve(pipe.defaults, AskOptions.from_kwargs(**question)).options.frames
        assert settings.options.frames is None, question
    assert pipe.resolve(budget=Budget(fraction=0.5), frames=4).settings.options.frames == 4  # given frames stay


def test_vidsift_ask_builds_each_member_once_check_included(tmp_video, builds, capsys):
    from vidsift.cli.app import run

    flags = [f for k, v in ASKED.items() for f in (FLAGS[k], str(v))]
    assert run(["ask", tmp_video, "What moves?", "--model", "random:tiny-qwen2.5-vl", "--device", "cpu", "--search", "on",
                *flags]) == 0, capsys.readouterr().err
    _each_member_once(builds)


def test_made_directly_a_bad_value_is_a_config_error_naming_the_field():
    with pytest.raises(ConfigError, match=r"^fps=0: must be > 0$"):
        AskOptions(fps=0)
    with pytest.raises(ConfigError, match=r"^search='sometimes': choose from"):
        AskOptions(search="sometimes")


def test_keywords_an_ask_options_and_an_ask_run_plan_alike(pipe, tmp_video):
    """``pipe.plan(v, q, fps=2, ...)``, ``pipe.plan(v, q, AskOptions(...))`` and the `AskRun`
    `check_ask` returns are one plan; keywords beside an `AskOptions` are refused, not merged."""
    from vidsift.pipeline.check import check_ask

    given = dict(fps=2.0, frames=3, selector="uniform", budget="50%", search="off")
    plans = [pipe.plan(tmp_video, "What moves?", **given), pipe.plan(tmp_video, "What moves?", AskOptions(**given)),
             pipe.plan(tmp_video, "What moves?", check_ask(tmp_video, "What moves?", ask_options=AskOptions(**given)))]
    assert len({json.dumps(p.to_dict()["frames"]) for p in plans}) == 1 and len(plans[0].frames) == 3
    assert {p.settings["selector"] for p in plans} == {"uniform"}
    with pytest.raises(ConfigError, match="fps: give these in ask_options"):
        pipe.plan(tmp_video, "What moves?", AskOptions(**given), fps=3.0)


def test_allocation_choices_match_the_planner():
    """The options table's allocation choices are the planner's (a choice added to one only would be
    refused by the other, or accepted and not planned)."""
    from vidsift.pipeline.options import ALLOCATIONS
    from vidsift.selectors.planner import ALLOCATIONS as PLANNED

    assert ALLOCATIONS == PLANNED

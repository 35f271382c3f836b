"""Lazy registries (`vidsift.registry`): members are named ``"module:attr"`` and imported when first
built; a member from outside vidsift joins by name, with no edit to any list."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from vidsift.errors import ConfigError
from vidsift.registry import Registry
from vidsift.types import FrameBatch


def _registries() -> dict[str, Registry]:
    import vidsift.pipeline  # noqa: F401  adds "mllm" to SCORERS
    from vidsift.eval.datasets import DATASETS
    from vidsift.pipeline.adapters import ADAPTERS
    from vidsift.pipeline.archs import ARCHS
    from vidsift.pipeline.press import PRESSES
    from vidsift.pipeline.prune import PRUNERS
    from vidsift.selectors import ALLOCATORS, MERGERS, SCORERS, SELECTORS
    from vidsift.stream.kvcache import CACHES

    return dict(SCORERS=SCORERS, SELECTORS=SELECTORS, MERGERS=MERGERS, ALLOCATORS=ALLOCATORS, PRUNERS=PRUNERS,
                PRESSES=PRESSES, ADAPTERS=ADAPTERS, ARCHS=ARCHS, DATASETS=DATASETS, CACHES=CACHES)


def test_every_registered_name_imports_the_member_it_names():
    for label, registry in _registries().items():
        for name in registry.names():
            member = registry.get(name)
            assert callable(member), (label, name)
            assert getattr(member, "name", name) == name, (label, name)  # members that carry a name agree


def test_listing_and_checking_names_imports_no_member():
    code = ("import sys; from vidsift.pipeline.check import check_names; from vidsift.selectors import SELECTORS; "
            "from vidsift.pipeline.prune import PRUNERS; check_names(selector='kmeans', prune='fastv+pdrop', scorer='mllm'); "
            "print(SELECTORS.names(), PRUNERS.names(), "
            "sorted(m for m in sys.modules if m.startswith(('vidsift.selectors.select_', 'vidsift.pipeline.prune.', "
            "'torch', 'faiss'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("[]"), done.stdout
    assert "'kmeans'" in done.stdout and "'pdrop'" in done.stdout


@pytest.fixture
def selectors(monkeypatch):
    """SELECTORS, restored after the test."""
    from vidsift.selectors import SELECTORS

    monkeypatch.setattr(SELECTORS, "_members", dict(SELECTORS._members))
    return SELECTORS


def test_a_tests_only_selector_joins_by_name_and_imports_when_first_built(selectors):
    from vidsift.pipeline.check import check_names
    from vidsift.selectors import plan_frames

    sys.modules.pop("example_members", None)
    selectors.register("every_other", "example_members:EveryOther")
    check_names(selector="every_other")  # the CLI's early check knows it
    assert "example_members" not in sys.modules  # named, not imported
    frames = FrameBatch(np.zeros((8, 4, 4, 3), np.uint8), np.arange(8.0), np.arange(8))
    plan = plan_frames(frames, budget_tokens=40, tokens_per_frame=10, k=3, selector="every_other", scorer="uniform")
    assert [f.index for f in plan.frames] == [0, 2, 4]
    assert plan.settings["selector"] == "every_other"


def test_a_member_whose_module_fails_to_import_raises_that_error(selectors):
    """No guard turns a broken member into 'not available': the import error surfaces as itself."""
    selectors.register("broken", "example_members_that_do_not_exist:Nope")
    with pytest.raises(ModuleNotFoundError, match="example_members_that_do_not_exist"):
        selectors.build("broken")


def test_registry_names_decorators_and_errors():
    registry = Registry("widget", {"a": "collections:OrderedDict"})

    @registry.register("b")
    class B:
        pass

    assert registry.names() == ["a", "b"] and "a" in registry and "c" not in registry
    assert registry.build("b").__class__ is B
    from collections import OrderedDict

    assert registry.get("a") is OrderedDict
    with pytest.raises(ConfigError, match="c: unknown widget; choose one of: a, b"):
        registry.check("c:x=1")
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("a", "collections:Counter")
    registry.register("a")(OrderedDict)  # the member the table names may decorate itself: no error
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("b")(OrderedDict)
    with pytest.raises(ValueError, match="module:attr"):
        registry.register("d", "collections.Counter")


@pytest.fixture
def prune_and_press(monkeypatch):
    """PRUNERS and PRESSES, restored after the test."""
    from vidsift.pipeline.press import PRESSES
    from vidsift.pipeline.prune import PRUNERS

    monkeypatch.setattr(PRUNERS, "_members", dict(PRUNERS._members))
    monkeypatch.setattr(PRESSES, "_members", dict(PRESSES._members))
    return PRUNERS, PRESSES


def test_a_tests_only_pruner_and_press_that_write_only_score_run_through_ask(prune_and_press, tiny_checkpoint,
                                                                             monkeypatch):
    """`example_members.Loudest` and `KeyNorm` write one ``score`` each; through ``ask(prune=, kv=)`` the
    pruner keeps every text row and exactly the visual rows its score ranks highest, and the press keeps
    exactly the entries its score ranks highest in every layer and head."""
    import math

    import torch
    from models import load_tiny_adapter
    from vidsift.pipeline.check import check_names
    from vidsift.pipeline.attn import gather_entries
    from vidsift.pipeline.pipeline import Pipeline

    pruners, presses = prune_and_press
    sys.modules.pop("example_members", None)
    pruners.register("loudest", "example_members:Loudest")
    presses.register("knorm", "example_members:KeyNorm")
    check_names(prune="loudest", kv="knorm")
    assert "example_members" not in sys.modules  # named, not imported

    pipe = Pipeline(load_tiny_adapter(tiny_checkpoint("tiny-qwen2.5-vl")), name="tiny")
    ad, stage, ratio = pipe.adapter, 2, 0.5
    built = []
    build = ad.build_inputs
    monkeypatch.setattr(ad, "build_inputs", lambda *a, **k: built.append(build(*a, **k)) or built[-1])
    seen: dict = {}

    def layer_input(module, args, kwargs):  # registered before the pruner's hooks: every row
        seen.setdefault("normed", module.input_layernorm(args[0] if args else kwargs["hidden_states"]))

    def attention_input(module, args, kwargs):  # after the stage: the kept rows
        seen.setdefault("kept", args[0] if args else kwargs["hidden_states"])

    def model_output(module, args, kwargs, output):  # before the press compresses: the full prefill cache
        seen.setdefault("full", [lay.keys.clone() for lay in kwargs["past_key_values"].layers])

    def model_input(module, args, kwargs):  # first decode step: the pressed cache
        if "full" in seen:
            seen.setdefault("pressed", [lay.keys.clone() for lay in kwargs["past_key_values"].layers])

    handles = [ad.decoder_layers[stage].register_forward_pre_hook(layer_input, with_kwargs=True),
               ad.decoder_layers[stage].self_attn.register_forward_pre_hook(attention_input, with_kwargs=True),
               ad.model.register_forward_hook(model_output, with_kwargs=True),
               ad.model.register_forward_pre_hook(model_input, with_kwargs=True)]
    frames = FrameBatch(np.random.default_rng(0).integers(0, 255, (4, 112, 112, 3), dtype=np.uint8),
                        np.arange(4) / 2.0, np.arange(4))
    try:
        answer = pipe.ask(frames, "What happens?", prune="loudest:keep=1/1/0.5", kv=f"knorm:ratio={ratio}",
                          max_new_tokens=2)
    finally:
        for h in handles:
            h.remove()

    visual = built[-1].visual_mask[0]
    n_vis = int(visual.sum())
    prune_stats, kv_stats = answer.stats["prune"][0], answer.stats["kv"][0]
    assert [prune_stats["method"], kv_stats["method"]] == ["loudest", "knorm"]
    assert prune_stats["kept_visual_per_stage"] == {stage: round(0.5 * n_vis)}
    score = seen["normed"][0].float().norm(dim=-1).masked_fill(~visual, float("inf"))
    want_rows = score.topk(visual.numel() - n_vis + round(0.5 * n_vis)).indices.sort().values
    got_rows = torch.cdist(seen["kept"][0].float(), seen["normed"][0].float()).argmin(dim=-1)
    assert torch.equal(got_rows, want_rows)

    rows = answer.stats["kv"][0]["prefill_rows_per_layer"]
    for layer, (full, pressed) in enumerate(zip(seen["full"], seen["pressed"])):
        n_keep = math.ceil(ratio * rows[layer])
        want = (-full.norm(dim=-1)).topk(n_keep, dim=-1).indices.sort(dim=-1).values  # (1, Hk, n_keep)
        assert torch.equal(pressed, gather_entries(full, want)), layer


def test_a_tests_only_scorer_and_merger_join_by_name_and_run_through_ask(monkeypatch, tiny_checkpoint):
    """`example_members.Brightness` (a scorer) and `FirstTokens` (a spatial merger), registered by
    name: through ``ask`` the plan takes the brightest frames (brute force over the pixels) and the
    LLM receives exactly each group's first encoded tokens (the tower's own output, read back)."""
    import torch
    from models import load_tiny_adapter
    from vidsift.pipeline.check import check_names
    from vidsift.pipeline.pipeline import Pipeline
    from vidsift.selectors.base import MERGERS, SCORERS

    monkeypatch.setattr(SCORERS, "_members", dict(SCORERS._members))
    monkeypatch.setattr(MERGERS, "_members", dict(MERGERS._members))
    sys.modules.pop("example_members", None)
    SCORERS.register("brightness", "example_members:Brightness")
    MERGERS.register("first_tokens", "example_members:FirstTokens")
    check_names(scorer="brightness", merger="first_tokens")
    assert "example_members" not in sys.modules  # named, not imported

    pipe = Pipeline(load_tiny_adapter(tiny_checkpoint("tiny-qwen2.5-vl")), name="tiny")
    levels = np.array([30, 200, 60, 250, 10, 180, 90, 40, 220, 120])
    noise = np.random.default_rng(0).integers(0, 6, (len(levels), 112, 112, 3))
    frames = FrameBatch((levels[:, None, None, None] + noise).astype(np.uint8), np.arange(len(levels)) / 2.0,
                        np.arange(len(levels)))
    seen = []
    build = pipe.adapter.build_inputs
    monkeypatch.setattr(pipe.adapter, "build_inputs", lambda tokens, q: seen.append(tokens) or build(tokens, q))
    answer = pipe.ask(frames, "What happens?", scorer="brightness", selector="topk", merger="first_tokens",
                      budget="30%", max_new_tokens=1)

    kept = [f.index for f in answer.plan.frames]
    brightest = np.argsort(-frames.data.reshape(len(levels), -1).mean(1))[:len(kept)]
    assert 0 < len(kept) < len(levels) and kept == sorted(brightest.tolist())
    (tokens,) = seen
    full = pipe.adapter.encode(frames[np.asarray(kept)])
    assert tokens.n_tokens < full.n_tokens  # the merger did reduce
    for g, (emb, coords) in enumerate(zip(tokens.embeds, tokens.coords)):
        n = emb.shape[0]
        assert torch.equal(emb, full.embeds[g][:n]) and torch.equal(coords, full.coords[g][:n]), g

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

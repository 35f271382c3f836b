"""Member names of the method registries, known without importing their members (so without torch).

`check_ask` calls `check_names` first: ``--prune foo`` or ``--selector foo`` fails with the same
one line as the registry would give (``foo: unknown prefill pruner; choose one of: ...``) in a
fraction of a second, where building the registries imports torch (seconds from a cold shell).
The names are read from the members' source, the ``@REGISTRY.register("name")`` decorators,
so they cannot drift from the registries (a test compares them); options and values are still
checked by building the members afterwards.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..registry import parse_spec

_ROOT = Path(__file__).resolve().parent.parent  # the vidsift package
# registry variable -> (what it is called in messages, the folders its members live in)
REGISTRIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "SCORERS": ("scorer", ("selectors", "pipeline/scorers")),
    "SELECTORS": ("selector", ("selectors",)),
    "MERGERS": ("merger", ("selectors",)),
    "ALLOCATORS": ("allocator", ("selectors",)),
    "PRUNERS": ("prefill pruner", ("pipeline/prune",)),
    "PRESSES": ("cache press", ("pipeline/press",)),
}


@functools.lru_cache(maxsize=None)
def member_names(registry: str) -> frozenset[str]:
    """Names registered with ``@<registry>.register("name")`` in the registry's member folders."""
    names: set[str] = set()
    for folder in REGISTRIES[registry][1]:
        for path in sorted((_ROOT / folder).glob("*.py")):
            source = path.read_text(encoding="utf-8")
            if f"{registry}.register" not in source:
                continue
            for node in ast.walk(ast.parse(source)):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "register"
                        and isinstance(node.func.value, ast.Name) and node.func.value.id == registry
                        and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                    names.add(node.args[0].value)
    return frozenset(names)


def _check(registry: str, spec: str) -> None:
    name, _ = parse_spec(spec)
    known = member_names(registry)
    if known and name not in known:  # nothing found (an unusual install): leave it to the registry
        raise ConfigError(name, f"unknown {REGISTRIES[registry][0]}; choose one of: {', '.join(sorted(known))}")


def check_names(*, scorer: Any = None, selector: Any = None, allocator: Any = None, merger: Any = None,
                temporal: Any = None, prune: Any = None, kv: Any = None) -> None:
    """Raise the registry's `ConfigError` for an unknown method name or a malformed spec, without
    importing any member. Built members (not strings) pass; options are not checked here."""
    for registry, spec in (("SELECTORS", selector), ("ALLOCATORS", allocator), ("MERGERS", merger), ("MERGERS", temporal)):
        if isinstance(spec, str):
            _check(registry, spec)
    if isinstance(scorer, str):
        _check("SCORERS", scorer.partition(":")[0] or scorer)
    for registry, spec in (("PRUNERS", prune), ("PRESSES", kv)):
        if isinstance(spec, str) and spec:
            parts = spec.split("+")
            if any(not part.strip() for part in parts):
                raise ConfigError(spec, "empty method in a '+' list; join methods as a+b")
            for part in parts:
                _check(registry, part)

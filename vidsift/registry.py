"""Name -> class registries for every extension point, and the ``name:key=value`` spec parser.

Members are named where the registry is declared, as ``"module:attr"`` strings, and imported
only when first built, so listing or checking names imports nothing::

    SELECTORS = Registry("selector", {"mmr": "vidsift.selectors.select_mmr:MMR"})
    SELECTORS.build("mmr:weight=0.7")   # imports select_mmr -> MMR(weight=0.7)

Anything else (a plugin, a test) adds a member by name with no edit to a list:
``SELECTORS.register("mine", "mypkg.mod:Mine")``, or ``@SELECTORS.register("mine")`` on the class.
A member whose module fails to import raises that error as itself when built.

Specs: ``name`` or ``name:key=value,key=value``; several joined with ``+`` form a list
(``snapkv:ratio=0.25+quantize:bits=8``). Values are parsed as int, float, bool, None,
``a/b/c`` lists of numbers, or kept as strings; the dataclass validates them.
"""

from __future__ import annotations

import dataclasses
from importlib import import_module
from typing import Any, Callable, Generic, Mapping, TypeVar

from .errors import ConfigError

T = TypeVar("T")


def _parse_value(text: str) -> Any:
    low = text.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    if "/" in text:  # a/b/c lists of numbers; anything else (a path) stays a string
        parts = tuple(_parse_value(part) for part in text.split("/"))
        if all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in parts):
            return parts
        return text
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"fastv:k=2,keep=0.5"`` -> ``("fastv", {"k": 2, "keep": 0.5})``."""
    name, _, rest = spec.strip().partition(":")
    if not name:
        raise ConfigError(spec, "empty method name")
    kwargs: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(spec, f"expected key=value, got {item!r}")
        kwargs[key.strip()] = _parse_value(value.strip())
    return name.strip(), kwargs


class Registry(Generic[T]):
    """A named family of interchangeable members (scorers, selectors, pruners, ...)."""

    def __init__(self, kind: str, members: Mapping[str, str] | None = None) -> None:
        self.kind = kind
        self._members: dict[str, Callable[..., T] | str] = {}  # a factory, or "module:attr" until first use
        for name, target in (members or {}).items():
            self.register(name, target)

    def register(self, name: str, target: str | None = None) -> Any:
        """Add member ``name``: ``target`` is ``"module:attr"``, imported on first use; without a
        target this is a decorator for the factory (a class or a function)."""
        def add(factory: Callable[..., T] | str) -> Any:
            known = self._members.get(name, factory)
            named = f"{getattr(factory, '__module__', '')}:{getattr(factory, '__qualname__', '')}"
            if known is not factory and known != named:  # a member may decorate itself as its table names it
                raise ValueError(f"{self.kind} {name!r} registered twice")
            if isinstance(factory, str) and not all(factory.partition(":")[::2]):
                raise ValueError(f"{self.kind} {name!r}: target must be 'module:attr', got {factory!r}")
            self._members[name] = factory
            return factory

        return add if target is None else add(target)

    def names(self) -> list[str]:
        return sorted(self._members)

    def __contains__(self, name: object) -> bool:
        return name in self._members

    def check(self, spec: str) -> str:
        """The member name of ``spec``; `ConfigError` (the one `get` raises) when none is registered.
        Imports nothing."""
        name, _ = parse_spec(spec)
        if name not in self._members:
            raise ConfigError(name, f"unknown {self.kind}; choose one of: {', '.join(self.names())}")
        return name

    def get(self, name: str) -> Callable[..., T]:
        self.check(name)
        factory = self._members[name]
        if isinstance(factory, str):
            module, _, attr = factory.partition(":")
            factory = self._members[name] = getattr(import_module(module), attr)
        return factory

    def build(self, spec: str | T, **defaults: Any) -> T:
        """Build a member from a spec string; an already built member passes through."""
        if not isinstance(spec, str):
            return spec
        name, kwargs = parse_spec(spec)
        factory = self.get(name)
        fields = [f.name for f in dataclasses.fields(factory) if f.init] if dataclasses.is_dataclass(factory) else []
        unknown = sorted(set(kwargs) - set(fields)) if fields else []
        if unknown:
            raise ConfigError(spec, f"unknown option {', '.join(unknown)} for {self.kind} {name}; options: {', '.join(fields)}")
        try:
            return factory(**{**defaults, **kwargs})
        except ConfigError:
            raise
        except TypeError as err:
            hint = f" (options: {', '.join(fields)})" if fields else ""
            raise ConfigError(spec, f"{err}{hint}") from None
        except ValueError as err:
            raise ConfigError(spec, str(err)) from None

    def build_many(self, spec: str, **defaults: Any) -> list[T]:
        """``"a:x=1+b"`` -> ``[A(x=1), B()]``; an empty part (``"a+"``) is an error."""
        parts = spec.split("+")
        if any(not part.strip() for part in parts):
            raise ConfigError(spec, "empty method in a '+' list; join methods as a+b")
        return [self.build(part, **defaults) for part in parts]

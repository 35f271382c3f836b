"""Name -> class registries for every extension point, and the ``name:key=value`` spec parser.

Members register with a decorator so the CLI and configs can pick them by name::

    SELECTORS = Registry("selector")

    @SELECTORS.register("kcenter")
    @dataclass
    class KCenter: ...

    SELECTORS.build("kcenter:metric=cosine")   # -> KCenter(metric="cosine")

Specs: ``name`` or ``name:key=value,key=value``; several joined with ``+`` form a list
(``snapkv:ratio=0.25+quantize:bits=8``). Values are parsed as int, float, bool, None,
``a/b/c`` lists of numbers, or kept as strings; the dataclass validates them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Generic, TypeVar

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

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._members: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._members:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._members[name] = factory
            return factory

        return decorator

    def names(self) -> list[str]:
        return sorted(self._members)

    def get(self, name: str) -> Callable[..., T]:
        try:
            return self._members[name]
        except KeyError:
            raise ConfigError(
                name, f"unknown {self.kind}; choose one of: {', '.join(self.names())}"
            ) from None

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

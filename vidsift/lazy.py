"""Package attributes imported on first use, so importing a package stays cheap (no torch, FAISS
or decoder until a name that needs one is used)::

    _LAZY = {"Pipeline": ".pipeline", "Budget": "..types"}   # name -> module, relative to the package
    __getattr__ = lazy_attributes(__name__, _LAZY)
    __all__ = sorted(_LAZY)
"""

from __future__ import annotations

from importlib import import_module
from typing import Any, Callable, Mapping


def lazy_attributes(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for ``package`` that imports ``names[name]`` when ``name`` is used."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(names[name], package), name)

    return __getattr__

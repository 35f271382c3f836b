"""The live-source contract (`LiveSource`), the frame it yields (`LiveFrame`), and the registry of
source kinds as configs (`SourceConfig`, `SOURCES`).

A source is opened, read frame by frame and closed; it is a context manager. ``read()`` never
blocks forever: network sources carry PyAV open/read timeouts, files and lavfi graphs end.
``live`` says whether frames arrive at the source's own pace (a camera, a network stream, a
paced file) - then the capture thread keeps only the latest frame - or as fast as they are
consumed (a file or lavfi graph read at full speed: every frame is delivered, for tests and
accelerated soaks). ``reconnectable`` sources are reopened with backoff when they drop.
Pattern: huggingface/lerobot cameras (connect/read/disconnect ABC, configs registered by name).

A kind of source is a `SourceConfig` registered in `SOURCES`: it says which ``--source`` texts are
its own (``matches``) and builds the source (``make``, which imports the source's class only
then). `open_source` asks each registered config, highest ``priority`` first; a new kind is one
file (its `LiveSource` and its config) and one registration, no edit to a list::

    @SOURCES.register("probe")
    class ProbeConfig(SourceConfig):
        kind, usage, source = "probe", "probe:<seed>", "mypkg.probe_source:ProbeSource"
        def matches(self, spec): return spec.startswith("probe:")
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from importlib import import_module
from typing import Any, ClassVar

import numpy as np

from ...errors import ConfigError, SourceError
from ...registry import Registry


@dataclass
class LiveFrame:
    """One decoded frame: ``rgb`` uint8 (H, W, 3) in display orientation, the source's own
    ``pts_seconds`` (resets when a stream reconnects) and the monotonic clock at arrival."""

    rgb: np.ndarray
    pts_seconds: float
    wall_s: float

    def __post_init__(self) -> None:
        if self.rgb.dtype != np.uint8 or self.rgb.ndim != 3 or self.rgb.shape[-1] != 3:
            raise ValueError(f"LiveFrame.rgb must be uint8 (H,W,3), got {self.rgb.dtype} {self.rgb.shape}")


class LiveSource(ABC):
    """A webcam, network stream, file or test pattern delivering frames one at a time."""

    kind: ClassVar[str]
    reconnectable: ClassVar[bool] = False

    @property
    @abstractmethod
    def name(self) -> str:
        """What the user typed (a device, URL or path): the subject of every error."""

    @property
    def live(self) -> bool:
        """True when frames come at the source's pace (keep only the latest)."""
        return True

    @abstractmethod
    def open(self) -> None:
        """Connect; raises `SourceError` (one line) when the source cannot be opened."""

    @abstractmethod
    def read(self) -> LiveFrame | None:
        """Next frame, ``None`` at the end of the stream; raises `SourceError` on a failure
        (timeout, dropped connection). Never blocks longer than the source's read timeout."""

    @abstractmethod
    def close(self) -> None:
        """Release the device or connection; safe to call twice."""

    def length_s(self) -> float | None:
        """The stream's length in seconds when the source knows it (a file, once open), else None."""
        return None

    def take_warnings(self) -> list[str]:
        """Warnings since the last call, one line each (``<source>: <what happened>``): decode
        errors skipped, a file that ended early. The capture thread turns them into events."""
        return []

    def report(self) -> dict | None:
        """After the end of a finite source: ``{"frames_expected", "frames_decoded", "missing",
        "reason"}`` (the decode report of ``vidsift info --json``); None when unknown."""
        return None

    def __enter__(self) -> "LiveSource":
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class SourceConfig(ABC):
    """A kind of live source: which texts name one (`matches`) and how to build one (`make`).

    kind:     its name (the `SOURCES` key, `source_kind`'s answer).
    usage:    how a user names one, for the error on a text no kind takes ("lavfi:<graph>").
    source:   its `LiveSource` class, or ``"module:Class"`` imported on the first `make`.
    paced:    whether it takes ``realtime`` (a file or a graph that can be read at full speed).
    priority: configs are asked highest first (ties: by name); the file fallback is -1.
    """

    kind: ClassVar[str]
    usage: ClassVar[str]
    source: ClassVar[type[LiveSource] | str]
    paced: ClassVar[bool] = False
    priority: ClassVar[int] = 0

    @abstractmethod
    def matches(self, spec: str) -> bool:
        """Whether ``spec`` (stripped, non-empty) names a source of this kind."""

    def target(self, spec: str) -> str:
        """What the source opens for ``spec`` (its ``target`` and ``label``)."""
        return spec

    def make(self, spec: str, *, realtime: bool | None = None, **options: Any) -> LiveSource:
        """Build (not open) the source ``spec`` names; ``options`` go to its dataclass (timeouts,
        ``max_side``, ...), ``realtime`` only to a paced kind."""
        if self.paced and realtime is not None:
            options["realtime"] = realtime
        cls = self.source
        if isinstance(cls, str):
            module, _, attr = cls.partition(":")
            cls = getattr(import_module(module), attr)
        target = self.target(spec)
        try:
            return cls(target=target, label=target, **options)
        except TypeError as err:
            raise ConfigError(spec, f"bad option for a {self.kind} source: {err}") from None


SOURCES: Registry[SourceConfig] = Registry("source kind", {
    "webcam": "vidsift.stream.sources.webcam:WebcamConfig",
    "url": "vidsift.stream.sources.url:UrlConfig",
    "lavfi": "vidsift.stream.sources.lavfi:LavfiConfig",
    "file": "vidsift.stream.sources.file:FileConfig",
})


def source_configs() -> list[SourceConfig]:
    """Every registered kind's config, in the order `find_source` asks them."""
    configs = [SOURCES.get(name)() for name in SOURCES.names()]
    return sorted(configs, key=lambda c: (-c.priority, c.kind))


def find_source(spec: str) -> SourceConfig:
    """The config of the kind ``spec`` names; `SourceError` listing what each kind takes otherwise."""
    configs = source_configs()
    for config in configs:
        if config.matches(spec):
            return config
    usages = [c.usage for c in configs]
    raise SourceError(spec, "unsupported source; use " + ", ".join(usages[:-1]) + " or " + usages[-1])

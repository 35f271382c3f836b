"""Live sources are registered configs (issue 26, item 6; lerobot's cameras): a kind says which
``--source`` texts are its own (``matches``) and builds its source lazily (``make``). A kind
defined in this file joins by one registration, with no edit to any list in vidsift/, and streams
through a real `StreamSession` on a tiny random Qwen2.5-VL."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np
import pytest

from vidsift.errors import SourceError
from vidsift.stream import StreamOptions, StreamSession
from vidsift.stream.sources import SOURCES, LiveFrame, LiveSource, SourceConfig, open_source, source_kind

pytestmark = pytest.mark.timeout(180)

COLOURS = [(220, 30, 30), (30, 200, 40), (40, 60, 230), (230, 220, 30)]


@dataclass(kw_only=True)
class PatternSource(LiveSource):
    """``pattern:N``: N frames of 64x64 solid colours (one colour per second at 2 fps), read at full speed."""

    kind = "pattern"
    target: str
    label: str = ""
    max_side: int | None = None
    open_timeout_s: float = 5.0
    read_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        self.total = int(self.target.removeprefix("pattern:"))
        self.sent = -1  # -1: not open

    @property
    def name(self) -> str:
        return self.label or self.target

    @property
    def live(self) -> bool:
        return False  # every frame, as fast as the session takes them

    def open(self) -> None:
        self.sent = 0

    def read(self) -> LiveFrame | None:
        if self.sent < 0:
            raise SourceError(self.name, "not open")
        if self.sent >= self.total:
            return None
        rgb = np.empty((64, 64, 3), np.uint8)
        rgb[:] = COLOURS[(self.sent // 2) % len(COLOURS)]
        frame = LiveFrame(rgb, self.sent / 2.0, time.monotonic())
        self.sent += 1
        return frame

    def close(self) -> None:
        self.sent = -1

    def length_s(self) -> float | None:
        return self.total / 2.0


@SOURCES.register("pattern")  # the one registration; make() imports PatternSource by name, on first use
class PatternConfig(SourceConfig):
    kind, usage, source = "pattern", "pattern:<frames>", f"{__name__}:PatternSource"

    def matches(self, spec: str) -> bool:
        return spec.startswith("pattern:") and spec.removeprefix("pattern:").isdigit()


@pytest.fixture(scope="module")
def adapter(tiny_checkpoint):
    from vidsift.pipeline.loader import load_adapter

    return load_adapter(tiny_checkpoint("tiny-qwen2.5-vl"), device="cpu")


def test_a_registered_kind_is_found_by_what_the_user_types():
    assert source_kind("pattern:8") == "pattern" and source_kind("clip.mp4") == "file"
    assert source_kind("lavfi:testsrc2") == "lavfi" and source_kind("0") == "webcam"
    source = open_source("pattern:8", max_side=64)
    assert type(source).__name__ == "PatternSource" and sys.modules[__name__].PatternSource is type(source)
    assert source.name == "pattern:8" and source.total == 8
    with pytest.raises(SourceError, match=r"^ftp://x: unsupported source; use .*pattern:<frames>.*a file path$"):
        open_source("ftp://x")  # the error lists what every registered kind takes, this one too


def test_a_tests_only_source_streams_through_a_real_session(adapter):
    with StreamSession(adapter, "pattern:12", StreamOptions(budget="50%", fps=2.0, max_new_tokens=2)) as session:
        assert session.wait(60)
        answer = session.ask("what colour is the screen?")
        events = list(session.events(timeout_s=1))
    stats = session.stats()
    assert session.error is None and type(session.source).__name__ == "PatternSource"
    assert stats["frames_seen"] == stats["frames_kept"] == 12 and stats["groups"] == 6  # Qwen: frame pairs
    # a share of this stream's own length (6 s, its length_s): the memory holds half its tokens
    full = 12 * adapter.tokens_per_frame(64, 64)
    assert session.memory.budget == round(0.5 * full) and 0 < session.memory.n_tokens <= session.memory.budget
    assert [round(e.t_s, 1) for e in session.memory.entries] == sorted(round(e.t_s, 1) for e in session.memory.entries)
    assert answer.mode == "incremental" and answer.memory_tokens > 0 and answer.t == pytest.approx(5.5)
    assert events[-1]["event"] == "answer" and any(e["event"] == "ended" for e in events)

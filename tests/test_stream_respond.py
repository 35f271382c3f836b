"""``respond="auto"`` (LION-FS-style): a fast relevance trigger at every ingested group decides when
to answer the standing query; answers fire only above the threshold, at most once per cooldown,
and carry why they fired."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from vidsift.errors import ConfigError
from vidsift.stream import StreamOptions, StreamSession

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from vidsift.pipeline.archs import build_checkpoint

    return build_checkpoint("tiny-qwen2.5-vl", tmp_path_factory.mktemp("qwen25"))


@pytest.fixture(scope="module")
def adapter(checkpoint):
    from vidsift.pipeline.loader import load_adapter

    return load_adapter(checkpoint, device="cpu")


SRC = "lavfi:testsrc2=size=64x64:rate=1"


def run(adapter, relevant: set[int] | None, **options) -> tuple[StreamSession, list[dict], list[list[float]]]:
    """A 20 s stream at 1 fps (Qwen2.5-VL: one group per 2 frames); ``relevant``: the whole-second
    frame times whose relevance is 0.9 (others 0.1), or None for the real scorer."""
    scored: list[list[float]] = []
    session = StreamSession(adapter, SRC, StreamOptions(
        budget=256, fps=1.0, realtime=False, duration_s=20, max_new_tokens=2, query="Is there a red ball?",
        respond="auto", **options))
    if relevant is not None:
        def fake(frames):
            times = [round(float(t)) for t in frames.pts_seconds]
            scored.append(times)
            return max(0.9 if t in relevant else 0.1 for t in times)

        session.trigger.score = fake  # the trigger part's fast path
    with session:
        events = list(session.events(timeout_s=120))
    assert session.error is None
    return session, [e for e in events if e["event"] == "answer"], scored


def test_fires_only_on_relevant_frames_with_cooldown_and_says_why(adapter):
    session, answers, scored = run(adapter, {6, 7, 8, 9, 15}, trigger=0.5, cooldown_s=3.0)
    assert len(scored) == 10  # the fast path ran at every ingested group
    # groups (6,7) fire at 7; (8,9) at 9 is inside the 3 s cooldown; (14,15) fires at 15
    assert [a["trigger"]["frame_t"] for a in answers] == [7.0, 15.0]
    for a in answers:
        assert a["question"] == "Is there a red ball?" and a["trigger"]["kind"] == "relevance"
        assert a["trigger"]["score"] == pytest.approx(0.9) and a["trigger"]["threshold"] == 0.5
        assert abs(a["t"] - a["trigger"]["frame_t"]) <= 2.0  # answered within 2 s of stream time
        assert a["memory_tokens"] > 0
    _, answers, _ = run(adapter, {6, 7, 8, 9, 15}, trigger=0.5, cooldown_s=0.0)
    assert [a["trigger"]["frame_t"] for a in answers] == [7.0, 9.0, 15.0]
    _, answers, _ = run(adapter, set(), trigger=0.5, cooldown_s=0.0)
    assert answers == []  # silent when nothing is relevant


def test_real_fast_path_is_the_models_yes_probability(adapter):
    """With the model's own scorer: threshold 0 fires at every group (cooldown 0), threshold 1 never."""
    _, always, _ = run(adapter, None, trigger=0.0, cooldown_s=0.0)
    assert len(always) == 10 and all(0.0 <= a["trigger"]["score"] <= 1.0 for a in always)
    frames_scores = [a["trigger"]["score"] for a in always]
    assert np.ptp(frames_scores) > 0  # a real per-frame score, not a constant
    _, never, _ = run(adapter, None, trigger=1.0, cooldown_s=0.0)
    assert never == []


def test_bad_options_are_config_errors(adapter):
    with pytest.raises(ConfigError, match="auto needs a --query"):
        StreamSession(adapter, SRC, StreamOptions(respond="auto"))
    with pytest.raises(ConfigError, match="auto needs a --query"):
        StreamSession(adapter, SRC, StreamOptions(respond="auto", query="q", every_s=5))
    with pytest.raises(ConfigError, match="respond"):
        StreamSession(adapter, SRC, StreamOptions(respond="sometimes", query="q"))
    with pytest.raises(ConfigError, match="trigger"):
        StreamSession(adapter, SRC, StreamOptions(respond="auto", query="q", trigger=1.5))


def test_cli_respond_auto_prints_triggered_answers_as_json(checkpoint):
    cmd = [sys.executable, "-m", "vidsift", "stream", "--source", "lavfi:testsrc2=size=64x64:rate=1", "--model",
           str(checkpoint), "--query", "anything?", "--respond", "auto", "--trigger", "0", "--cooldown", "6",
           "--duration", "12", "--no-realtime", "--json", "--max-new-tokens", "2", "--no-status"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    answers = [r for r in rows if r["event"] == "answer"]
    assert [a["trigger"]["frame_t"] for a in answers] == [1.0, 7.0]  # groups end at 1, 3, ..., 11; cooldown 6
    bad = subprocess.run([*cmd[:8], "--respond", "auto"], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "--respond auto" in bad.stderr

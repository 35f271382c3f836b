"""End-to-end streaming sessions on a tiny random Qwen2.5-VL (real checkpoint folder, real
PyAV sources): answers while a paced lavfi source and a UDP MPEG-TS sender run, stall and
reconnect handling, and an accelerated 30-minute soak (bounded memory, flat RSS and latency)."""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import threading
import time

import psutil
import pytest

from vidsift.errors import ConfigError, SourceError
from vidsift.stream import StreamOptions, StreamSession, sender

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    from vidsift.pipeline.archs import build_checkpoint
    from vidsift.pipeline.loader import load_adapter

    path = build_checkpoint("tiny-qwen2.5-vl", tmp_path_factory.mktemp("qwen25"))
    return load_adapter(path, device="cpu")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_paced_lavfi_answers_arrive_while_streaming(adapter):
    session = StreamSession(adapter, "lavfi:testsrc2=size=160x120:rate=20", StreamOptions(
        budget=96, fps=4, query="what moves?", every_s=0.5, duration_s=3.0, max_new_tokens=3))
    arrivals = []
    with session:
        time.sleep(1.2)
        mid = session.ask("what is on screen?")
        for event in session.events(timeout_s=20):
            arrivals.append((time.monotonic(), event))
        ended_at = time.monotonic()
    answers = [e for _, e in arrivals if e["event"] == "answer"]
    assert mid.t > 0.5 and mid.memory_tokens > 0 and mid.mode == "incremental"
    assert len(answers) >= 4 and all(a["memory_tokens"] <= 96 for a in answers)
    assert set(answers[0]) >= {"t", "question", "answer", "memory_tokens", "latency_s"}
    standing = [a for a in answers if a["question"] == "what moves?"]
    assert len(standing) >= 3 and standing[0]["t"] >= 0.45  # on schedule, in stream time
    # one answer per schedule slot: each sees newer frames, never more than duration / every_s + 1
    # (the gap between their frame times depends on how fast this machine ingests, so it is not checked)
    assert all(b["t"] > a["t"] for a, b in zip(standing, standing[1:]))
    assert len(standing) <= 3.0 / 0.5 + 1
    assert arrivals[-1][1]["event"] == "ended"
    first_answer_wall = next(w for w, e in arrivals if e["event"] == "answer")
    assert ended_at - first_answer_wall > 1.0  # answers came while the stream was still running
    stats = session.stats()
    assert stats["frames_seen"] > stats["frames_kept"] >= 10 and stats["cache_tokens"] == \
        session.cache.head_len + stats["memory_tokens"]


def test_udp_sender_stall_and_restart_keep_memory(adapter):
    port = free_udp_port()
    url = f"udp://127.0.0.1:{port}"
    base = [sys.executable, sender.__file__, url, "--fps", "15", "--size", "112x84"]
    first = subprocess.Popen(base + ["--seconds", "4", "--pause-at", "1.5", "--pause-for", "1.5"])
    second = None
    try:
        session = StreamSession(adapter, url, StreamOptions(
            budget=200, fps=2, query="anything?", every_s=1.0, max_new_tokens=2, stall_s=0.8, open_timeout_s=15,
            read_timeout_s=2.5))
        with session:
            events = []
            deadline = time.monotonic() + 60
            restarted = False
            for event in session.events(timeout_s=15):  # never wait forever for an event
                events.append(event)
                kinds = [e["event"] for e in events]
                if not restarted and "disconnected" in kinds:
                    entries_before = [e.entry_id for e in session.memory.entries]
                    # long enough for 5 answers: the standing question before the first frame now
                    # says "no frames yet" instead of answering, so fewer answers come early
                    second = subprocess.Popen(base + ["--seconds", "8"])
                    restarted = True
                if "reconnected" in kinds and kinds[-1] == "answer" and kinds.count("answer") >= 5:
                    break
                assert time.monotonic() < deadline, kinds
            entries_after = [e.entry_id for e in session.memory.entries]
            stats = session.stats()
    finally:
        for proc in (first, second):
            if proc is not None:
                proc.kill()
    kinds = [e["event"] for e in events]
    assert kinds.index("stalled") < kinds.index("resumed") < kinds.index("disconnected") < kinds.index("reconnected")
    assert entries_before and set(entries_before) <= set(entries_after)  # memory survives the reconnect
    assert max(entries_after) > max(entries_before)  # and keeps growing afterwards
    assert stats["reconnects"] >= 1 and stats["stalls"] >= 1
    after = [e for e in events[kinds.index("reconnected"):] if e["event"] == "answer"]
    assert after and after[-1]["memory_tokens"] > 0


def test_missing_source_fails_at_start_in_one_line(adapter):
    start = time.monotonic()
    session = StreamSession(adapter, "/dev/video9", StreamOptions(budget=64))
    with pytest.raises(SourceError, match=r"^/dev/video9: no such camera device"):
        session.start()
    with pytest.raises(ConfigError, match="^every: "):
        StreamSession(adapter, "lavfi:testsrc2", StreamOptions(every_s=1.0))
    assert time.monotonic() - start < 2


def test_reprefill_fallback_answers(adapter):
    with StreamSession(adapter, "lavfi:testsrc2=size=112x84:rate=4", StreamOptions(
        realtime=False, budget=40, fps=2, duration_s=4, incremental=False, max_new_tokens=3)) as session:
        assert session.wait(30)
        answer = session.ask("what?")
    assert answer.mode == "reprefill" and 0 < answer.memory_tokens <= 40 and session.cache is None


def test_soak_30_minutes_accelerated_bounded_memory_flat_rss_and_latency(adapter):
    budget = 48
    session = StreamSession(adapter, "lavfi:testsrc2=size=56x56:rate=1/8", StreamOptions(
        realtime=False, budget=budget, fps=0.125, query="status?", every_s=60, duration_s=30 * 60 + 1,
        max_new_tokens=2, dedup=0.98))
    proc = psutil.Process()
    rows, peak = [], [0]

    def sample() -> None:  # between answers too: the memory never holds more than the budget
        while session.running:
            peak[0] = max(peak[0], session.memory.n_tokens)
            time.sleep(0.002)

    with session:
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        for event in session.events(timeout_s=60):
            if event["event"] == "answer":
                rows.append((event["t"], event["memory_tokens"], event["latency_s"], proc.memory_info().rss))
        sampler.join(5)
    assert session.error is None and rows[-1][0] >= 30 * 60
    assert all(tokens <= budget for _, tokens, _, _ in rows) and 0 < peak[0] <= budget
    assert session.stats()["tokens_evicted"] > 0 and session.cache.length == session.cache.head_len + session.memory.n_tokens
    rss = {int(t // 60): r for t, _, _, r in rows}
    assert rss[30] - rss[10] < 30 * 2**20  # flat: no growth with stream length
    early = statistics.median(lat for t, _, lat, _ in rows if t <= 5 * 60)
    late = statistics.median(lat for t, _, lat, _ in rows if t >= 25 * 60)
    assert late < 3 * early + 0.05


def test_pipeline_stream_uses_the_pipeline_budget(adapter):
    from vidsift.pipeline.pipeline import Pipeline
    from vidsift.stream import open_session

    pipe = Pipeline(adapter, budget=32)
    with open_session(pipe, "lavfi:testsrc2=size=112x84:rate=2", realtime=False, fps=1, duration_s=6) as session:
        assert session.wait(30)
        answer = session.ask("what?")
    assert session.memory.budget == 32 and 0 < answer.memory_tokens <= 32


@pytest.mark.parametrize("arch", ["tiny-smolvlm2", "tiny-qwen3-vl"])
def test_families_without_incremental_cache_stream_by_reprefill(arch, tmp_path_factory):
    """SmolVLM2 (per-frame text) and Qwen3-VL (DeepStack features kept with every token) answer
    through the adapter's own layout, re-prefilling the bounded memory per question."""
    from vidsift.pipeline.archs import build_checkpoint
    from vidsift.pipeline.loader import load_adapter

    other = load_adapter(build_checkpoint(arch, tmp_path_factory.mktemp(arch)), device="cpu")
    with StreamSession(other, "lavfi:testsrc2=size=112x112:rate=1", StreamOptions(
        realtime=False, budget=40, fps=1, query="what?", every_s=4, duration_s=9, max_new_tokens=2)) as session:
        events = list(session.events(timeout_s=60))
    answers = [e for e in events if e["event"] == "answer"]
    assert session.mode == "reprefill" and session.error is None
    assert len(answers) == 2 and all(0 < a["memory_tokens"] <= 40 for a in answers)


class _SilentCamera:
    """A live source that opens but delivers no frame (read blocks until closed)."""

    kind = "silent"
    live = True

    def __init__(self) -> None:
        from vidsift.stream.sources import LiveSource

        LiveSource.register(type(self))
        self.closed = threading.Event()

    def name(self) -> str:
        return "silent-camera"

    def open(self) -> None:
        self.closed.clear()

    def read(self):
        self.closed.wait(10)  # no frame until the session closes us
        return None

    def close(self) -> None:
        self.closed.set()

    def take_warnings(self) -> list[str]:
        return []

    def report(self):
        return None


def test_ask_right_after_start_waits_for_the_first_frames(adapter):
    """The README's `with open_session(pipe, ...) as s: s.ask(...)` must not answer from an empty memory."""
    with StreamSession(adapter, "lavfi:testsrc2=size=112x84:rate=4", StreamOptions(
        realtime=False, budget=40, fps=2, duration_s=30, max_new_tokens=2)) as session:
        answer = session.ask("what?")
    assert answer.mode != "no_frames" and answer.memory_tokens > 0


def test_ask_before_any_frame_says_no_frames_yet(adapter):
    with StreamSession(adapter, _SilentCamera(), StreamOptions(
        budget=40, fps=2, reconnect=False, stall_s=60)) as session:
        start = time.monotonic()
        answer = session.ask("what?", wait_s=0.5)
        waited = time.monotonic() - start
        events = list(session.events(timeout_s=0.2))
    assert answer.mode == "no_frames" and answer.text == "no frames yet" and answer.memory_tokens == 0
    assert 0.4 <= waited < 5 and session.stats()["answers"] == 0
    assert any(e["event"] == "no_frames" and e["question"] == "what?" for e in events)


def test_a_shared_model_lock_pauses_ingest_and_answers_until_released(adapter):
    """`model_lock` (a server's lock on the one model): while another user holds it the session
    neither encodes a frame nor answers; once released it catches up and answers."""
    lock = threading.Lock()
    session = StreamSession(adapter, "lavfi:testsrc2=size=160x120:rate=20", StreamOptions(
        budget=96, fps=4, max_new_tokens=2),
                                                                                          model_lock=lock)
    with session:
        with lock:
            time.sleep(1.5)
            assert session.stats()["groups"] == 0 and len(session.memory) == 0
            asked = []
            asker = threading.Thread(target=lambda: asked.append(session.ask("what is shown?", wait_s=20)))
            asker.start()
            asker.join(1.0)
            assert asker.is_alive() and not asked  # waits for the lock, not answered from nothing
        asker.join(30)
    assert asked and asked[0].memory_tokens > 0 and asked[0].mode != "no_frames"

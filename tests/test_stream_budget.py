"""Budgets parse the same way for streams as for ``ask`` (issue 26, item 2): ``vidsift stream
--budget``, ``serve --live-budget``, `StreamSession` and `open_session` take a token count, a share,
a percentage or a preset. A share is of the stream's tokens over its length (a file's duration,
``duration_s``, else the last ten minutes), resolved at the first frame's size; `open_session`
keeps a Pipeline budget given as a share instead of falling back to 1024 tokens."""

from __future__ import annotations

import asyncio
import json
import math
import socket

import pytest

from vidsift.cli.app import run
from vidsift.stream.budget import LIVE_HORIZON_S, memory_tokens

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def adapter(tiny_checkpoint):
    from vidsift.pipeline import load_adapter

    return load_adapter(tiny_checkpoint("tiny-qwen2.5-vl"), device="cpu")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from videos import make_video

    return make_video(tmp_path_factory.mktemp("clip") / "clip.mp4", n_frames=96, fps=12, size=(96, 64))  # 8 s


def _file_tokens(adapter, fps: float = 1.0, seconds: float = 8.0) -> int:
    return math.ceil(math.ceil(seconds * fps) * adapter.tokens_per_frame(64, 96))


@pytest.mark.parametrize("budget, share", [("25%", 0.25), (0.5, 0.5), ("0.5", 0.5), ("balanced", None), ("all", 1.0)])
def test_a_share_is_of_the_file_streams_tokens(budget, share, adapter, clip):
    from vidsift.stream import StreamOptions, StreamSession
    from vidsift.types import PRESET_SHARES

    share = PRESET_SHARES["balanced"] if share is None else share
    with StreamSession(adapter, clip, StreamOptions(
        budget=budget, fps=1.0, realtime=False, max_new_tokens=1)) as session:
        session.wait(60)
        assert session.error is None
        full = _file_tokens(adapter)
        assert session.memory.budget == max(math.ceil(2 * adapter.tokens_per_frame(64, 96)), round(share * full))
        assert session.memory.n_tokens <= session.memory.budget


def test_token_counts_stay_token_counts(adapter, clip):
    from vidsift.stream import StreamOptions, StreamSession

    for budget in (40, "40"):
        session = StreamSession(adapter, clip, StreamOptions(budget=budget, fps=1.0, realtime=False))
        assert session.memory.budget == 40


def test_a_share_of_a_live_stream_is_of_its_last_ten_minutes():
    assert memory_tokens("10%", tokens_per_frame=4.0, fps=2.0) == round(0.1 * LIVE_HORIZON_S * 2 * 4)
    assert memory_tokens("10%", tokens_per_frame=4.0, fps=2.0, length_s=30) == 24  # 10% of 60 frames x 4
    assert memory_tokens("1%", tokens_per_frame=4.0, fps=1.0, length_s=10, group_frames=2) == 8  # one group at least
    assert memory_tokens(512, tokens_per_frame=4.0, fps=1.0) == 512


def test_open_session_keeps_a_pipeline_share(adapter, clip):
    from vidsift import Pipeline
    from vidsift.stream import open_session

    pipe = Pipeline(adapter, budget="25%")
    with open_session(pipe, clip, fps=1.0, realtime=False, max_new_tokens=1) as session:
        session.wait(60)
        assert session.memory.budget == round(0.25 * _file_tokens(adapter)) != 1024
    with open_session(Pipeline(adapter, budget=300), clip, fps=1.0, realtime=False) as session:
        assert session.memory.budget == 300
    with open_session(Pipeline(adapter), clip, fps=1.0, realtime=False) as session:
        assert session.memory.budget == 1024  # unlimited: the session's default


@pytest.mark.parametrize("budget", ["25%", "0.25", "fast"])
def test_stream_cli_takes_shares(budget, tiny_checkpoint, adapter, clip, capsys):
    model = str(tiny_checkpoint("tiny-qwen2.5-vl"))
    code = run(["stream", "--source", clip, "--model", model, "--budget", budget, "--query", "what is shown?",
                "--json", "--no-status", "--no-interactive", "--max-new-tokens", "1", "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0
    answers = [json.loads(line) for line in out.splitlines() if '"event": "answer"' in line]
    assert answers and answers[-1]["memory_tokens"] <= max(0.25 * _file_tokens(adapter), 2 * adapter.tokens_per_frame(64, 96))


@pytest.mark.parametrize("flag, value, line", [
    ("--budget", "1.5", "error: --budget 1.5: a fractional budget is a share in (0, 1]"),
    ("--budget", "25x", "error: --budget 25x: not a budget"),
])
def test_stream_cli_bad_budgets_are_one_line(flag, value, line, capsys):
    assert run(["stream", "--source", "lavfi:testsrc2", "--model", "random:tiny-qwen2.5-vl", flag, value]) == 1
    assert capsys.readouterr().err.strip().startswith(line)


def test_serve_live_budget_parses_as_every_budget(capsys):
    assert run(["serve", "--model", "random:tiny-qwen2.5-vl", "--live-budget", "25x"]) == 1
    assert capsys.readouterr().err.strip().startswith("error: --live-budget 25x: not a budget")
    with socket.socket() as busy:  # a good budget gets past its check: the busy port is what stops it
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert run(["serve", "--model", "random:tiny-qwen2.5-vl", "--live-budget", "25%", "--port", str(port)]) == 1
    assert capsys.readouterr().err.strip() == f"error: 127.0.0.1:{port}: address already in use"


def test_live_page_memory_from_a_share(adapter, tiny_checkpoint):
    pytest.importorskip("starlette")
    websockets = pytest.importorskip("websockets")
    from vidsift import Pipeline
    from vidsift.serve import ServeConfig, ServerThread

    pipe = Pipeline(adapter)
    with ServerThread(pipe, ServeConfig(port=0, live_budget="1%", live_fps=1.0)) as server:
        url = server.url.replace("http://", "ws://") + "/v1/live"

        async def hello(**extra) -> dict:
            async with websockets.connect(url) as ws:
                await ws.send(json.dumps({"type": "hello", **extra}))
                return json.loads(await ws.recv())

        cap = memory_tokens("1%", tokens_per_frame=adapter.tokens_per_frame(448, 448), fps=1.0,
                            group_frames=adapter.frames_per_group)
        ready = asyncio.run(hello())
        assert ready["type"] == "ready" and ready["budget"] == cap
        assert asyncio.run(hello(budget=cap // 2))["budget"] == cap // 2
        refused = asyncio.run(hello(budget=cap + 1))
        assert refused["type"] == "error" and f"at most {cap} tokens" in refused["message"]

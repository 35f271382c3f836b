"""Multiple choice from the CLI, the server and batch manifests (issue 26, item 4): ``vidsift ask
VIDEO QUESTION --options "a,b,c"``, ``options`` in a /v1/ask request (and the chat completions'
``vidsift`` field) and a manifest row's ``options`` send the prompt `vidsift eval` sends, and the
answer carries the chosen option. The shipped probe model on a generated probe clip answers the
README's example, "What shape is on screen now?" with diamond, ring, bar, with the right shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidsift.cli.app import run
from vidsift.eval import EvalItem, MCPrompt
from vidsift.probe import checkpoint_path, generate

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def now_item(tmp_path_factory):
    """The ``now`` question of probe clip 0 (seed 0): options diamond, ring, bar."""
    root = tmp_path_factory.mktemp("probeclip")
    item = next(i for i in generate(root, seed=0, videos=1, stream_videos=0) if i.family == "now")
    assert item.options == ["diamond", "ring", "bar"]
    return root, item


@pytest.fixture(scope="module")
def probe_pipe():
    from vidsift import Pipeline

    return Pipeline.from_pretrained(str(checkpoint_path()), device="cpu", dtype="float32")


def test_cli_ask_options_answers_the_readme_probe_example_with_an_option(now_item, probe_pipe, capsys):
    root, item = now_item
    video = str(root / item.video)
    code = run(["ask", video, "What shape is on screen now?", "--options", "diamond,ring,bar",
                "--model", str(checkpoint_path()), "--json"])
    out = capsys.readouterr().out
    assert code == 0
    answer = json.loads(out)
    assert answer["choice"]["option"] in ("diamond", "ring", "bar"), answer["answer"]
    assert answer["choice"] == {"index": item.answer, "letter": "ABC"[item.answer], "option": item.options[item.answer],
                                "options": item.options}
    # the prompt is the one vidsift eval sends: the same prompt length as eval's prompt for this item
    prompt = MCPrompt()(EvalItem("probe", item.qid, video, item.question, item.options, item.answer))
    inputs, _ = probe_pipe.prepare(video, prompt)
    assert answer["stats"]["prompt_len"] == inputs.prompt_len


@pytest.mark.parametrize("value, reason", [("red", "give 2 to 10 options, got 1"), ("red,,blue", "an option is empty")])
def test_cli_ask_refuses_bad_options_in_one_line(value, reason, tmp_video, capsys):
    assert run(["ask", tmp_video, "Which?", "--options", value, "--model", "random:tiny-qwen2.5-vl"]) == 1
    assert capsys.readouterr().err.strip() == f"error: --options {value}: {reason}"


def test_manifest_options_ask_the_eval_prompt_and_record_the_choice(now_item, tmp_path):
    from vidsift.batch import ResultsFile, WorkerSpec, build_engine, read_manifest, run_batch

    root, item = now_item
    manifest = root / "m.jsonl"
    manifest.write_text(json.dumps({"id": "list", "video": item.video, "question": item.question, "options": item.options})
                        + "\n" + json.dumps({"id": "text", "video": item.video, "question": item.question,
                                             "options": ",".join(item.options)}) + "\n")
    jobs = read_manifest(manifest)
    prompt = MCPrompt()(EvalItem("probe", item.qid, "", item.question, item.options, item.answer))
    assert [j.question for j in jobs] == [prompt, prompt]
    out = tmp_path / "a.jsonl"
    run_batch(jobs, WorkerSpec(model=str(checkpoint_path()), device="cpu", dtype="float32", max_new_tokens=4),
              engine=build_engine("local"), out=out, progress=False)
    records = ResultsFile(out).latest()
    for record in records.values():
        assert record["choice"]["option"] == item.options[item.answer], record["answer"]


def test_manifest_bad_options_name_the_line(tmp_path):
    from vidsift.batch import read_manifest
    from vidsift.errors import ConfigError

    (tmp_path / "a.mp4").write_bytes(b"x")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"video": "a.mp4", "question": "q", "options": ["one"]}) + "\n")
    with pytest.raises(ConfigError, match=r"m.jsonl: line 1: options: give 2 to 10 options, got 1"):
        read_manifest(manifest)


def test_server_ask_and_chat_take_options_and_answer_with_the_choice(now_item, probe_pipe):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("starlette")
    from vidsift.serve import ServeConfig, ServerThread

    root, item = now_item
    with ServerThread(probe_pipe, ServeConfig(port=0, allowed_roots=[root])) as server:
        for options in ({"options": item.options, "max_new_tokens": 4}, ",".join(item.options)):
            raw = options if isinstance(options, dict) else {"options": options}
            reply = httpx.post(server.url + "/v1/ask", json={"path": str(root / item.video), "question": item.question,
                                                             "options": raw}, timeout=120)
            assert reply.status_code == 200, reply.text
            assert reply.json()["choice"]["option"] == item.options[item.answer], reply.json()["answer"]
        reply = httpx.post(server.url + "/v1/ask", json={"path": str(root / item.video), "question": item.question,
                                                         "options": item.options}, timeout=120)  # a bare list
        assert reply.status_code == 200 and reply.json()["choice"]["index"] == item.answer
        bad = httpx.post(server.url + "/v1/ask", json={"path": str(root / item.video), "question": item.question,
                                                       "options": {"options": ["only"]}}, timeout=60)
        assert bad.status_code == 400 and "options.options: give 2 to 10 options, got 1" in bad.text
        chat = httpx.post(server.url + "/v1/chat/completions", timeout=120, json={
            "model": "vidsift", "max_tokens": 4, "vidsift": {"options": item.options},
            "messages": [{"role": "user", "content": [
                {"type": "video_url", "video_url": {"url": (root / item.video).as_uri()}},
                {"type": "text", "text": item.question}]}]})
        assert chat.status_code == 200, chat.text
        assert chat.json()["vidsift"]["choice"]["option"] == item.options[item.answer]


def test_live_page_asks_with_options_and_answers_the_probe_world_right(now_item, probe_pipe):
    """The live WebSocket as the page speaks it: the last seconds of a probe clip as the camera's
    JPEG frames, then "What shape is on screen now?" with its options: the shipped model's answer
    names the shape on screen (without the options it answered noise such as "0")."""
    import asyncio
    import io
    import time

    pytest.importorskip("starlette")
    websockets = pytest.importorskip("websockets")
    from PIL import Image

    from vidsift.frames import open_video, sample
    from vidsift.serve import ServeConfig, ServerThread

    root, item = now_item
    with open_video(str(root / item.video)) as reader:
        frames = sample(reader, fps=1.0).data[-12:]  # (12, 56, 56, 3): the clip's last 12 s at 1 fps
    with ServerThread(probe_pipe, ServeConfig(port=0, live_budget=64, live_fps=2.0, live_max_new_tokens=4)) as server:
        url = server.url.replace("http://", "ws://") + "/v1/live"

        async def session() -> tuple[dict, dict]:
            async with websockets.connect(url) as ws:
                await ws.send(json.dumps({"type": "hello", "fps": 2}))
                assert json.loads(await ws.recv())["type"] == "ready"
                for rgb in frames:  # about 2 frames a second of wall time, as a camera sends them
                    out = io.BytesIO()
                    Image.fromarray(rgb).save(out, format="JPEG", quality=95)
                    await ws.send(out.getvalue())
                    until = time.monotonic() + 0.55
                    while time.monotonic() < until:
                        try:
                            await asyncio.wait_for(ws.recv(), 0.1)
                        except asyncio.TimeoutError:
                            pass
                await ws.send(json.dumps({"type": "ask", "id": 1, "question": item.question, "options": ",".join(item.options)}))
                await ws.send(json.dumps({"type": "ask", "id": 2, "question": item.question, "options": "only"}))
                got: dict = {}
                while len(got) < 2:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 60))
                    if msg["type"] in ("answer", "error") and msg.get("id") in (1, 2):
                        got[msg["id"]] = msg
                return got[1], got[2]

        answer, refused = asyncio.run(session())
    assert answer["type"] == "answer" and answer["question"] == item.question
    assert answer["choice"]["option"] == item.options[item.answer], answer
    assert refused == {"type": "error", "id": 2, "message": "options: give 2 to 10 options, got 1"}

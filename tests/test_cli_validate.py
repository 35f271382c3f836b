"""Everything cheap is checked before a model loads: ``vidsift ask`` with a missing or non-video
file, a bad spec (scorer, selector, merger, pruner, press), a bad budget or an offline Hub id
fails with one line in well under 2 s, and the model is never constructed. Offline Hub ids fail
at once, with one line naming the id and how to get it, for the model and the scorers alike."""

from __future__ import annotations

import time

import pytest

from vidsift.cli.app import run
from vidsift.errors import ModelError
from vidsift.pipeline.pipeline import Pipeline

from videos import make_audio_only

MODEL = "random:smolvlm2-500m"  # full size: building it would take many seconds and GBs


@pytest.fixture
def constructed(monkeypatch):
    """Records every model construction (none may happen) and keeps the Hub offline."""
    calls: list = []

    def fake(cls, *args, **kwargs):
        calls.append(args)
        raise AssertionError("the model was constructed")

    monkeypatch.setattr(Pipeline, "from_pretrained", classmethod(fake))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return calls


@pytest.mark.parametrize("args, message", [
    (["nope.mp4", "Q"], "error: nope.mp4: no such file"),
    (["{video}", "Q", "--prune", "foo"], "error: foo: unknown prefill pruner; choose one of:"),
    (["{video}", "Q", "--prune", "fastv:kk=2"], "error: fastv:kk=2: unknown option kk for prefill pruner fastv; options: k, keep"),
    (["{video}", "Q", "--kv", "snapkv:ratio=0.25+"], "error: snapkv:ratio=0.25+: empty method"),
    (["{video}", "Q", "--selector", "foo"], "error: foo: unknown selector"),
    (["{video}", "Q", "--allocator", "foo"], "error: foo: unknown allocator"),
    (["{video}", "Q", "--merger", "temporal"], "error: temporal: not a spatial merger"),
    (["{video}", "Q", "--scorer", "clip"], "error: --scorer clip: needs a checkpoint: clip:MODEL"),
    (["{video}", "Q", "--scorer", "clip:someone/clip-model"], "error: someone/clip-model: not in the local Hugging Face cache"),
    (["{video}", "Q", "--budget", "1.5"], "error: 1.5: a fractional budget is a share in (0, 1]"),
    (["{video}", "Q", "--preset", "turbo"], "error: turbo: unknown preset"),
    (["{video}", "Q", "--max-new-tokens", "0"], "error: --max-new-tokens 0: must be >= 1"),
    (["{video}", "Q", "--model", "someone/video-llm"], "error: someone/video-llm: not in the local Hugging Face cache"),
    (["{video}", "Q", "--model", "random:nope"], "error: random:nope: unknown architecture"),
    (["{audio}", "Q"], "error: {audio}:"),
])
def test_ask_fails_fast_without_building_the_model(args, message, constructed, tmp_video, tmp_path, capsys):
    audio = make_audio_only(tmp_path / "sound.m4a")
    run(["plan", tmp_video, "--json"])  # warm imports and the decoder: the timing below is the check only
    capsys.readouterr()
    argv = ["ask", *[a.format(video=tmp_video, audio=audio) for a in args]]
    if "--model" not in argv:
        argv += ["--model", MODEL]
    start = time.perf_counter()
    code = run(argv)
    elapsed = time.perf_counter() - start
    err = capsys.readouterr().err
    assert code == 1 and err.startswith(message.format(audio=audio)) and err.count("\n") == 1, err
    assert constructed == []
    assert elapsed < 2.0


def test_offline_scorer_checkpoint_fails_at_once_with_how_to_get_it(monkeypatch):
    from vidsift.selectors import _hf

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(ModelError, match=r"^someone/clip: .*offline.*`hf download someone/clip`"):
        _hf.load("someone/clip")
    assert time.perf_counter() - start < 2.0


def test_check_opens_a_video_beyond_8k_as_the_pipeline_does(tmp_path):
    """`check_ask` used to open with the 8K pixel limit and refused what the Pipeline decodes
    downscaled; both now open through `open_for_planning`."""
    import types

    import av
    import numpy as np

    from vidsift.frames import DECODE_MAX_PIXELS, DEFAULT_MAX_PIXELS, TooLargeError, open_video
    from vidsift.pipeline.check import check_ask

    path = str(tmp_path / "wide.mp4")
    w, h = 8704, 4352  # 37.9 M pixels > 8192 x 4320
    with av.open(path, "w") as out:
        stream = out.add_stream("libx264", rate=1, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        frame = np.zeros((h, w, 3), np.uint8)
        frame[:, : w // 3] = 200
        for packet in [*stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")), *stream.encode()]:
            out.mux(packet)
    assert w * h > DEFAULT_MAX_PIXELS
    with pytest.raises(TooLargeError):  # the frames layer's own limit still holds for full-size decoding
        open_video(path)
    check_ask(path, "What is it?")  # raised TooLargeError before
    pipe = Pipeline(types.SimpleNamespace(model=None, family="none"))  # sampling needs no model
    frames = pipe.candidates(path)
    assert len(frames) == 1 and frames.data.shape[1] * frames.data.shape[2] <= DECODE_MAX_PIXELS


@pytest.mark.parametrize("args, message", [
    (["--prune", "foo"], "error: foo: unknown prefill pruner; choose one of: "),
    (["--kv", "snapkv+nope"], "error: nope: unknown cache press; choose one of: "),
    (["--kv", "snapkv:ratio=0.25+"], "error: snapkv:ratio=0.25+: empty method"),
    (["--selector", "foo"], "error: foo: unknown selector; choose one of: "),
    (["--scorer", "foo:model=x"], "error: foo: unknown scorer; choose one of: "),
])
def test_bad_method_names_fail_without_importing_torch(args, message, tmp_video):
    """From a cold shell, a bad method name is refused before torch is imported (it used to
    cost ~7 s of CPU to import torch and build the registries)."""
    import subprocess
    import sys

    code = ("import sys; from vidsift.cli.app import run; code = run(sys.argv[1:]); "
            "print('torch' in sys.modules, code)")
    done = subprocess.run([sys.executable, "-c", code, "ask", tmp_video, "Q", "--model", MODEL, *args],
                          capture_output=True, text=True, timeout=300)
    assert done.stdout.split() == ["False", "1"], (done.stdout, done.stderr)
    assert done.stderr.startswith(message) and done.stderr.count("\n") == 1, done.stderr


def test_too_thin_video_fails_before_the_model_loads(constructed, tiny_checkpoint, tmp_path, monkeypatch, capsys):
    """A video Qwen-VL cannot encode (aspect ratio 200 or more) is refused from the checkpoint's
    config.json before any weights load (`ask`, `plan --model`, `stream --source FILE`), with the
    line the Pipeline gives after loading; other families are not refused by that rule."""
    from videos import make_video

    from vidsift.pipeline import loader

    def no_load(*args, **kwargs):
        constructed.append(args)
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(loader, "load_adapter", no_load)
    thin = make_video(tmp_path / "thin.mp4", n_frames=8, fps=8, size=(1000, 4))
    qwen = str(tiny_checkpoint("tiny-qwen2.5-vl"))
    reason = "cannot be encoded by qwen2_5_vl: aspect ratio must be below 200"
    capsys.readouterr()
    for argv, size in ((["ask", thin, "What?", "--model", qwen], "1000x4"), (["plan", thin, "--model", qwen], "1000x4"),
                       (["stream", "--source", thin, "--model", qwen, "--no-status", "--no-interactive"], "448x2")):
        start = time.perf_counter()
        assert run(argv) == 1, argv
        err = capsys.readouterr().err
        assert err == f"error: {thin}: its {size} frames {reason}\n", (argv, err)
        assert time.perf_counter() - start < 10.0
    assert constructed == []

    from vidsift.pipeline.check import check_frame_size

    check_frame_size(str(tiny_checkpoint("tiny-smolvlm2")), thin, width=1000, height=4)  # no such rule

"""Messages name the input and a way out that exists in the CLI (issue 12)."""

from __future__ import annotations

import pytest

from vidsift.frames import TooLargeError, open_video
from videos import make_video


def test_too_large_frames_name_the_file_and_the_cli_way(tmp_path):
    path = make_video(tmp_path / "big.mp4", n_frames=4)
    with pytest.raises(TooLargeError) as err:
        open_video(path, max_pixels=1000)
    text = str(err.value)
    assert text.startswith(f"{path}: 96x64 frames") and "\n" not in text
    assert "`vidsift plan` decodes it downscaled" in text and "downscale=True" in text
    with open_video(path, max_pixels=1000, downscale=True) as video:  # the way out it names works
        assert len(video.read([0])) == 1


def test_playlists_and_scripts_are_not_followed_for_file_inputs(tmp_path):
    """An ffconcat script renamed .mp4 is refused (it used to be played), and one naming a URL never
    reaches the network; the stream source refuses them the same way."""
    from vidsift.errors import SourceError
    from vidsift.frames import NotAVideoError
    from vidsift.stream.sources import open_source

    make_video(tmp_path / "part.mp4", n_frames=4)
    local = tmp_path / "local.mp4"
    local.write_text("ffconcat version 1.0\nfile part.mp4\n")
    remote = tmp_path / "remote.mp4"
    remote.write_text("ffconcat version 1.0\nfile http://127.0.0.1:9/x.mp4\n")
    with pytest.raises(NotAVideoError, match=r"local\.mp4: not a video file but a concat playlist"):
        open_video(local)
    with pytest.raises(NotAVideoError, match=r"remote\.mp4: not a video file: it names a URL"):
        open_video(remote)
    with pytest.raises(SourceError, match=r"local\.mp4: not a video file but a concat playlist"):
        open_source(str(local)).open()
    with pytest.raises(SourceError, match=r"remote\.mp4: .*not a video file: it names a URL"):
        open_source(str(remote)).open()


def test_aspect_ratio_message_names_the_file(tmp_path, capsys):
    """Qwen's "aspect ratio must be below 200" names the video (it named only the frame size),
    through the Pipeline and as the CLI's one line."""
    from vidsift.cli.app import run
    from vidsift.errors import FrameSizeError
    from vidsift.pipeline.archs import build_checkpoint
    from vidsift.pipeline.pipeline import Pipeline

    path = make_video(tmp_path / "thin.mp4", n_frames=8, fps=8, size=(1000, 4))
    ckpt = str(build_checkpoint("tiny-qwen2.5-vl", tmp_path / "ckpt"))
    pipe = Pipeline.from_pretrained(ckpt, device="cpu", max_frames=2)
    for kwargs in ({}, {"budget": 10, "resize": True}):
        with pytest.raises(FrameSizeError) as err:
            pipe.ask(path, "What?", max_new_tokens=1, **kwargs)
        assert str(err.value) == f"{path}: its 1000x4 frames cannot be encoded by qwen2_5_vl: aspect ratio must be below 200"
    capsys.readouterr()  # the checkpoint builder's output
    assert run(["ask", path, "What?", "--model", ckpt, "--max-frames", "2", "--max-new-tokens", "1", "--device", "cpu"]) == 1
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert err_lines == [f"error: {path}: its 1000x4 frames cannot be encoded by qwen2_5_vl: aspect ratio must be below 200"]


def test_decord_ffmpeg_lines_do_not_reach_the_terminal(tmp_path, capfd):
    """decord's bundled FFmpeg printed raw ``[h264 @ 0x...]`` lines to stderr on a damaged file.
    They are captured (checked at the file-descriptor level, through the CLI), the frames they
    concern are re-read with PyAV, and the user still gets the one-line warning and a decode report
    that counts the missing frames."""
    import json

    from vidsift.cli.app import run
    from videos import corrupt_file

    clean = make_video(tmp_path / "clean.mp4", n_frames=96, fps=24, size=(160, 96), gop=48)
    damaged = corrupt_file(clean, tmp_path / "mid.mp4", at=0.5, n_bytes=2000)
    with open_video(damaged, backend="decord") as video:
        assert video.backend == "decord"
        with pytest.warns(UserWarning):
            video.read(range(video.info.n_frames))
        assert any("decord's FFmpeg reported" in w for w in video.report.warnings)  # lines were captured
        assert video.report.summary()["missing"] > 0
    capfd.readouterr()
    assert run(["plan", damaged, "--json", "--max-frames", "96", "--fps", "24"]) == 0
    out, err = capfd.readouterr()
    assert "[h264" not in err and "@ 0x" not in err, err
    assert [line for line in err.splitlines() if line] and all(line.startswith("warning: ") for line in err.splitlines() if line)
    assert json.loads(out)["stats"]["decode"]["missing"] > 0
    with open_video(clean, backend="decord") as video:  # clean files stay on decord, no re-reads
        video.read(range(video.info.n_frames))
        assert video._decoder.fell_back == 0 and not video.report.warnings

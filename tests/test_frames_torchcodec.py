"""The opt-in torchcodec backend (`vidsift/frames/_torchcodec.py`) against PyAV, the reference, on
real decodes: the same frames (indices, times, pixels) on B-frame, VFR, offset-start, rotated and
MPEG-4 clips; damage found both when torchcodec raises and when it conceals silently (only its
FFmpeg log tells), then reported with PyAV's counts and messages; a one-line error when torchcodec
is missing; never chosen by ``auto``.

torchcodec is installed by scripts/run-tests (scripts/_venv.sh), which sets
VIDSIFT_REQUIRE_TORCHCODEC=1: there a torchcodec that does not load fails these tests. Run
elsewhere without it, they skip and say why.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import warnings
from pathlib import Path

import av
import numpy as np
import pytest

from videos import corrupt_frames, make_rotated_video, make_video, make_vfr_video, sample_clip, truncate_file
from vidsift.errors import ConfigError
from vidsift.frames import BACKENDS, DecodeWarning, open_video, sample


def _load_error() -> str | None:
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401
    except Exception as err:  # noqa: BLE001 - ImportError, or RuntimeError when its FFmpeg is missing
        return f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
    return None


LOAD_ERROR = _load_error()
SKIP_REASON = (f"torchcodec cannot load ({LOAD_ERROR}): pip install torchcodec==0.13.0 --no-deps "
               "(and FFmpeg's shared libraries: apt-get install ffmpeg); scripts/run-tests installs it, .ci/run both")
if LOAD_ERROR is not None and os.environ.get("VIDSIFT_REQUIRE_TORCHCODEC") != "1":
    warnings.warn(f"tests/test_frames_torchcodec.py skipped: {SKIP_REASON}", stacklevel=1)


@pytest.fixture(autouse=True)
def _torchcodec(request):
    if LOAD_ERROR is not None and request.node.name != "test_missing_torchcodec_is_one_line":
        if os.environ.get("VIDSIFT_REQUIRE_TORCHCODEC") == "1":
            pytest.fail(f"the test set-up promised torchcodec, but {SKIP_REASON}")
        pytest.skip(SKIP_REASON)


def _both(path, **kw):
    """(PyAV batch, torchcodec batch, PyAV reader, torchcodec reader, whether torchcodec decoded
    every frame of its read) for one sample() call; the readers are closed."""
    out = []
    for backend in ("pyav", "torchcodec"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DecodeWarning)
            video = open_video(path, backend=backend)
            out.append((sample(video, **kw), video, _served_by_torchcodec(video)))
            video.close()
    (a, va, _), (b, vb, served) = out
    return a, b, va, vb, served


def _served_by_torchcodec(video) -> bool:
    """Whether torchcodec decoded every frame read so far (PyAV took over nothing)."""
    return (video.backend == "torchcodec" and not video._decoder.failed
            and not any("torchcodec stopped" in w for w in video.report.warnings))


@pytest.mark.parametrize("name", ["bframes.mp4", "vfr.mp4", "offset.mkv", "offset.mp4", "rot90.mp4", "rot270.mp4",
                                  "rot180.mov", "bikes.mp4"])
def test_sampled_frames_are_pyavs(tmp_path, name):
    """Same indices, times, info and pixels (H.264: bit-equal) as PyAV; torchcodec served them all."""
    path = {
        "bframes.mp4": lambda p: make_video(p, n_frames=72, size=(160, 96), pattern="noise"),  # libx264: B-frames
        "vfr.mp4": lambda p: make_vfr_video(p)[0],
        "offset.mkv": lambda p: make_vfr_video(p, pts_seconds=[1.5 + i / 12 for i in range(36)])[0],  # first pts 1.5 s
        "offset.mp4": lambda p: make_vfr_video(p, pts_seconds=[1.5 + i / 12 for i in range(36)])[0],
        "rot90.mp4": lambda p: make_rotated_video(p, 90, size=(96, 64)),
        "rot270.mp4": lambda p: make_rotated_video(p, 270, size=(96, 64)),
        "rot180.mov": lambda p: make_rotated_video(p, 180, size=(96, 64)),
        "bikes.mp4": lambda p: sample_clip("bikes.mp4"),
    }[name](tmp_path / name)
    a, b, va, vb, served = _both(path, fps=7, max_frames=20)
    assert served, vb.report.warnings
    assert dataclasses.replace(vb.info, backend="pyav") == va.info  # the same facts
    assert len(a) >= 7
    assert np.array_equal(a.index, b.index) and np.array_equal(a.pts_seconds, b.pts_seconds)
    assert a.data.shape == b.data.shape and a.data.shape[1:3] == (va.info.height, va.info.width)
    assert np.array_equal(a.data, b.data)
    assert vb.report.summary() == va.report.summary() and vb.report.errors == []


def test_mpeg4_pixels_within_two_levels(tmp_path):
    """MPEG-4 Part 2: PyAV's FFmpeg (8.1) and torchcodec's (5.1) decode a few samples 1 apart: <= 2 levels in RGB."""
    path = make_video(tmp_path / "m.avi", n_frames=48, size=(320, 240))
    a, b, va, vb, served = _both(path, fps=12)
    assert served
    assert np.array_equal(a.index, b.index) and a.data.shape == b.data.shape
    diff = np.abs(a.data.astype(np.int16) - b.data.astype(np.int16))
    assert int(diff.max()) <= 2
    assert float((diff > 0).mean()) < 1e-3


def _answer_with_next_frame(monkeypatch, *, by_time: bool, by_number: bool) -> None:
    """torchcodec made to answer a request with the frame after the one asked for (as a container
    whose frame durations, or a mapping, disagreed with the index would)."""
    from torchcodec.decoders import VideoDecoder

    if by_time:
        real_time = VideoDecoder.get_frame_played_at
        monkeypatch.setattr(VideoDecoder, "get_frame_played_at",
                            lambda self, s: real_time(self, s + 1 / float(self.metadata.average_fps)))
    if by_number:
        real_number = VideoDecoder.get_frame_at
        monkeypatch.setattr(VideoDecoder, "get_frame_at", lambda self, i: real_number(self, min(int(i) + 1, len(self) - 1)))


def test_pts_check_hands_wrong_frames_to_pyav(tmp_path, monkeypatch):
    """A frame whose pts is not the index's is never returned as that frame: with torchcodec
    answering each request, by time and then by number, with the next frame, PyAV reads the request
    instead from a keyframe after the first (its container, closed while torchcodec decoded, is opened
    again and seeks), with a note in the report."""
    path = make_video(tmp_path / "v.mp4", n_frames=48, size=(96, 64), pattern="noise")
    with open_video(path, backend="pyav") as ref:
        want = ref.read(range(13, 48, 5)).data
    with open_video(path, backend="torchcodec") as video:
        assert video._decoder.fallback.container is None  # released: one demuxer and decoder open, torchcodec's
        _answer_with_next_frame(monkeypatch, by_time=True, by_number=True)
        got = video.read(range(13, 48, 5))
        assert np.array_equal(got.data, want)
        assert any(w.startswith("torchcodec stopped at frame 13: it returned the frame at 0.583s") for w in video.report.warnings)


def test_frames_missed_by_time_are_found_by_number(tmp_path, monkeypatch):
    """Frames are asked for by time (no scan at open); when that finds the wrong frame, torchcodec's
    exact index (its scan) serves this and every later frame: the same pixels as PyAV, no warning."""
    path = make_video(tmp_path / "v.mp4", n_frames=48, size=(96, 64), pattern="noise")
    with open_video(path, backend="pyav") as ref:
        want = ref.read(range(0, 48, 5)).data
    with open_video(path, backend="torchcodec") as video:
        _answer_with_next_frame(monkeypatch, by_time=True, by_number=False)
        got = video.read(range(0, 48, 5))
        assert np.array_equal(got.data, want)
        assert _served_by_torchcodec(video), video.report.warnings
        assert video._decoder.exact


def _damage_packet_tails(src, dst, frames, *, keep: float = 0.2, seed: int = 0) -> str:
    """Copy ``src`` with the packets of presentation frames ``frames`` overwritten by random bytes
    after their first ``keep`` share: the NAL sizes stay valid, so decoders conceal instead of failing."""
    spans = []
    with av.open(str(src)) as container:
        stream = container.streams.video[0]
        per_frame = stream.time_base * stream.average_rate
        for packet in container.demux(stream):
            if packet.pts is not None and round(float(packet.pts * per_frame)) in frames:
                spans.append((int(packet.pos), int(packet.size)))
    assert len(spans) == len(frames)
    data = bytearray(Path(src).read_bytes())
    rng = np.random.default_rng(seed)
    for pos, size in spans:
        start = pos + int(size * keep)
        data[start : pos + size] = rng.integers(0, 256, pos + size - start, dtype=np.uint8).tobytes()
    Path(dst).write_bytes(bytes(data))
    return str(dst)


@pytest.mark.parametrize("damage", ["whole packets", "packet tails"])
def test_damaged_file_reports_as_pyav(tmp_path, damage, capfd):
    """Whole packets overwritten: torchcodec raises. Packet tails overwritten: it conceals the
    damage and only its FFmpeg log says so. Either way PyAV re-reads the request: same frames,
    counts and error lines as a PyAV-only read, one warning, no traceback, no raw FFmpeg line."""
    src = make_video(tmp_path / "clean.mp4", n_frames=96, size=(160, 96), pattern="noise")
    if damage == "whole packets":
        path = corrupt_frames(src, tmp_path / "bad.mp4", frames=[30, 31])
    else:
        path = _damage_packet_tails(src, tmp_path / "bad.mp4", [30, 54])
    a, b, va, vb, served = _both(path, fps=8, max_frames=64)
    assert va.report.errors, "the damage must show in PyAV's own read"
    assert vb.backend == "torchcodec" and not served
    note = [w for w in vb.report.warnings if w.startswith("torchcodec stopped at frame")]
    assert len(note) == 1
    if damage == "packet tails":
        assert "its FFmpeg reported" in note[0]
    assert np.array_equal(a.index, b.index) and np.array_equal(a.data, b.data)
    assert vb.report.summary() == va.report.summary()
    assert (vb.report.decoded_frames, vb.report.missing_indices) == (va.report.decoded_frames, va.report.missing_indices)
    assert vb.report.errors == va.report.errors
    err = capfd.readouterr().err
    assert "[h264" not in err and "Traceback" not in err


@pytest.mark.parametrize("case", ["truncated", "mpegts", "downscaled"])
def test_files_torchcodec_is_not_used_for_go_to_pyav(tmp_path, case):
    src = make_video(tmp_path / "v.mp4", n_frames=96, size=(160, 96), faststart=True)
    kw = {}
    if case == "truncated":  # the header promises frames the file does not hold
        path = truncate_file(src, tmp_path / "cut.mp4", keep=0.6)
    elif case == "mpegts":
        path = make_video(tmp_path / "v.ts", n_frames=24)
    else:
        path, kw = src, {"max_pixels": 80 * 48, "downscale": True}
    with pytest.warns(DecodeWarning, match="torchcodec") as caught:
        with open_video(path, backend="torchcodec", **kw) as video:
            assert video.backend == "pyav"
            assert len(sample(video, fps=2)) > 0
    assert any("using PyAV" in str(w.message) for w in caught)


def test_auto_never_picks_torchcodec(tmp_path):
    assert "torchcodec" in BACKENDS
    path = make_video(tmp_path / "v.mp4", n_frames=48)
    for strict in (False, True):
        with open_video(path, strict=strict) as video:
            sample(video, fps=24)
            assert video.backend != "torchcodec"


def test_missing_torchcodec_is_one_line(tmp_path, monkeypatch, capsys):
    """In Python a ConfigError naming the backend and the install command; `vidsift info --backend
    torchcodec` prints it as one line and exits 1."""
    path = make_video(tmp_path / "v.mp4", n_frames=12)
    monkeypatch.setitem(sys.modules, "torchcodec.decoders", None)  # `from torchcodec.decoders import ...` fails
    with pytest.raises(ConfigError) as caught:
        open_video(path, backend="torchcodec")
    msg = str(caught.value)
    assert "\n" not in msg
    assert msg.startswith("backend='torchcodec': torchcodec is not installed")
    assert "pip install torchcodec==0.13.0 --no-deps" in msg
    from vidsift.cli.app import run

    assert run(["info", path, "--backend", "torchcodec"]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == f"error: {msg}" and captured.out == ""

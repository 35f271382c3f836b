"""Live sources and the capture thread: pacing, latest-frame capture, FIFO guard, bad input
that must fail fast with one line (no hardware, no network beyond 127.0.0.1)."""

from __future__ import annotations

import os
import socket
import threading
import time

import numpy as np
import pytest

from vidsift.errors import ConfigError, SourceError
from vidsift.stream.capture import Capture
from vidsift.stream.sources import FileSource, LavfiSource, UrlSource, open_source, source_kind
from vidsift.stream.sources.webcam import platform_device
from videos import make_video

pytestmark = pytest.mark.timeout(60)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_source_kinds_and_platform_devices():
    assert source_kind("0") == "webcam" and source_kind("/dev/video2") == "webcam"
    assert source_kind("rtsp://cam/x") == "url" and source_kind("udp://127.0.0.1:5000") == "url"
    assert source_kind("lavfi:testsrc2") == "lavfi" and source_kind("clip.mp4") == "file"
    assert platform_device("0", "linux") == ("/dev/video0", "v4l2")
    assert platform_device("0", "darwin") == ("0", "avfoundation")
    assert platform_device("0", "win32") == ("video=0", "dshow")
    assert isinstance(open_source("lavfi:testsrc2=size=64x48:rate=10"), LavfiSource)
    assert isinstance(open_source("udp://127.0.0.1:1"), UrlSource)
    with pytest.raises(SourceError, match="^ftp://x: unsupported source"):
        open_source("ftp://x")
    with pytest.raises(ConfigError):
        open_source("clip.mp4", speed=0)


def test_lavfi_paced_frames_arrive_in_real_time():
    with open_source("lavfi:testsrc2=size=320x240:rate=20", max_side=160) as src:
        assert src.live
        start = time.monotonic()
        frames = [src.read() for _ in range(11)]
        elapsed = time.monotonic() - start
    assert frames[-1].rgb.shape == (120, 160, 3) and frames[-1].rgb.dtype == np.uint8
    assert frames[-1].pts_seconds == pytest.approx(0.5)
    assert elapsed >= 0.4  # paced: 10 frame intervals at 20 fps


@pytest.mark.parametrize("spec,reason", [
    ("/dev/video9", "no such camera device"),
    ("9", "no such camera device"),
    ("missing_clip.mp4", "no such file or device"),
])
def test_missing_device_or_file_fails_fast_with_one_line(spec, reason):
    start = time.monotonic()
    with pytest.raises(SourceError) as err:
        open_source(spec).open()
    assert reason in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith(spec if spec != "9" else "9:")
    assert time.monotonic() - start < 1


def test_unreachable_urls_time_out_with_one_line():
    port = free_udp_port()
    for url in (f"udp://127.0.0.1:{port}", f"tcp://127.0.0.1:{free_udp_port()}"):
        start = time.monotonic()
        with pytest.raises(SourceError) as err:
            open_source(url, open_timeout_s=1, read_timeout_s=1).open()
        assert str(err.value).startswith(f"{url}: cannot open") and "\n" not in str(err.value)
        assert time.monotonic() - start < 6


def test_fifo_without_writer_is_refused_not_hung(tmp_path):
    fifo = tmp_path / "cam.fifo"
    os.mkfifo(fifo)
    start = time.monotonic()
    with pytest.raises(SourceError, match="FIFO has no writer"):
        FileSource(target=str(fifo), open_timeout_s=0.5).open()
    assert time.monotonic() - start < 2


def test_fifo_with_writer_streams(tmp_path):
    clip = tmp_path / "clip.ts"
    make_video(clip, n_frames=20, fps=10)
    fifo = tmp_path / "live.fifo"
    os.mkfifo(fifo)

    def writer():
        with open(fifo, "wb") as f:
            f.write(clip.read_bytes())

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    with FileSource(target=str(fifo), open_timeout_s=5, read_timeout_s=5) as src:
        frames = []
        while (frame := src.read()) is not None:
            frames.append(frame)
    thread.join(5)
    assert len(frames) == 20


def test_file_realtime_pacing_and_full_speed(tmp_path):
    clip = tmp_path / "clip.ts"
    make_video(clip, n_frames=10, fps=10)
    with open_source(str(clip)) as src:
        assert not src.live
        start = time.monotonic()
        n = sum(1 for _ in iter(src.read, None))
        fast = time.monotonic() - start
    with open_source(str(clip), realtime=True, speed=2.0) as src:
        assert src.live
        start = time.monotonic()
        n2 = sum(1 for _ in iter(src.read, None))
        paced = time.monotonic() - start
    assert n == n2 == 10
    assert paced >= 0.4 and fast < paced  # 9 intervals of 0.1 s at 2x


def test_capture_keeps_only_latest_frame_and_counts_drops():
    src = LavfiSource(target="testsrc2=size=64x48:rate=50")
    with Capture(src, stall_s=2) as cap:
        time.sleep(0.5)  # a slow consumer
        frame = cap.get(timeout_s=2)
        stats = cap.stats
    assert frame is not None and frame.pts_seconds > 0.3  # the newest, not the first
    assert stats.frames_dropped >= 10 and stats.frames_read > stats.frames_dropped


def test_capture_full_speed_source_delivers_every_frame():
    src = LavfiSource(target="testsrc2=size=64x48:rate=10:duration=3", realtime=False)
    with Capture(src) as cap:
        got = []
        while (frame := cap.get(timeout_s=5)) is not None:
            got.append(frame.pts_seconds)
            time.sleep(0.002)
    assert len(got) == 30 and cap.stats.frames_dropped == 0 and cap.ended

"""Streams from damaged files and from UDP senders that stop or send garbage (issue 12).

Files: a file damaged in the middle streams on past the damage with a warning (as ``ask`` reads
it), a truncated file ends with a warning and a decode report saying how many frames never came,
an mp4 without its index fails with ``ask``'s one-line reason. UDP (127.0.0.1 only; every sender
is a bounded loop that stops by itself): nothing sent fails after the open timeout (not twice
it), garbage datagrams are named as not a video stream, and after an outage no frame carries a
time newer than its data.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import pytest

from vidsift.errors import SourceError
from vidsift.stream import sender
from vidsift.stream.capture import Capture
from vidsift.stream.sources import open_source
from vidsift.stream.sources.url import looks_like_mpegts
from videos import corrupt_file, make_video, truncate_file

pytestmark = pytest.mark.timeout(90)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    d = tmp_path_factory.mktemp("damaged")
    full = make_video(d / "full.mp4", n_frames=96, gop=24)
    mkv = make_video(d / "full.mkv", n_frames=96, gop=12)
    return {"full": full, "mid_corrupt": corrupt_file(full, d / "mid_corrupt.mp4", at=0.5, n_bytes=1500),
            "cut_mkv": truncate_file(mkv, d / "cut.mkv", keep=0.5), "cut_mp4": truncate_file(full, d / "cut.mp4", keep=0.5)}


def drain(source) -> tuple[int, list[str], dict | None]:
    """Every frame of a file source through the capture thread: (frames, warnings, report)."""
    events: list[dict] = []
    with Capture(source, on_event=events.append) as cap:
        n = 0
        while cap.get(timeout_s=10) is not None:
            n += 1
    assert cap.stats.error is None, cap.stats.error
    return n, [e["warning"] for e in events if e["event"] == "warning"], source.report()


def test_clean_file_streams_every_frame_without_warning(damaged):
    n, warned, report = drain(open_source(damaged["full"]))
    assert n == 96 and warned == [] and report == {"frames_expected": 96, "frames_decoded": 96, "missing": 0,
                                                   "reason": None}


def test_file_damaged_in_the_middle_streams_on_with_a_warning(damaged):
    path = damaged["mid_corrupt"]
    n, warned, report = drain(open_source(path))
    assert n > 60  # frames after the damage keep coming (the stream used to fail at t=2 s)
    assert warned[0].startswith(f"{path}: decode error (") and "the stream goes on" in warned[0]
    assert report["frames_decoded"] == n and report["frames_expected"] == 96 and report["missing"] == 96 - n
    assert "decode error(s)" in report["reason"]
    assert warned[-1] == f"{path}: the stream ended early: {n} of 96 frames ({96 - n} missing: {report['reason']})"


def test_truncated_file_ends_with_a_warning_and_the_info_count(damaged):
    from vidsift.frames import open_video

    path = damaged["cut_mkv"]
    n, warned, report = drain(open_source(path))
    with pytest.warns(Warning), open_video(path, backend="pyav") as video:
        info = video.report.summary()  # what `vidsift info --json` shows for the file
    assert report == {**info, "frames_decoded": n, "missing": info["frames_expected"] - n}
    assert report["missing"] >= 40 and len(warned) == 1 and "the stream ended early" in warned[0]


def test_file_without_index_fails_with_asks_reason(damaged):
    with pytest.raises(SourceError, match=r"cut\.mp4: truncated or damaged mp4: its index \(moov atom\) is missing$"):
        open_source(damaged["cut_mp4"]).open()


# ----------------------------------------------------------------------------- UDP


def test_mpegts_sniffer():
    ts = bytes([0x47] + [0] * 187) * 7
    assert looks_like_mpegts(ts) and looks_like_mpegts(b"\x80\x21" + b"\0" * 10 + ts)  # RTP header first
    assert looks_like_mpegts(bytes([0x47] + [1] * 187))
    assert not looks_like_mpegts(os.urandom(0) + bytes(range(256)) * 5) and not looks_like_mpegts(b"hello")


def test_udp_nothing_sent_fails_after_the_timeout_not_twice_it():
    url = f"udp://127.0.0.1:{free_udp_port()}"
    start = time.monotonic()
    with pytest.raises(SourceError, match=r"cannot open: no response within 1.5 s") as err:
        open_source(url, open_timeout_s=1.5, read_timeout_s=1.5).open()
    took = time.monotonic() - start
    assert str(err.value).startswith(url) and 1.4 <= took < 2.5, took  # FFmpeg alone took 2 x 1.5 s


def test_udp_garbage_is_named_not_a_video_stream():
    port = free_udp_port()
    url = f"udp://127.0.0.1:{port}"
    stop = threading.Event()

    def garbage() -> None:
        payload = bytes((i * 97 + 13) % 251 for i in range(1316))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
            for _ in range(2000):  # at most ~10 s
                if stop.is_set():
                    return
                out.sendto(payload, ("127.0.0.1", port))
                time.sleep(0.005)

    thread = threading.Thread(target=garbage, daemon=True)
    thread.start()
    try:
        start = time.monotonic()
        with pytest.raises(SourceError) as err:
            open_source(url, open_timeout_s=3, read_timeout_s=3).open()
        took = time.monotonic() - start
    finally:
        stop.set()
        thread.join(5)
    assert "data arrives but it is not a video stream" in str(err.value) and "MPEG-TS" in str(err.value)
    assert "\n" not in str(err.value) and took < 2.5


def test_udp_outage_no_frame_newer_than_its_data_and_timeout_on_time():
    """The sender pauses for longer than the read timeout: the frames a demuxer/decoder still held
    come out when the read times out; they must keep the time their data arrived."""
    port = free_udp_port()
    url = f"udp://127.0.0.1:{port}"
    thread = threading.Thread(target=sender.send, args=(url,), daemon=True,
                              kwargs=dict(seconds=7.0, fps=15, width=112, height=84, pause_at=6.0, pause_for=4.0))
    timeout = 2.0
    src = open_source(url, open_timeout_s=10, read_timeout_s=timeout)
    thread.start()
    try:
        src.open()
        walls, returned = [], []
        with pytest.raises(SourceError, match=rf"stream failed: no data for {timeout:g} s"):
            for _ in range(400):  # bounded: 6 s at 15 fps is 90 frames
                frame = src.read()
                assert frame is not None
                walls.append(frame.wall_s)
                returned.append(time.monotonic())
        failed = time.monotonic()
    finally:
        src.close()
        thread.join(10)
    assert len(walls) >= 3 and all(w <= r + 1e-6 for w, r in zip(walls, returned))
    # the last real data arrived at least `timeout` before the failure; no frame may claim later
    assert failed - max(walls) >= 0.75 * timeout, (failed - max(walls), walls[-3:], returned[-3:])
    assert failed - max(walls) < timeout + 3.0  # and the failure came on time (slack for a loaded machine)


# ----------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from vidsift.pipeline.archs import build_checkpoint

    return str(build_checkpoint("tiny-qwen2.5-vl", tmp_path_factory.mktemp("qwen25")))


def test_cli_stream_of_damaged_files_warns_and_reports(damaged, checkpoint, capsys):
    from vidsift.cli.app import run

    common = ["--model", checkpoint, "--device", "cpu", "--query", "what?", "--fps", "2", "--budget", "64",
              "--json", "--max-new-tokens", "2", "--no-status", "--no-interactive"]
    rc = run(["stream", "--source", damaged["mid_corrupt"], *common])
    out, err = capsys.readouterr()
    events = [json.loads(line) for line in out.splitlines()]
    assert rc == 0, err
    kinds = [e["event"] for e in events]
    assert kinds[0] == "warning" and "decode error" in events[0]["warning"] and kinds[-2:] == ["ended", "answer"]
    assert events[-1]["t"] > 3.0  # the answer (asked at the end) saw frames after the damage (at 2 s)
    assert events[-2]["decode"]["frames_expected"] == 96 and events[-2]["decode"]["missing"] < 40
    assert f"warning: {damaged['mid_corrupt']}: decode error (" in err and "ended early" in err

    rc = run(["stream", "--source", damaged["cut_mkv"], *common])
    out, err = capsys.readouterr()
    events = [json.loads(line) for line in out.splitlines()]
    assert rc == 0, err
    ended = events[-2]
    assert ended["event"] == "ended" and ended["decode"]["missing"] >= 40 and ended["decode"]["reason"]
    early = [e for e in events if e["event"] == "warning"]
    assert len(early) == 1 and "the stream ended early" in early[0]["warning"]
    assert f"warning: {damaged['cut_mkv']}: the stream ended early: " in err


def test_stream_encode_errors_name_the_source(damaged, checkpoint, tmp_path, capsys):
    """A frame the model cannot encode ends the stream with one line naming the source file and the
    reason (it said ``FrameSizeError: 448x2: ...`` or ``RuntimeError: ...`` with no file)."""
    from vidsift.cli.app import run
    from vidsift.pipeline.loader import load_adapter
    from vidsift.stream.session import StreamOptions, StreamSession

    thin = make_video(tmp_path / "thin.mp4", n_frames=8, fps=8, size=(1000, 4))
    adapter = load_adapter(checkpoint, device="cpu")
    with StreamSession(adapter, thin, StreamOptions(budget=64, fps=4)) as session:
        assert session.wait(60)
    assert session.error == f"{thin}: its 448x2 frames cannot be encoded by qwen2_5_vl: aspect ratio must be below 200"

    def broken(frames):
        raise RuntimeError("out of memory while encoding")

    adapter.encode = broken  # an instance attribute: this adapter only
    with StreamSession(adapter, damaged["full"], StreamOptions(budget=64, fps=4)) as session:
        assert session.wait(60)
    assert session.error == f"{damaged['full']}: RuntimeError: out of memory while encoding"

    capsys.readouterr()
    rc = run(["stream", "--source", thin, "--model", checkpoint, "--device", "cpu", "--fps", "4", "--budget", "64",
              "--no-status", "--no-interactive", "--json"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1 and err[-1].startswith(f"error: {thin}: its ") and "aspect ratio must be below 200" in err[-1], err

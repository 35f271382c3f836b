"""Decoding layer: VideoInfo, frames by index, pts sampling, chunks, keyframes, rotation, VFR,
pixel budget, and PyAV vs decord giving the same frames."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from videos import (
    make_rotated_video, make_vfr_video, make_video, read_frame_code, sample_clip, shapes_frame,
)
from vidsift.frames import (
    DEFAULT_MAX_FRAMES, DecodeWarning, FrameBatch, TooLargeError, VideoError, iter_chunks, open_video, plan_indices, sample,
    scan_keyframes,
)
from vidsift.errors import ConfigError


def codes(batch: FrameBatch) -> list[int]:
    return [read_frame_code(img) for img in batch.data]


@pytest.fixture(scope="module")
def bikes():
    return sample_clip("bikes.mp4")


# ------------------------------------------------------------------ info


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_bikes_info(bikes, backend):
    with open_video(bikes, backend=backend) as video:
        info = video.info
        assert (info.n_frames, info.fps, info.width, info.height) == (250, 25.0, 640, 272)
        assert info.duration_s == pytest.approx(10.0)
        assert info.measured_fps == pytest.approx(25.0)
        assert info.codec == "h264" and info.rotation == 0 and info.backend == backend
        assert video.backend == backend


def test_auto_picks_decord_for_mp4_and_pyav_for_ts(tmp_path, bikes):
    with open_video(bikes) as video:
        assert video.backend == "decord"
    ts = make_video(tmp_path / "clip.ts", n_frames=24)
    with open_video(ts) as video:
        assert video.backend == "pyav"
    with open_video(bikes, strict=True) as video:  # strict needs PyAV's error reporting
        assert video.backend == "pyav"


@pytest.mark.parametrize("ext", ["mp4", "mkv", "webm", "ts", "avi", "mov"])
def test_containers_count_frames_and_read_by_index(tmp_path, ext):
    path = make_video(tmp_path / f"clip.{ext}", n_frames=40)
    with open_video(path, backend="pyav") as video:
        info = video.info
        assert info.n_frames == 40, info
        assert info.n_frames_scanned == (ext in ("mkv", "webm", "ts"))  # no frame count in those headers
        assert (info.width, info.height) == (96, 64)
        assert info.duration_s == pytest.approx(40 / 24, abs=0.05)
        assert info.measured_fps == pytest.approx(24, rel=0.02)
        everything = video.read(range(40))
        assert codes(everything) == list(range(40))
        np.testing.assert_allclose(everything.pts_seconds, np.arange(40) / 24, atol=1e-3)
        some = video.read([33, 2, 17, 17, 39])  # any order, duplicates kept, seeks backwards
        assert codes(some) == [33, 2, 17, 17, 39] and list(some.index) == [33, 2, 17, 17, 39]
        assert video.report.ok and video.report.expected_frames == 40 + 4


def test_av1_and_vp9(tmp_path):
    for name, codec, want in (("a.mkv", "libsvtav1", "av1"), ("v.webm", "libvpx-vp9", "vp9")):
        path = make_video(tmp_path / name, n_frames=12, codec=codec, size=(64, 64))
        with open_video(path) as video:
            assert video.info.codec == want and video.info.n_frames == 12
            assert codes(video.read([0, 7, 11])) == [0, 7, 11]


def test_live_urls_are_refused(tmp_path):
    with pytest.raises(VideoError, match="rtsp://cam/1: rtsp:// is a live source"):
        open_video("rtsp://cam/1")


def test_read_is_exact_against_source_pixels(tmp_path):
    path = make_video(tmp_path / "clip.mkv", n_frames=12, codec="ffv1")  # lossless: pixel-exact check
    with open_video(path) as video:
        got = video.read([0, 5, 11])
    for img, i in zip(got.data, [0, 5, 11]):
        np.testing.assert_array_equal(img, shapes_frame(i, (96, 64)))


def test_read_out_of_range_raises(tmp_video):
    with open_video(tmp_video) as video:
        with pytest.raises(IndexError, match="out of range"):
            video.read([48])
        assert len(video.read([])) == 0


def test_bad_options_raise_config_error(tmp_video):
    with pytest.raises(ConfigError, match="auto, pyav, decord"):
        open_video(tmp_video, backend="ffmpeg")
    with open_video(tmp_video) as video:
        for kwargs in ({"fps": 0}, {"max_frames": 0}, {"start_s": 2, "end_s": 1}, {"start_s": -1}, {"start_s": 60}):
            with pytest.raises(ConfigError):
                sample(video, **kwargs)
        with pytest.raises(ConfigError):
            list(iter_chunks(video, chunk_frames=0))


# ------------------------------------------------------------------ sampling by time


def test_sample_uniform_fps_and_range(bikes):
    with open_video(bikes, backend="pyav") as video:
        uni = sample(video, max_frames=10)  # centres of 10 equal slices of 10 s
        assert list(uni.index) == [12 + 25 * k for k in range(10)]
        per_s = sample(video, fps=2, start_s=2.0, end_s=4.0)
        np.testing.assert_allclose(per_s.pts_seconds, [2.0, 2.48, 3.0, 3.48])  # the frame on screen at t
        capped = sample(video, fps=25, max_frames=5)  # fps would give 250: the cap makes it uniform
        assert len(capped) == 5 and list(capped.index) == [25, 75, 125, 175, 225]
        default = plan_indices(video)  # neither: every frame
        assert len(default) == 250
        assert len(sample(video, start_s=9.0)) == 25
        assert video.report.ok


def test_sample_default_cap(tmp_path):
    path = make_video(tmp_path / "long.mp4", n_frames=300, fps=30, size=(32, 32))
    with open_video(path) as video:
        got = sample(video)
        assert len(got) == DEFAULT_MAX_FRAMES
        assert np.all(np.diff(got.pts_seconds) > 0)


def test_vfr_sampled_pts_are_real_timestamps(tmp_path):
    path, true_pts = make_vfr_video(tmp_path / "vfr.mp4")
    with open_video(path) as video:
        assert video.info.n_frames == len(true_pts)
        np.testing.assert_allclose(video.frame_times, true_pts, atol=1e-3)
        every = sample(video, fps=40)  # faster than any segment: every frame exactly once
        assert codes(every) == list(range(len(true_pts)))
        np.testing.assert_allclose(every.pts_seconds, true_pts, atol=1e-3)
        at = sample(video, fps=2)  # the frame on screen at 0, .5, 1, ... s
        expect = [max(i for i, t in enumerate(true_pts) if t <= k / 2 + 1e-6) for k in range(8)]
        assert list(at.index) == sorted(set(expect))
        assert codes(at) == list(at.index)
        naive = [int(k / 2 * video.info.fps) for k in range(8)]  # index = t x fps: wrong on VFR files
        assert naive != expect


def test_iter_chunks_bounded_and_complete(bikes):
    with open_video(bikes, backend="pyav") as video:
        chunks = list(iter_chunks(video, chunk_frames=64, start_s=1.0, end_s=7.0))
        assert [len(c) for c in chunks] == [64, 64, 22]
        idx = np.concatenate([c.index for c in chunks])
        assert list(idx) == list(range(25, 175))
        one_fps = list(iter_chunks(video, chunk_frames=4, fps=1))
        assert [len(c) for c in one_fps] == [4, 4, 2]


def test_iter_chunks_matches_read(tmp_path):
    path = make_video(tmp_path / "clip.mkv", n_frames=50, gop=10)
    with open_video(path, backend="pyav") as video:
        got = FrameBatch.concat(list(iter_chunks(video, chunk_frames=7)))
        assert codes(got) == list(range(50))


def test_scan_keyframes(bikes, tmp_path):
    with open_video(bikes) as video:
        keys = scan_keyframes(video)
        assert len(keys) == 6 and keys.index[0] == 0
        full = video.read(keys.index)
        np.testing.assert_array_equal(keys.data, full.data)  # the same pictures as a full decode
        assert len(scan_keyframes(video, max_frames=3)) == 3
    path = make_video(tmp_path / "g.mp4", n_frames=48, gop=12)
    with open_video(path) as video:
        keys = scan_keyframes(video)
        assert list(keys.index) == [0, 12, 24, 36] and codes(keys) == [0, 12, 24, 36]


def test_scene_video_cuts(scene_video):
    path, cuts = scene_video
    with open_video(path) as video:
        frames = video.read(range(video.info.n_frames))
    means = frames.data.reshape(len(frames), -1, 3).mean(1)  # (N, 3) mean colour
    jumps = np.linalg.norm(np.diff(means, axis=0), axis=1)
    assert sorted(np.argsort(jumps)[-len(cuts):] + 1) == cuts


# ------------------------------------------------------------------ rotation


@pytest.mark.parametrize("rotation", [90, 180, 270])
@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_rotated_display_orientation(tmp_path, rotation, backend):
    path = make_rotated_video(tmp_path / f"rot{rotation}.mp4", rotation=rotation, n_frames=6)
    with open_video(path, backend=backend) as video:
        info = video.info
        assert info.rotation == rotation
        assert (info.width, info.height) == ((64, 96) if rotation in (90, 270) else (96, 64))
        got = video.read([0, 3])
        assert got.data.shape == (2, info.height, info.width, 3)
        for img, i in zip(got.data, [0, 3]):
            want = np.rot90(shapes_frame(i, (96, 64)), k=-rotation // 90)  # clockwise for display
            assert np.abs(img.astype(int) - want.astype(int)).mean() < 6
        if backend == "decord":  # served by decord itself, not by the PyAV fallback
            assert video.backend == "decord" and video._decoder.fell_back == 0


# ------------------------------------------------------------------ pixel budget


def test_pixel_budget_rejects_before_decoding(bikes):
    with pytest.raises(TooLargeError, match=r"640x272 frames .* exceed max_pixels=10000"):
        open_video(bikes, max_pixels=10_000)
    assert issubclass(TooLargeError, VideoError)


@pytest.mark.parametrize("backend", ["pyav", "decord"])
def test_pixel_budget_downscale(bikes, backend):
    with open_video(bikes, max_pixels=160 * 68, downscale=True, backend=backend) as video:
        assert (video.info.width, video.info.height) == (640, 272)  # the source, not the output
        got = sample(video, max_frames=3)
        h, w = got.data.shape[1:3]
        assert h * w <= 160 * 68 and abs(w / h - 640 / 272) < 0.1


# ------------------------------------------------------------------ backends agree


@pytest.mark.parametrize("source", ["bikes", "synthetic"])
def test_pyav_and_decord_give_the_same_frames(source, bikes, tmp_path):
    path = bikes if source == "bikes" else make_video(tmp_path / "clip.mp4", n_frames=60, gop=15)
    with open_video(path, backend="pyav") as a, open_video(path, backend="decord") as b:
        assert a.info.n_frames == b.info.n_frames
        fa, fb = sample(a, max_frames=12), sample(b, max_frames=12)
        assert list(fa.index) == list(fb.index)
        np.testing.assert_array_equal(fa.pts_seconds, fb.pts_seconds)
        diff = np.abs(fa.data.astype(int) - fb.data.astype(int))
        assert diff.mean() < 1.0 and diff.max() <= 8  # same decoder family: pixel-equal or within rounding
        ra, rb = a.read([7, 3, 50]), b.read([7, 3, 50])
        assert np.abs(ra.data.astype(int) - rb.data.astype(int)).mean() < 1.0
        if source == "synthetic":
            assert codes(fa) == list(fa.index) == codes(fb)


# ------------------------------------------------------------------ invariants


@pytest.fixture(scope="module")
def vfr_reader(tmp_path_factory):
    path, true_pts = make_vfr_video(tmp_path_factory.mktemp("vfr") / "vfr.mkv")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DecodeWarning)  # gaps in a VFR file are not damage
        video = open_video(path)
    with video:
        assert video.info.n_frames == len(true_pts)
        yield video


def test_plan_indices_invariants(vfr_reader):
    from hypothesis import given, settings, strategies as st

    video = vfr_reader
    times, dur = video.frame_times, video.info.duration_s

    @settings(max_examples=150, deadline=None)
    @given(fps=st.none() | st.floats(0.1, 100), max_frames=st.none() | st.integers(1, 80),
           start=st.none() | st.floats(0, 3.5), span=st.none() | st.floats(0.05, 5))
    def check(fps, max_frames, start, span):
        end = None if span is None else (start or 0.0) + span
        idx = plan_indices(video, fps=fps, max_frames=max_frames, start_s=start, end_s=end)
        assert np.all(np.diff(idx) > 0) and (idx.size == 0 or (idx[0] >= 0 and idx[-1] < video.info.n_frames))
        if max_frames is not None:
            assert idx.size <= max_frames
        t0, t1 = start or 0.0, min(end if end is not None else dur, dur)
        if idx.size:  # every chosen frame is on screen somewhere in [t0, t1)
            assert times[idx[0]] <= max(t0, times[0]) + 1e-3 or times[idx[0]] >= t0 - 1e-3
            assert times[idx[-1]] < t1 + 1e-3

    check()

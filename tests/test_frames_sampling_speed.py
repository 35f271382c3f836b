"""Sampling at the speed of the fastest raw decoder (issue 12): the index of an mp4 without frame
reordering comes from its sample table (no demux pass over the whole file), equal to what the
demux scan finds; ``auto`` serves a sparse request with PyAV's keyframe seeks without opening
decord, a dense one with decord; no frame is decoded twice within a request.
The timing itself is ``benchmarks/sampling_speed.py`` (results in benchmarks/results/)."""

from __future__ import annotations

import numpy as np
import pytest

from videos import make_vfr_video, make_video, read_frame_code, truncate_file
from vidsift.frames import _probe, open_video
from vidsift.frames._pyav import PyAVDecoder


def fresh_scan(path: str):
    container = _probe.open_container(path)
    try:
        return _probe.scan_index(container, container.streams.video[0], path)
    finally:
        container.close()


@pytest.mark.parametrize("kind", ["cfr", "vfr"])
def test_index_from_the_sample_table_equals_the_demux_scan(tmp_path, monkeypatch, kind):
    path = (make_video(tmp_path / "clip.mp4", n_frames=60, gop=10, codec="mpeg4") if kind == "cfr"
            else make_vfr_video(tmp_path / "vfr.mp4", codec="mpeg4")[0])  # mpeg4: no B-frames
    scanned = fresh_scan(path)
    monkeypatch.setattr(_probe, "scan_index", lambda *a: pytest.fail("demuxed the whole file"))
    table = _probe.scan_file(path, 0)
    assert np.array_equal(table.pts, scanned.pts) and np.array_equal(table.keyframe, scanned.keyframe)
    assert (table.start_pts, table.time_base, table.sequential, table.notes) == \
        (scanned.start_pts, scanned.time_base, scanned.sequential, scanned.notes)


def test_sample_table_is_not_trusted_with_b_frames_or_a_cut_file(tmp_path):
    reordered = make_video(tmp_path / "b.mp4", n_frames=48)  # libx264 veryfast: B-frames
    cut = truncate_file(make_video(tmp_path / "f.mp4", n_frames=96, codec="mpeg4", faststart=True),
                        tmp_path / "cut.mp4", keep=0.5)  # the table lists 96 frames, half the data is gone
    for path in (reordered, cut):
        container = _probe.open_container(path)
        try:
            assert _probe.table_index(container, container.streams.video[0], path) is None
        finally:
            container.close()
    assert len(_probe.scan_file(cut, 0)) < 96


def test_auto_seeks_for_sparse_requests_and_decodes_each_frame_once(tmp_path, monkeypatch):
    path = make_video(tmp_path / "long.mp4", n_frames=240, gop=24)
    decoded: list[int] = []
    frames = PyAVDecoder._frames

    def counting(self, **kwargs):
        for idx, frame in frames(self, **kwargs):
            decoded.append(idx)
            yield idx, frame

    monkeypatch.setattr(PyAVDecoder, "_frames", counting)
    sparse = [5, 50, 100, 170, 230]
    with open_video(path) as video:
        assert video.backend == "decord"
        batch = video.read(sparse)
        assert video._decoder.vr is None  # decord never opened: PyAV's seeks served it
        assert [read_frame_code(img) for img in batch.data] == sparse
        keys = video._index
        assert len(decoded) == len(set(decoded))  # nothing decoded twice
        assert len(decoded) <= sum(t - keys.keyframe_before(t) + 1 for t in sparse) + len(sparse)  # from each keyframe only
        assert [read_frame_code(img) for img in video.read([7, 9]).data] == [7, 9]
        assert video._decoder.vr is None  # a few frames: seeks too
        dense = list(range(120, 136))
        assert [read_frame_code(img) for img in video.read(dense).data] == dense
        assert video._decoder.vr is not None  # a dense request: decord


def test_decoded_pixels_are_stock_pyav_and_one_scaler_serves_the_read(tmp_path, monkeypatch):
    """The decoder converts with one kept ``VideoReformatter`` (its swscale context reused, ~30x
    cheaper a frame): the pixels equal stock PyAV's ``to_ndarray(format="rgb24")`` per frame, at
    the file's size and scaled (``max_pixels``), and a read of many frames builds one reformatter."""
    import av
    from av.video import reformatter as reformatter_mod

    path = make_video(tmp_path / "clip.mp4", n_frames=40, gop=10, codec="mpeg4", size=(96, 64))
    with av.open(path) as c:
        stock = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    made = []
    real = reformatter_mod.VideoReformatter

    def counting():
        made.append(1)
        return real()

    monkeypatch.setattr("vidsift.frames._pyav.VideoReformatter", counting)
    with open_video(path, backend="pyav") as video:
        got = video.read(np.arange(0, 40, 3))
    assert np.array_equal(got.data, np.stack(stock[0:40:3]))
    assert len(made) == 1, made
    with av.open(path) as c:
        small = [f.to_ndarray(format="rgb24", width=48, height=32, interpolation="AREA") for f in c.decode(video=0)]
    with open_video(path, backend="pyav", max_pixels=48 * 32, downscale=True) as video:
        got = video.read(np.arange(0, 40, 7))
    assert got.data.shape[1:3] == (32, 48) and np.array_equal(got.data, np.stack(small[0:40:7]))

"""Bad and damaged inputs: typed one-line errors raised fast (never a hang), and damaged files that
return what decoded plus a DecodeReport and a warning (or DamagedVideoError when strict)."""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import pytest

from videos import (
    corrupt_file, make_audio_only, make_unknown_codec, make_video, read_frame_code, sample_clip, truncate_file, write_garbage,
)
from vidsift.errors import VidsiftError
from vidsift.frames import (
    DamagedVideoError, DecodeWarning, EmptyFileError, NoVideoStreamError, NotAFileError, NotAVideoError,
    TooLargeError, UnreadableStreamError, UnsupportedCodecError, VideoError, VideoNotFoundError, iter_chunks,
    open_video, sample, scan_keyframes,
)

pytestmark = pytest.mark.timeout(20)


def _bad_inputs(tmp: str) -> dict:
    return {
        "missing": (os.path.join(tmp, "nope.mp4"), VideoNotFoundError, "no such file"),
        "directory": (tmp, NotAFileError, "is a directory"),
        "empty": (write_garbage(os.path.join(tmp, "empty.mp4"), "empty"), EmptyFileError, "empty"),
        "random": (write_garbage(os.path.join(tmp, "random.mp4"), "random"), NotAVideoError, "not a video"),
        "random_mkv": (write_garbage(os.path.join(tmp, "r.mkv"), "random", n_bytes=100_000, seed=1),
                       NotAVideoError, "not a video"),
        "text": (write_garbage(os.path.join(tmp, "notes.txt"), "text"), NotAVideoError, "not a video"),
        "text_as_mp4": (write_garbage(os.path.join(tmp, "notes.mp4"), "text"), NotAVideoError, "not a video"),
        "audio_only": (make_audio_only(os.path.join(tmp, "tone.m4a")), NoVideoStreamError, "no video stream"),
        "audio_wav": (make_audio_only(os.path.join(tmp, "tone.wav")), NoVideoStreamError, "no video stream"),
        "unknown_codec": (make_unknown_codec(os.path.join(tmp, "zzz1.mp4")), UnsupportedCodecError, "codec"),
        "mp4_cut_before_index": (truncate_file(sample_clip("bikes.mp4"), os.path.join(tmp, "cut.mp4"), keep=0.5),
                                 DamagedVideoError, "moov"),
    }


@pytest.mark.parametrize("case", ["missing", "directory", "empty", "random", "random_mkv", "text", "text_as_mp4",
                                  "audio_only", "audio_wav", "unknown_codec", "mp4_cut_before_index"])
def test_bad_input_typed_one_line_error_fast(tmp_path, case):
    path, error, words = _bad_inputs(str(tmp_path))[case]
    t0 = time.perf_counter()
    with pytest.raises(error) as caught:
        open_video(path)
    assert time.perf_counter() - t0 < 5
    err = caught.value
    assert isinstance(err, VideoError) and isinstance(err, VidsiftError)
    msg = str(err)
    assert "\n" not in msg and msg.startswith(f"{path}: ") and words in msg


def test_error_hierarchy():
    for cls in (VideoNotFoundError, NotAFileError, EmptyFileError, NotAVideoError, NoVideoStreamError,
                UnsupportedCodecError, UnreadableStreamError, DamagedVideoError, TooLargeError):
        assert issubclass(cls, VideoError)
    assert str(UnsupportedCodecError("x.mkv", "no decoder")) == "x.mkv: no decoder"


def test_video_without_decodable_frames(tmp_path):
    """A valid container whose video packets are garbage: a typed error, not a hang or an empty result."""
    src = make_video(tmp_path / "ok.mkv", n_frames=24)
    data = bytearray(open(src, "rb").read())
    rng = np.random.default_rng(0)
    start = 600  # past the matroska header: scramble every packet payload
    data[start:] = rng.integers(0, 256, len(data) - start, dtype=np.uint8).tobytes()
    bad = tmp_path / "scrambled.mkv"
    bad.write_bytes(bytes(data))
    t0 = time.perf_counter()
    with pytest.raises(VideoError):
        open_video(bad)
    assert time.perf_counter() - t0 < 5


# ------------------------------------------------------------------ damaged files


@pytest.mark.parametrize("ext", ["mkv", "webm", "mp4"])
def test_truncated_file_reports_missing_frames(tmp_path, ext):
    src = make_video(tmp_path / f"full.{ext}", n_frames=96, faststart=(ext == "mp4"))
    cut = truncate_file(src, tmp_path / f"cut.{ext}", keep=0.55)
    with pytest.warns(DecodeWarning, match=r"(\d+) missing") as caught:
        video = open_video(cut, backend="pyav")
    with video:
        assert video.info.n_frames == 96  # what the header promises
        held = len(video.frame_times)  # what the file holds
        assert f"({96 - held} missing" in str(caught[0].message)
        with pytest.warns(DecodeWarning, match=r"\d+ of \d+ requested frames could not be decoded"):
            got = sample(video, fps=24)
        assert 20 < len(got) <= held
        rep = video.report
        # B-frames cut off mid-GOP leave pts holes before the end, so a few targets share a frame
        assert rep.missing_frames == rep.expected_frames - len(got) >= 96 - held - 3 and not rep.ok
        assert rep.decoded_frames == len(got) and rep.expected_frames >= 92
        assert rep.missing_indices[-1] == 95
        # what came back is right: each picture is the one its timestamp says (indices count the frames
        # the file holds, so a B-frame cut off before the end shifts them, timestamps never)
        assert [read_frame_code(img) for img in got.data] == [round(t * 24) for t in got.pts_seconds]


def test_truncated_strict_raises(tmp_path):
    src = make_video(tmp_path / "full.mkv", n_frames=96)
    cut = truncate_file(src, tmp_path / "cut.mkv", keep=0.5)
    with pytest.raises(DamagedVideoError, match="damaged video: .*missing"):
        open_video(cut, strict=True)


def test_sample_past_the_end_is_reported_not_silent(tmp_path):
    src = make_video(tmp_path / "full.mkv", n_frames=96)
    cut = truncate_file(src, tmp_path / "cut.mkv", keep=0.5)
    with pytest.warns(DecodeWarning):
        video = open_video(cut)
    with video, pytest.warns(DecodeWarning, match="could not be decoded"):
        got = sample(video, start_s=3.0, end_s=4.0, fps=4)  # entirely past what decodes
        assert len(got) == 0
        assert video.report.missing_frames == 4


def test_corrupted_middle_reports_errors_and_suspects(tmp_path):
    src = make_video(tmp_path / "full.mp4", n_frames=96, gop=24)
    bad = corrupt_file(src, tmp_path / "bad.mp4", at=0.5, n_bytes=1500)
    with open_video(bad, backend="pyav") as video, pytest.warns(DecodeWarning, match="decode error"):
        got = sample(video, fps=24)
    rep = video.report
    assert rep.errors and rep.suspect_frames and not rep.ok
    assert rep.decoded_frames + rep.missing_frames == rep.expected_frames == 96
    assert len(got) == rep.decoded_frames
    good = [k for k, i in enumerate(got.index) if i not in rep.suspect_frames]
    assert good and all(read_frame_code(got.data[k]) == round(got.pts_seconds[k] * 24) for k in good)
    with open_video(bad, strict=True) as video, pytest.raises(DamagedVideoError, match="decode error"):
        sample(video, fps=24)


def test_corrupted_real_clip_decodes_with_report(tmp_path):
    bad = corrupt_file(sample_clip("bikes.mp4"), tmp_path / "bikes_bad.mp4", at=0.5, n_bytes=3000)
    with open_video(bad, backend="pyav") as video, pytest.warns(DecodeWarning, match="decode error"):
        n = sum(len(c) for c in iter_chunks(video, chunk_frames=100))
    assert video.report.expected_frames == 250 and n == video.report.decoded_frames
    assert video.report.errors and video.report.suspect_frames
    with open_video(bad, backend="decord") as video, warnings.catch_warnings():
        warnings.simplefilter("ignore", DecodeWarning)  # decord conceals errors; its PyAV fallback may warn
        assert len(sample(video, max_frames=16)) == 16


def test_keyframe_scan_of_truncated_file_reports(tmp_path):
    src = make_video(tmp_path / "full.mkv", n_frames=96, gop=12)
    cut = truncate_file(src, tmp_path / "cut.mkv", keep=0.5)
    with pytest.warns(DecodeWarning):
        video = open_video(cut)
    with video:
        keys = scan_keyframes(video)
        assert len(keys) >= 2 and [round(t * 24) for t in keys.pts_seconds] == [read_frame_code(k) for k in keys.data]


def test_decoder_state_survives_many_mixed_reads(tmp_path):
    path = make_video(tmp_path / "clip.ts", n_frames=72, gop=12)
    rng = np.random.default_rng(0)
    with open_video(path) as video:
        for _ in range(6):
            want = rng.choice(72, size=9, replace=False)
            got = video.read(want)
            assert [read_frame_code(img) for img in got.data] == list(want)
        assert video.report.ok


def test_closed_reader_raises(tmp_video):
    video = open_video(tmp_video)
    video.close()
    video.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        video.read([0])


def test_decord_get_batch_failure_falls_back(tmp_video):
    """decord's get_batch throws on a batch it cannot serve: per-frame reads, then PyAV, take over."""
    with open_video(tmp_video, backend="decord") as video:
        decoder = video._decoder
        out = decoder.read(np.asarray([3, 10, 48 + 5]))  # 53 does not exist: decord raises for the batch
        assert sorted(out) == [3, 10] and any("decord get_batch failed" in w for w in video.report.warnings)
        assert [read_frame_code(out[i]) for i in (3, 10)] == [3, 10]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_decord_on_corrupted_file_never_breaks(tmp_path, seed):
    """decord on damaged input (its own threaded decoder, not deterministic): whatever path it takes
    (open refused -> PyAV, get_batch failure -> per-frame -> PyAV), the result is consistent."""
    src = make_video(tmp_path / "full.mkv", n_frames=96)
    bad = corrupt_file(src, tmp_path / "bad.mkv", at=0.4, n_bytes=1500, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DecodeWarning)
        try:
            video = open_video(bad, backend="decord")
        except VideoError:
            return  # damaged beyond opening: a typed error is a fine answer
        with video:
            n = len(video.frame_times)
            got = video.read(range(n))
            assert got.data.shape[1:] == (64, 96, 3)
            assert video.report.decoded_frames == len(got) >= n // 2
            assert video.report.decoded_frames + video.report.missing_frames == n

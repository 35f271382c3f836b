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

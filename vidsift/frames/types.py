"""Data that leaves the decoding layer: what a video is (`VideoInfo`), frames (`FrameBatch`)
and what went wrong while decoding (`DecodeReport`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class VideoInfo:
    """What a video file or stream is. Width/height are in display orientation."""

    path: str
    duration_s: float
    fps: float  # declared by the container (average frame rate)
    measured_fps: float | None  # n_frames / duration from a scan, None until scanned
    n_frames: int
    n_frames_scanned: bool  # True when n_frames was counted, not read from the header
    width: int
    height: int
    rotation: int  # degrees clockwise applied to get display orientation (0/90/180/270)
    codec: str
    backend: str  # "pyav" or "decord"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class FrameBatch:
    """Decoded frames in display orientation.

    data:        uint8 (N, H, W, 3) RGB
    pts_seconds: float64 (N,) presentation time of each frame
    index:       int64 (N,) frame number in decode order of the whole video
    decode:      the file's decode report (:meth:`DecodeReport.summary`) when read from a file, else None
    """

    data: np.ndarray
    pts_seconds: np.ndarray
    index: np.ndarray
    decode: dict | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        self.pts_seconds = np.asarray(self.pts_seconds, dtype=np.float64)
        self.index = np.asarray(self.index, dtype=np.int64)
        if self.data.dtype != np.uint8 or self.data.ndim != 4 or self.data.shape[-1] != 3:
            raise ValueError(f"FrameBatch.data must be uint8 (N,H,W,3), got {self.data.dtype} {self.data.shape}")
        n = self.data.shape[0]
        if self.pts_seconds.shape != (n,) or self.index.shape != (n,):
            raise ValueError(
                f"FrameBatch: {n} frames but pts_seconds {self.pts_seconds.shape} and index {self.index.shape}"
            )

    def __len__(self) -> int:
        return int(self.data.shape[0])

    def __getitem__(self, key) -> "FrameBatch":
        """Select frames by slice, index array or boolean mask; always returns a FrameBatch."""
        if isinstance(key, (int, np.integer)):
            key = [int(key)]
        return FrameBatch(self.data[key], self.pts_seconds[key], self.index[key], decode=self.decode)

    def __repr__(self) -> str:
        span = f"{self.pts_seconds[0]:.2f}-{self.pts_seconds[-1]:.2f}s" if len(self) else "empty"
        return f"FrameBatch(n={len(self)}, shape={tuple(self.data.shape[1:])}, {span})"

    @staticmethod
    def concat(batches: list["FrameBatch"]) -> "FrameBatch":
        if not batches:
            raise ValueError("FrameBatch.concat needs at least one batch")
        return FrameBatch(
            np.concatenate([b.data for b in batches]),
            np.concatenate([b.pts_seconds for b in batches]),
            np.concatenate([b.index for b in batches]),
            decode=batches[-1].decode,  # the latest count of the same file
        )


@dataclass
class DecodeReport:
    """What decoding a file actually produced, so a damaged file never yields a silently short result."""

    expected_frames: int
    decoded_frames: int = 0
    errors: list[str] = field(default_factory=list)
    suspect_frames: list[int] = field(default_factory=list)  # after an error, until the next keyframe
    warnings: list[str] = field(default_factory=list)
    last_pts_s: float | None = None
    expected_duration_s: float | None = None
    missing_indices: list[int] = field(default_factory=list)  # frames asked for that did not decode
    frames_expected: int = 0  # frames the file should hold (header, duration, timestamp gaps)
    frames_in_file: int = 0  # frames the file's index holds
    reason: str | None = None  # why the file lacks frames, one line; None when it lacks none

    @property
    def missing_frames(self) -> int:
        """Frames asked for (every read so far) that were not delivered."""
        return max(0, self.expected_frames - self.decoded_frames)

    @property
    def ok(self) -> bool:
        return not self.errors and self.missing_frames == 0 and self.summary()["missing"] == 0

    def summary(self) -> dict:
        """The file's count, the same wherever it is shown: ``frames_expected`` (what the file should
        hold), ``frames_decoded`` (what it holds, less the frames known not to decode), ``missing``
        (the difference) and ``reason``."""
        undecodable = len({i for i in self.missing_indices if i < self.frames_in_file})
        decoded = self.frames_in_file - undecodable
        missing = max(0, self.frames_expected - decoded)
        reason = self.reason
        if undecodable:
            why = f"{undecodable} frame(s) in the file did not decode" + (f" ({self.errors[0]})" if self.errors else "")
            reason = f"{reason}; {why}" if reason else why
        return {"frames_expected": self.frames_expected, "frames_decoded": decoded, "missing": missing,
                "reason": reason if missing else None}

    def to_dict(self) -> dict:
        return {**asdict(self), "missing_frames": self.missing_frames, "ok": self.ok, "file": self.summary()}

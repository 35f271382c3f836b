"""Data that leaves the decoding layer: what a video is (`VideoInfo`), frames (`FrameBatch`, defined
with the other shared types in `vidsift.types`) and what went wrong while decoding (`DecodeReport`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..types import FrameBatch  # noqa: F401  (re-exported: frames is its home package)

DECODE_MAX_PIXELS = 1920 * 1080  # `plan` and `ask` decode larger videos downscaled to this (model preprocessing resizes anyway)
PLAYLIST_FORMATS = frozenset({"concat", "hls", "dash", "ffmetadata"})  # demuxers that open other files: never followed
LIVE_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "udp", "tcp", "srt", "rtp", "v4l2"})  # opened as live: no duration, no seeking


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
    backend: str  # "pyav", "decord" or "torchcodec"

    def to_dict(self) -> dict:
        return asdict(self)


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
    resized_frames: list[int] = field(default_factory=list)  # of another size than the first frame: scaled to it

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
        (the difference) and ``reason``; and ``resized_frames`` where the resolution changes mid-file:
        frames delivered so far whose size was not the first frame's (they were scaled to it)."""
        undecodable = len({i for i in self.missing_indices if i < self.frames_in_file})
        decoded = self.frames_in_file - undecodable
        missing = max(0, self.frames_expected - decoded)
        reason = self.reason
        if undecodable:
            why = f"{undecodable} frame(s) in the file did not decode" + (f" ({self.errors[0]})" if self.errors else "")
            reason = f"{reason}; {why}" if reason else why
        out = {"frames_expected": self.frames_expected, "frames_decoded": decoded, "missing": missing,
               "reason": reason if missing else None}
        if self.resized_frames:  # only where the resolution changes mid-file
            out["resized_frames"] = len(self.resized_frames)
        return out

    def to_dict(self) -> dict:
        return {**asdict(self), "missing_frames": self.missing_frames, "ok": self.ok, "file": self.summary()}

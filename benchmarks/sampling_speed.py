"""Sampling speed: vidsift's ``sample(fps=1, max_frames=64)`` against the raw decoders asked for the
same frame times, on long files with a short and a long GOP (issue 12, "sampling at the speed of
the fastest raw decoder").

For each file it takes the frame times vidsift's sampler picks, then times, each in a fresh
subprocess (so peak RSS is per method):

    vidsift        open_video + sample (backend auto)
    vidsift-torchcodec  open_video(backend="torchcodec") + sample: vidsift's own torchcodec backend
                   (needs torchcodec in vidsift's interpreter; its import is not timed)
    pyav-seek      one PyAV seek (backward to a keyframe) + decode forward per time
    pyav-straight  one sequential PyAV decode of the file, keeping the frames at those times
    decord         decord.VideoReader.get_batch on the same indices
    torchcodec     torchcodec's VideoDecoder.get_frames_played_at (exact seek mode, one FFmpeg thread;
                   the yardstick issue 24 names: run with ``--torchcodec-python`` naming an interpreter
                   that has torchcodec and the system FFmpeg it links against, e.g. a separate venv,
                   since it is not one of vidsift's dependencies)

and prints seconds, peak RSS and vidsift / fastest-raw ratios in one table (``--json``: rows;
``--out``: rows, CPU model and flags, load average). Each method runs ``--repeat`` times,
interleaved, and its fastest run counts: on a shared machine one run can take 10x another.
Memory is the child's own peak (VmHWM) less its size after the imports, as a multiple of the
returned frames' bytes (issue 24 asks <= 1.5x), and beside it the part of the growth, with the
frames held and the decoder open, that is data (anonymous pages), not pages of the decoders' shared
libraries (their code: two FFmpeg builds when vidsift's torchcodec backend runs, PyAV's and the
system's). Files are synthesised once (640x360 H.264, 25 fps) into ``--dir`` and kept.

    python benchmarks/sampling_speed.py [--minutes 30] [--gops 12,250] [--frames 64] [--repeat 3]
        [--methods vidsift,pyav-seek,...] [--out benchmarks/results/sampling_speed.json] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

METHODS = ("vidsift", "vidsift-torchcodec", "pyav-seek", "pyav-straight", "decord", "torchcodec")


def synthesize(path: Path, *, minutes: float, gop: int, fps: int = 25, size: tuple[int, int] = (640, 360)) -> Path:
    """A long H.264 file with moving content (cheap to encode: ultrafast)."""
    if path.exists():
        return path
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    w, h = size
    with av.open(str(tmp), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.options = {"preset": "ultrafast", "crf": "30", "g": str(gop), "keyint_min": str(gop),
                          "sc_threshold": "0"}
        base = np.zeros((h, w, 3), np.uint8)
        for i in range(int(minutes * 60 * fps)):
            img = base.copy()
            img[..., 0] = (i * 3) % 256
            x = (i * 5) % (w - 32)
            img[:, x : x + 32] = 255
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    tmp.replace(path)
    return path


CHILD = r"""
import json, sys, time
method, path, times = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
if method == "torchcodec":
    from torchcodec.decoders import VideoDecoder
else:
    import av, decord
    from vidsift.frames import open_video, sample
    if method == "vidsift-torchcodec":
        import torchcodec.decoders  # loads torch: not timed, as the torchcodec method's import
def status_kb():  # this process's memory lines, kB
    with open("/proc/self/status") as fh:
        return {k: int(v.split()[0]) for k, _, v in (line.partition(":") for line in fh)
                if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile")}
base = status_kb()  # resident size after the imports, before any decoding
t0 = time.perf_counter()  # imports are not timed
if method in ("vidsift", "vidsift-torchcodec"):
    with open_video(path, backend="torchcodec" if method == "vidsift-torchcodec" else "auto") as video:
        kept = sample(video, fps=1, max_frames=len(times)).data
        snap = status_kb()  # the frames and the open decoders
        assert video.backend == method.partition("-")[2] or method == "vidsift", video.backend
elif method == "pyav-seek":
    kept = []
    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for t in times:
            c.seek(int(t / s.time_base), stream=s, backward=True, any_frame=False)
            for f in c.decode(s):
                if f.time is not None and f.time >= t - 1e-3:
                    kept.append(f.to_ndarray(format="rgb24"))
                    break
        snap = status_kb()
elif method == "pyav-straight":
    kept = []
    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        for f in c.decode(s):
            if len(kept) < len(times) and f.time is not None and f.time >= times[len(kept)] - 1e-3:
                kept.append(f.to_ndarray(format="rgb24"))
                if len(kept) == len(times):
                    break
        snap = status_kb()
elif method == "decord":
    vr = decord.VideoReader(path, num_threads=0)
    fps = vr.get_avg_fps()
    kept = vr.get_batch([min(len(vr) - 1, int(round(t * fps))) for t in times]).asnumpy()
    snap = status_kb()
elif method == "torchcodec":
    decoder = VideoDecoder(path, seek_mode="exact", num_ffmpeg_threads=1, dimension_order="NHWC")
    kept = decoder.get_frames_played_at(seconds=times).data.numpy()
    snap = status_kb()
seconds = time.perf_counter() - t0
end = status_kb()  # VmHWM: this process's own peak (ru_maxrss carries the parent's size at fork)
print(json.dumps({"seconds": seconds, "frames": len(kept), "peak_rss_mb": end["VmHWM"] / 1024, "base_rss_mb": base["VmRSS"] / 1024,
                  # what the resident growth is made of with the frames decoded and the decoder still
                  # open: data (anonymous pages) and pages of mapped files (the decoders' libraries' code)
                  "anon_growth_mb": (snap["RssAnon"] - base["RssAnon"]) / 1024,
                  "file_growth_mb": (snap["RssFile"] - base["RssFile"]) / 1024}))
"""


def cpu_description() -> dict:
    """CPU model, core count and flags (from /proc/cpuinfo) for the results file."""
    info: dict = {"cores": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "flags") and key not in info:
                    info[key] = value.strip()
    except OSError:
        pass
    return info


def frame_times(path: Path, frames: int) -> list[float]:
    from vidsift.frames import open_video, sample

    with open_video(path) as video:
        return [float(t) for t in sample(video, fps=1, max_frames=frames).pts_seconds]


def measure(method: str, path: Path, times: list[float], python: str = sys.executable) -> dict:
    out = subprocess.run([python, "-c", CHILD, method, str(path), json.dumps(times)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--gops", default="12,250")
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--dir", default="benchmarks/.videos")
    ap.add_argument("--repeat", type=int, default=3, help="runs per method, interleaved; the fastest counts "
                    "(on a shared machine the least disturbed)")
    ap.add_argument("--methods", default=",".join(METHODS), help="subset to time (vidsift and at least one raw)")
    ap.add_argument("--torchcodec-python", help="interpreter with torchcodec installed (the torchcodec "
                    "method is skipped without it)")
    ap.add_argument("--out", help="also write the rows, the CPU and the load average to this JSON file")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    methods = [m for m in METHODS if m in args.methods.split(",") and (m != "torchcodec" or args.torchcodec_python)]
    python = {"torchcodec": args.torchcodec_python}
    load_before = os.getloadavg()
    rows = []
    for gop in (int(g) for g in args.gops.split(",")):
        path = synthesize(Path(args.dir) / f"long-{args.minutes:g}min-gop{gop}.mp4", minutes=args.minutes, gop=gop)
        times = frame_times(path, args.frames)
        runs = [[measure(m, path, times, python.get(m) or sys.executable) for m in methods]
                for _ in range(args.repeat)]  # interleaved
        got = {m: min((r[i] for r in runs), key=lambda x: x["seconds"]) | {"all_seconds": [round(r[i]["seconds"], 3) for r in runs]}
               for i, m in enumerate(methods)}
        fastest = min(got[m]["seconds"] for m in methods if not m.startswith("vidsift"))
        yardstick = got["torchcodec"]["seconds"] if "torchcodec" in got else None
        seeks = got["pyav-seek"]["seconds"] if "pyav-seek" in got else None
        frame_mb = len(times) * 640 * 360 * 3 / 2**20
        for m in methods:
            grew = got[m]["peak_rss_mb"] - got[m]["base_rss_mb"]  # memory the decoding took, imports left out
            rows.append({"file": path.name, "gop": gop, "method": m,
                         **{k: v if isinstance(v, list) else round(v, 3) for k, v in got[m].items()},
                         "vs_fastest_raw": round(got[m]["seconds"] / fastest, 2),
                         "vs_torchcodec": round(got[m]["seconds"] / yardstick, 2) if yardstick else None,
                         "vs_pyav_seek": round(got[m]["seconds"] / seeks, 2) if seeks else None, "frames_mb": round(frame_mb, 1),
                         "rss_growth_mb": round(grew, 1), "growth_x_frames": round(grew / frame_mb, 2),
                         "anon_growth_x_frames": round(got[m]["anon_growth_mb"] / frame_mb, 2),
                         "median_vs_torchcodec": round(float(np.median(got[m]["all_seconds"]))
                                                       / float(np.median(got["torchcodec"]["all_seconds"])), 2) if yardstick else None})
    if args.out:
        Path(args.out).write_text(json.dumps({
            "rows": rows, "minutes": args.minutes, "frames": args.frames, "repeat": args.repeat, "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
            "cpu": cpu_description(), "load_average_before": load_before, "load_average_after": os.getloadavg(),
            "note": "the machine was shared (other jobs running): ratios within one run are what counts"}, indent=1) + "\n")
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'file':28} {'method':18} {'frames':>6} {'seconds':>8} {'x fastest raw':>13} {'x torchcodec':>12} "
          f"{'x pyav-seek':>11} {'RSS growth MB':>13} {'x frames':>8} {'data x frames':>13}")
    for r in rows:
        tc = f"{r['vs_torchcodec']:12.2f}" if r["vs_torchcodec"] else f"{'-':>12}"
        ps = f"{r['vs_pyav_seek']:11.2f}" if r["vs_pyav_seek"] else f"{'-':>11}"
        print(f"{r['file']:28} {r['method']:18} {r['frames']:6d} {r['seconds']:8.3f} {r['vs_fastest_raw']:13.2f} {tc} {ps} "
              f"{r['rss_growth_mb']:13.1f} {r['growth_x_frames']:8.2f} {r['anon_growth_x_frames']:13.2f}")


if __name__ == "__main__":
    main()

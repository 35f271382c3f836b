"""The one CPU thread policy (`vidsift.threads`): which count wins, that torch, every BLAS/OpenMP
pool and FAISS get it (FAISS also when it loads later), worker threads and batch workers keep it,
and a bad count is a one-line error. Library state is per process, so the checks that set
threads run in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vidsift import threads
from vidsift.cli.app import run
from vidsift.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def fresh(code: str) -> dict:
    """Run ``code`` in a new interpreter (no thread variables set) and return the JSON it prints last."""
    env = {k: v for k, v in __import__("os").environ.items()
           if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", threads.ENV)}
    env["PYTHONPATH"] = f"{ROOT}:{ROOT / 'tests'}"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


PROBE = """
import json, os, threading, torch, faiss, numpy
from threadpoolctl import threadpool_info
def seen():
    return {"torch": torch.get_num_threads(), "faiss": faiss.omp_get_max_threads(),
            "pools": sorted({p["num_threads"] for p in threadpool_info()})}
"""


def test_count_precedence_and_errors(monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    assert threads.resolve() == threads.default_threads() == max(1, threads.available_cpus() // 2)
    monkeypatch.setenv(threads.ENV, "3")
    assert threads.resolve() == 3 and threads.resolve(5) == 5  # --threads wins over the environment
    for value, subject in ((0, "--threads 0"), (-2, "--threads -2")):
        with pytest.raises(ConfigError, match=f"^{subject}: must be a whole number of threads >= 1$"):
            threads.resolve(value)
    monkeypatch.setenv(threads.ENV, "two")
    with pytest.raises(ConfigError, match="^VIDSIFT_THREADS=two: must be"):
        threads.resolve()


def test_apply_sets_every_library_and_worker_threads():
    """Libraries start at their own count (the CPUs); after apply(3) torch, every BLAS/OpenMP pool
    and FAISS use 3, a new thread (serve's model thread, the stream's ingest thread) keeps 3 after
    apply_here, and the environment carries 3 to libraries loaded later and child processes."""
    got = fresh(PROBE + """
from vidsift import threads
before = seen()
threads.apply(3)
after = seen()
box = []
t = threading.Thread(target=lambda: (threads.apply_here(), box.append(seen()))); t.start(); t.join()
print(json.dumps({"before": before, "after": after, "thread": box[0],
                  "env": [os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VIDSIFT_THREADS")]}))
""")
    assert got["before"]["torch"] != 3
    assert got["after"] == {"torch": 3, "faiss": 3, "pools": [3]}
    assert got["thread"] == got["after"]
    assert got["env"] == ["3"] * 4


def test_libraries_loaded_later_get_the_count():
    """apply() before torch and FAISS load (as the CLI does): a selector using FAISS, and a model
    load, find the count. One more than the CPUs: torch caps ``OMP_NUM_THREADS`` at the CPUs when it
    loads, so only the re-apply after loading gives it this count."""
    n = threads.available_cpus() + 1
    got = fresh(f"n = {n}" + """
import json, sys
from vidsift import threads
threads.apply(n)
assert "faiss" not in sys.modules and "torch" not in sys.modules
from vidsift.selectors import SELECTORS
import numpy as np
SELECTORS.build("kcenter").select(np.random.default_rng(0).random((50, 8), dtype=np.float32), np.ones(50, np.float32), 4)
import faiss, torch
from threadpoolctl import threadpool_info
from vidsift.pipeline.loader import load_adapter
load_adapter("vidsift/probe/checkpoint", device="cpu")
print(json.dumps({"faiss": faiss.omp_get_max_threads(), "torch": torch.get_num_threads(),
                  "pools": sorted({p["num_threads"] for p in threadpool_info()})}))
""")
    assert got == {"faiss": n, "torch": n, "pools": [n]}


def test_batch_worker_applies_its_spec():
    """A batch or Ray worker applies its spec's count (the Ray engine fills in its CPUs per worker)."""
    got = fresh(PROBE + """
from vidsift.batch.worker import WorkerSpec, build_answerer
build_answerer(WorkerSpec(model="unused", answerer="test_threads:null_answerer", threads=3))
print(json.dumps(seen()))
""")
    assert got == {"torch": 3, "faiss": 3, "pools": [3]}


def null_answerer(spec):
    return lambda video, question, **overrides: "answer"


@pytest.mark.parametrize("command", [["ask", "x.mp4", "q"], ["plan", "x.mp4"], ["eval", "-d", "probe", "--root", "x"], ["batch", "x", "-m", "m"],
                                     ["serve", "-m", "m"], ["stream", "-s", "x", "-m", "m"], ["bench", "-m", "m"],
                                     ["index", "x.mp4"]])
def test_cli_threads_option(command, capsys):
    assert run([*command, "--threads", "0"]) == 1
    assert capsys.readouterr().err.strip() == "error: --threads 0: must be a whole number of threads >= 1"


def test_video_decoder_uses_the_policy(tmp_path, monkeypatch):
    """The PyAV decoder's slice threads follow the policy (an FFmpeg pool of its own size, one per
    CPU, would compete with the model's threads): VIDSIFT_THREADS=2 and 4 give the codec 2 and 4
    threads (two counts: FFmpeg's own automatic count may equal one), and `apply(1)` in the process
    overrides the environment."""
    from videos import make_video

    from vidsift.frames import open_video, sample

    path = make_video(tmp_path / "clip.mp4", n_frames=24)
    monkeypatch.setattr(threads, "_chosen", [])

    def codec_threads() -> tuple[int, int]:
        with open_video(path, backend="pyav") as video:
            sample(video, max_frames=4)
            return video._decoder.stream.codec_context.thread_count, video._decoder.stream.thread_type.name
    for count in (2, 4):
        monkeypatch.setenv(threads.ENV, str(count))
        assert codec_threads() == (count, "SLICE")
    monkeypatch.setattr(threads, "_chosen", [1])
    assert codec_threads()[0] == 1

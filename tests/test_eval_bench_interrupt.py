"""Ctrl-C always stops `vidsift eval` and `vidsift bench` (exit 130, ``error: interrupted``), also
when the interrupt is swallowed inside a run (as decord's ``VideoReader.__del__`` did): eval's
resumable results file loses no finished row and a rerun writes none twice; bench leaves no
half-written report behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_eval_data import make_videomme
from videos import make_video

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

# slow stand-ins that swallow KeyboardInterrupt where it lands, like a __del__ would
EVAL = """
import sys, time
import vidsift.batch.engine as engine
import vidsift.batch.worker as worker

def slow(spec):
    def answer(video, question, **overrides):
        try:
            time.sleep(0.05)
        except KeyboardInterrupt:
            pass
        return {"answer": "A", "plan": None, "stats": {}}
    return answer

worker.pipeline_answerer = slow
engine.resolve_model = lambda model: model
from vidsift.cli.app import run
sys.exit(run(sys.argv[1:]))
"""

BENCH = """
import os, sys, time, types
import vidsift.batch.worker as worker

class Answer:
    text = "ok"
    stats = {"time_s": {}}

class Slow:
    name = "stub"
    def clear_cache(self):
        pass
    def ask(self, video, question, **overrides):
        with open(os.environ["BENCH_CALLS"], "a") as f:
            f.write("x\\n")
        try:
            time.sleep(0.05)
        except KeyboardInterrupt:
            pass
        return Answer()

class Pipeline:  # stands in for vidsift.pipeline.pipeline (no transformers import: a fast start)
    from_pretrained = staticmethod(lambda *a, **k: Slow())

sys.modules["vidsift.pipeline.pipeline"] = types.SimpleNamespace(Pipeline=Pipeline)
worker.resolve_model = lambda model: model
from vidsift.cli.app import run
sys.exit(run(sys.argv[1:]))
"""

TRIALS = 3


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _ids(path: Path) -> list[str]:
    ids = []
    for line in _lines(path):
        try:
            ids.append(json.loads(line)["id"])
        except (json.JSONDecodeError, KeyError):
            pass  # a torn last line is allowed; the reader skips it
    return ids


def _interrupt_each(procs: list[subprocess.Popen], progress, *, at) -> None:
    """SIGINT each process once ``progress(trial)`` exceeds ``at(trial)``."""
    pending = dict(enumerate(procs))
    deadline = time.monotonic() + 150
    while pending and time.monotonic() < deadline:
        for trial, proc in list(pending.items()):
            if progress(trial) > at(trial):
                proc.send_signal(signal.SIGINT)
                del pending[trial]
            elif proc.poll() is not None:
                pytest.fail(f"trial {trial} ended before it was interrupted: {proc.communicate()[1][-500:]}")
        time.sleep(0.01)
    assert not pending, "a run never started"


def _check_interrupted(procs: list[subprocess.Popen]) -> None:
    try:
        for trial, proc in enumerate(procs):
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 130, (trial, err[-500:])
            assert "error: interrupted" in err and "Traceback" not in err, err[-500:]
    finally:
        for proc in procs:  # a run that did not stop must not outlive the test
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def test_ctrl_c_always_stops_eval_and_resume_is_exact(tmp_path):
    root = make_videomme(tmp_path / "vmme")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    budgets = "100%,90%,80%,70%,60%,50%,40%"  # 6 questions x 7 budgets = 42 jobs

    def command(out: Path) -> list[str]:
        return [sys.executable, "-c", EVAL, "eval", "--dataset", "videomme", "--root", str(root), "--model", "stub",
                "--budget", budgets, "--out", str(out), "--no-progress", "--json"]

    outs = [tmp_path / f"results{trial}.jsonl" for trial in range(TRIALS)]
    procs = [subprocess.Popen(command(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for out in outs]
    _interrupt_each(procs, lambda trial: len(_ids(outs[trial])), at=lambda trial: trial % 3)
    _check_interrupted(procs)
    for out in outs:
        assert 0 < len(_ids(out)) < 42 and len(set(_ids(out))) == len(_ids(out))
        assert not out.with_suffix(".summary.json").exists()  # no summary of a run that did not finish
    kept = _ids(outs[0])
    run = subprocess.run(command(outs[0]), capture_output=True, text=True, env=env, timeout=150)
    assert run.returncode == 0, run.stderr[-500:]
    ids = _ids(outs[0])
    assert ids[: len(kept)] == kept and len(ids) == len(set(ids)) == 42  # none lost, none twice
    assert json.loads(run.stdout)["dataset"] == "videomme"


def test_ctrl_c_always_stops_bench_and_writes_no_partial_report(tmp_path):
    video = make_video(tmp_path / "clip.mp4", n_frames=24)
    procs, calls, outs = [], [], []
    for trial in range(TRIALS):
        calls.append(tmp_path / f"calls{trial}.txt")
        outs.append(tmp_path / f"bench{trial}")
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path),
               "BENCH_CALLS": str(calls[-1])}
        procs.append(subprocess.Popen(
            [sys.executable, "-c", BENCH, "bench", "--model", "stub", "--video", video, "--frames", "4",
             "--repeat", "40", "--warmup", "0", "--out", str(outs[-1])],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    _interrupt_each(procs, lambda trial: len(_lines(calls[trial])), at=lambda trial: 1 + trial % 3)
    _check_interrupted(procs)
    for trial in range(TRIALS):
        assert len(_lines(calls[trial])) < 200  # 5 settings x 40 rounds: it stopped, it did not run them all
        assert not outs[trial].exists() or not any(outs[trial].iterdir())  # no report, whole or half

"""One Ctrl-C stops `vidsift batch --workers 2` (and `vidsift serve`) within 5 s: exit 130, the one
line ``error: interrupted``, no traceback from the worker processes, and every result finished
before the interrupt kept in the output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

# a stand-in model: 1 s to load (where a Ctrl-C used to land in the pool's initializer; each worker
# leaves a marker when it starts), 3 s an answer (the pool used to finish every job handed out first)
ANSWERER = '''
import os, time

def slow(spec):
    open(os.path.join(os.environ["MARKERS"], f"loading-{os.getpid()}"), "w").close()
    time.sleep(1.0)
    def answer(video, question, **overrides):
        time.sleep(3.0)
        return {"answer": "ok", "plan": None, "stats": {}}
    return answer
'''
# the CLI with that answerer in every worker process (the spec is pickled to them with its name)
SCRIPT = """
import sys
import vidsift.batch as batch
import vidsift.batch.engine as engine
real = batch.WorkerSpec
batch.WorkerSpec = lambda **kw: real(**{**kw, "answerer": "slow_answerer:slow"})
engine.resolve_model = lambda model: model
from vidsift.cli.app import run
sys.exit(run(sys.argv[1:]))
"""


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []


def ctrl_c(proc: subprocess.Popen) -> tuple[float, str]:
    """SIGINT to the whole process group, as a terminal's Ctrl-C: (seconds to exit, stderr)."""
    t0 = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    return time.monotonic() - t0, err


@pytest.mark.parametrize("moment", ["loading", "answering"])
def test_one_ctrl_c_stops_a_two_worker_batch(tmp_path, moment):
    (tmp_path / "slow_answerer.py").write_text(ANSWERER)
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text("".join(json.dumps({"id": f"j{i}", "video": f"v{i}.mp4", "question": "q"}) + "\n"
                                for i in range(60)))
    out = tmp_path / "answers.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]),
           "MARKERS": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, "batch", str(manifest), "--model", "stub", "--out", str(out),
                             "--workers", "2", "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True)
    deadline = time.monotonic() + 40
    if moment == "loading":  # both workers are loading their model
        while len(list(tmp_path.glob("loading-*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(list(tmp_path.glob("loading-*"))) == 2, "the workers never started"
    else:  # answering, with jobs handed out to both
        while len(_rows(out)) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(_rows(out)) >= 1, "the batch never started answering"
    before = len(_rows(out))
    seconds, err = ctrl_c(proc)
    assert seconds < 5, (seconds, err[-500:])
    assert proc.returncode == 130, err[-2000:]
    assert err == "error: interrupted\n", err[-2000:]  # one line: no 'Exception in initializer' tracebacks
    rows = _rows(out)  # every line whole, every result finished before the interrupt kept
    assert before <= len(rows) < 60 and len({r["id"] for r in rows}) == len(rows)

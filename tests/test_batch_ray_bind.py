"""A local Ray cluster started by ``--engine ray`` listens on 127.0.0.1 only: every TCP listener of
the driver's process tree (GCS, raylet, the driver's and the workers' gRPC servers, Ray's agents),
as the worker that answers a job sees them while the cluster runs. Ray 2.60 listened on every
interface (even with ``_node_ip_address="127.0.0.1"``). Skipped when ray is not installed."""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="ray is not installed (pip install 'vidsift[ray]')")

from vidsift.batch import Job, ResultsFile, WorkerSpec, build_engine, run_batch  # noqa: E402


def listeners_answerer(spec: WorkerSpec):
    """Answers with the TCP listeners of the driver's process tree, as "name ip port" lines."""

    def answer(video: str, question: str, **overrides):
        import psutil

        driver = psutil.Process(int(os.environ["VIDSIFT_TEST_DRIVER_PID"]))
        found = []
        for proc in [driver, *driver.children(recursive=True)]:
            try:
                found += [(proc.name(), c.laddr.ip, c.laddr.port) for c in proc.net_connections("tcp")
                          if c.status == psutil.CONN_LISTEN]
            except psutil.Error:  # a process that ended meanwhile
                pass
        return json.dumps(found)

    return answer


def loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    return (getattr(address, "ipv4_mapped", None) or address).is_loopback


def test_local_cluster_listens_on_loopback_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ray

    assert not ray.is_initialized()  # the engine starts its own cluster here
    monkeypatch.setenv("VIDSIFT_TEST_DRIVER_PID", str(os.getpid()))
    out = tmp_path / "r.jsonl"
    summary = run_batch([Job(id="a", video=str(tmp_path / "a.mp4"), question="q")],
                        WorkerSpec(model="", answerer="test_batch_ray_bind:listeners_answerer"),
                        engine=build_engine("ray", workers=1), out=out, progress=False)
    assert summary.ok == 1 and not ray.is_initialized()
    found = [tuple(row) for row in json.loads(ResultsFile(out).latest()["a"]["answer"])]
    names = {name for name, _, _ in found}
    assert {"gcs_server", "raylet"} <= names, found
    assert [row for row in found if not loopback(row[1])] == []

"""The ``ray`` engine: Ray actors, each holding one model replica.

With GPUs in the cluster there is one actor per GPU (``num_gpus=1`` each, capped by
``workers`` when given); without GPUs, ``workers`` CPU actors (default 1) with
``cpus_per_worker`` CPUs each. ``address`` joins a running cluster (``"auto"`` or
``"ray://host:10001"``); without it a local cluster is started and shut down afterwards.
Each idle actor gets the next job; results come back as they finish. An actor that dies
(out of memory, a crash in native code) fails only the job it held: the job is recorded with
the error and a fresh actor takes its place.
Install with ``pip install 'vidsift[ray]'``.

A local cluster started here does not put the working directory on the workers' ``sys.path``:
Ray adds the driver's current directory there, so ``ray.init`` runs from an empty private
directory (relative video and model paths are made absolute first), and the driver's own
``sys.path`` reaches the workers without the working directory. The dashboard stays off and
Ray's token authentication stays on.

A local cluster started here listens on 127.0.0.1 only (every gRPC server: GCS, raylet, driver
and workers; the runtime-env agent). Ray binds its servers to the node address, but
``ray.init(_node_ip_address="127.0.0.1")`` is turned into the machine's routable IP, and then
every server listens on all interfaces (measured on Ray 2.60). Ray keeps the loopback address
only when it believes no multi-machine cluster is wanted (``ray_constants.ENABLE_RAY_CLUSTER``,
the ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` switch); it is switched off around ``ray.init``, and a
warning says so should a Ray version still pick another address. To use other machines, start a
cluster yourself (``ray start --head``) and pass ``address``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import shutil
import sys
import tempfile
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Iterator

from ..errors import ConfigError
from ..logs import debugging
from .manifest import Job
from .worker import Worker, WorkerSpec


@dataclass
class RayEngine:
    """Answer jobs on Ray actors.

    workers:         number of actors (None: one per GPU, or 1 without GPUs)
    address:         cluster to join (None: start a local one)
    cpus_per_worker: CPUs reserved by each CPU actor (also its torch thread count)
    """

    workers: int | None = None
    address: str | None = None
    cpus_per_worker: int = 1
    _home: str | None = field(default=None, init=False, repr=False)  # the private cwd of a cluster started here

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ConfigError("--workers", f"must be >= 1, got {self.workers}")
        if self.cpus_per_worker < 1:
            raise ConfigError("cpus_per_worker", f"must be >= 1, got {self.cpus_per_worker}")

    def _init(self) -> tuple[Any, bool]:
        try:
            import ray
        except ImportError:
            raise ConfigError("--engine ray", "ray is not installed; pip install 'vidsift[ray]'") from None
        started = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                      "ignore_reinit_error": True, "configure_logging": False}
            if self.address:
                kwargs["address"] = self.address
            else:
                want = (self.workers or 1) * self.cpus_per_worker
                kwargs["num_cpus"] = max(want, 1)
            # a local cluster's workers inherit this environment: let them import vidsift (and
            # answerers) from the driver's sys.path, without a runtime_env (which would bypass
            # Ray's pre-started worker pool)
            saved = os.environ.get("PYTHONPATH")
            cwd = os.getcwd()
            if not self.address:  # never the working directory (nor "", which means it)
                os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(
                    p for p in [*sys.path, *(saved or "").split(os.pathsep)]
                    if p and os.path.isdir(p) and os.path.abspath(p) != cwd))
            if not debugging():  # no "Started a local Ray instance" banner unless --debug
                logging.getLogger("ray").setLevel(logging.WARNING)
            self._home = None if self.address else tempfile.mkdtemp(prefix="vidsift-ray-")
            try:
                with _working_directory(self._home), _loopback_node(local=not self.address):
                    ray.init(**kwargs)  # (Ray puts the driver's cwd on workers' sys.path)
            except ConnectionError as err:
                raise ConfigError(self.address or "ray", f"cannot reach the Ray cluster ({err})") from None
            finally:
                if saved is None:
                    os.environ.pop("PYTHONPATH", None)
                else:
                    os.environ["PYTHONPATH"] = saved
            started = True
            node_ip = getattr(getattr(ray, "util", None), "get_node_ip_address", lambda: "127.0.0.1")()
            if not self.address and not ipaddress.ip_address(node_ip).is_loopback:
                warnings.warn(f"ray: the local cluster listens on {node_ip}, not only on 127.0.0.1 (this Ray "
                              "version ignores the loopback switch); keep the machine behind a firewall",
                              RuntimeWarning, stacklevel=2)
        return ray, started

    def map(self, spec: WorkerSpec, jobs: Iterable[Job]) -> Iterator[dict[str, Any]]:
        jobs = list(jobs)
        if not jobs:
            return
        spec, jobs = absolute_paths(spec, jobs)  # a local cluster's workers run in another directory
        ray, started = self._init()
        try:
            gpus = int(ray.cluster_resources().get("GPU", 0))
            if gpus:
                n = min(self.workers or gpus, gpus)
                options = {"num_gpus": 1, "num_cpus": 1}
            else:
                n = self.workers or 1
                options = {"num_cpus": self.cpus_per_worker}
                if spec.threads is None:
                    spec = WorkerSpec(**{**spec.to_dict(), "threads": self.cpus_per_worker})
            actor_cls = ray.remote(**options)(Worker)
            actors = [actor_cls.remote(spec) for _ in range(min(n, len(jobs)))]
            yield from _schedule(ray, actors, jobs, lambda: actor_cls.remote(spec))
            for actor in actors:
                ray.kill(actor)
        finally:
            if started:
                ray.shutdown()
                if self._home:
                    shutil.rmtree(self._home, ignore_errors=True)


@contextlib.contextmanager
def _loopback_node(local: bool) -> Iterator[None]:
    """While a local cluster starts: Ray takes 127.0.0.1 as the node address (see module docstring)."""
    try:
        from ray._private import ray_constants
    except ImportError:
        ray_constants = None
    if not local or ray_constants is None:
        yield
        return
    saved = getattr(ray_constants, "ENABLE_RAY_CLUSTER", True)
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


@contextlib.contextmanager
def _working_directory(path: str | None) -> Iterator[None]:
    """Run the block in ``path`` (None: where we are), then come back."""
    if path is None:
        yield
        return
    back = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(back)


def absolute_paths(spec: WorkerSpec, jobs: list[Job]) -> tuple[WorkerSpec, list[Job]]:
    """``spec.model`` and the jobs' videos as absolute paths where they are relative local paths."""
    from .manifest import is_url

    def absolute(path: str) -> str:
        return path if not path or is_url(path) or os.path.isabs(path) else os.path.abspath(path)

    if spec.model and os.path.exists(spec.model):
        spec = WorkerSpec(**{**spec.to_dict(), "model": os.path.abspath(spec.model)})
    return spec, [replace(job, video=absolute(job.video)) for job in jobs]


def _schedule(ray: Any, actors: list[Any], jobs: list[Job], respawn: Any) -> Iterator[dict[str, Any]]:
    """Keep every actor busy with one job; yield records in completion order."""
    pending = iter(jobs)
    running: dict[Any, tuple[Job, int]] = {}

    def submit(slot: int) -> None:
        job = next(pending, None)
        if job is not None:
            running[actors[slot].run.remote(job.to_dict())] = (job, slot)

    for slot in range(len(actors)):
        submit(slot)
    while running:
        done, _ = ray.wait(list(running), num_returns=1)
        ref = done[0]
        job, slot = running.pop(ref)
        try:
            yield ray.get(ref)
        except ray.exceptions.RayError as err:  # the actor died: record, replace, go on
            yield {"id": job.id, "video": job.video, "question": job.question, "overrides": dict(job.overrides),
                   "meta": dict(job.meta), "answer": None, "plan": None, "stats": {},
                   "error": f"worker died: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}",
                   "elapsed_s": None, "worker": None}
            try:
                ray.kill(actors[slot])
            except Exception:  # noqa: BLE001 - already gone
                pass
            actors[slot] = respawn()
        submit(slot)

"""One CPU thread policy for torch, OpenBLAS/MKL and FAISS, chosen once at start-up.

Small stages (k-center over a few thousand frames, token merging, decoding a few tokens) run
10-250x slower when each library starts as many threads as there are cores and another process is
busy: an OpenMP team that waits for a descheduled thread spins. So every model-running command
applies one count to all of them:

- the count: ``--threads N`` on the command line, else ``VIDSIFT_THREADS``, else `default_threads`
  (half the CPUs this process may use, at least 1: 1 on a 2-core machine, which is what
  ``benchmarks/threads_contention.py`` measured best under a concurrent busy process);
- `apply` sets torch's intra-op threads, every OpenBLAS/MKL/OpenMP pool loaded (``threadpoolctl``)
  and FAISS's OpenMP threads, for the libraries loaded by then (it loads none: the quick checks
  before a model loads stay quick), and the environment (``OMP_NUM_THREADS``, ``VIDSIFT_THREADS``,
  ...), which libraries loaded later and child processes read;
- `apply_here` re-applies the chosen count: where FAISS loads (``selectors/_faiss.py``), after a
  model loads (``pipeline/loader.py``: torch and its pools are loaded by then), and in worker
  threads (serve's model thread, the stream's ingest thread); batch and Ray workers `apply` their
  spec's count.

A library user who calls nothing keeps the libraries' own defaults.
"""

from __future__ import annotations

import os
import sys

from .errors import ConfigError

ENV = "VIDSIFT_THREADS"
CLI_HELP = "CPU threads for torch, BLAS/OpenMP and FAISS (default: $VIDSIFT_THREADS, else half the CPUs, at least 1)."
_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_chosen: list[int] = []  # the applied count (empty: none yet)


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """Half the available CPUs, at least 1: room for one concurrent job without oversubscription."""
    return max(1, available_cpus() // 2)


def resolve(threads: int | None = None) -> int:
    """The count to use: ``threads`` if given, else ``VIDSIFT_THREADS``, else `default_threads`."""
    if threads is None:
        raw = os.environ.get(ENV, "").strip()
        if not raw:
            return default_threads()
        try:
            threads = int(raw)
        except ValueError:
            raise ConfigError(f"{ENV}={raw}", "must be a whole number of threads >= 1") from None
        subject = f"{ENV}={raw}"
    else:
        subject = f"--threads {threads}"
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(subject, "must be a whole number of threads >= 1")
    return threads


def chosen() -> int | None:
    """The count `apply` set in this process, or None."""
    return _chosen[0] if _chosen else None


def current() -> int:
    """The count in force in this process: the one `apply` chose, else `resolve`'s (for code that
    sizes its own pool, e.g. the video decoder's slice threads)."""
    return chosen() or resolve()


def apply(threads: int | None = None) -> int:
    """Choose the count (`resolve`) and set it in every library loaded now and, through the
    environment, in those loaded later and in child processes; returns it."""
    n = resolve(threads)
    _chosen[:] = [n]
    os.environ[ENV] = str(n)
    for var in _ENV_VARS:
        os.environ[var] = str(n)
    _set_libraries(n)
    return n


def apply_here() -> int | None:
    """Re-apply the chosen count in this thread (OpenMP keeps a count per thread); None, and
    nothing changed, when no count was chosen in this process."""
    n = chosen()
    if n is not None:
        _set_libraries(n)
    return n


def _set_libraries(n: int) -> None:
    torch = sys.modules.get("torch")  # not loaded yet: it reads OMP_NUM_THREADS when it loads
    if torch is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # an install without it: the environment still reaches libraries loaded later
        pass
    else:
        threadpool_limits(limits=n)  # every BLAS and OpenMP runtime loaded in this process
    faiss = sys.modules.get("faiss")
    if faiss is not None:
        faiss.omp_set_num_threads(n)

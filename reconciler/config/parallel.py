"""Parse several large manifest files at once, one per core, in forked workers.

Fork only, on Linux only: the workers see the parent's texts without copying them, and
start in milliseconds (macOS's system libraries may crash a forked child). Never when a
thread exists (a forked copy of a held lock never opens), never for one file or little
text (forking costs more than it saves). Anything going wrong, a worker killed included
(concurrent.futures says so where multiprocessing.Pool would wait forever), leaves the
files to the caller, which reads them itself: the results are the same either way, only
the time differs.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Callable

log = logging.getLogger("reconciler.config.parallel")
MIN_BYTES = 2 * 1024 * 1024  # in all; below this one process is about as fast

_jobs: list[tuple[str, str, str]] = []  # (key, file, text): set before the fork, read by the workers
_work: Callable[[str, str], str | None] | None = None


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def read_encoded(jobs: list[tuple[str, str, str]], work: Callable[[str, str], str | None]) -> dict[str, str | None]:
    """key -> work(text, file) for each (key, file, text), computed in workers; {} when
    it is not worth it or not possible here."""
    global _jobs, _work
    workers = min(cores(), len(jobs))
    if workers < 2 or sum(len(t) for _k, _f, t in jobs) < MIN_BYTES or not sys.platform.startswith("linux"):
        return {}
    if threading.active_count() > 1:
        log.debug("parallel read: a thread is running: %d files read in one process", len(jobs))
        return {}
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    order = sorted(range(len(jobs)), key=lambda i: -len(jobs[i][2]))  # the largest first: even ends
    _jobs, _work = jobs, work
    log.debug("parallel read: %d files in %d workers", len(jobs), workers)
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            results = list(pool.map(_one, order))
    except Exception as e:  # noqa: BLE001 - a failed worker: the caller reads the files itself
        log.debug("parallel read failed (%s): reading the files in one process", e)
        return {}
    finally:
        _jobs, _work = [], None
    return {jobs[i][0]: r for i, r in zip(order, results)}


def _one(index: int) -> str | None:
    key, file, text = _jobs[index]
    assert _work is not None
    return _work(text, file)

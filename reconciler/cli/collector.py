"""Python's cycle collector, paused while a one-shot command builds its plan.

Loading the manifests, reading the state, decoding the listings and planning build
millions of small objects that all live to the end of the run and form no garbage cycles
worth collecting (a 100,000-datum plan: ~4 MiB). The collector would still scan them,
again and again as they are made: ~1 s of that plan's ~9 s, a tenth at any size. So the
plan is built with the collector off; then what it built is frozen (gc.freeze: never
scanned again) and the collector resumes for the apply, whose requests do make cycles.

Only for a process that runs one command (`one_shot`, set when the command line is the
process's own): a long-lived one (`watch`, a test run invoking commands in-process) would
keep every frozen cycle, and the collector is left alone there.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


one_shot = False


@contextmanager
def paused() -> Iterator[None]:
    if not one_shot:
        yield
        return
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()  # the plan's objects (and the few cycles made meanwhile) are kept as they are
        if was_enabled:
            gc.enable()

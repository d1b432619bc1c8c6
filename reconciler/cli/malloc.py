"""One C heap for the whole process (glibc's M_ARENA_MAX = 1, what MALLOC_ARENA_MAX=1 sets).

glibc gives each thread that allocates its own heap ("arena"). The listings are read and
decoded on worker threads, so their larger blocks (page bodies, the hash tables of big
dicts) land in other heaps than the plan built afterwards on the main thread: freed, that
memory is not reused by the plan and stays in the RSS (a 100,000-datum plan: ~50 MiB of
its peak). The threads mostly wait on the network, so sharing one heap costs no time.
Elsewhere (not Linux, not glibc) nothing changes.
"""
from __future__ import annotations

import sys

_M_ARENA_MAX = -8  # glibc's malloc.h


def one_arena() -> None:
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # a libc without mallopt
        return
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    mallopt(_M_ARENA_MAX, 1)

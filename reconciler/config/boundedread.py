"""Read a file the user named without trusting what it is: a FIFO would hang, /dev/zero
would fill memory, a 50 MB "var file" would be parsed whole. Only a regular file, only
up to a limit, both checked before a byte is read."""
from __future__ import annotations

import os
import stat


class Refused(Exception):
    """The file is not read: the message (after "the file") says why."""


def read_bytes(path: str | os.PathLike, limit: int) -> bytes:
    """The file's bytes; Refused for a non-regular file or one over `limit` bytes;
    OSError when it cannot be opened."""
    # O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting forever
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise Refused("is a directory, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise Refused("is not a regular file (a device, pipe or socket is not read)")
        if info.st_size > limit:
            raise Refused(f"is {info.st_size / 1048576:.1f} MB; the limit is {limit // 1048576} MB")
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
        if len(data) > limit:  # it grew while we read
            raise Refused(f"is over the limit of {limit // 1048576} MB")
        return data
    finally:
        os.close(fd)

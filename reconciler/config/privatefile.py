"""Write a file only its owner can read, atomically: the state, a generated private key,
a volume's credentials file. Mode 0600 from the first byte; readers never see half a file."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterable


def write_private(path: str | Path, text: str | Iterable[str | bytes]) -> os.stat_result:
    """`text` may come in pieces, str (UTF-8) or bytes, each written as it comes: a large
    state is never joined into one string, nor held whole while it is written.
    Returns the written file's stat (its inode and mtime tell a later reader whether
    anyone replaced it since)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb", buffering=1 << 20) as f:
            for piece in [text] if isinstance(text, str) else text:
                f.write(piece.encode() if isinstance(piece, str) else piece)
            f.flush()
            os.fsync(f.fileno())
            written = os.fstat(f.fileno())
        os.replace(tmp, path)
        return written
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise

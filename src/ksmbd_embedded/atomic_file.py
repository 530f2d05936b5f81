"""Replace a small file atomically: a temp file in the same directory, then rename.

Readers see the old file or the new one, never a half-written one (the password db and the
generated ksmbd.conf are read by other processes: ksmbd.adduser, wsdd2).
"""

from __future__ import annotations

import os
from pathlib import Path


def replace_file(path: str | os.PathLike[str], data: bytes, mode: int,
                 durable: bool = False) -> None:
    """Write `data` to `path` with permission `mode`. `durable`: fsync the file and its
    directory, so the new content survives a power cut once this returns."""
    import tempfile  # only when something is saved: not in an idle server's memory
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if durable:
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

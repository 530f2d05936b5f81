"""The server's pid file, ksmbd-tools style (``/var/run/ksmbd.lock`` holds mountd's pid).

The server writes it once its signal handlers are installed (a SIGHUP sent by
``ksmbd.control -r``, ``ksmbd.adduser`` or the init script's reload can then only reach a
process that reloads on it) and removes it when it stops.  ``read_pid`` returns the pid only
while that process is alive.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DEFAULT_PID_FILE", "write_pid_file", "remove_pid_file", "read_pid"]

DEFAULT_PID_FILE = "/var/run/ksmbd.lock"


def write_pid_file(path: str | os.PathLike[str], pid: int | None = None) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    tmp.write_text(f"{os.getpid() if pid is None else pid}\n", encoding="ascii")
    os.replace(tmp, target)


def remove_pid_file(path: str | os.PathLike[str]) -> None:
    """Remove ``path`` if it still names this process (a successor may own it already)."""
    try:
        if int(Path(path).read_text(encoding="ascii").strip()) == os.getpid():
            os.unlink(path)
    except (OSError, ValueError):
        pass


def read_pid(path: str | os.PathLike[str]) -> int | None:
    """The pid in ``path`` if that process exists, else None."""
    try:
        pid = int(Path(path).read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, owned by someone else
    return pid

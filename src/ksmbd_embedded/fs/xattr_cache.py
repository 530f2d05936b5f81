"""Recently read xattr values of files whose metadata has not changed for a while.

Every CREATE reads two xattrs of the object it opens: the DOS attributes (fs/dos_attrs.py)
and the stored security descriptor (fs/acl.py). On most files at least one is absent, and
an absent xattr costs a syscall plus a Python exception, about 1.3 us each; a client that
opens the same files again and again (Explorer, smbtorture's path-contention bench) pays it
every time.

Validity: setting or removing an xattr changes the file's ctime, and nothing can set a
ctime back. A value is remembered with the ctime of the stat the caller made of the same
object, and only when that ctime is at least RACY_NS old: a change made after the value was
read gets a newer ctime, even on file systems with coarse timestamps, so the entry no longer
matches and the xattr is read again. This is git's "racily clean" rule.

Our own writes of these xattrs (fs/dos_attrs.py, fs/acl.py) empty the table first, whatever
the file system does with ctime.

Bounded: MAX_ENTRIES files; the table is emptied when full (it refills with what is hot).
"""

from __future__ import annotations

import errno
import os
import time

RACY_NS = 2_000_000_000  # a ctime younger than this may still change within its tick
MAX_ENTRIES = 2048

_ABSENT_ERRNOS = frozenset((errno.ENODATA, getattr(errno, "ENOATTR", errno.ENODATA)))

# (st_dev, st_ino) -> (st_ctime_ns, {xattr name: value, or None when absent})
_entries: dict[tuple[int, int], tuple[int, dict[str, bytes | None]]] = {}


def getxattr(target, st: os.stat_result | None, name: str,
             follow_symlinks: bool = True) -> bytes | None:
    """os.getxattr(target, name), or None when the file has no such xattr (ENODATA).
    `st`: a stat of the same object that the caller made just before (None: not cached).
    Other errors raise OSError, as os.getxattr does, and are not remembered."""
    if st is None:
        return _read(target, name, follow_symlinks)
    key = (st.st_dev, st.st_ino)
    ctime = st.st_ctime_ns
    entry = _entries.get(key)
    if entry is not None and entry[0] == ctime:
        values = entry[1]
        if name in values:
            return values[name]
    value = _read(target, name, follow_symlinks)
    if time.time_ns() - ctime >= RACY_NS:
        if entry is None or entry[0] != ctime:
            if len(_entries) >= MAX_ENTRIES:
                _entries.clear()
            entry = _entries[key] = (ctime, {})
        entry[1][name] = value
    return value


def _read(target, name: str, follow_symlinks: bool) -> bytes | None:
    try:
        return os.getxattr(target, name, follow_symlinks=follow_symlinks)
    except OSError as exc:
        if exc.errno in _ABSENT_ERRNOS:
            return None
        raise


def written() -> None:
    """We are about to set one of the cached xattrs: forget everything. (ctime alone would
    do on the file systems we know; this keeps our own changes exact on any other.)"""
    if _entries:
        _entries.clear()


def size() -> int:
    return len(_entries)

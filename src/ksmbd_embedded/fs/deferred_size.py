"""Deferred ("virtual") end of file for file systems where extending a file writes zeros.

Windows and macOS pre-size a copy's destination with SET_INFO FileEndOfFileInformation before
writing it. On vfat, on exFAT before Linux 6.8 and on FUSE drivers (exfat-fuse...), an
extending ftruncate zero-fills every new cluster on the caller's time: tens of seconds for a
few GB on USB media, the SET_INFO does not answer and the client gives up
(`FsCaps.zero_fill_extend`, fs/fs_caps.py; research notes section 3).

There, growing the end of file touches nothing on disk: the size the client asked for is
recorded per file, keyed by (st_dev, st_ino) and so shared by every open of it, in a table per
ServerState (fs/server_tables.py, like share_modes, so several servers in one process stay apart):

* every size the server reports (CREATE, CLOSE post-query, QUERY_INFO, QUERY_DIRECTORY) is
  `effective_size` = max(size on disk, virtual size);
* READ serves data up to the size on disk and zeros from there to the virtual size (the
  FileRange payload pads zeros past the physical end, with sendfile and with read());
  at or past the virtual size it is STATUS_END_OF_FILE;
* WRITEs go to disk as usual and grow the file; once it reaches the virtual size the entry is
  forgotten (a sequential copy never zero-fills anything);
* FLUSH and the last close of the file make the disk agree: if the file is still shorter than
  the virtual size it is ftruncate'd up to it. That is the only place zeros may be written, and
  they are then what the client asked for;
* shrinking is applied at once (ftruncate down is cheap) and clamps or forgets the entry;
  delete, rename over the file and truncation on open (OVERWRITE/SUPERSEDE) forget it.

On other file systems `set_end_of_file` is a plain ftruncate (a hole where sparse files exist;
exFAT since 6.8 keeps a valid data length). FileAllocationInformation never writes zeros:
growing the allocation does nothing, and an allocation below the end of file truncates the end
of file to it (MS-FSA 2.1.5.15.1). `os.posix_fallocate` is never used: glibc emulates it by
writing zeros, musl fails.
"""

from __future__ import annotations

import errno
import logging
import os
from typing import TYPE_CHECKING, Any

from .fs_caps import FsCaps, caps_for
from .server_tables import PerServer

if TYPE_CHECKING:
    from ..opens import Open

log = logging.getLogger("ksmbd.fs")

Key = tuple[int, int]

# server -> {(st_dev, st_ino): virtual end of file}
_tables = PerServer("deferred_sizes")  # server -> dict[Key, int]


def table(server: Any) -> dict[Key, int] | None:
    """The server's virtual sizes, or None when it has none (the common, cheap case)."""
    sizes = _tables.get(server)
    return sizes or None


def virtual_size(server: Any, key: Key | None) -> int | None:
    sizes = _tables.get(server)
    if not sizes or key is None:
        return None
    return sizes.get(key)


def effective_size(server: Any, key: Key | None, st_size: int) -> int:
    """The end of file the client sees: the size on disk, or the virtual size if larger."""
    sizes = _tables.get(server)
    if not sizes or key is None:
        return st_size
    virtual = sizes.get(key)
    return virtual if virtual is not None and virtual > st_size else st_size


def adjust_meta(sizes: dict[Key, int] | None, key: Key | None, meta) -> None:
    """Report the virtual end of file in a FileMeta (and an allocation that covers it, as the
    file will have once it is written: FAT-like file systems have no holes)."""
    if not sizes or key is None or meta.is_dir:
        return
    virtual = sizes.get(key)
    if virtual is not None and virtual > meta.end_of_file:
        meta.end_of_file = virtual
        rounded = (virtual + 4095) & ~4095
        if meta.allocation_size < rounded:
            meta.allocation_size = rounded


def forget(server: Any, key: Key | None) -> None:
    sizes = _tables.get(server)
    if sizes and key is not None:
        sizes.pop(key, None)


def zero_fill_extend(op: Open) -> bool:
    """Whether extending this open's file would write zeros (the share's file system)."""
    root = op.tree.root
    return bool(root) and caps_for(root).zero_fill_extend


def set_end_of_file(server: Any, op: Open, size: int, caps: FsCaps | None = None) -> None:
    """SET_INFO FileEndOfFileInformation. Raises OSError. `caps` overrides the share's file
    system capabilities (tests)."""
    fd = op.fd
    key = op.file_key
    physical = os.fstat(fd).st_size
    if size <= physical:
        if size != physical:
            os.ftruncate(fd, size)
        forget(server, key)
        return
    zero_fill = caps.zero_fill_extend if caps is not None else zero_fill_extend(op)
    if zero_fill and key is not None:
        sizes = _tables.get(server)
        if sizes is None:
            sizes = _tables[server] = {}
        sizes[key] = size  # nothing on disk until FLUSH or the last close
        return
    os.ftruncate(fd, size)
    forget(server, key)


def set_allocation(server: Any, op: Open, size: int) -> None:
    """SET_INFO FileAllocationInformation: below the end of file it truncates the end of file
    to it; otherwise nothing (never zero-filling). Raises OSError."""
    key = op.file_key
    physical = os.fstat(op.fd).st_size
    if size >= effective_size(server, key, physical):
        return
    if size <= physical:
        os.ftruncate(op.fd, size)
        forget(server, key)
    else:
        _tables[server][key] = size  # shrinks the virtual end of file, still above the disk's


def written(server: Any, key: Key | None, end: int) -> None:
    """After a WRITE ending at `end`: the disk has caught up with the virtual size?"""
    sizes = _tables.get(server)
    if not sizes or key is None:
        return
    virtual = sizes.get(key)
    if virtual is not None and end >= virtual:
        del sizes[key]


def materialize(server: Any, op: Open) -> None:
    """FLUSH: make the size on disk the virtual size (the one place zeros may be written).
    Raises OSError; the entry stays then, so a later close tries again."""
    key = op.file_key
    virtual = virtual_size(server, key)
    if virtual is None:
        return
    st = os.fstat(op.fd)
    if st.st_size < virtual:
        _extend(op.fd, st, virtual)
    forget(server, key)


def _extend(target, st: os.stat_result, size: int) -> None:
    """Truncate `target` (fd or path) up to `size`, keeping its access and modification
    times: the client changed the size when it asked, not now (and may have set the times
    since, as Windows does after a copy)."""
    if isinstance(target, int):
        os.ftruncate(target, size)
    else:
        os.truncate(target, size)
    try:
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    except OSError as exc:
        log.debug("restoring the times of %r after extending it: %s", target, exc)


def last_close(server: Any, op: Open, deleting: bool) -> None:
    """Called by share_modes.close_open before the last open of a file goes (its descriptor
    still open). A file about to be deleted is only forgotten. Errors are logged: CLOSE
    succeeds anyway (the data the client wrote is on disk already)."""
    key = op.file_key
    sizes = _tables.get(server)
    if not sizes or key is None:
        return
    virtual = sizes.pop(key, None)
    if virtual is None or deleting:
        return
    try:
        st = os.fstat(op.fd)
        if st.st_size >= virtual:
            return
        try:
            _extend(op.fd, st, virtual)
        except OSError as exc:
            if exc.errno not in (errno.EBADF, errno.EINVAL):
                raise
            # the last open was read-only: extend through the path, if it still names the file
            pst = os.stat(op.path)
            if (pst.st_dev, pst.st_ino) != key:
                log.warning("deferred end of file of %r lost: the name holds another file",
                            op.path)
                return
            _extend(op.path, st, virtual)
    except OSError as exc:
        log.warning("setting the deferred end of file of %r to %d failed: %s",
                    op.path, virtual, exc)

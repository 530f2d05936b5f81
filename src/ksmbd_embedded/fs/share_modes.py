r"""Share modes, delete-pending state, and the last close (MS-FSA 2.1.5.1.2, 2.1.5.4).

Theory of operation
-------------------
A file is identified by its `file_key` (st_dev, st_ino); `server.opens.others(key)` lists
every open of it, across sessions and connections.

* Sharing (MS-FSA 2.1.5.1.2, the NT share-access rules): only opens whose access includes
  FILE_READ_DATA, FILE_EXECUTE, FILE_WRITE_DATA, FILE_APPEND_DATA or DELETE take part; an open
  for attributes only never conflicts. A new open conflicts with an existing one when either
  side wants an access the other does not share:
      read  = FILE_READ_DATA | FILE_EXECUTE   needs FILE_SHARE_READ
      write = FILE_WRITE_DATA | FILE_APPEND_DATA   needs FILE_SHARE_WRITE
      delete = DELETE   needs FILE_SHARE_DELETE
  A conflict is STATUS_SHARING_VIOLATION.
* Delete pending is per file: `set_delete_pending(server, key, True)` (SET_INFO
  FileDispositionInformation), or the close of an open created with FILE_DELETE_ON_CLOSE
  (`mark_delete_on_close(op)` sets Open.delete_on_close; the file becomes delete-pending when
  that open closes, MS-FSA 2.1.5.4). While a file is delete-pending, new opens of it, and
  creates inside it when it is a directory, get STATUS_DELETE_PENDING.
* The last close of a delete-pending file removes it (unlink, or rmdir for a directory), after
  checking that the path still names the same (st_dev, st_ino), so a file that replaced it is
  never removed. Failures (a directory that became non-empty...) are logged, not answered:
  CLOSE itself succeeds. The state of a file is forgotten at its last close.
* The last close also writes a deferred end of file to disk (fs/deferred_size.py: FAT-like
  file systems), or forgets it when the file is about to be deleted.
* Named streams (fs/streams.py) have file keys of their own, (st_dev, st_ino, name): sharing
  and delete-pending state are per stream. The last close of a delete-pending stream removes
  only that stream; a delete-pending file is removed once its last open, stream opens
  included, has closed.

The state lives in a dict per ServerState (fs/server_tables.py), never in a process-wide table, so
several servers (tests) do not see each other's files.
"""

from __future__ import annotations

import errno
import logging
import os
import stat as _stat
from typing import TYPE_CHECKING, Any

from ..status import (
    STATUS_ACCESS_DENIED, STATUS_CANNOT_DELETE, STATUS_DIRECTORY_NOT_EMPTY,
    STATUS_SHARING_VIOLATION, SmbError,
)
from ..tree import (
    DELETE, FILE_APPEND_DATA, FILE_EXECUTE, FILE_READ_DATA, FILE_WRITE_DATA,
)
from . import byte_locks, deferred_size, streams
from .dos_attrs import FILE_ATTRIBUTE_READONLY
from .server_tables import PerServer

if TYPE_CHECKING:
    from ..opens import Open

log = logging.getLogger("ksmbd.fs")

# ShareAccess (MS-SMB2 2.2.13)
FILE_SHARE_READ = 0x00000001
FILE_SHARE_WRITE = 0x00000002
FILE_SHARE_DELETE = 0x00000004
FILE_SHARE_VALID = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE

_READ = FILE_READ_DATA | FILE_EXECUTE
_WRITE = FILE_WRITE_DATA | FILE_APPEND_DATA
SHARING_ACCESS = _READ | _WRITE | DELETE  # the access bits the sharing rules look at

# server -> set of delete-pending file keys
_pending = PerServer("delete_pending")  # server -> set[tuple[int, int]]


# -- sharing ----------------------------------------------------------------------------------

def share_conflict(access: int, share_access: int, others) -> bool:
    """Whether an open with (access, share_access) conflicts with any of the `others`."""
    if not access & SHARING_ACCESS:
        return False
    for other in others:
        theirs = other.granted_access
        if not theirs & SHARING_ACCESS:
            continue
        their_share = other.share_access
        if theirs & _READ and not share_access & FILE_SHARE_READ:
            return True
        if theirs & _WRITE and not share_access & FILE_SHARE_WRITE:
            return True
        if theirs & DELETE and not share_access & FILE_SHARE_DELETE:
            return True
        if access & _READ and not their_share & FILE_SHARE_READ:
            return True
        if access & _WRITE and not their_share & FILE_SHARE_WRITE:
            return True
        if access & DELETE and not their_share & FILE_SHARE_DELETE:
            return True
    return False


def check_share_access(server: Any, file_key: tuple[int, int], access: int,
                       share_access: int, exclude: Open | None = None) -> None:
    """Raise SmbError(STATUS_SHARING_VIOLATION) if a new open (or `exclude`, re-checked with a
    different access) would conflict with the existing opens of the file."""
    others = server.opens.others(file_key)
    if not others:
        return
    if exclude is not None:
        others = [o for o in others if o is not exclude]
    if share_conflict(access, share_access, others):
        raise SmbError(STATUS_SHARING_VIOLATION)


# -- delete pending ---------------------------------------------------------------------------

def is_delete_pending(server: Any, file_key: tuple[int, int] | None) -> bool:
    """Whether the file is delete-pending (FileStandardInformation.DeletePending)."""
    keys = _pending.get(server)
    return bool(keys) and file_key in keys


def any_delete_pending(server: Any) -> bool:
    """Cheap test before a stat: is any file of this server delete-pending?"""
    return bool(_pending.get(server))


def set_delete_pending(server: Any, file_key: tuple[int, int], pending: bool) -> None:
    """Set or clear the delete-pending state of a file (FileDispositionInformation).

    The caller checks first that the open may do it: `delete_refusal()` and DELETE access.
    """
    keys = _pending.get(server)
    if pending:
        if keys is None:
            keys = _pending[server] = set()
        keys.add(file_key)
    elif keys:
        keys.discard(file_key)


def mark_delete_on_close(op: Open) -> None:
    """CREATE with FILE_DELETE_ON_CLOSE: the file becomes delete-pending when `op` closes."""
    op.delete_on_close = True


def delete_refusal(path_or_fd: Any, is_dir: bool, attributes: int) -> int:
    """0 if the object may be marked for deletion, else the NTSTATUS that refuses it:
    STATUS_CANNOT_DELETE for a READONLY file (MS-FSA 2.1.5.14.3), STATUS_DIRECTORY_NOT_EMPTY
    for a directory with entries. `attributes` are the object's current DOS attributes.
    """
    if attributes & FILE_ATTRIBUTE_READONLY:
        return STATUS_CANNOT_DELETE
    if is_dir:
        try:
            with os.scandir(path_or_fd) as it:
                for _ in it:
                    return STATUS_DIRECTORY_NOT_EMPTY
        except OSError:
            return STATUS_ACCESS_DENIED
    return 0


# -- close ------------------------------------------------------------------------------------

def close_open(server: Any, op: Open) -> None:
    """Close an open (CLOSE, TREE_DISCONNECT, LOGOFF, disconnect): forget it, close its fd,
    and on the last close of a delete-pending file remove the file."""
    if op.dir_state is not None:
        from .dir_scan import close_dir_state
        close_dir_state(op)
    if op.oplock_level or op.oplock_state:
        # its oplock goes, and a break of it counts as acknowledged (caching/breaks.py)
        from ..caching.breaks import peek
        table = peek(server)
        if table is not None:
            table.closed(op)
    key = op.file_key
    if key is not None and op.delete_on_close:
        set_delete_pending(server, key, True)  # MS-FSA 2.1.5.4: DeleteOnClose at cleanup
    if key is not None and op.fd >= 0 and deferred_size.table(server) is not None:
        peers = server.opens.others(key)
        if not peers or (len(peers) == 1 and peers[0] is op):
            # the last close: a deferred end of file reaches the disk now
            deferred_size.last_close(server, op, is_delete_pending(server, key))
    if key is not None:
        byte_locks.release_open(server, op)  # its locks go; waiters on them may now proceed
    stream = streams.stream_of(op)
    if stream is not None:
        _close_stream(server, op, stream)
        return
    server.opens.remove(op)
    if key is None or server.opens.others(key):
        return
    keys = _pending.get(server)
    if not keys or key not in keys:
        return
    if streams.stream_opens(server, key):
        return  # the last stream open removes the file
    keys.discard(key)
    if not op.name or op.path == op.tree.root:
        return  # never the share root
    _remove(op.path, key)


def _close_stream(server: Any, op: Open, stream: streams.StreamOpen) -> None:
    """close_open for an open of a named stream: the last close of a delete-pending stream
    removes it; the last open of a delete-pending file removes the file."""
    key = op.file_key
    streams.unregister(server, op)
    keys = _pending.get(server)
    if keys and key in keys and all(o is op for o in server.opens.others(key)):
        keys.discard(key)
        try:
            streams.remove_stream(op.fd, stream.name)
        except SmbError as exc:
            log.warning("delete on close of stream %r of %r failed: 0x%08x", stream.name,
                        op.path, exc.status)
    server.opens.remove(op)
    base = stream.base_key
    if keys and base in keys and not server.opens.others(base) \
            and not streams.stream_opens(server, base):
        keys.discard(base)
        if op.path != op.tree.root:
            _remove(op.path, base)


def _remove(path: str, key: tuple[int, int]) -> None:
    try:
        st = os.lstat(path)
    except OSError as exc:
        log.warning("delete on close of %r: %s", path, exc)
        return
    if (st.st_dev, st.st_ino) != key:
        log.warning("delete on close of %r skipped: the name now holds another file", path)
        return
    try:
        if _stat.S_ISDIR(st.st_mode):
            os.rmdir(path)
        else:
            os.unlink(path)
    except OSError as exc:
        level = logging.INFO if exc.errno == errno.ENOTEMPTY else logging.WARNING
        log.log(level, "delete on close of %r failed: %s", path, exc)

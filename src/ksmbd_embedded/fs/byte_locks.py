r"""Byte-range locks between opens (MS-FSA 2.1.4.10, 2.1.5.8, 2.1.5.9; MS-SMB2 3.3.5.14).

Theory of operation
-------------------
Locks belong to an Open (SMB2 has no lock key or PID context: smbtorture smb2.lock.context) and
are kept per file (`Open.file_key`, (st_dev, st_ino)) in a table per ServerState (fs/server_tables.py,
like share_modes), so every open of a file sees them, across sessions and connections. They are
advisory on the Linux side: nothing is taken with fcntl, only SMB clients see them.

Overlap (MS-FSA 2.1.4.10): the ranges [O1, O1+L1-1] and [O2, O2+L2-1] overlap when
O1 <= O2+L2-1 and O1+L1-1 >= O2, computed with unbounded integers. A zero-length range then
covers no byte but still "sits" at its offset: it overlaps a non-empty range that holds bytes
on both sides of it (S < O < S+L), never another zero-length range, and {0, 0} overlaps nothing.

Conflicts, for a request with exclusive intent (an exclusive lock, or a WRITE) or shared intent
(a shared lock, or a READ), against an overlapping existing lock:
    existing exclusive, other open        -> conflict
    existing exclusive, same open         -> conflict only for an exclusive *lock* request
                                             (a READ, WRITE or shared lock through the owner
                                             passes)
    existing shared, any open             -> conflict for exclusive intent (exclusive lock or
                                             WRITE, even through the owner: smb2.lock.rw-shared)
So two exclusive locks never stack, shared locks stack freely, and a shared lock may stack on
the same open's exclusive lock (smb2.lock.stacking).

Range validity: Length != 0 and Offset + Length - 1 > 2^64 - 1 -> STATUS_INVALID_LOCK_RANGE.

Unlock (MS-FSA 2.1.5.9) removes one lock of the same open with exactly that offset and length,
the exclusive one first when exclusive and shared ones are stacked; none ->
STATUS_RANGE_NOT_LOCKED.

Blocking locks: a single lock request without FAIL_IMMEDIATELY that conflicts waits in the
file's queue (`add_waiter`). Whenever locks of the file are released (an unlock, the close of
an open: `release_open`), the waiters are retried in arrival order; each that can now be
granted is added and its AsyncWork completed with STATUS_SUCCESS. A waiter whose own open is
closed is answered STATUS_RANGE_NOT_LOCKED (smb2.lock.cancel, "cancel by close"); CANCEL removes
it (`remove_waiter`) and the AsyncWork answers STATUS_CANCELLED.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from ..status import (
    STATUS_INVALID_LOCK_RANGE,
    STATUS_FILE_LOCK_CONFLICT, STATUS_LOCK_NOT_GRANTED, STATUS_RANGE_NOT_LOCKED,
    STATUS_SUCCESS, SmbError,
)
from .server_tables import PerServer

if TYPE_CHECKING:
    from ..opens import Open


_MAX_LAST_BYTE = 0xFFFFFFFFFFFFFFFF

# SMB2 LOCK response (MS-SMB2 2.2.27): StructureSize 4, Reserved.
LOCK_RESPONSE = b"\x04\x00\x00\x00"


class ByteLock:
    __slots__ = ("open", "offset", "length", "exclusive")

    def __init__(self, op: Any, offset: int, length: int, exclusive: bool) -> None:
        self.open = op
        self.offset = offset
        self.length = length
        self.exclusive = exclusive

    def __repr__(self) -> str:
        kind = "X" if self.exclusive else "S"
        return f"<ByteLock {kind} {self.offset}+{self.length} {self.open!r}>"


class Waiter:
    """A blocked lock request: one range, its open, and the AsyncWork to complete."""

    __slots__ = ("open", "offset", "length", "exclusive", "work")

    def __init__(self, op: Any, offset: int, length: int, exclusive: bool, work: Any) -> None:
        self.open = op
        self.offset = offset
        self.length = length
        self.exclusive = exclusive
        self.work = work


class FileLocks:
    __slots__ = ("locks", "waiters")

    def __init__(self) -> None:
        self.locks: list[ByteLock] = []
        self.waiters: list[Waiter] = []


# server -> {file_key: FileLocks}
_tables = PerServer("byte_locks")  # server -> dict[tuple[int, int], FileLocks]


def _table(server: Any) -> dict[tuple[int, int], FileLocks]:
    table = _tables.get(server)
    if table is None:
        table = _tables[server] = {}
    return table


def _file(server: Any, key: tuple[int, int] | None) -> FileLocks | None:
    table = _tables.get(server)
    if not table or key is None:
        return None
    return table.get(key)


def _forget_if_empty(server: Any, key: tuple[int, int], fl: FileLocks) -> None:
    if not fl.locks and not fl.waiters:
        table = _tables.get(server)
        if table is not None and table.get(key) is fl:
            del table[key]


# -- the rules ---------------------------------------------------------------------------------

def valid_range(offset: int, length: int) -> bool:
    """MS-FSA 2.1.5.8: no byte of the range may lie beyond 2^64 - 1."""
    return length == 0 or offset + length - 1 <= _MAX_LAST_BYTE


def overlaps(o1: int, l1: int, o2: int, l2: int) -> bool:
    """MS-FSA 2.1.4.10 overlap of [o1, o1+l1-1] and [o2, o2+l2-1] (unbounded arithmetic)."""
    if (o1 == 0 and l1 == 0) or (o2 == 0 and l2 == 0):
        return False
    return o1 <= o2 + l2 - 1 and o1 + l1 - 1 >= o2


def _conflicts(locks: Iterable[ByteLock], op: Any, offset: int, length: int, exclusive: bool,
               lock_intent: bool) -> bool:
    for lk in locks:
        if not overlaps(offset, length, lk.offset, lk.length):
            continue
        if lk.exclusive:
            if lk.open is not op or (exclusive and lock_intent):
                return True
        elif exclusive:
            return True
    return False


# -- locking -----------------------------------------------------------------------------------

def try_lock(server: Any, op: Open, offset: int, length: int, exclusive: bool) -> int:
    """Take one lock now: STATUS_SUCCESS, STATUS_LOCK_NOT_GRANTED or STATUS_INVALID_LOCK_RANGE."""
    if not valid_range(offset, length):
        return STATUS_INVALID_LOCK_RANGE
    key = op.file_key
    fl = _table(server).get(key)
    if fl is None:
        fl = _table(server)[key] = FileLocks()
    elif _conflicts(fl.locks, op, offset, length, exclusive, True):
        return STATUS_LOCK_NOT_GRANTED
    fl.locks.append(ByteLock(op, offset, length, exclusive))
    return STATUS_SUCCESS


def lock(server: Any, op: Open, elements: list[tuple[int, int, bool]]) -> int:
    """Take every (offset, length, exclusive) lock in order, or none: on the first failure the
    locks this call took are released again and that failure's status is returned."""
    taken: list[tuple[int, int]] = []
    for offset, length, exclusive in elements:
        status = try_lock(server, op, offset, length, exclusive)
        if status != STATUS_SUCCESS:
            if taken:
                for t_off, t_len in reversed(taken):
                    _remove_one(server, op, t_off, t_len, newest=True)
                _wake(server, op.file_key)
            return status
        taken.append((offset, length))
    return STATUS_SUCCESS


def _remove_one(server: Any, op: Any, offset: int, length: int, newest: bool = False) -> bool:
    fl = _file(server, op.file_key)
    if fl is None:
        return False
    found = -1
    for i, lk in enumerate(fl.locks):
        if lk.open is op and lk.offset == offset and lk.length == length:
            found = i
            if newest:
                continue  # roll back the most recent match
            if lk.exclusive:
                break  # MS-FSA 2.1.5.9: an exclusive lock is removed before shared ones
    if found < 0:
        return False
    del fl.locks[found]
    return True


def unlock(server: Any, op: Open, offset: int, length: int) -> int:
    """Release one lock of `op` with exactly this range (MS-FSA 2.1.5.9) and wake waiters."""
    if not valid_range(offset, length):
        return STATUS_INVALID_LOCK_RANGE
    if not _remove_one(server, op, offset, length):
        return STATUS_RANGE_NOT_LOCKED
    _wake(server, op.file_key)
    return STATUS_SUCCESS


def locks_of(server: Any, op: Open) -> list[tuple[int, int, bool]]:
    """(offset, length, exclusive) of every lock `op` holds, oldest first (for tests, logs)."""
    fl = _file(server, op.file_key)
    if fl is None:
        return []
    return [(lk.offset, lk.length, lk.exclusive) for lk in fl.locks if lk.open is op]


# -- waiting -----------------------------------------------------------------------------------

def add_waiter(server: Any, op: Open, offset: int, length: int, exclusive: bool,
               work: Any) -> Waiter:
    """Queue a blocked lock request; its AsyncWork is completed when the lock is granted."""
    key = op.file_key
    fl = _table(server).get(key)
    if fl is None:
        fl = _table(server)[key] = FileLocks()
    waiter = Waiter(op, offset, length, exclusive, work)
    fl.waiters.append(waiter)
    return waiter


def remove_waiter(server: Any, waiter: Waiter) -> None:
    """Forget a queued request (CANCEL, LOGOFF, TREE_DISCONNECT, connection gone)."""
    key = waiter.open.file_key
    fl = _file(server, key)
    if fl is None:
        return
    try:
        fl.waiters.remove(waiter)
    except ValueError:
        return
    _forget_if_empty(server, key, fl)


def _wake(server: Any, key: tuple[int, int] | None) -> None:
    """Retry the file's waiters in order after locks were released."""
    fl = _file(server, key)
    if fl is None:
        return
    if fl.waiters:
        for waiter in list(fl.waiters):
            if waiter not in fl.waiters:
                continue  # completed or cancelled meanwhile
            if waiter.work is not None and waiter.work.done:
                fl.waiters.remove(waiter)
                continue
            if _conflicts(fl.locks, waiter.open, waiter.offset, waiter.length,
                          waiter.exclusive, True):
                continue
            fl.waiters.remove(waiter)
            fl.locks.append(ByteLock(waiter.open, waiter.offset, waiter.length,
                                     waiter.exclusive))
            if waiter.work is not None:
                waiter.work.complete(STATUS_SUCCESS, LOCK_RESPONSE)
    _forget_if_empty(server, key, fl)


def release_open(server: Any, op: Open) -> None:
    """The open is closing: answer its own waiting lock requests STATUS_RANGE_NOT_LOCKED, drop
    every lock it holds, and grant what other opens were waiting for. Call from close_open."""
    key = op.file_key
    fl = _file(server, key)
    if fl is None:
        return
    mine = [w for w in fl.waiters if w.open is op]
    if mine:
        fl.waiters = [w for w in fl.waiters if w.open is not op]
        for waiter in mine:
            if waiter.work is not None:
                from ..header import ERROR_BODY
                waiter.work.complete(STATUS_RANGE_NOT_LOCKED, ERROR_BODY)
    before = len(fl.locks)
    fl.locks = [lk for lk in fl.locks if lk.open is not op]
    if len(fl.locks) != before:
        _wake(server, key)
    else:
        _forget_if_empty(server, key, fl)


# -- I/O ---------------------------------------------------------------------------------------

def check_io(server: Any, op: Open, offset: int, length: int, write: bool) -> None:
    """Raise SmbError(STATUS_FILE_LOCK_CONFLICT) when a READ (`write` False) or WRITE of
    [offset, offset+length) through `op` conflicts with a byte-range lock (MS-FSA 2.1.4.10):
    a READ with another open's exclusive lock; a WRITE with another open's exclusive lock or
    any shared lock, the writer's own included. Zero-length I/O never conflicts."""
    if length == 0:
        return
    fl = _file(server, op.file_key)
    if fl is None or not fl.locks:
        return
    if _conflicts(fl.locks, op, offset, length, write, False):
        raise SmbError(STATUS_FILE_LOCK_CONFLICT)

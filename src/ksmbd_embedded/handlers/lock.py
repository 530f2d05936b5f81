"""LOCK (MS-SMB2 2.2.26, 2.2.27; 3.3.5.14 with 3.3.5.14.1 unlocks, 3.3.5.14.2 locks).

The first element decides: with SMB2_LOCKFLAG_UNLOCK it is an unlock request, and every element
must then be exactly UNLOCK (UNLOCK with SHARED, EXCLUSIVE or FAIL_IMMEDIATELY is
STATUS_INVALID_PARAMETER: what Windows answers, smbtorture smb2.lock.valid-request); elements
are processed in order and the ones already unlocked stay unlocked when a later one fails.
Otherwise every element must be SHARED or EXCLUSIVE, optionally with FAIL_IMMEDIATELY; with
more than one element every one must carry FAIL_IMMEDIATELY. The locks are taken in order and
all released again if one cannot be granted (STATUS_LOCK_NOT_GRANTED). A single lock without
FAIL_IMMEDIATELY that conflicts goes async (STATUS_PENDING interim response) and completes when
the conflicting locks are released, or is cancelled by CANCEL (STATUS_CANCELLED) or by the close
of its handle (STATUS_RANGE_NOT_LOCKED).

LockSequenceNumber/Index are parsed but not checked: they matter only for resilient, durable,
persistent or multichannel opens (3.3.5.14), none of which this server grants.
Locks are refused on directories (MS-FSA 2.1.5.8: STATUS_INVALID_PARAMETER) and named pipes,
and need FILE_READ_DATA or FILE_WRITE_DATA on the handle (NtLockFile's rule).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from .. import header as h
from ..caching import oplock as fsa
from ..fs import byte_locks
from ..status import (
    STATUS_ACCESS_DENIED, STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_PARAMETER,
    STATUS_LOCK_NOT_GRANTED, STATUS_PENDING, STATUS_SUCCESS, SmbError,
)
from ..tree import FILE_APPEND_DATA, FILE_READ_DATA, FILE_WRITE_DATA
from . import oplock_break

if TYPE_CHECKING:
    from ..request import Request

# 2.2.26: StructureSize, LockCount, LockSequence (Number:4 | Index:28), FileId (2 x Q).
_LOCK_REQ = struct.Struct("<HHIQQ")
# 2.2.26.1 SMB2_LOCK_ELEMENT: Offset, Length, Flags, Reserved.
_ELEMENT = struct.Struct("<QQII")

SMB2_LOCKFLAG_SHARED_LOCK = 0x00000001
SMB2_LOCKFLAG_EXCLUSIVE_LOCK = 0x00000002
SMB2_LOCKFLAG_UNLOCK = 0x00000004
SMB2_LOCKFLAG_FAIL_IMMEDIATELY = 0x00000010

_VALID_LOCK_FLAGS = (
    SMB2_LOCKFLAG_SHARED_LOCK,
    SMB2_LOCKFLAG_EXCLUSIVE_LOCK,
    SMB2_LOCKFLAG_SHARED_LOCK | SMB2_LOCKFLAG_FAIL_IMMEDIATELY,
    SMB2_LOCKFLAG_EXCLUSIVE_LOCK | SMB2_LOCKFLAG_FAIL_IMMEDIATELY,
)

_LOCK_ACCESS = FILE_READ_DATA | FILE_WRITE_DATA | FILE_APPEND_DATA


def handle_lock(req: Request):
    """MS-SMB2 3.3.5.14."""
    base = h.HEADER_SIZE
    _, count, _sequence, persistent, volatile = _LOCK_REQ.unpack_from(req.view, base)
    op = req.open_for(persistent, volatile)
    if count == 0:
        raise SmbError(STATUS_INVALID_PARAMETER)
    first = base + _LOCK_REQ.size
    if first + count * _ELEMENT.size > len(req.view):
        raise SmbError(STATUS_INVALID_PARAMETER)
    elements = [_ELEMENT.unpack_from(req.view, first + i * _ELEMENT.size) for i in range(count)]
    if op.pipe is not None or op.file_key is None:
        raise SmbError(STATUS_INVALID_DEVICE_REQUEST)
    if op.is_dir:
        raise SmbError(STATUS_INVALID_PARAMETER)
    if not op.granted_access & _LOCK_ACCESS:
        raise SmbError(STATUS_ACCESS_DENIED)
    if elements[0][2] & SMB2_LOCKFLAG_UNLOCK:
        return _unlock(req, op, elements)
    return _lock(req, op, elements)


def _unlock(req: Request, op, elements):
    """3.3.5.14.1: in order; earlier unlocks are not rolled back when a later one fails."""
    for offset, length, flags, _ in elements:
        if flags != SMB2_LOCKFLAG_UNLOCK:
            raise SmbError(STATUS_INVALID_PARAMETER)
        status = byte_locks.unlock(req.server, op, offset, length)
        if status != STATUS_SUCCESS:
            raise SmbError(status)
    return STATUS_SUCCESS, byte_locks.LOCK_RESPONSE


def _lock(req: Request, op, elements):
    """3.3.5.14.2."""
    if len(elements) > 1 and any(not flags & SMB2_LOCKFLAG_FAIL_IMMEDIATELY
                                 for _, _, flags, _ in elements):
        raise SmbError(STATUS_INVALID_PARAMETER)
    wanted = []
    for offset, length, flags, _ in elements:
        if flags not in _VALID_LOCK_FLAGS:
            raise SmbError(STATUS_INVALID_PARAMETER)
        wanted.append((offset, length, bool(flags & SMB2_LOCKFLAG_EXCLUSIVE_LOCK)))
    server = req.server
    oplock_break.break_for(server, op, fsa.LOCK_CONTROL)  # MS-FSA 2.1.5.7: Level II -> none
    status = byte_locks.lock(server, op, wanted)
    if status == STATUS_SUCCESS:
        return STATUS_SUCCESS, byte_locks.LOCK_RESPONSE
    if status != STATUS_LOCK_NOT_GRANTED or elements[0][2] & SMB2_LOCKFLAG_FAIL_IMMEDIATELY:
        raise SmbError(status)
    # A single blocking lock that conflicts: wait for the conflicting locks to go away.
    offset, length, exclusive = wanted[0]
    waiter = None

    def on_cancel() -> None:
        if waiter is not None:
            byte_locks.remove_waiter(server, waiter)

    work = req.go_async(on_cancel)
    work.open = op
    waiter = byte_locks.add_waiter(server, op, offset, length, exclusive, work)
    return STATUS_PENDING, None

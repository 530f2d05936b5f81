"""OPLOCK_BREAK: notifications and acknowledgments (MS-SMB2 2.2.23.1, 2.2.24.1, 2.2.25.1,
3.3.4.6, 3.3.5.22.1), and the oplock part of CREATE (3.3.5.9).

The object store (caching/oplock.py) decides what is granted and broken; caching/breaks.py
keeps the breaks in flight. This module is the wire: it encodes the notification a break
sends, answers the client's acknowledgment, and turns a CREATE's RequestedOplockLevel into
an object-store request.

Notification (3.3.4.6): an unsolicited message, MessageId 0xFFFFFFFFFFFFFFFF, SessionId 0,
TreeId 0, ProcessId 0, no credits, never signed; encrypted with the Open's session when the
session or the tree encrypts (as Windows and Samba do: a client reading encrypted traffic
only). It goes to the connection of the Open's session; on a connection that is closing
nothing is sent and the break ends by the Open's close.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any

from .. import header as h
from ..caching import breaks
from ..caching import oplock as fsa
from ..fs import byte_locks
from ..status import (
    STATUS_INVALID_OPLOCK_PROTOCOL, STATUS_INVALID_PARAMETER,
    STATUS_SUCCESS, SmbError,
)

if TYPE_CHECKING:
    from ..opens import Open
    from ..request import Request

# 2.2.23.1 / 2.2.24.1 / 2.2.25.1: StructureSize 24, OplockLevel, Reserved, Reserved2, FileId
_BREAK = struct.Struct("<HBBIQQ")
_U32 = struct.Struct("<I")
_NOTIFICATION_MSG_ID = 0xFFFFFFFFFFFFFFFF

# SMB2 OplockLevel (2.2.13)
SMB2_OPLOCK_LEVEL_NONE = 0x00
SMB2_OPLOCK_LEVEL_II = 0x01
SMB2_OPLOCK_LEVEL_EXCLUSIVE = 0x08
SMB2_OPLOCK_LEVEL_BATCH = 0x09
SMB2_OPLOCK_LEVEL_LEASE = 0xFF

LEVEL_NAMES = {0x00: "none", 0x01: "level2", 0x08: "exclusive", 0x09: "batch",
               0xFF: "lease"}


# -- notifications (3.3.4.6) -------------------------------------------------------------------

def notification(op: Open, level: int) -> bytearray:
    """The whole message: header and 2.2.23.1 body."""
    buf = bytearray(h.HEADER_SIZE)
    h.pack_response_header(buf, 0, h.OPLOCK_BREAK, STATUS_SUCCESS, 0, 0, _NOTIFICATION_MSG_ID,
                           0, 0, credit_charge=0)
    buf += _BREAK.pack(24, level, 0, 0, op.persistent_id, op.volatile_id)
    return buf


def send_notification(op: Open, level: int) -> None:
    """Send the break of `op` to `level` to the client holding it."""
    session = op.session
    conn = getattr(session, "connection", None)
    if conn is None or conn.closing:
        return
    buf = notification(op, level)
    tree = op.tree
    if session.encryptor is not None and (session.encrypt_data or getattr(
            tree, "encrypt_data", False) or session.client_encrypts):
        conn._send_encrypted(session, buf)
    else:
        conn.send_frame(buf)


# -- acknowledgment (3.3.5.22.1) ------------------------------------------------------------------

def handle_oplock_break(req: Request):
    _, level, _, _, persistent, volatile = _BREAK.unpack_from(req.view, h.HEADER_SIZE)
    op = req.open_for(persistent, volatile)  # STATUS_FILE_CLOSED when not found
    if op.oplock_state != breaks.OPLOCK_BREAKING:
        # 3.3.5.22.1 says STATUS_INVALID_DEVICE_STATE; Windows answers an acknowledgment of
        # a break that needed none (Level II to none) STATUS_INVALID_OPLOCK_PROTOCOL
        # (smbtorture smb2.oplock.levelii500), and so do we.
        raise SmbError(STATUS_INVALID_OPLOCK_PROTOCOL)
    bt = breaks.table(req.server)
    if level == SMB2_OPLOCK_LEVEL_LEASE:
        bt.acknowledge(op, fsa.LEVEL_NONE)  # broken to none, and the ack refused
        raise SmbError(STATUS_INVALID_PARAMETER)
    pending = bt.pending.get(op)
    offered = pending.level if pending is not None else fsa.LEVEL_NONE
    if level not in (SMB2_OPLOCK_LEVEL_NONE, SMB2_OPLOCK_LEVEL_II) or level > offered:
        # More than the notification allowed: the break completes at none, and the
        # acknowledgment is refused.
        bt.acknowledge(op, fsa.LEVEL_NONE)
        raise SmbError(STATUS_INVALID_OPLOCK_PROTOCOL)
    status, new_level = bt.acknowledge(op, level)
    if status != STATUS_SUCCESS:
        raise SmbError(status)
    return STATUS_SUCCESS, _BREAK.pack(24, new_level, 0, 0, op.persistent_id, op.volatile_id)


# -- CREATE (3.3.5.9) --------------------------------------------------------------------------

def oplocks_enabled(tree: Any) -> bool:
    return bool(getattr(tree.share, "oplocks", True))


def grant(req: Request, op: Open, requested: int) -> int:
    """The OplockLevel a successful CREATE answers: ask the object store for `requested`
    (batch or exclusive falling back to Level II when refused, as Windows does: MS-SMB2
    3.3.5.9 <footnote>); none for directories, pipes, shares with `oplocks` off, and leases
    (a later step)."""
    if requested in (SMB2_OPLOCK_LEVEL_NONE, SMB2_OPLOCK_LEVEL_LEASE) or op.is_dir \
            or op.file_key is None or op.pipe is not None or not oplocks_enabled(op.tree):
        return SMB2_OPLOCK_LEVEL_NONE
    if requested not in (SMB2_OPLOCK_LEVEL_II, SMB2_OPLOCK_LEVEL_EXCLUSIVE,
                         SMB2_OPLOCK_LEVEL_BATCH):
        return SMB2_OPLOCK_LEVEL_NONE
    server = req.server
    bt = breaks.table(server)
    ol = bt.oplock_for(op.file_key)
    others = [o for o in server.opens.others(op.file_key) if o is not op]
    locked = _has_byte_locks(server, op.file_key)
    granted = SMB2_OPLOCK_LEVEL_NONE
    if requested != SMB2_OPLOCK_LEVEL_II:
        if fsa.request(ol, op, requested, others, locked) == fsa.STATUS_SUCCESS:
            granted = requested
    if granted == SMB2_OPLOCK_LEVEL_NONE:
        if fsa.request(ol, op, fsa.LEVEL_TWO, others, locked) == fsa.STATUS_SUCCESS:
            granted = SMB2_OPLOCK_LEVEL_II
    bt.forget_if_idle(ol)
    op.oplock_level = granted
    op.oplock_state = breaks.OPLOCK_HELD if granted else breaks.OPLOCK_NONE
    return granted


def _has_byte_locks(server: Any, key: Any) -> bool:
    fl = byte_locks._file(server, key)
    return fl is not None and bool(fl.locks)


def check_open(req: Request, key: Any, access: int, disposition: int, *,
               sharing_violation: bool = False, may_wait: bool = True) -> bool:
    """MS-FSA 2.1.5.1.2's oplock steps for an open of the stream `key` (before the share
    check with `sharing_violation`: OPEN_BREAK_H; after it: OPEN). Raises MustWait when the
    opener has to wait for an acknowledgment; returns True when a break is in progress and
    the opener went on without waiting (`may_wait` False: FILE_COMPLETE_IF_OPLOCKED, or a
    CREATE that is not the last of its compound)."""
    bt = breaks.peek(req.server)
    if bt is None:
        return False
    ol = bt.get(key)
    if ol is None or ol.state == fsa.NO_OPLOCK:
        return False
    operation = fsa.OPEN_BREAK_H if sharing_violation else fsa.OPEN
    need_wait = fsa.check_break(ol, _Opener(), operation, access, disposition)
    bt.forget_if_idle(ol)
    if need_wait and may_wait:
        raise breaks.MustWait(ol)
    return need_wait


def break_for(server: Any, op: Open, operation: str, *, may_wait: bool = False) -> None:
    """An operation through `op` (WRITE, SET_INFO end of file, LOCK, rename, delete) breaks
    what the other opens of its stream hold. With `may_wait` it raises MustWait while an
    exclusive oplock is being broken; otherwise it goes on (Level II breaks need no
    acknowledgment, and an exclusive one still held elsewhere is broken meanwhile)."""
    bt = breaks.peek(server)
    if bt is None or op.file_key is None:
        return
    ol = bt.get(op.file_key)
    if ol is None or ol.state == fsa.NO_OPLOCK:
        return
    need_wait = fsa.check_break(ol, op, operation)
    bt.forget_if_idle(ol)
    if need_wait and may_wait:
        raise breaks.MustWait(ol)


def may_wait(req: Request) -> bool:
    """Whether `req` may wait for a break: only the last request of a compound can go async
    (connection.py); the others go on with the break in progress."""
    return not _U32.unpack_from(req.view, h.NEXT_COMMAND_OFFSET)[0]


def closed(server: Any, op: Open) -> None:
    """The close of `op`: its oplock goes (called by fs/share_modes.close_open)."""
    if op.oplock_level or op.oplock_state:
        bt = breaks.peek(server)
        if bt is not None:
            bt.closed(op)


class _Opener:
    """The Open being created, as 2.1.4.12 compares it: not yet an Open, no oplock key."""

    __slots__ = ()
    oplock_key = None

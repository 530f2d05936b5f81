"""The object store's oplocks: MS-FSA 2.1.1.10 (Per Oplock) and its algorithms.

Section numbers are those of MS-FSA as the brief cites them; later revisions of MS-FSA moved
"Server Requests an Oplock" to 2.1.5.18 (exclusive 2.1.5.18.1, shared 2.1.5.18.2) and
"Server Acknowledges an Oplock Break" to 2.1.5.19: the same text.

One `Oplock` per stream (a file's data or one named stream: the `file_key` of its opens),
kept in the server's `caching.breaks.BreakTable` while it is not NO_OPLOCK or has waiters.
The object store decides here *whether* an oplock is granted, *what* an operation breaks and
to *which* level, and *whether* the operation has to wait; it tells the server through the
table's `indicate_break(open, new_level, ack_required)` (MS-SMB2 3.3.4.6 "Object Store
Indicates an Oplock Break") and `wake(oplock)` (the operations of WaitList may go on). It
never encodes SMB2 and never waits itself: an operation that must wait gets `True` from
`check_break` and retries once woken (caching/breaks.py).

Levels use the values of the SMB2 OplockLevel field (MS-SMB2 2.2.13), which MS-FSA's
LEVEL_TWO / LEVEL_ONE / LEVEL_BATCH / LEVEL_GRANULAR correspond to (MS-FSA 2.1.5.17).

Leases: the fields MS-FSA has for them are here (ROplocks, RHOplocks, RHBreakQueue, the
caching flags of State, Open.TargetOplockKey compared by 2.1.4.12.2), so a lease table keyed
by ClientGuid + LeaseKey can own Opens of this same object. The LEVEL_GRANULAR branches of
the algorithms are not written yet: `request` refuses LEVEL_GRANULAR (STATUS_OPLOCK_NOT_GRANTED,
which the SMB side answers with OplockLevel none).
"""

from __future__ import annotations

from typing import Any

# -- levels (MS-FSA 2.1.5.17 Type / NewOplockLevel; values of MS-SMB2 2.2.13) ---------------------
LEVEL_NONE = 0x00
LEVEL_TWO = 0x01
LEVEL_ONE = 0x08
LEVEL_BATCH = 0x09
LEVEL_GRANULAR = 0xFF  # a lease (MS-SMB2 SMB2_OPLOCK_LEVEL_LEASE)

# -- Oplock.State flags (MS-FSA 2.1.1.10) -----------------------------------------------------
NO_OPLOCK = 0x0001
LEVEL_ONE_OPLOCK = 0x0002
BATCH_OPLOCK = 0x0004
LEVEL_TWO_OPLOCK = 0x0008
EXCLUSIVE = 0x0010
BREAK_TO_TWO = 0x0020
BREAK_TO_NONE = 0x0040
BREAK_TO_TWO_TO_NONE = 0x0080
READ_CACHING = 0x0100
HANDLE_CACHING = 0x0200
WRITE_CACHING = 0x0400
BREAK_TO_READ_CACHING = 0x0800
BREAK_TO_WRITE_CACHING = 0x1000
BREAK_TO_HANDLE_CACHING = 0x2000
BREAK_TO_NO_CACHING = 0x4000
MIXED_R_AND_RH = 0x8000

BREAKING = (BREAK_TO_TWO | BREAK_TO_NONE | BREAK_TO_TWO_TO_NONE | BREAK_TO_READ_CACHING
            | BREAK_TO_WRITE_CACHING | BREAK_TO_HANDLE_CACHING | BREAK_TO_NO_CACHING)
_EXCLUSIVE_TYPES = LEVEL_ONE_OPLOCK | BATCH_OPLOCK

# -- statuses the object store returns ----------------------------------------------------------
STATUS_SUCCESS = 0x00000000
STATUS_OPLOCK_NOT_GRANTED = 0xC00000E2
STATUS_INVALID_OPLOCK_PROTOCOL = 0xC00000E3

# -- operations of 2.1.4.12 ------------------------------------------------------------------
OPEN = "open"                  # 2.1.5.1, with desired_access and disposition
OPEN_BREAK_H = "open_break_h"  # 2.1.5.1.2: an open meeting a sharing violation
CLOSE = "close"                # 2.1.5.4 cleanup
READ = "read"                  # 2.1.5.2
WRITE = "write"                # 2.1.5.3
FLUSH_DATA = "flush"           # 2.1.5.6
LOCK_CONTROL = "lock"          # 2.1.5.7 byte-range locks
SET_EOF = "set_eof"            # 2.1.5.14 FileEndOfFile / FileAllocationInformation
RENAME = "rename"              # 2.1.5.14 FileRename / FileLink / FileShortName
DELETE = "delete"              # 2.1.5.14 FileDisposition(DeleteFile TRUE), delete on close
FS_CONTROL = "fs_control"      # 2.1.5.9 data-changing FSCTLs (zero data, ...)

# 2.1.4.12: an open asking for nothing but these never breaks an oplock
FILE_READ_ATTRIBUTES = 0x00000080
FILE_WRITE_ATTRIBUTES = 0x00000100
SYNCHRONIZE = 0x00100000
_STAT_ACCESS = FILE_READ_ATTRIBUTES | FILE_WRITE_ATTRIBUTES | SYNCHRONIZE

# CreateDisposition values that overwrite (MS-SMB2 2.2.13)
_OVERWRITING = (0, 4, 5)  # FILE_SUPERSEDE, FILE_OVERWRITE, FILE_OVERWRITE_IF


class Oplock:
    """MS-FSA 2.1.1.10. `table` is what indicates breaks to the server and wakes waiters
    (caching.breaks.BreakTable, or a recorder in the unit tests)."""

    __slots__ = ("key", "table", "exclusive_open", "ii_oplocks", "r_oplocks", "rh_oplocks",
                 "rh_break_queue", "wait_list", "state")

    def __init__(self, key: Any, table: Any) -> None:
        self.key = key
        self.table = table
        self.exclusive_open: Any = None
        self.ii_oplocks: list = []
        self.r_oplocks: list = []
        self.rh_oplocks: list = []
        self.rh_break_queue: list = []
        self.wait_list: list = []
        self.state = NO_OPLOCK

    def __repr__(self) -> str:
        return f"<Oplock {self.key} state=0x{self.state:x}>"

    @property
    def breaking(self) -> bool:
        return bool(self.state & BREAKING)

    @property
    def idle(self) -> bool:
        """Nothing granted, breaking or waiting: the object may be dropped."""
        return self.state == NO_OPLOCK and not self.wait_list

    def level_of(self, op: Any) -> int:
        """The level `op` holds (LEVEL_NONE when it holds none)."""
        if op is self.exclusive_open:
            return LEVEL_BATCH if self.state & BATCH_OPLOCK else LEVEL_ONE
        if op in self.ii_oplocks:
            return LEVEL_TWO
        return LEVEL_NONE


def keys_match(operation_open: Any, oplock_open: Any) -> bool:
    """MS-FSA 2.1.4.12.2 (without PARENT_OBJECT): the same Open, or equal non-empty
    TargetOplockKeys (leases: ClientGuid + LeaseKey). SMB2 oplocks have no key."""
    if operation_open is oplock_open:
        return True
    mine = getattr(operation_open, "oplock_key", None)
    theirs = getattr(oplock_open, "oplock_key", None)
    return mine is not None and theirs is not None and mine == theirs


def _same_key(a: Any, b: Any) -> bool:
    key = getattr(a, "oplock_key", None)
    return key is not None and key == getattr(b, "oplock_key", None)


def recompute_shared(oplock: Oplock) -> None:
    """MS-FSA 2.1.4.13: the State of an Oplock that holds only shared oplocks."""
    if not (oplock.ii_oplocks or oplock.r_oplocks or oplock.rh_oplocks
            or oplock.rh_break_queue):
        oplock.state = NO_OPLOCK
    elif oplock.r_oplocks and (oplock.rh_oplocks or oplock.rh_break_queue):
        oplock.state = READ_CACHING | HANDLE_CACHING | MIXED_R_AND_RH
    elif not oplock.r_oplocks and oplock.rh_oplocks:
        oplock.state = READ_CACHING | HANDLE_CACHING
    elif oplock.r_oplocks and oplock.ii_oplocks:
        oplock.state = READ_CACHING | LEVEL_TWO_OPLOCK
    elif oplock.r_oplocks:
        oplock.state = READ_CACHING
    elif oplock.ii_oplocks:
        oplock.state = LEVEL_TWO_OPLOCK
    else:  # only RHBreakQueue (leases, not yet): breaking to no caching
        oplock.state = READ_CACHING | HANDLE_CACHING | BREAK_TO_NO_CACHING


# -- 2.1.5.17 Server Requests an Oplock ------------------------------------------------------

def request(oplock: Oplock, op: Any, level: int, others: list, byte_locks: bool) -> int:
    """Grant `level` (LEVEL_TWO, LEVEL_ONE, LEVEL_BATCH) on `op`, or refuse it.

    `others`: the other Opens of the stream (every one, attribute-only opens too, as
    Open.Stream's open list); `byte_locks`: the stream has byte-range locks. Returns
    STATUS_SUCCESS or STATUS_OPLOCK_NOT_GRANTED. Granted oplocks wait, in MS-FSA's words,
    until broken: here they simply stay in the Oplock until check_break breaks them."""
    if level in (LEVEL_ONE, LEVEL_BATCH):
        return _request_exclusive(oplock, op, level, others)
    if level == LEVEL_TWO:
        return _request_shared(oplock, op, byte_locks)
    return STATUS_OPLOCK_NOT_GRANTED  # LEVEL_GRANULAR: leases are a later step


def _request_exclusive(oplock: Oplock, op: Any, level: int, others: list) -> int:
    """2.1.5.17.1: only on a stream nobody else has open (Opens with a matching oplock key
    excepted) and whose Oplock holds nothing or only this Open's Level II."""
    if oplock.state & BREAKING or oplock.state & _EXCLUSIVE_TYPES:
        return STATUS_OPLOCK_NOT_GRANTED
    if any(not keys_match(op, other) for other in others):
        return STATUS_OPLOCK_NOT_GRANTED
    if oplock.state & LEVEL_TWO_OPLOCK:
        # Only Opens with our key are left holding Level II: they give way to the new one
        # (2.1.5.17.1: "break to none" without acknowledgment).
        for holder in list(oplock.ii_oplocks):
            oplock.ii_oplocks.remove(holder)
            if holder is not op:
                oplock.table.indicate_break(holder, LEVEL_NONE, False)
        recompute_shared(oplock)
        if oplock.state != NO_OPLOCK:
            return STATUS_OPLOCK_NOT_GRANTED  # lease-held shared state: not yet
    oplock.exclusive_open = op
    oplock.state = (BATCH_OPLOCK if level == LEVEL_BATCH else LEVEL_ONE_OPLOCK) | EXCLUSIVE
    return STATUS_SUCCESS


def _request_shared(oplock: Oplock, op: Any, byte_locks: bool) -> int:
    """2.1.5.17.2: Level II is refused while an exclusive oplock is held or breaking (except
    that it has already been acknowledged down to Level II) and while the stream has
    byte-range locks."""
    if byte_locks:
        return STATUS_OPLOCK_NOT_GRANTED
    if oplock.state & (_EXCLUSIVE_TYPES | BREAKING):
        return STATUS_OPLOCK_NOT_GRANTED
    if op not in oplock.ii_oplocks:
        oplock.ii_oplocks.append(op)
    recompute_shared(oplock)
    return STATUS_SUCCESS


# -- 2.1.4.12 Algorithm to Check for an Oplock Break ------------------------------------------

def check_break(oplock: Oplock | None, op: Any, operation: str, desired_access: int = 0,
                disposition: int = 1) -> bool:
    """Break what `operation` on `op` conflicts with; True when the operation has to wait
    (NeedToWait) until the Oplock is no longer breaking. Breaks that need no
    acknowledgment (Level II to none) are over when this returns."""
    if oplock is None or oplock.state == NO_OPLOCK:
        return False
    if operation == CLOSE:
        close(oplock, op)
        return False
    break_to_two = break_to_none = False
    if operation == OPEN:
        if not desired_access & ~_STAT_ACCESS and disposition not in _OVERWRITING:
            return False  # attribute-only opens break nothing, unless they overwrite
        if disposition in _OVERWRITING:
            break_to_none = True
        else:
            break_to_two = True
    elif operation == OPEN_BREAK_H:
        # A sharing violation: only an oplock that caches the handle (batch; leases with H)
        # is broken, so that its holder can close the handle it keeps.
        if not oplock.state & (BATCH_OPLOCK | HANDLE_CACHING):
            return False
        if disposition in _OVERWRITING:
            break_to_none = True
        else:
            break_to_two = True
    elif operation in (READ, FLUSH_DATA):
        break_to_two = True
    elif operation in (WRITE, SET_EOF, FS_CONTROL, LOCK_CONTROL):
        break_to_none = True
    elif operation in (RENAME, DELETE):
        # The handle cache must go (BreakCacheState HANDLE_CACHING); for oplocks that is a
        # batch oplock, broken to none.
        if oplock.state & BATCH_OPLOCK:
            break_to_none = True
        else:
            return bool(oplock.state & BREAKING and oplock.exclusive_open is not None
                        and not keys_match(op, oplock.exclusive_open))
    else:
        raise ValueError(f"unknown operation {operation!r}")

    need_to_wait = False
    state = oplock.state
    if break_to_two:
        if state & _EXCLUSIVE_TYPES and not keys_match(op, oplock.exclusive_open):
            if not state & BREAKING:
                oplock.state |= BREAK_TO_TWO
                oplock.table.indicate_break(oplock.exclusive_open, LEVEL_TWO, True)
            need_to_wait = True
    elif break_to_none:
        if state & LEVEL_TWO_OPLOCK and not state & _EXCLUSIVE_TYPES:
            for holder in list(oplock.ii_oplocks):
                # every Level II, the operation's own Open's too (a write through a Level II
                # holder breaks it: its cache is stale); only a matching lease key is spared
                if not _same_key(op, holder):
                    oplock.ii_oplocks.remove(holder)
                    oplock.table.indicate_break(holder, LEVEL_NONE, False)
            recompute_shared(oplock)
            if oplock.state == NO_OPLOCK:
                oplock.table.wake(oplock)
        elif state & _EXCLUSIVE_TYPES and not keys_match(op, oplock.exclusive_open):
            if state & BREAK_TO_TWO:
                # Already telling the holder "Level II": the acknowledgment will end at none.
                oplock.state = (state & ~BREAK_TO_TWO) | BREAK_TO_TWO_TO_NONE
            elif not state & BREAKING:
                oplock.state |= BREAK_TO_NONE
                oplock.table.indicate_break(oplock.exclusive_open, LEVEL_NONE, True)
            need_to_wait = True
    return need_to_wait


def close(oplock: Oplock, op: Any) -> None:
    """2.1.4.12, Operation CLOSE: the Open's oplock goes; a break in progress on it is over
    (its holder cannot acknowledge any more), so the waiting operations go on."""
    if op in oplock.ii_oplocks:
        oplock.ii_oplocks.remove(op)
        recompute_shared(oplock)
    if op is oplock.exclusive_open:
        oplock.exclusive_open = None
        oplock.state = NO_OPLOCK
        recompute_shared(oplock)
    if not oplock.state & BREAKING:
        oplock.table.wake(oplock)


# -- 2.1.5.18 Server Acknowledges an Oplock Break --------------------------------------------

def acknowledge(oplock: Oplock, op: Any, level: int) -> tuple[int, int]:
    """The holder of a breaking exclusive oplock accepts `level` (LEVEL_TWO or LEVEL_NONE).
    Returns (status, the level it now holds). Anything not breaking, or a level above the
    one the break allowed, is STATUS_INVALID_OPLOCK_PROTOCOL and leaves it none."""
    state = oplock.state
    if op is not oplock.exclusive_open or not state & BREAKING:
        return STATUS_INVALID_OPLOCK_PROTOCOL, LEVEL_NONE
    oplock.exclusive_open = None
    new_level = LEVEL_NONE
    status = STATUS_SUCCESS
    if level == LEVEL_TWO:
        if state & BREAK_TO_TWO:
            oplock.ii_oplocks.append(op)
            new_level = LEVEL_TWO
        elif state & BREAK_TO_TWO_TO_NONE:
            # Level II was offered, then a later operation needed none: granted and broken
            # at once, without acknowledgment.
            oplock.table.indicate_break(op, LEVEL_NONE, False)
        else:
            status = STATUS_INVALID_OPLOCK_PROTOCOL  # the break was to none
    elif level != LEVEL_NONE:
        status = STATUS_INVALID_OPLOCK_PROTOCOL
    oplock.state = NO_OPLOCK
    recompute_shared(oplock)
    oplock.table.wake(oplock)
    return status, new_level

"""The oplock side of one CREATE (MS-FSA 2.1.5.1.2, MS-SMB2 3.3.5.9), kept apart from
handlers/create.py: the share-mode check with the oplock steps around it, and what the
response needs to know afterwards.

A CREATE runs inside `run`, which holds its oplock context for the duration of the call
(the loop is one thread; a CREATE run from inside another one, as tests without a loop do,
gets its own and the outer one back after)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..caching import breaks
from ..caching import oplock as fsa
from ..fs import share_modes
from ..status import STATUS_CANNOT_BREAK_OPLOCK, SmbError
from . import oplock_break

if TYPE_CHECKING:
    from ..request import Request

# 2.1.4.12: an open asking only for these never breaks an oplock
STAT_ONLY_ACCESS = 0x00000080 | 0x00000100 | 0x00100000  # READ/WRITE_ATTRIBUTES, SYNCHRONIZE


class _Ctx:
    __slots__ = ("may_wait", "requiring", "in_progress")

    def __init__(self, may_wait: bool, requiring: bool) -> None:
        self.may_wait = may_wait  # the last of its compound, not FILE_COMPLETE_IF_OPLOCKED
        self.requiring = requiring  # FILE_OPEN_REQUIRING_OPLOCK
        self.in_progress = False  # a break was started that the open did not wait for


_current: list[_Ctx | None] = [None]


def run(req: Request, create: Callable, may_wait: bool, requiring: bool):
    """Run `create(req)` with this CREATE's oplock context."""
    outer = _current[0]
    _current[0] = _Ctx(may_wait, requiring)
    try:
        return create(req)
    finally:
        _current[0] = outer


def break_in_progress() -> bool:
    """Whether this CREATE started a break it did not wait for (its status is then
    STATUS_OPLOCK_BREAK_IN_PROGRESS with FILE_COMPLETE_IF_OPLOCKED)."""
    ctx = _current[0]
    return ctx is not None and ctx.in_progress


def share_check(req: Request, key, access: int, share_access: int, disposition: int) -> None:
    """MS-FSA 2.1.5.1.2: the share-mode check with the oplock steps around it. A sharing
    violation against a batch oplock breaks it first (the opener waits for the
    acknowledgment, then checks again: its holder may have closed); an open that passes
    breaks what it conflicts with (2.1.4.12, Operation OPEN)."""
    server = req.server
    ctx = _current[0]
    if ctx is not None and breaks.peek(server) is not None:
        others = server.opens.others(key)
        if others and share_modes.share_conflict(access, share_access, others):
            _check(req, ctx, key, access, disposition, True)
        share_modes.check_share_access(server, key, access, share_access)
        _check(req, ctx, key, access, disposition, False)
        return
    share_modes.check_share_access(server, key, access, share_access)


def _check(req: Request, ctx: _Ctx, key, access: int, disposition: int,
           sharing_violation: bool) -> None:
    if ctx.requiring:
        ol = breaks.peek(req.server).get(key)
        if ol is not None and ol.state != fsa.NO_OPLOCK and access & ~STAT_ONLY_ACCESS:
            raise SmbError(STATUS_CANNOT_BREAK_OPLOCK)  # MS-FSA 2.1.5.1.2
    if oplock_break.check_open(req, key, access, disposition,
                               sharing_violation=sharing_violation, may_wait=ctx.may_wait):
        ctx.in_progress = True

"""Oplock breaks in flight: notifications, acknowledgments, timeouts, waiting operations.

Theory of operation
-------------------
`BreakTable` (one per server, `table(server)`) holds the Oplock of every stream that has one
(caching/oplock.py, keyed by the Open's `file_key`), the breaks waiting for an
acknowledgment, and the counters ubus `status` shows (`sent`, `acknowledged`, `timed_out`).

* The object store (oplock.py) calls `indicate_break(open, level, ack_required)`: the table
  updates the Open's SMB2 state (MS-SMB2 3.3.4.6: Open.OplockState Breaking while an
  acknowledgment is due, else the new Open.OplockLevel at once) and has
  handlers/oplock_break.py send the notification. A break that needs an acknowledgment gets
  a `PendingBreak` and a loop timer (`loop.call_later`) of `oplock_break_wait` seconds
  (globals, default 35 as Windows; MS-SMB2 3.3.2.1 Oplock Break Acknowledgment Timer).
* The acknowledgment (OPLOCK_BREAK request) ends it through `acknowledge`; the timer, if it
  fires first, through `_expire`, which acknowledges it as none (MS-SMB2 3.3.2.1).
  A client that disconnects closes its Opens, and the close of a breaking Open ends its
  break (oplock.close): for the operations waiting, the same as an acknowledgment.
* An operation that must wait (`oplock.check_break` returned True) raises `MustWait`; the
  handler hands it to `wait_then_retry`, which takes the request async (interim
  STATUS_PENDING, async_work.py), keeps a copy of the request's bytes (the receive buffer is
  reused) and registers a `Waiter` on the Oplock. When the Oplock stops breaking
  (`wake`), the handler runs again from the start on the copy, from a loop timer of 0 s, so
  the acknowledgment's own response goes out first; if it must wait again (another break
  started meanwhile) it waits again, else its final response completes the AsyncWork.
  CANCEL, a close of the tree or session, or the connection going away drop the Waiter.

Nothing here blocks: a break waits in the loop's timer heap and in these dicts, never in a
thread, and other clients are served meanwhile. Memory: one PendingBreak (5 slots) per Open
being broken, at most one per Open; one Waiter and one request copy (at most the size of a
CREATE or SET_INFO request) per waiting request, bounded by the client's credits.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from ..fs.server_tables import PerServer
from . import oplock as fsa

log = logging.getLogger("ksmbd.oplock")

DEFAULT_BREAK_WAIT = 35  # seconds (Windows; MS-SMB2 3.3.2.1 "implementation-specific")

# MS-SMB2 3.3.1.10 Open.OplockState
OPLOCK_NONE = 0
OPLOCK_HELD = 1
OPLOCK_BREAKING = 2


class MustWait(Exception):
    """Raised by an operation that has to wait for the break of `oplock` to end."""

    def __init__(self, oplock: fsa.Oplock) -> None:
        super().__init__("oplock break in progress")
        self.oplock = oplock


class PendingBreak:
    """A notification sent that needs an acknowledgment."""

    __slots__ = ("open", "level", "oplock", "deadline", "done")

    def __init__(self, op: Any, level: int, oplock: fsa.Oplock, deadline: float) -> None:
        self.open = op
        self.level = level  # what the notification offered (the most the ack may keep)
        self.oplock = oplock
        self.deadline = deadline
        self.done = False


class Waiter:
    """An operation waiting for an Oplock to stop breaking."""

    __slots__ = ("oplock", "resume", "done")

    def __init__(self, oplock: fsa.Oplock, resume: Callable[[], None]) -> None:
        self.oplock = oplock
        self.resume = resume
        self.done = False


class BreakTable:
    __slots__ = ("server", "oplocks", "pending", "sent", "acknowledged", "timed_out", "sender")

    def __init__(self, server: Any) -> None:
        self.server = server
        self.oplocks: dict[Any, fsa.Oplock] = {}
        self.pending: dict[Any, PendingBreak] = {}  # Open -> its break
        self.sent = 0
        self.acknowledged = 0
        self.timed_out = 0
        # (open, level) -> None: sends the notification (handlers/oplock_break.py)
        self.sender: Callable[[Any, int], None] | None = None

    # -- the Oplock objects ------------------------------------------------------------------

    def get(self, key: Any) -> fsa.Oplock | None:
        return self.oplocks.get(key)

    def oplock_for(self, key: Any) -> fsa.Oplock:
        ol = self.oplocks.get(key)
        if ol is None:
            ol = self.oplocks[key] = fsa.Oplock(key, self)
        return ol

    def forget_if_idle(self, ol: fsa.Oplock) -> None:
        if ol.idle and self.oplocks.get(ol.key) is ol:
            del self.oplocks[ol.key]

    # -- called by the object store (oplock.py) ----------------------------------------------

    def indicate_break(self, op: Any, level: int, ack_required: bool) -> None:
        """MS-SMB2 3.3.4.6: the server's side of a break the object store indicates."""
        self.sent += 1
        if ack_required:
            op.oplock_state = OPLOCK_BREAKING
            wait = _break_wait(self.server)
            ol = self.oplocks.get(op.file_key)
            pb = PendingBreak(op, level, ol, self.server.now() + wait)
            self.pending[op] = pb
            _call_later(self.server, wait, lambda: self._expire(pb))
        else:
            op.oplock_level = level
            op.oplock_state = OPLOCK_HELD if level else OPLOCK_NONE
        sender = self.sender
        if sender is None:
            from ..handlers.oplock_break import send_notification as sender
        try:
            sender(op, level)
        except Exception:  # a client we cannot tell still times out like a silent one
            log.exception("sending an oplock break failed")

    def wake(self, ol: fsa.Oplock) -> None:
        """The Oplock is no longer breaking: its waiting operations go on (from the loop)."""
        waiters, ol.wait_list = ol.wait_list, []
        for waiter in waiters:
            if not waiter.done:
                waiter.done = True
                _call_later(self.server, 0, waiter.resume)
        self.forget_if_idle(ol)

    # -- acknowledgments and timeouts --------------------------------------------------------

    def acknowledge(self, op: Any, level: int) -> tuple[int, int]:
        """The client acknowledged the break of `op` with `level`: (status, new level)."""
        pb = self.pending.pop(op, None)
        if pb is not None:
            pb.done = True
        self.acknowledged += 1
        ol = self.oplocks.get(op.file_key)
        if ol is None:
            status, new_level = fsa.STATUS_INVALID_OPLOCK_PROTOCOL, fsa.LEVEL_NONE
        else:
            status, new_level = fsa.acknowledge(ol, op, level)
            self.forget_if_idle(ol)
        op.oplock_level = new_level
        op.oplock_state = OPLOCK_HELD if new_level else OPLOCK_NONE
        return status, new_level

    def _expire(self, pb: PendingBreak) -> None:
        """MS-SMB2 3.3.2.1: no acknowledgment in time: the oplock is broken to none."""
        if pb.done or self.pending.get(pb.open) is not pb:
            return
        pb.done = True
        del self.pending[pb.open]
        self.timed_out += 1
        op = pb.open
        log.info("oplock break of %r not acknowledged in time: broken to none", op)
        ol = self.oplocks.get(op.file_key)
        if ol is not None:
            fsa.acknowledge(ol, op, fsa.LEVEL_NONE)
            self.forget_if_idle(ol)
        op.oplock_level = fsa.LEVEL_NONE
        op.oplock_state = OPLOCK_NONE

    def expire_all(self) -> None:
        """Time out every pending break now (tests without a loop)."""
        for pb in list(self.pending.values()):
            self._expire(pb)

    # -- opens --------------------------------------------------------------------------------

    def closed(self, op: Any) -> None:
        """The Open is closing (CLOSE, tree disconnect, logoff, disconnect): its oplock goes
        and a break of it counts as acknowledged for whoever waits."""
        pb = self.pending.pop(op, None)
        if pb is not None:
            pb.done = True
        ol = self.oplocks.get(op.file_key)
        if ol is not None:
            fsa.close(ol, op)
            self.forget_if_idle(ol)
        op.oplock_level = fsa.LEVEL_NONE
        op.oplock_state = OPLOCK_NONE

    def wait(self, ol: fsa.Oplock, resume: Callable[[], None]) -> Waiter:
        waiter = Waiter(ol, resume)
        if ol.breaking:
            ol.wait_list.append(waiter)
            if self.oplocks.get(ol.key) is not ol:
                self.oplocks[ol.key] = ol
        else:  # over already (acknowledged while the request was being handled)
            waiter.done = True
            _call_later(self.server, 0, resume)
        return waiter

    def cancel_wait(self, waiter: Waiter) -> None:
        waiter.done = True
        ol = waiter.oplock
        try:
            ol.wait_list.remove(waiter)
        except ValueError:
            pass
        self.forget_if_idle(ol)


_tables = PerServer("oplock_breaks")


def table(server: Any) -> BreakTable:
    t = _tables.get(server)
    if t is None:
        t = _tables[server] = BreakTable(server)
    return t


def peek(server: Any) -> BreakTable | None:
    """The table if this server ever had one (ubus, close paths: no table created)."""
    return _tables.get(server)


def _break_wait(server: Any) -> float:
    cfg = getattr(server, "config", None)
    g = getattr(cfg, "globals", None)
    return float(getattr(g, "oplock_break_wait", DEFAULT_BREAK_WAIT))


def _call_later(server: Any, delay: float, fn: Callable[[], None]) -> None:
    loop = getattr(server, "loop", None)
    if loop is not None:
        loop.call_later(delay, fn)
    elif delay == 0:
        fn()  # unit tests without a loop: at once
    # (without a loop a timeout never fires by itself: tests call expire_all)


# -- the request side ------------------------------------------------------------------------

def wait_then_retry(req: Any, wait: MustWait, handler: Callable[[Any], Any]):
    """Take `req` async until the break of `wait.oplock` is over, then run `handler` again
    on a copy of the request; returns what the first handler call returns (STATUS_PENDING)."""
    from ..header import ERROR_BODY
    from ..request import Request
    from ..status import STATUS_INTERNAL_ERROR, STATUS_PENDING, SmbError
    server = req.server
    bt = table(server)
    state: dict[str, Any] = {}

    def on_cancel() -> None:
        waiter = state.get("waiter")
        if waiter is not None:
            bt.cancel_wait(waiter)

    work = req.go_async(on_cancel)
    copy = Request(req.conn, req.command, req.msg_id, req.flags, req.credit_charge,
                   memoryview(bytes(req.view)), type(req.chain)())
    copy.session = req.session
    copy.tree = req.tree
    copy.encrypted = req.encrypted
    copy.process_id = req.process_id
    copy.async_id = work.async_id
    copy.chain.open = req.chain.open  # a related request's FileId (MS-SMB2 3.3.5.2.7.2)
    copy.chain.has_file_id = req.chain.has_file_id

    def resume() -> None:
        if work.done:
            return
        copy.async_work = None
        try:
            status, body = handler(copy)
        except MustWait as again:
            state["waiter"] = bt.wait(again.oplock, resume)
            return
        except SmbError as exc:
            status, body = exc.status, ERROR_BODY
        except Exception:
            log.exception("%s: retried request failed", req.conn.peer)
            status, body = STATUS_INTERNAL_ERROR, ERROR_BODY
        work.complete(status, body)

    state["waiter"] = bt.wait(wait.oplock, resume)
    return STATUS_PENDING, None

"""caching/breaks.py: pending breaks, acknowledgments, timeouts and waiters, without sockets
(a fake loop whose timers the test fires)."""

from ksmbd_embedded.caching import breaks
from ksmbd_embedded.caching import oplock as fsa
from ksmbd_embedded.handlers import oplock_break


class FakeLoop:
    def __init__(self):
        self.timers = []

    def call_later(self, delay, fn):
        self.timers.append((delay, fn))

    def run(self, max_delay=None):
        due = [t for t in self.timers if max_delay is None or t[0] <= max_delay]
        self.timers = [t for t in self.timers if t not in due]
        for _, fn in due:
            fn()


class Globals:
    oplock_break_wait = 2


class Config:
    globals = Globals()


class Server:
    def __init__(self):
        self.loop = FakeLoop()
        self.config = Config()
        self.t = 0.0

    def now(self):
        return self.t


class Op:
    def __init__(self, name, key=("d", 1)):
        self.name = name
        self.file_key = key
        self.oplock_level = 0
        self.oplock_state = 0
        self.oplock_key = None
        self.persistent_id = self.volatile_id = 7

    def __repr__(self):
        return self.name


def setup():
    server = Server()
    bt = breaks.table(server)
    sent = []
    bt.sender = lambda op, level: sent.append((op, level))
    holder = Op("holder")
    ol = bt.oplock_for(holder.file_key)
    assert fsa.request(ol, holder, fsa.LEVEL_BATCH, [], False) == fsa.STATUS_SUCCESS
    holder.oplock_level = fsa.LEVEL_BATCH
    holder.oplock_state = breaks.OPLOCK_HELD
    return server, bt, ol, holder, sent


def test_break_ack_wakes_waiter_after_the_ack():
    server, bt, ol, holder, sent = setup()
    assert fsa.check_break(ol, Op("b"), fsa.OPEN, 1, 1)
    assert sent == [(holder, fsa.LEVEL_TWO)] and holder.oplock_state == breaks.OPLOCK_BREAKING
    assert [d for d, _ in server.loop.timers] == [2.0]  # the acknowledgment timer
    resumed = []
    bt.wait(ol, lambda: resumed.append(1))
    assert bt.acknowledge(holder, fsa.LEVEL_TWO) == (fsa.STATUS_SUCCESS, fsa.LEVEL_TWO)
    assert holder.oplock_level == fsa.LEVEL_TWO and holder.oplock_state == breaks.OPLOCK_HELD
    assert resumed == []  # not inside the acknowledgment: from the loop
    server.loop.run(0)
    assert resumed == [1]
    server.loop.run()  # the timer of an acknowledged break does nothing
    assert (bt.sent, bt.acknowledged, bt.timed_out) == (1, 1, 0)


def test_timeout_breaks_to_none_and_wakes():
    server, bt, ol, holder, sent = setup()
    fsa.check_break(ol, Op("b"), fsa.OPEN, 1, 1)
    resumed = []
    bt.wait(ol, lambda: resumed.append(1))
    server.loop.run()  # the 2 s timer fires
    server.loop.run()  # and the waiter's resume
    assert resumed == [1]
    assert holder.oplock_level == fsa.LEVEL_NONE and holder.oplock_state == breaks.OPLOCK_NONE
    assert ol.state == fsa.NO_OPLOCK and bt.timed_out == 1
    assert holder.file_key not in bt.oplocks  # idle Oplock objects are dropped


def test_close_of_breaking_holder_counts_as_acknowledged():
    server, bt, ol, holder, sent = setup()
    fsa.check_break(ol, Op("b"), fsa.OPEN, 1, 1)
    resumed = []
    bt.wait(ol, lambda: resumed.append(1))
    bt.closed(holder)  # e.g. the client disconnected
    server.loop.run(0)
    assert resumed == [1] and not bt.pending and ol.state == fsa.NO_OPLOCK


def test_cancelled_waiter_is_not_resumed():
    server, bt, ol, holder, sent = setup()
    fsa.check_break(ol, Op("b"), fsa.OPEN, 1, 1)
    resumed = []
    waiter = bt.wait(ol, lambda: resumed.append(1))
    bt.cancel_wait(waiter)
    bt.acknowledge(holder, fsa.LEVEL_NONE)
    server.loop.run()
    assert resumed == []


def test_wait_on_a_break_already_over_resumes_at_once():
    server, bt, ol, holder, sent = setup()
    resumed = []
    bt.wait(ol, lambda: resumed.append(1))
    server.loop.run(0)
    assert resumed == [1]


def test_level_two_break_needs_no_ack_and_no_timer():
    server, bt, ol, holder, sent = setup()
    bt.closed(holder)
    a, b = Op("a"), Op("b")
    ol = bt.oplock_for(a.file_key)
    fsa.request(ol, a, fsa.LEVEL_TWO, [], False)
    fsa.request(ol, b, fsa.LEVEL_TWO, [a], False)
    assert not fsa.check_break(ol, a, fsa.WRITE)
    assert sent == [(a, 0), (b, 0)] and server.loop.timers == [] and not bt.pending
    assert a.oplock_state == breaks.OPLOCK_NONE


def test_notification_bytes():
    op = Op("x")
    op.persistent_id, op.volatile_id = 0x11, 0x22
    buf = oplock_break.notification(op, 1)
    assert len(buf) == 64 + 24
    assert buf[12:14] == b"\x12\x00"  # command OPLOCK_BREAK
    assert buf[24:32] == b"\xff" * 8  # MessageId
    assert buf[36:48] == bytes(12)  # ProcessId, TreeId, and ...
    assert buf[40:48] == bytes(8) and buf[48:56] == bytes(8)  # TreeId, SessionId 0
    assert buf[64:66] == b"\x18\x00" and buf[66] == 1
    assert buf[72:80] == (0x11).to_bytes(8, "little") and buf[80:88] == (0x22).to_bytes(8, "little")

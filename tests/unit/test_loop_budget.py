"""Issue 11 in the loop and the protocol core: no buffer for bytes that have not come, small
frames only before logon, output bounded before it is produced (frames held, compounds
answered in parts and suspended), queued sendfile ranges bounded, one I/O budget."""

from __future__ import annotations

import logging
import socket
import struct
import types

import pytest
from test_compound_padding import _tree
from test_connection import LAST_KEYS, header, status_of

from ksmbd_embedded import header as h
from ksmbd_embedded import io_budget
from ksmbd_embedded.crypto.encryption import Cipher
from ksmbd_embedded.file_range import FileRange
from ksmbd_embedded.loop import (
    HELD_BUDGET, HELD_OUTPUT, MAX_PENDING_OUTPUT, MAX_QUEUED_RANGES, PRE_LOGON_MAX_FRAME,
    SCRATCH_SIZE, Loop, _Client,
)
from ksmbd_embedded.session import VALID

from test_connection import state  # noqa: F401

MIB = 1 << 20


class FakeConn:
    """A connection whose every frame is answered with `answer()` (bytes or a FileRange)."""

    def __init__(self, logged_on: bool = True, answer=lambda: b"") -> None:
        self.sessions = {1: types.SimpleNamespace(state=VALID)} if logged_on else {}
        self.outbox: list = []
        self.closing = False
        self.close_reason = ""
        self.suspended = None
        self.peer = "fake"
        self.frames: list[bytes] = []
        self.answer = answer

    def receive(self, frame) -> None:
        self.frames.append(bytes(frame))
        data = self.answer()
        if data:
            self.outbox.append(data)

    def cancel_async(self, match, send=True) -> None:
        pass

    def tear_down(self) -> None:
        pass


@pytest.fixture
def lp(state):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    loop = Loop(state, ["127.0.0.1"], port)
    loop.peers = []
    yield loop
    for client in list(loop.clients.values()):
        client.conn.sessions = {}  # (fake sessions: nothing to clean up)
        loop._drop(client, "test over")
    for peer in loop.peers:
        peer.close()
    loop.shutdown()


def _client(lp, conn, sndbuf: int | None = None):
    a, b = socket.socketpair()
    if sndbuf:
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, sndbuf)
    a.setblocking(False)
    client = _Client(a, conn)
    conn.transport = client
    lp.clients[client.fileno] = client
    lp.sel.register(a, 1, client)
    lp.peers.append(b)
    return client, b


def _frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def _drain(peer, want: int, rounds: int, lp) -> int:
    """Read what the loop sent while running it; bounded by `rounds`."""
    peer.setblocking(False)
    got = 0
    for _ in range(rounds):
        for tag, events in lp.sel.poll(0.01):
            if tag.__class__ is _Client and lp.clients.get(tag.fileno) is tag:
                if events & 1:
                    lp._read(tag)
                if events & 2 and tag.fileno in lp.clients:
                    lp._flush(tag)
        if lp.unheld:
            lp._run_unheld()
        try:
            while True:
                chunk = peer.recv(1 << 20)
                if not chunk:
                    break
                got += len(chunk)
        except BlockingIOError:
            pass
        if got >= want:
            break
    return got


def _feed(lp, client, peer, data: bytes, until) -> None:
    """Send `data` to the loop's side without blocking, reading it there, until `until()`
    (bounded)."""
    peer.setblocking(False)
    sent = 0
    for _ in range(2000):
        if sent < len(data):
            try:
                sent += peer.send(data[sent:sent + 65536])
            except BlockingIOError:
                pass
        if lp.budget_waiters and lp.io_used < lp.io_limit:
            lp._wake_budget_waiters()  # (what Loop.run does each round)
        if lp.unheld:
            lp._run_unheld()
        if not client.held:
            lp._read(client)
        if until():
            return
    raise AssertionError("not done")


# -- 1. no buffer for bytes that have not arrived ---------------------------------------------

def test_an_announced_frame_takes_no_buffer_until_the_scratch_buffer_is_full_of_it(lp):
    conn = FakeConn()
    c, peer = _client(lp, conn)
    big = bytes(range(256)) * 4096  # 1 MiB
    peer.sendall(_frame(big)[:4])
    lp._read(c)
    assert c.frame is None and c.pending == _frame(big)[:4] and lp.io_used == 0
    peer.sendall(_frame(big)[4:40_000])
    lp._read(c)
    assert c.frame is None and len(c.pending) == 40_000 and lp.io_used == 0
    peer.sendall(_frame(big)[40_000:200_000])
    lp._read(c)  # the scratch buffer fills: now the frame gets its own buffer
    assert c.frame is not None and lp.io_used == len(c.frame) and c.pending == b""
    _feed(lp, c, peer, _frame(big)[200_000:], lambda: conn.frames)
    assert conn.frames == [big] and c.frame is None and lp.io_used == 0


# -- 2. before logon, small frames only --------------------------------------------------------

def test_before_logon_a_frame_above_the_limit_closes_the_connection(lp, caplog):
    caplog.set_level(logging.INFO, logger="ksmbd.loop")
    conn = FakeConn(logged_on=False)
    c, peer = _client(lp, conn)
    peer.sendall(struct.pack(">I", PRE_LOGON_MAX_FRAME + 1))
    lp._read(c)
    assert c.fileno not in lp.clients and lp.io_used == 0
    assert sum("before logon" in r.getMessage() for r in caplog.records) == 1


def test_before_logon_a_frame_at_the_limit_is_received_in_a_buffer_of_its_size(lp):
    conn = FakeConn(logged_on=False)
    c, peer = _client(lp, conn)
    payload = b"\xfeSMB" + bytes(PRE_LOGON_MAX_FRAME - 4)
    sizes = []
    _feed(lp, c, peer, _frame(payload),
          lambda: conn.frames or sizes.append(len(c.frame) if c.frame else 0))
    assert max(sizes) == PRE_LOGON_MAX_FRAME  # its own size, not a max-size pooled buffer
    assert conn.frames == [payload] and lp.io_used == 0 and c.fileno in lp.clients


def test_after_logon_large_frames_are_allowed(lp):
    conn = FakeConn()
    c, peer = _client(lp, conn)
    peer.sendall(struct.pack(">I", 4 * MIB) + bytes(100))
    lp._read(c)
    assert c.fileno in lp.clients and len(c.pending) == 104


# -- 3. output bounded before it is produced ---------------------------------------------------

def test_frames_wait_while_the_output_is_full_and_go_on_as_it_drains(lp):
    conn = FakeConn(answer=lambda: bytes(3 * MIB))
    c, peer = _client(lp, conn, sndbuf=65536)
    peer.sendall(b"".join(_frame(b"r%d" % i) for i in range(10)))
    lp._read(c)
    # 3 MiB answers: dispatching stops once 8 MiB are unsent (the socket took some)
    assert len(conn.frames) <= MAX_PENDING_OUTPUT // (3 * MIB) + 2
    assert c.held == HELD_OUTPUT and c.pending and not c.events & 1
    assert c.out_bytes < MAX_PENDING_OUTPUT + 3 * MIB
    got = _drain(peer, 10 * 3 * MIB, 3000, lp)
    assert got == 10 * 3 * MIB
    assert conn.frames == [b"r%d" % i for i in range(10)]
    assert not c.held and c.pending == b"" and lp.io_used == 0 and c.events == 1


def test_queued_sendfile_ranges_are_bounded_per_connection(lp, tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 4096)
    fd = open(path, "rb")
    conn = FakeConn(answer=lambda: FileRange(fd.fileno(), 0, 4096))
    c, peer = _client(lp, conn, sndbuf=4096)
    c.out.append(bytes(MIB))  # the socket is full, as with a client that does not read
    c.out_bytes = MIB
    lp.io_used = MIB
    lp._flush(c)
    peer.sendall(b"".join(_frame(b"q%d" % i) for i in range(100)))
    lp._read(c)
    assert c.ranges == MAX_QUEUED_RANGES and len(conn.frames) == MAX_QUEUED_RANGES
    assert c.held == HELD_OUTPUT
    got = _drain(peer, MIB + 100 * 4096, 3000, lp)
    assert got == MIB + 100 * 4096 and len(conn.frames) == 100 and c.ranges == 0
    fd.close()


# -- 5. one budget for the process --------------------------------------------------------------

def test_io_used_counts_memory_not_sendfile_ranges_and_returns_to_zero(lp, tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    with open(path, "rb") as f:
        conn = FakeConn(logged_on=False)
        c, peer = _client(lp, conn, sndbuf=4096)
        conn.outbox += [bytes(2 * MIB), FileRange(f.fileno(), 0, 100)]
        lp._queue(c)
        assert lp.io_used == 2 * MIB and c.out_bytes == 2 * MIB + 100
        lp._flush(c)
        assert 0 < lp.io_used < 2 * MIB + 1
        lp._drop(c, "test")
        assert lp.io_used == 0


def test_a_large_frame_waits_for_the_budget_unread_and_goes_on_when_it_frees(lp):
    lp.io_limit = 4 * MIB
    lp.io_used = 4 * MIB  # spent by someone else
    conn = FakeConn()
    c, peer = _client(lp, conn)
    big = bytes(MIB)
    peer.sendall(_frame(big)[:SCRATCH_SIZE + 10])
    lp._read(c)
    assert c.held == HELD_BUDGET and c in lp.budget_waiters and c.frame is None
    assert len(c.pending) == SCRATCH_SIZE and not c.events & 1
    lp._read(c)  # (a stray wake-up reads nothing)
    assert c.held == HELD_BUDGET and len(c.pending) == SCRATCH_SIZE
    lp.io_used = 0  # given back
    _feed(lp, c, peer, _frame(big)[SCRATCH_SIZE + 10:], lambda: conn.frames)
    assert conn.frames == [big] and not c.held and lp.io_used == 0


def test_with_the_budget_spent_a_client_without_output_still_gets_a_frame_through(lp):
    lp.io_limit = 4 * MIB
    lp.io_used = 5 * MIB
    conn = FakeConn(answer=lambda: b"ok")
    c, peer = _client(lp, conn)
    peer.sendall(_frame(b"a"))
    lp._read(c)
    assert conn.frames == [b"a"] and not c.held
    lp.io_used -= 5 * MIB


def test_pooled_receive_buffers_count_in_the_budget(lp):
    """An idle pooled buffer is inside the budget: pooled only while there is room for it,
    freed first when buffers in use grow into its share."""
    conn = FakeConn()
    c, peer = _client(lp, conn, sndbuf=65536)
    frame = _frame(bytes(SCRATCH_SIZE * 2))
    size = lp.max_frame  # what a large frame's buffer is
    lp.io_limit = 2 * size
    _feed(lp, c, peer, frame, lambda: conn.frames)
    assert lp.io_used == 0 and lp.pool_bytes == size and len(lp.pool) == 1
    assert io_budget.counters(lp, 0)["used"] == size
    # output grows into the pool's share: the pooled buffer goes
    conn.outbox.append(bytes(size + 1))
    lp._queue(c)
    assert lp.pool == [] and lp.pool_bytes == 0 and lp.io_used == size + 1
    lp._drop(c, "test")
    # no room: a buffer given back is not pooled
    conn2 = FakeConn()
    c2, peer2 = _client(lp, conn2)
    lp.io_used = size + 1  # someone else's
    _feed(lp, c2, peer2, frame, lambda: conn2.frames)
    assert lp.pool == [] and lp.io_used == size + 1
    lp.io_used = 0


# -- 3 in the protocol core: a compound answered in parts ---------------------------------------

@pytest.mark.parametrize("encrypted", [False, True])
def test_a_compound_of_large_reads_is_answered_in_parts_and_suspended(tmp_path, encrypted):
    conn, sid, signer, msg_id, tree_id = _tree(tmp_path)
    keys = LAST_KEYS[0]
    (tmp_path / "share" / "big.bin").write_bytes(b"z" * MIB)
    from test_create import create_body
    req = header(h.CREATE, msg_id, session_id=sid, tree_id=tree_id) + create_body("big.bin")
    signer.sign(req)
    conn.outbox.clear()
    conn.receive(memoryview(bytes(req)))
    resp = b"".join(bytes(b) for b in conn.outbox)[4:]
    assert status_of(resp) == 0
    fid = resp[64 + 64:64 + 80]
    count = 12
    msgs = []
    for i in range(count):
        m = header(h.READ, msg_id + 1 + 16 * i, session_id=sid, tree_id=tree_id,
                   credit_charge=16)
        m += struct.pack("<HBBIQ16sIIIHH", 49, 0x50, 0, MIB, 0, fid, 0, 0, 0, 0, 0) + b"\0"
        m += bytes(-len(m) % 8)
        if i != count - 1:
            struct.pack_into("<I", m, 20, len(m))
        msgs.append(bytes(m))
    conn.credits.high += 16 * count  # (the grants a client would have gathered)
    conn.outbox.clear()
    chain = b"".join(msgs)
    if encrypted:  # one transform frame; every part of the answer is encrypted on its own
        chain = bytes(Cipher(conn.cipher_id, keys.decryption_key).encrypt(sid, chain))
    conn.receive(memoryview(chain))
    # Answered in parts until 8 MiB wait unsent, the rest suspended.
    assert conn.suspended is not None
    opener = Cipher(conn.cipher_id, keys.encryption_key) if encrypted else None
    first = _answers(conn.outbox, opener)
    assert MAX_PENDING_OUTPUT // MIB <= len(first) < count
    conn.outbox.clear()  # (the loop sent them)
    conn.resume()
    rest = _answers(conn.outbox, opener)
    assert conn.suspended is None and len(first) + len(rest) == count
    ids = [struct.unpack_from("<Q", m, 24)[0] for m in first + rest]
    assert ids == [msg_id + 1 + 16 * i for i in range(count)]
    assert all(status_of(m) == 0 and len(m) >= 80 + MIB for m in first + rest)


def _answers(outbox, opener=None) -> list[bytes]:
    """The SMB2 messages in framed output (decrypted with `opener`, each frame on its own)."""
    data = b"".join(bytes(b) for b in outbox)
    out, off = [], 0
    while off < len(data):
        n = struct.unpack_from(">I", data, off)[0]
        frame = data[off + 4:off + 4 + n]
        if opener is not None:
            assert frame[:4] == b"\xfdSMB"
            frame = bytes(opener.decrypt(memoryview(frame))[1])
        inner = 0
        while True:
            nxt = struct.unpack_from("<I", frame, inner + 20)[0]
            out.append(frame[inner:inner + nxt] if nxt else frame[inner:])
            if not nxt:
                break
            inner += nxt
        off += 4 + n
    return out


def test_output_full_counts_unsent_output_of_the_loop_and_the_outbox():
    conn = types.SimpleNamespace(outbox=[bytes(MIB)], transport=None,
                                 server=types.SimpleNamespace(loop=None))
    assert not io_budget.output_full(conn)
    conn.transport = types.SimpleNamespace(out_bytes=MAX_PENDING_OUTPUT - MIB)
    assert io_budget.output_full(conn)
    conn.transport.out_bytes = 0
    assert not io_budget.output_full(conn)
    conn.server.loop = types.SimpleNamespace(io_used=3 * MIB, io_limit=4 * MIB)
    assert io_budget.output_full(conn)  # the budget is spent and this one has output
    conn.outbox = []
    assert not io_budget.output_full(conn)  # nothing of its own: it may go on


def test_ubus_status_reports_the_io_budget(lp):
    from ksmbd_embedded.ubus.ksmbd_object import KsmbdObject
    conn = FakeConn(answer=lambda: bytes(3 * MIB))
    c, peer = _client(lp, conn, sndbuf=65536)
    peer.sendall(b"".join(_frame(b"r%d" % i) for i in range(10)))
    lp._read(c)
    _, reply = KsmbdObject(lp.state).call("status", {})
    assert reply["io_buffers"] == {"limit": lp.state.config.memory_limit,
                                   "used": lp.io_used + lp.pool_bytes,
                                   "pooled": lp.pool_bytes, "held": 1}
    assert reply["io_buffers"]["used"] >= MAX_PENDING_OUTPUT - 3 * MIB

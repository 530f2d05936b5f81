"""SMB2 LOCK (handlers/lock.py, MS-SMB2 3.3.5.14): request validation, lock/unlock through the
handler, and blocking locks that go async, driven through a real Connection."""

import os
import struct

import pytest
from handler_fixtures import HandlerEnv, call

from ksmbd_embedded import header as h
from ksmbd_embedded.fs import byte_locks
from ksmbd_embedded.fs.byte_locks import STATUS_INVALID_LOCK_RANGE
from ksmbd_embedded.handlers.lock import handle_lock
from ksmbd_embedded.opens import Open
from ksmbd_embedded.status import (
    STATUS_ACCESS_DENIED, STATUS_CANCELLED, STATUS_FILE_CLOSED, STATUS_INVALID_PARAMETER,
    STATUS_LOCK_NOT_GRANTED, STATUS_PENDING, STATUS_RANGE_NOT_LOCKED, STATUS_SUCCESS,
)
from ksmbd_embedded.tree import FILE_READ_ATTRIBUTES, FILE_READ_DATA, FILE_WRITE_DATA

from test_async import fields, frames
from test_connection import CONFIG, header, logon, status_of

SH, EX, UN, FI = 0x1, 0x2, 0x4, 0x10
RW = FILE_READ_DATA | FILE_WRITE_DATA
MAX = 0xFFFFFFFFFFFFFFFF
LOCK_RESPONSE = b"\x04\x00\x00\x00"


def lock_body(op, elements, count=None, sequence=0):
    """elements: (offset, length, flags)."""
    n = len(elements) if count is None else count
    body = struct.pack("<HHIQQ", 48, n, sequence, op.persistent_id, op.volatile_id)
    for offset, length, flags in elements:
        body += struct.pack("<QQII", offset, length, flags, 0)
    return body


@pytest.fixture
def env(tmp_path):
    return HandlerEnv(str(tmp_path))


@pytest.fixture
def two(env):
    with open(os.path.join(env.root, "f"), "wb") as f:
        f.write(bytes(200))
    return env, env.open("f", RW), env.open("f", RW)


def do(env, op, elements, **kw):
    return call(handle_lock, env.request(h.LOCK, lock_body(op, elements, **kw)))


def st(env, op, elements, **kw):
    return do(env, op, elements, **kw)[0]


def test_lock_and_unlock(two):
    env, a, b = two
    assert do(env, a, [(0, 10, EX | FI)]) == (STATUS_SUCCESS, LOCK_RESPONSE)
    assert st(env, b, [(5, 1, SH | FI)]) == STATUS_LOCK_NOT_GRANTED
    assert st(env, a, [(0, 10, EX | FI)]) == STATUS_LOCK_NOT_GRANTED  # no stacking of EX
    assert st(env, a, [(0, 10, UN)]) == STATUS_SUCCESS
    assert st(env, a, [(0, 10, UN)]) == STATUS_RANGE_NOT_LOCKED
    assert st(env, b, [(5, 1, SH | FI)]) == STATUS_SUCCESS


def test_lock_count_zero_and_bounds(two):
    env, a, _ = two
    assert st(env, a, [(0, 0, SH)], count=0) == STATUS_INVALID_PARAMETER
    assert st(env, a, [(0, 1, SH | FI)], count=2) == STATUS_INVALID_PARAMETER  # past the end
    assert byte_locks.locks_of(env.server, a) == []


def test_wrong_file_id(two):
    env, a, _ = two
    body = bytearray(lock_body(a, [(0, 1, EX | FI)]))
    struct.pack_into("<Q", body, 8, a.persistent_id + 100)
    assert call(handle_lock, env.request(h.LOCK, bytes(body)))[0] == STATUS_FILE_CLOSED


@pytest.mark.parametrize("flags", [0, ~(SH | EX | UN | FI) & 0xFFFFFFFF, SH | EX, SH | EX | FI,
                                   FI, UN | EX, UN | SH, UN | FI])
def test_invalid_flags(two, flags):
    env, a, _ = two
    assert st(env, a, [(1, 1, flags)]) in (STATUS_INVALID_PARAMETER,)


def test_several_locks_need_fail_immediately(two):
    env, a, _ = two
    assert st(env, a, [(0, 1, EX | FI), (10, 1, EX)]) == STATUS_INVALID_PARAMETER
    assert st(env, a, [(0, 1, 0), (10, 1, UN)]) == STATUS_INVALID_PARAMETER
    assert byte_locks.locks_of(env.server, a) == []
    assert st(env, a, [(0, 1, EX | FI), (10, 1, SH | FI)]) == STATUS_SUCCESS
    assert byte_locks.locks_of(env.server, a) == [(0, 1, True), (10, 1, False)]


def test_failed_lock_rolls_back_earlier_elements(two):
    env, a, b = two
    assert st(env, b, [(10, 10, EX | FI)]) == STATUS_SUCCESS
    assert st(env, a, [(0, 10, EX | FI), (10, 10, EX | FI)]) == STATUS_LOCK_NOT_GRANTED
    assert byte_locks.locks_of(env.server, a) == []


def test_unlocks_in_order_without_rollback(two):
    env, a, _ = two
    assert st(env, a, [(0, 10, EX | FI)]) == STATUS_SUCCESS
    assert st(env, a, [(0, 10, UN), (10, 10, UN)]) == STATUS_RANGE_NOT_LOCKED
    assert byte_locks.locks_of(env.server, a) == []  # the first stays unlocked
    assert st(env, a, [(0, 10, EX | FI)]) == STATUS_SUCCESS
    # an unlock then a lock in one request: the unlock is done, the lock refused
    assert st(env, a, [(0, 10, UN), (20, 1, EX | FI)]) == STATUS_INVALID_PARAMETER
    assert byte_locks.locks_of(env.server, a) == []
    # the first element fails before the second is looked at
    assert st(env, a, [(0, 10, UN), (0, 1, 0)]) == STATUS_RANGE_NOT_LOCKED


def test_invalid_lock_range(two):
    env, a, _ = two
    assert st(env, a, [(MAX, MAX, EX | FI)]) == STATUS_INVALID_LOCK_RANGE
    assert st(env, a, [(MAX, 2, EX | FI)]) == STATUS_INVALID_LOCK_RANGE
    assert st(env, a, [(MAX, 1, EX | FI)]) == STATUS_SUCCESS


def test_shared_lock_stacks_on_own_exclusive_and_unlocks_three_times(two):
    env, a, _ = two
    el = (0xFFFFFFFF, 0xFFFFFFFF)
    assert st(env, a, [(*el, EX | FI)]) == STATUS_SUCCESS
    assert st(env, a, [(*el, SH)]) == STATUS_SUCCESS  # no conflict: no need to wait
    assert st(env, a, [(*el, SH)]) == STATUS_SUCCESS
    for _ in range(3):
        assert st(env, a, [(*el, UN)]) == STATUS_SUCCESS
    assert st(env, a, [(*el, UN)]) == STATUS_RANGE_NOT_LOCKED


def test_directory_refused(env):
    os.mkdir(os.path.join(env.root, "d"))
    d = env.open("d", RW)
    assert st(env, d, [(0, 1, EX | FI)]) == STATUS_INVALID_PARAMETER


def test_needs_data_access(env):
    op = env.open("f", FILE_READ_ATTRIBUTES)
    assert st(env, op, [(0, 1, EX | FI)]) == STATUS_ACCESS_DENIED


# -- through a real Connection: blocking locks go async ---------------------------------------

class Client:
    """One logged-on connection with a tree connect, sending signed LOCK requests."""

    def __init__(self, state):
        self.state = state
        self.conn, self.sid, self.signer, status, self.msg_id = logon(state)
        assert status == STATUS_SUCCESS
        unc = "\\\\srv\\share".encode("utf-16-le")
        resp = self.send(h.TREE_CONNECT, struct.pack("<HHHH", 9, 0, 72, len(unc)) + unc,
                         tree=False)
        assert status_of(resp) == STATUS_SUCCESS
        self.tree_id = struct.unpack_from("<Q", resp, 32)[0] >> 32
        self.session = state.sessions[self.sid]
        self.tree = self.session.trees[self.tree_id]

    def send(self, command, body, tree=True, flags=0, msg_id=None):
        mid = self.msg_id if msg_id is None else msg_id
        req = header(command, mid, session_id=self.sid,
                     tree_id=self.tree_id if tree else 0, flags=flags) + body
        if msg_id is None:
            self.msg_id += 1
        self.signer.sign(req)
        self.conn.outbox.clear()
        self.conn.receive(memoryview(bytes(req)))
        msgs = frames(self.conn)
        # final responses of earlier requests that went async come out alongside
        self.others = [m for m in msgs if fields(m)[8] != mid]
        mine = [m for m in msgs if fields(m)[8] == mid]
        return mine[0] if mine else None

    def open(self, name):
        path = os.path.join(self.tree.root, name)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        op = Open(self.session, self.tree, fd, path, name, False, RW, 7, 0)
        st_ = os.fstat(fd)
        op.file_key = (st_.st_dev, st_.st_ino)
        self.state.opens.add(op)
        return op

    def lock(self, op, elements):
        return self.send(h.LOCK, lock_body(op, elements))


@pytest.fixture
def state(tmp_path):
    from ksmbd_embedded.config import config_from_text
    from ksmbd_embedded.pwddb import PasswordDb, nt_hash
    from ksmbd_embedded.server import ServerState

    share = tmp_path / "share"
    share.mkdir()
    cfg = config_from_text(CONFIG.format(path=share), "test.uci")
    db = PasswordDb.load(tmp_path / "db")
    db.set("alice", nt_hash("secret"))
    return ServerState(cfg, db)


def pend(client, op, elements):
    """Send a lock that must block; returns (msg_id, async_id) of its interim response."""
    msg_id = client.msg_id
    interim = client.lock(op, elements)
    f = fields(interim)
    assert f[3] == STATUS_PENDING and f[6] & h.FLAGS_ASYNC_COMMAND
    return msg_id, f[9]


def test_blocking_lock_granted_on_unlock(state):
    c = Client(state)
    a, b = c.open("f"), c.open("f")
    assert status_of(c.lock(a, [(100, 50, EX)])) == STATUS_SUCCESS
    msg_id, async_id = pend(c, b, [(100, 50, EX)])
    assert byte_locks.locks_of(state, b) == []
    assert status_of(c.lock(a, [(100, 50, UN)])) == STATUS_SUCCESS
    (final,) = c.others
    f = fields(final)
    assert f[3] == STATUS_SUCCESS and f[9] == async_id and final[64:68] == LOCK_RESPONSE
    assert c.signer.verify(bytearray(final))
    assert byte_locks.locks_of(state, b) == [(100, 50, True)]
    assert not c.conn.async_ops


def test_blocking_lock_cancelled(state):
    c = Client(state)
    a, b = c.open("f"), c.open("f")
    assert status_of(c.lock(a, [(100, 10, EX)])) == STATUS_SUCCESS
    msg_id, async_id = pend(c, b, [(100, 10, EX)])
    # unlocking the pending range from b: nothing is locked there yet
    assert status_of(c.lock(b, [(100, 10, UN)])) == STATUS_RANGE_NOT_LOCKED
    cancel = header(h.CANCEL, 0, session_id=c.sid, flags=h.FLAGS_ASYNC_COMMAND)
    struct.pack_into("<Q", cancel, 32, async_id)
    c.conn.outbox.clear()
    c.conn.receive(memoryview(bytes(cancel + struct.pack("<HH", 4, 0))))
    (final,) = frames(c.conn)
    assert fields(final)[3] == STATUS_CANCELLED and fields(final)[8] == msg_id
    # the cancelled request is gone: unlocking a grants nothing to b
    assert status_of(c.lock(a, [(100, 10, UN)])) == STATUS_SUCCESS
    assert byte_locks.locks_of(state, b) == [] and not c.conn.async_ops
    assert byte_locks._tables[state] == {}


def test_blocking_lock_answered_range_not_locked_when_its_handle_closes(state):
    c = Client(state)
    a, b = c.open("f"), c.open("f")
    assert status_of(c.lock(a, [(0, 10, EX)])) == STATUS_SUCCESS
    msg_id, _ = pend(c, b, [(0, 10, EX)])
    byte_locks.release_open(state, b)  # what close_open does
    (final,) = frames(c.conn)
    assert fields(final)[3] == STATUS_RANGE_NOT_LOCKED and fields(final)[8] == msg_id
    assert not c.conn.async_ops


def test_close_of_holder_wakes_waiter_on_another_connection(state):
    c1, c2 = Client(state), Client(state)
    a, b = c1.open("f"), c2.open("f")
    assert status_of(c1.lock(a, [(0, 10, SH)])) == STATUS_SUCCESS
    msg_id, _ = pend(c2, b, [(5, 1, EX)])
    byte_locks.release_open(state, a)
    (final,) = frames(c2.conn)
    assert fields(final)[3] == STATUS_SUCCESS and fields(final)[8] == msg_id
    assert byte_locks.locks_of(state, b) == [(5, 1, True)]


def test_logoff_cancels_waiting_lock(state):
    c = Client(state)
    a, b = c.open("f"), c.open("f")
    assert status_of(c.lock(a, [(0, 10, EX)])) == STATUS_SUCCESS
    pend(c, b, [(0, 10, EX)])
    resp = c.send(h.LOGOFF, struct.pack("<HH", 4, 0), tree=False)
    assert status_of(resp) == STATUS_SUCCESS
    # CANCELLED when LOGOFF cancels before it closes the handles; SUCCESS when closing the
    # holder first grants the lock (what smbtorture smb2.lock.cancel-logoff expects)
    assert [fields(m)[3] for m in c.others] in ([STATUS_CANCELLED], [STATUS_SUCCESS])
    assert not c.conn.async_ops
    fl = byte_locks._tables.get(state, {})
    assert all(not f.waiters for f in fl.values())


def test_fail_immediately_conflict_does_not_wait(state):
    c = Client(state)
    a, b = c.open("f"), c.open("f")
    assert status_of(c.lock(a, [(0, 10, EX)])) == STATUS_SUCCESS
    assert status_of(c.lock(b, [(0, 10, SH | FI)])) == STATUS_LOCK_NOT_GRANTED
    assert not c.conn.async_ops

"""CREATE's oplock part and OPLOCK_BREAK (handlers/oplock_break.py) on a fake connection:
grant levels, a second open waiting for the acknowledgment, acknowledgment errors
(MS-SMB2 3.3.5.9, 3.3.5.22.1)."""

import struct

import pytest

from ksmbd_embedded import header as h
from ksmbd_embedded.async_work import AsyncWork
from ksmbd_embedded.caching import breaks
from ksmbd_embedded.handlers import create as cr
from ksmbd_embedded.handlers import oplock_break as ob
from ksmbd_embedded.handlers.close import handle_close
from ksmbd_embedded.status import (
    STATUS_FILE_CLOSED, STATUS_INVALID_OPLOCK_PROTOCOL, STATUS_OPLOCK_BREAK_IN_PROGRESS,
    STATUS_PENDING, STATUS_SUCCESS, SmbError,
)

from handler_fixtures import HandlerEnv
from handler_fixtures import call as _call

RW = 0x1 | 0x2 | 0x80
SHARE_ALL = 7


class AsyncConn:
    """The parts of Connection the async path and the notifications use."""

    peer = "test"
    closing = False

    def __init__(self, base):
        self.__dict__.update(base.__dict__)
        self.async_ops = {}
        self.next_async_id = 1
        self.sent = []
        self.completed = []

    def new_async(self, req, on_cancel):
        work = AsyncWork(self, self.next_async_id, req.msg_id, req.command, req.session,
                         req.tree, False, on_cancel)
        self.next_async_id += 1
        self.async_ops[work.async_id] = work
        return work

    def complete_async(self, work, status, body):
        self.async_ops.pop(work.async_id, None)
        if isinstance(body, (list, tuple)):
            body = b"".join(bytes(p) for p in body)
        self.completed.append((status, bytes(body)))

    def send_frame(self, buf):
        self.sent.append(bytes(buf))


@pytest.fixture
def env(tmp_path):
    e = HandlerEnv(str(tmp_path))
    e.conn = AsyncConn(e.conn)
    e.session.connection = e.conn
    return e


def create(env, name, oplock, disposition=cr.FILE_OPEN_IF, options=0, access=RW):
    raw = name.encode("utf-16-le")
    body = cr._CREATE_REQUEST.pack(57, 0, oplock, 2, 0, 0, access, 0x80, SHARE_ALL,
                                   disposition, options, h.HEADER_SIZE + 56, len(raw), 0, 0)
    return call(cr.handle_create, env.request(h.CREATE, body + raw))


def call(handler, req):
    """handler_fixtures.call, also for a request that went async (STATUS_PENDING, None)."""
    try:
        status, body = handler(req)
    except SmbError as exc:
        return exc.status, None
    if body is None:
        return status, None
    return _call(lambda r: (status, body), req)


def fid(body):
    return struct.unpack_from("<QQ", body, 64)


def ack(env, ids, level):
    return call(ob.handle_oplock_break,
                env.request(h.OPLOCK_BREAK, ob._BREAK.pack(24, level, 0, 0, *ids)))


def test_grant_levels(env):
    status, a = create(env, "f", ob.SMB2_OPLOCK_LEVEL_BATCH)
    assert status == STATUS_SUCCESS and a[2] == ob.SMB2_OPLOCK_LEVEL_BATCH
    status, d = create(env, "d", ob.SMB2_OPLOCK_LEVEL_BATCH, cr.FILE_CREATE,
                       cr.FILE_DIRECTORY_FILE, access=0x1)
    assert status == STATUS_SUCCESS and d[2] == 0  # never on a directory
    status, e = create(env, "g", ob.SMB2_OPLOCK_LEVEL_LEASE)
    assert e[2] == 0  # leases: a later step


def test_second_open_waits_for_the_acknowledgment(env):
    _, a = create(env, "f", ob.SMB2_OPLOCK_LEVEL_BATCH)
    assert ack(env, fid(a), 1)[0] == STATUS_INVALID_OPLOCK_PROTOCOL  # nothing breaking
    status, _ = create(env, "f", ob.SMB2_OPLOCK_LEVEL_BATCH)
    assert status == STATUS_PENDING and env.conn.completed == []
    (note,) = env.conn.sent
    assert note[12] == h.OPLOCK_BREAK and note[64 + 2] == ob.SMB2_OPLOCK_LEVEL_II
    assert struct.unpack_from("<QQ", note, 72) == fid(a)
    status, body = ack(env, fid(a), ob.SMB2_OPLOCK_LEVEL_II)
    assert status == STATUS_SUCCESS and body[2] == ob.SMB2_OPLOCK_LEVEL_II
    ((status, b),) = env.conn.completed  # the waiting CREATE, run again
    assert status == STATUS_SUCCESS and b[2] == ob.SMB2_OPLOCK_LEVEL_II
    assert ack(env, fid(a), 0)[0] == STATUS_INVALID_OPLOCK_PROTOCOL  # over already
    bt = breaks.table(env.server)
    assert (bt.sent, bt.acknowledged, bt.timed_out) == (1, 1, 0)


def test_ack_above_the_offered_level_is_refused(env):
    _, a = create(env, "f", ob.SMB2_OPLOCK_LEVEL_BATCH)
    create(env, "f", 0, cr.FILE_OVERWRITE_IF)  # breaks to none
    assert env.conn.sent[-1][64 + 2] == 0
    assert ack(env, fid(a), ob.SMB2_OPLOCK_LEVEL_II)[0] == STATUS_INVALID_OPLOCK_PROTOCOL
    assert len(env.conn.completed) == 1  # the break ended anyway: the opener went on


def test_complete_if_oplocked_does_not_wait(env):
    create(env, "f", ob.SMB2_OPLOCK_LEVEL_EXCLUSIVE)
    status, _ = create(env, "f", 0, options=cr.FILE_COMPLETE_IF_OPLOCKED)
    assert status == STATUS_OPLOCK_BREAK_IN_PROGRESS and len(env.conn.sent) == 1


def test_close_of_holder_releases_the_waiter(env):
    _, a = create(env, "f", ob.SMB2_OPLOCK_LEVEL_BATCH)
    assert create(env, "f", 0)[0] == STATUS_PENDING
    body = struct.pack("<HHIQQ", 24, 0, 0, *fid(a))
    assert call(handle_close, env.request(h.CLOSE, body))[0] == STATUS_SUCCESS
    assert [s for s, _ in env.conn.completed] == [STATUS_SUCCESS]


def test_ack_of_unknown_handle(env):
    assert ack(env, (99, 99), 0)[0] == STATUS_FILE_CLOSED


def test_share_with_oplocks_off(tmp_path):
    e = HandlerEnv(str(tmp_path), oplocks=False)
    e.conn = AsyncConn(e.conn)
    e.session.connection = e.conn
    assert create(e, "f", ob.SMB2_OPLOCK_LEVEL_BATCH)[1][2] == 0

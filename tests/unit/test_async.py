"""Interim responses, async completion and CANCEL (MS-SMB2 3.3.4.2, 3.3.5.16), driven through a
real Connection with an ECHO handler swapped for one that waits."""

import struct

import pytest

from ksmbd_embedded import connection as connection_module
from ksmbd_embedded import header as h
from ksmbd_embedded.status import (
    STATUS_CANCELLED, STATUS_INTERNAL_ERROR, STATUS_PENDING, STATUS_SUCCESS,
)

from test_connection import header, logon, negotiate_request, send, state, status_of  # noqa: F401

ECHO_BODY = struct.pack("<HH", 4, 0)


@pytest.fixture
def waiting_echo(monkeypatch):
    """ECHO goes async; the test completes or cancels it."""
    works, cancelled = [], []

    def handler(req):
        works.append(req.go_async(lambda: cancelled.append(True)))
        return STATUS_PENDING, None

    table = list(connection_module.COMMANDS)
    table[h.ECHO] = (handler, 4, True, False)  # with a session, like LOCK or CHANGE_NOTIFY
    monkeypatch.setattr(connection_module, "COMMANDS", tuple(table))
    return works, cancelled


def frames(conn):
    """Split what the connection queued into SMB2 messages."""
    data = b"".join(bytes(b) for b in conn.outbox)
    out = []
    while data:
        n = struct.unpack(">I", data[:4])[0]
        out.append(data[4:4 + n])
        data = data[4 + n:]
    conn.outbox.clear()
    return out


def fields(msg):
    return h.HEADER.unpack_from(msg, 0)


def test_interim_then_final(state, waiting_echo):
    works, _ = waiting_echo
    conn, sid, signer, _, msg_id = logon(state)
    req = header(h.ECHO, msg_id, session_id=sid) + ECHO_BODY
    signer.sign(req)
    interim = send(conn, req)
    conn.outbox.clear()
    f = fields(interim)
    assert f[3] == STATUS_PENDING and f[6] & h.FLAGS_ASYNC_COMMAND
    assert f[5] >= 1  # credits are granted with the interim response
    async_id = f[9]
    assert async_id == works[0].async_id != 0
    works[0].complete(STATUS_SUCCESS, b"\x04\x00\x00\x00")
    (final,) = frames(conn)
    f = fields(final)
    assert f[3] == STATUS_SUCCESS and f[6] & h.FLAGS_ASYNC_COMMAND
    assert f[8] == msg_id and f[9] == async_id
    assert signer.verify(bytearray(final))  # the request was signed, so is the final answer
    assert conn in state.flush_pending  # the loop will send it even outside a read
    assert not conn.async_ops


def test_cancel_by_async_id(state, waiting_echo):
    works, cancelled = waiting_echo
    conn, sid, signer, _, msg_id = logon(state)
    send(conn, header(h.ECHO, msg_id, session_id=sid) + ECHO_BODY)
    conn.outbox.clear()
    cancel = header(h.CANCEL, 0, session_id=sid, flags=h.FLAGS_ASYNC_COMMAND)
    struct.pack_into("<Q", cancel, 32, works[0].async_id)
    conn.receive(memoryview(bytes(cancel + ECHO_BODY)))
    (final,) = frames(conn)  # the CANCEL has no response of its own
    f = fields(final)
    assert f[3] == STATUS_CANCELLED and f[8] == msg_id and f[9] == works[0].async_id
    assert cancelled == [True] and not conn.async_ops


def test_cancel_sync_by_message_id(state, waiting_echo):
    works, cancelled = waiting_echo
    conn, sid, signer, _, msg_id = logon(state)
    send(conn, header(h.ECHO, msg_id, session_id=sid) + ECHO_BODY)
    conn.outbox.clear()
    conn.receive(memoryview(bytes(header(h.CANCEL, msg_id, session_id=sid) + ECHO_BODY)))
    (final,) = frames(conn)
    f = fields(final)
    assert f[3] == STATUS_CANCELLED and f[8] == msg_id
    assert cancelled == [True] and not conn.async_ops


def test_cancel_from_another_session_is_ignored(state, waiting_echo):
    works, cancelled = waiting_echo
    conn, sid, signer, _, msg_id = logon(state)
    send(conn, header(h.ECHO, msg_id, session_id=sid) + ECHO_BODY)
    conn.outbox.clear()
    conn.receive(memoryview(bytes(header(h.CANCEL, msg_id, session_id=sid + 1) + ECHO_BODY)))
    assert not frames(conn) and not cancelled and conn.async_ops


def test_only_the_last_request_of_a_chain_goes_async(state, waiting_echo):
    works, cancelled = waiting_echo
    conn, sid, signer, _, msg_id = logon(state)
    first = header(h.ECHO, msg_id, session_id=sid, next_cmd=72) + ECHO_BODY + bytes(4)
    second = header(h.ECHO, msg_id + 1, session_id=sid) + ECHO_BODY
    resp = send(conn, first + second)
    assert status_of(resp) == STATUS_INTERNAL_ERROR
    nxt = struct.unpack_from("<I", resp, 20)[0]
    second_resp = resp[nxt:]
    assert fields(second_resp)[3] == STATUS_PENDING
    assert len(conn.async_ops) == 1


def test_logoff_cancels_pending_requests(state, waiting_echo):
    works, cancelled = waiting_echo
    conn, sid, signer, _, msg_id = logon(state)
    send(conn, header(h.ECHO, msg_id, session_id=sid) + ECHO_BODY)
    conn.outbox.clear()
    logoff = header(h.LOGOFF, msg_id + 1, session_id=sid) + ECHO_BODY
    signer.sign(logoff)
    conn.receive(memoryview(bytes(logoff)))
    msgs = frames(conn)
    statuses = [fields(m)[3] for m in msgs]
    assert STATUS_CANCELLED in statuses and STATUS_SUCCESS in statuses
    assert cancelled == [True] and not conn.async_ops

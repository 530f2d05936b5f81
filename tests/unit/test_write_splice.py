"""Plain WRITE payloads spliced from the socket to the file (issue 11): a real loop, a real
socketpair, a real file; the payload never passes through a receive buffer."""

import os
import socket
import struct

import pytest
from test_compound_padding import _tree
from test_create import create_body

from ksmbd_embedded import header as h
from ksmbd_embedded.handlers import read_write as rw
from ksmbd_embedded.loop import Loop, _Client
from ksmbd_embedded.status import STATUS_FILE_CLOSED, STATUS_SUCCESS

GENERIC_RW = 0x80000000 | 0x40000000
FILE_OVERWRITE_IF = 5
KIB = 1024


class Env:
    def __init__(self, tmp_path):
        self.conn, self.sid, self.signer, self.msg_id, self.tree_id = _tree(tmp_path)
        self.root = tmp_path / "share"
        self.session = self.conn.sessions[self.sid]
        self.session.signing_required = False  # (a client that does not ask for signing)
        self.conn.outbox.clear()  # (send() leaves the last answers there)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.loop = Loop(self.conn.server, ["127.0.0.1"], port)
        a, self.peer = socket.socketpair()
        a.setblocking(False)
        self.client = _Client(a, self.conn)
        self.conn.transport = self.client
        self.loop.clients[self.client.fileno] = self.client
        self.loop.sel.register(a, 1, self.client)
        self.peer.settimeout(5)
        self.buffered = b""

    def next_id(self, charge=1):
        msg_id = self.msg_id
        self.msg_id += max(charge, 1)
        return msg_id

    def request(self, command, body, charge=1, signed=False, tree=True):
        req = bytearray(64)
        h.HEADER.pack_into(req, 0, h.SMB2_MAGIC, 64, charge, 0, command, 64,
                           h.FLAGS_SIGNED if signed else 0, 0, self.next_id(charge),
                           (self.tree_id << 32) if tree else 0, self.sid)
        req += body
        if signed:
            self.signer.sign(req)
        return struct.pack(">I", len(req)) + bytes(req)

    def create(self, name):
        self.send(self.request(h.CREATE, create_body(
            name, access=GENERIC_RW, disposition=FILE_OVERWRITE_IF), signed=True))
        resp = self.response()
        assert struct.unpack_from("<I", resp, 8)[0] == STATUS_SUCCESS
        return struct.unpack_from("<QQ", resp, 64 + 64)

    def write_frame(self, fid, payload, offset=0, signed=False, flags=0):
        body = struct.pack("<HHIQQQIIHHI", 49, 112, len(payload), offset, fid[0], fid[1], 0,
                           0, 0, 0, flags)
        return self.request(h.WRITE, body + payload, charge=(len(payload) - 1) // 65536 + 1,
                            signed=signed)

    def send(self, data):
        """All of `data` to the server, running the loop while the socket is full."""
        view = memoryview(data)
        self.peer.setblocking(False)
        try:
            while view:
                try:
                    view = view[self.peer.send(view):]
                except BlockingIOError:
                    self.pump(1)
                    self.has_response()
        finally:
            self.peer.settimeout(5)

    def pump(self, rounds=20):
        for _ in range(rounds):
            for tag, events in self.loop.sel.poll(0.01):
                if tag.__class__ is _Client and self.loop.clients.get(tag.fileno) is tag:
                    if events & 1:
                        self.loop._read(tag)
                    if events & 2 and tag.fileno in self.loop.clients:
                        self.loop._flush(tag)

    def has_response(self):
        timeout = self.peer.gettimeout()
        self.peer.setblocking(False)
        try:
            self.buffered += self.peer.recv(1 << 20)
        except BlockingIOError:
            pass
        self.peer.settimeout(timeout)
        return len(self.buffered) >= 4

    def response(self):
        for _ in range(200):
            if len(self.buffered) >= 4:
                n = struct.unpack_from(">I", self.buffered)[0]
                if len(self.buffered) >= 4 + n:
                    resp, self.buffered = self.buffered[4:4 + n], self.buffered[4 + n:]
                    return resp
            self.pump(1)
            self.has_response()
        raise AssertionError("no response")

    def echo_ok(self):
        self.send(self.request(h.ECHO, struct.pack("<HH", 4, 0), tree=False))
        resp = self.response()
        assert struct.unpack_from("<H", resp, 12)[0] == h.ECHO
        assert struct.unpack_from("<I", resp, 8)[0] == STATUS_SUCCESS

    def close(self):
        self.conn.sessions = {}
        for client in list(self.loop.clients.values()):
            self.loop._drop(client, "test over")
        self.peer.close()
        self.loop.shutdown()


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    e.close()


def test_write_arriving_in_chunks_is_spliced(env, monkeypatch):
    fid = env.create("big.bin")
    payload = os.urandom(700 * KIB + 3)
    frame = env.write_frame(fid, payload, offset=4096)
    taken = []
    monkeypatch.setattr(env.loop, "_take_buffer", lambda n: taken.append(n) or bytearray(n))
    pieces = [frame[:100], frame[100:5000], frame[5000:200 * KIB], frame[200 * KIB:600 * KIB],
              frame[600 * KIB:-1], frame[-1:]]
    for i, piece in enumerate(pieces):
        env.send(piece)
        env.pump(3)
        if 1 <= i < len(pieces) - 1:
            assert env.client.splice is not None  # splicing: no answer before the last byte
            assert not env.has_response()
    resp = env.response()
    assert struct.unpack_from("<I", resp, 8)[0] == STATUS_SUCCESS
    assert struct.unpack_from("<HHI", resp, 64) == (17, 0, len(payload))
    assert taken == [] and env.loop.io_used == 0 and env.client.frame is None
    assert (env.root / "big.bin").read_bytes() == bytes(4096) + payload
    assert env.session.bytes_written == len(payload)
    assert env.conn.server.opens.get(fid[1]).position == 4096 + len(payload)
    env.echo_ok()  # the stream stays in step


def test_two_writes_back_to_back(env):
    fid = env.create("two.bin")
    a, b = os.urandom(300 * KIB), os.urandom(65 * KIB)
    env.send(env.write_frame(fid, a) + env.write_frame(fid, b, offset=len(a)))
    assert struct.unpack_from("<I", env.response(), 8)[0] == STATUS_SUCCESS
    assert struct.unpack_from("<I", env.response(), 8)[0] == STATUS_SUCCESS
    assert (env.root / "two.bin").read_bytes() == a + b


def _old_path_status(env, fid, payload):
    """What the WRITE handler answers in place for the same write (a small one)."""
    env.send(env.write_frame(fid, payload[:1000]))
    resp = env.response()
    assert env.client.splice is None
    return struct.unpack_from("<I", resp, 8)[0], resp


def test_failing_file_write_drains_the_payload_and_answers_its_status(env):
    fid = env.create("ro.bin")
    op = env.conn.server.opens.get(fid[1])
    writable = op.fd
    op.fd = os.open(env.root / "ro.bin", os.O_RDONLY)  # writes fail: EBADF
    try:
        expected, old = _old_path_status(env, fid, bytes(1000))
        assert expected != STATUS_SUCCESS
        payload = os.urandom(500 * KIB)
        frame = env.write_frame(fid, payload)
        env.send(frame[:70 * KIB])
        env.pump(3)
        assert env.client.splice is not None and not env.has_response()
        env.send(frame[70 * KIB:])
        resp = env.response()
        assert struct.unpack_from("<I", resp, 8)[0] == expected
        assert resp[64:] == old[64:] and len(resp) == len(old)  # the same error body
    finally:
        os.close(op.fd)
        op.fd = writable
    assert (env.root / "ro.bin").read_bytes() == b""
    assert env.client.splice is None
    env.echo_ok()  # the rest of the payload was read and discarded


def test_refused_write_answers_as_today_after_draining(env):
    fid = env.create("x.bin")
    bogus = (fid[0], fid[1])
    env.conn.server.opens.get(fid[1]).persistent_id ^= 1  # the FileId no longer matches
    env.send(env.write_frame(bogus, os.urandom(200 * KIB)))
    resp = env.response()
    assert struct.unpack_from("<I", resp, 8)[0] == STATUS_FILE_CLOSED
    env.echo_ok()


def test_signed_write_takes_the_old_path(env, monkeypatch):
    fid = env.create("signed.bin")
    starts = []
    real = env.loop._splice_start
    monkeypatch.setattr(env.loop, "_splice_start", lambda *a: starts.append(a) or real(*a))
    payload = os.urandom(300 * KIB)
    env.send(env.write_frame(fid, payload, signed=True))
    resp = bytearray(env.response())
    assert struct.unpack_from("<I", resp, 8)[0] == STATUS_SUCCESS
    assert env.signer.verify(resp)
    assert starts == []
    assert (env.root / "signed.bin").read_bytes() == payload


def test_small_and_padded_writes_take_the_old_path(env, monkeypatch):
    fid = env.create("small.bin")
    starts = []
    real = env.loop._splice_start
    monkeypatch.setattr(env.loop, "_splice_start", lambda *a: starts.append(a) or real(*a))
    small = os.urandom(rw.SPLICE_MIN - 1)
    env.send(env.write_frame(fid, small))
    assert struct.unpack_from("<I", env.response(), 8)[0] == STATUS_SUCCESS
    # DataOffset 120: 8 bytes of padding before the payload
    payload = os.urandom(200 * KIB)
    body = struct.pack("<HHIQQQIIHHI", 49, 120, len(payload), 0, fid[0], fid[1], 0, 0, 0, 0,
                       0)
    env.send(env.request(h.WRITE, body + bytes(8) + payload, charge=4))
    assert struct.unpack_from("<I", env.response(), 8)[0] == STATUS_SUCCESS
    assert starts == []
    assert (env.root / "small.bin").read_bytes() == payload

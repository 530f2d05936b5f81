"""Direct TCP framing with one scratch buffer shared by all connections: frames split at any
byte, interleaved between connections, several per read, and large ones in pooled buffers; an
idle connection keeps no buffer."""

import random
import socket
import struct
import threading
import time
import types

import pytest

from ksmbd_embedded import loop as loop_module
from ksmbd_embedded.loop import SCRATCH_SIZE, Loop, _Client
from ksmbd_embedded.session import VALID

from test_connection import state  # noqa: F401


class _Conn:
    outbox: list = []
    closing = False
    suspended = None
    sessions = {1: types.SimpleNamespace(state=VALID)}  # logged on: large frames allowed


@pytest.fixture
def lp(state, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    loop = Loop(state, ["127.0.0.1"], port)
    loop.got = {}

    def record(client, frame):
        loop.got.setdefault(client.fileno, []).append(bytes(frame))
        return True

    monkeypatch.setattr(loop, "_dispatch", record)
    monkeypatch.setattr(loop, "_flush", lambda client: None)
    yield loop
    for client in loop.clients.values():
        client.sock.close()
    loop.clients.clear()  # fake connections: nothing to drop
    loop.shutdown()


def _pair(lp):
    a, b = socket.socketpair()
    a.setblocking(False)
    client = _Client(a, _Conn())
    lp.clients[client.fileno] = client
    return client, b


def _frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def test_frames_split_anywhere_and_interleaved(lp):
    rnd = random.Random(7)
    c1, s1 = _pair(lp)
    c2, s2 = _pair(lp)
    msgs1 = [bytes([i]) * rnd.randrange(1, 3000) for i in range(40)]
    msgs2 = [bytes([100 + i]) * rnd.randrange(1, 3000) for i in range(40)]
    streams = [(c1, s1, b"".join(map(_frame, msgs1))), (c2, s2, b"".join(map(_frame, msgs2)))]
    pos = [0, 0]
    while any(pos[i] < len(streams[i][2]) for i in range(2)):
        for i, (client, peer, data) in enumerate(streams):
            if pos[i] < len(data):
                n = rnd.randrange(1, 500)
                peer.sendall(data[pos[i]:pos[i] + n])
                pos[i] += n
                lp._read(client)
                assert len(client.pending) < SCRATCH_SIZE
    assert lp.got[c1.fileno] == msgs1 and lp.got[c2.fileno] == msgs2
    assert c1.pending == b"" and c2.pending == b""  # idle: nothing kept


def test_many_frames_in_one_read_and_a_large_one(lp):
    c, peer = _pair(lp)
    small = [b"x" * 10, b"y" * 20, b"z"]
    big = bytes(range(256)) * 1024  # 256 KiB: more than the scratch buffer
    peer.sendall(b"".join(map(_frame, small)) + _frame(big)[:1000])
    lp._read(c)
    # No buffer for a frame whose bytes have not come: the 1000 that did are kept.
    assert lp.got[c.fileno] == small and c.frame is None and len(c.pending) == 1000
    sender = threading.Thread(target=peer.sendall, args=(_frame(big)[1000:],))
    sender.start()  # more than a socket buffer holds: sent while we read
    deadline = time.monotonic() + 10
    while len(lp.got[c.fileno]) < 4 and time.monotonic() < deadline:
        lp._read(c)
    sender.join(10)
    assert lp.got[c.fileno][-1] == big and c.frame is None and c.pending == b""


def test_idle_connections_hold_no_receive_buffer(lp):
    assert not any(name in _Client.__slots__ for name in ("scratch", "scratch_view"))
    assert len(lp.scratch) == SCRATCH_SIZE == loop_module.SCRATCH_SIZE

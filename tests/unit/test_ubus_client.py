"""The ubus client against a unix socket played by the test, with bytes captured from the
real ubusd: what it sends must equal what libubus sent in the same exchange."""

import errno
import logging
import os
import socket

import pytest

from ksmbd_embedded.ubus import client as c
from ksmbd_embedded.ubus import message as m

from test_ubus_blob import load

CLI = dict(load("cli-session"))
EXAMPLE_SIGNATURE = {"hello": {"id": 5, "msg": 3}, "watch": {"id": 5, "counter": 5},
                     "count": {"to": 5, "string": 3}}


class FakeLoop:
    """The loop API the client uses; the test runs readers and timers by hand."""

    def __init__(self):
        self.readers = {}
        self.timers = []

    def add_reader(self, fileobj, callback):
        assert fileobj not in self.readers
        self.readers[fileobj] = callback

    def remove_reader(self, fileobj):
        self.readers.pop(fileobj, None)

    def call_later(self, delay, callback):
        self.timers.append((delay, callback))

    def pump(self):
        for cb in list(self.readers.values()):
            cb()

    def fire_timers(self):
        timers, self.timers = self.timers, []
        for _, cb in timers:
            cb()
        return [d for d, _ in timers]


def example_handler(calls):
    """Behaves like ubus-example-server's `count` (the captured owner)."""
    def handler(method, args):
        calls.append((method, args))
        if method == "count":
            if "to" not in args or "string" not in args:
                return m.UBUS_STATUS_INVALID_ARGUMENT, None
            return 0, {"rc": 0}
        return m.UBUS_STATUS_NOT_SUPPORTED, None
    return handler


@pytest.fixture
def ubusd(tmp_path):
    path = str(tmp_path / "ubus.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(4)
    yield path, srv
    srv.close()


def recv_exactly(sock, n):
    sock.settimeout(2)
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "client closed"
        data += chunk
    return data


def registered(ubusd, calls):
    path, srv = ubusd
    loop = FakeLoop()
    cl = c.UbusClient(loop, path, "test", EXAMPLE_SIGNATURE, example_handler(calls))
    cl.start()
    peer, _ = srv.accept()
    peer.sendall(CLI["004_conn2_s2c_HELLO.hex"])
    loop.pump()
    add = CLI["005_conn2_c2s_ADD_OBJECT.hex"]
    assert recv_exactly(peer, len(add)) == add  # byte for byte what libubus sent
    peer.sendall(CLI["006_conn2_s2c_DATA.hex"] + CLI["007_conn2_s2c_STATUS.hex"])
    loop.pump()
    assert cl.state == c.READY and cl.object_id == 0xAEFEE4A3
    assert cl.client_id == 0x3A02E1EA and cl.object_type == 0xD90A3FB6
    return loop, cl, peer


@pytest.mark.parametrize("invoke,replies", [
    ("024_conn2_s2c_INVOKE.hex", ["025_conn2_c2s_DATA.hex", "027_conn2_c2s_STATUS.hex"]),
    ("044_conn2_s2c_INVOKE.hex", ["045_conn2_c2s_STATUS.hex"]),
    ("052_conn2_s2c_INVOKE.hex", ["053_conn2_c2s_STATUS.hex"]),
    ("063_conn2_s2c_INVOKE.hex", ["064_conn2_c2s_DATA.hex", "066_conn2_c2s_STATUS.hex"]),
])
def test_invoke_replies_match_libubus(ubusd, invoke, replies):
    calls = []
    loop, cl, peer = registered(ubusd, calls)
    peer.sendall(CLI[invoke])
    loop.pump()
    want = b"".join(CLI[r] for r in replies)
    assert recv_exactly(peer, len(want)) == want
    peer.setblocking(False)
    with pytest.raises(BlockingIOError):
        peer.recv(1)  # nothing more
    if invoke.startswith("044"):
        assert calls == []  # unknown method: answered without calling the handler


def test_messages_split_and_joined_arbitrarily(ubusd):
    calls = []
    loop, cl, peer = registered(ubusd, calls)
    stream = CLI["095_conn2_s2c_NOTIFY.hex"] + CLI["024_conn2_s2c_INVOKE.hex"] * 2
    for i in range(0, len(stream), 7):
        peer.sendall(stream[i:i + 7])
        loop.pump()
    want = (CLI["025_conn2_c2s_DATA.hex"] + CLI["027_conn2_c2s_STATUS.hex"]) * 2
    assert recv_exactly(peer, len(want)) == want
    assert calls == [("count", {"to": 3, "string": "0 1 2 "})] * 2


def test_invoke_for_another_object_is_not_found(ubusd):
    loop, cl, peer = registered(ubusd, [])
    msg = m.Message.decode(CLI["024_conn2_s2c_INVOKE.hex"])
    msg.attrs[0] = (m.UBUS_ATTR_OBJID, 1234)
    peer.sendall(msg.encode())
    loop.pump()
    reply = m.Message.decode(recv_exactly(peer, 28))
    assert reply.type == m.UBUS_MSG_STATUS and reply.get(m.UBUS_ATTR_STATUS) == 4


def test_refused_registration_and_lost_ubusd_warn_once_and_retry(ubusd, caplog):
    path, srv = ubusd
    caplog.set_level(logging.INFO, "ksmbd.ubus")
    loop = FakeLoop()
    cl = c.UbusClient(loop, path, "test", EXAMPLE_SIGNATURE, example_handler([]))
    cl.start()
    peer, _ = srv.accept()
    peer.sendall(CLI["004_conn2_s2c_HELLO.hex"])
    loop.pump()
    recv_exactly(peer, len(CLI["005_conn2_c2s_ADD_OBJECT.hex"]))
    # ubusd refuses: the path is taken (a lone STATUS 2, notes A8 (ii))
    refusal = m.Message(m.UBUS_MSG_STATUS, 1, 0, [(m.UBUS_ATTR_STATUS, 2)])
    peer.sendall(refusal.encode())
    loop.pump()
    assert cl.state == c.IDLE and not loop.readers
    peer.close()
    srv.close()
    os.unlink(path)  # ubusd gone
    delays = []
    for _ in range(8):
        delays += [d for d in loop.fire_timers() if d != c.HANDSHAKE_TIMEOUT]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "status 2" in warnings[0].getMessage()


def test_reconnects_when_ubusd_comes_back(tmp_path, caplog):
    caplog.set_level(logging.INFO, "ksmbd.ubus")
    path = str(tmp_path / "ubus.sock")
    loop = FakeLoop()
    cl = c.UbusClient(loop, path, "test", EXAMPLE_SIGNATURE, example_handler([]))
    cl.start()
    assert cl.state == c.IDLE
    loop.fire_timers()
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    loop.fire_timers()  # the retry connects
    assert cl.state == c.HELLO
    peer, _ = srv.accept()
    peer.sendall(CLI["004_conn2_s2c_HELLO.hex"])
    loop.pump()
    recv_exactly(peer, len(CLI["005_conn2_c2s_ADD_OBJECT.hex"]))
    peer.sendall(CLI["006_conn2_s2c_DATA.hex"] + CLI["007_conn2_s2c_STATUS.hex"])
    loop.pump()
    assert cl.state == c.READY
    # ubusd restarts: one new warning, a quick retry
    peer.close()
    loop.pump()
    assert cl.state == c.IDLE
    assert [d for d in loop.fire_timers() if d != c.HANDSHAKE_TIMEOUT] == [0.5]
    assert cl.state == c.HELLO
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and "closed" in warnings[1]
    assert any("registered" in r.getMessage() for r in caplog.records)
    cl.close()
    assert not loop.readers and cl.state == c.CLOSED
    loop.fire_timers()
    assert cl.state == c.CLOSED
    srv.close()


def test_silent_ubusd_times_out(ubusd):
    path, srv = ubusd
    loop = FakeLoop()
    cl = c.UbusClient(loop, path, "test", EXAMPLE_SIGNATURE, example_handler([]))
    cl.start()
    assert [d for d, _ in loop.timers] == [c.HANDSHAKE_TIMEOUT]
    loop.fire_timers()
    assert cl.state == c.IDLE and not loop.readers


def test_garbage_from_ubusd_drops_the_connection(ubusd):
    loop, cl, peer = registered(ubusd, [])
    peer.sendall(b"\x00\x05\x00\x01\x00\x00\x00\x00\x00\x00\x00\x02")
    loop.pump()
    assert cl.state == c.IDLE


def test_output_is_bounded_when_ubusd_does_not_read(ubusd):
    loop, cl, peer = registered(ubusd, [])
    big = b"\0" * (256 * 1024)
    for _ in range(40):  # 10 MiB: the kernel buffer fills, then our bounded buffer
        cl._send_raw(big)
        if cl.state != c.READY:
            break
    assert cl.state == c.IDLE
    assert any(d == c.FLUSH_RETRY for d, _ in loop.timers)


def test_no_descriptor_left_is_retried_like_a_missing_ubusd(tmp_path, caplog, monkeypatch):
    """At the fd limit, socket() itself fails (EMFILE): a warning and a retry, no traceback
    out of the loop's timer."""
    caplog.set_level(logging.INFO, "ksmbd.ubus")
    loop = FakeLoop()
    cl = c.UbusClient(loop, str(tmp_path / "ubus.sock"), "test", EXAMPLE_SIGNATURE,
                      example_handler([]))

    def no_fd(*args, **kwargs):
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(c.socket, "socket", no_fd)
    cl.start()
    assert cl.state == c.IDLE
    assert loop.fire_timers() == [0.5]  # retried
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "Too many open files" in warnings[0]
    monkeypatch.undo()
    cl.close()

"""FSCTL_QUERY_NETWORK_INTERFACE_INFO (MS-SMB2 2.2.32.5, 3.3.5.15.11) and FSCTL_PIPE_TRANSCEIVE
on a real IPC$ pipe object (3.3.5.15.3)."""

from __future__ import annotations

import socket
import struct

import pytest

from info_fixtures import ALL_ONES, Env, ioctl_body
from ksmbd_embedded import header as h
from ksmbd_embedded.fs import net_interfaces as ni
from ksmbd_embedded.handlers import ioctl
from ksmbd_embedded.handlers.ioctl import handle_ioctl
from ksmbd_embedded.rpc import pdu as p
from ksmbd_embedded.rpc.pipe import RpcPipe
from ksmbd_embedded.status import (
    STATUS_BUFFER_OVERFLOW, STATUS_BUFFER_TOO_SMALL, STATUS_INVALID_PARAMETER,
    STATUS_PIPE_BUSY, STATUS_PIPE_EMPTY, STATUS_SUCCESS,
)

RESPONSE = struct.Struct("<HHIQQIIIIII")
V4 = socket.inet_pton(socket.AF_INET, "192.0.2.7")
V6 = socket.inet_pton(socket.AF_INET6, "2001:db8::7")
LL6 = socket.inet_pton(socket.AF_INET6, "fe80::1")
ADDRS = [("lo", ni.IFF_UP | ni.IFF_LOOPBACK, socket.AF_INET, b"\x7f\0\0\1"),
         ("eth0", ni.IFF_UP, socket.AF_INET, V4),
         ("eth0", ni.IFF_UP, socket.AF_INET6, V6),
         ("eth0", ni.IFF_UP, socket.AF_INET6, LL6),
         ("wlan0", 0, socket.AF_INET, b"\xc0\0\2\x09")]  # down


def served(listen):
    return ni.served_interfaces(listen, addresses=ADDRS, speed=lambda n: 10**9,
                                index=lambda n: {"eth0": 2, "wlan0": 3, "lo": 1}[n])


def test_served_interfaces_filter():
    got = served(("0.0.0.0", "::"))
    assert [(i.name, i.family, i.address) for i in got] == [
        ("eth0", socket.AF_INET, V4), ("eth0", socket.AF_INET6, V6)]
    assert [i.address for i in served(("0.0.0.0",))] == [V4]
    assert [i.address for i in served(("2001:db8::7",))] == [V6]
    assert served(("127.0.0.1",)) == []


def test_encode_entries():
    out = ni.encode(served(("0.0.0.0", "::")))
    assert len(out) == 2 * 152
    nxt, idx, cap, _, speed = struct.unpack_from("<IIIIQ", out, 0)
    assert (nxt, idx, cap, speed) == (152, 2, 0, 10**9)
    family, port, addr = struct.unpack_from("<HH4s", out, 24)
    assert (family, port, addr) == (2, 0, V4)
    nxt, idx = struct.unpack_from("<II", out, 152)
    assert (nxt, idx) == (0, 2)
    family, port, flow, addr6, scope = struct.unpack_from("<HHI16sI", out, 152 + 24)
    assert (family, addr6) == (23, V6)


def test_link_speed_from_sysfs(tmp_path):
    (tmp_path / "eth0").mkdir()
    (tmp_path / "eth0" / "speed").write_text("1000\n")
    (tmp_path / "wl").mkdir()
    (tmp_path / "wl" / "speed").write_text("-1\n")
    assert ni.link_speed("eth0", str(tmp_path)) == 10**9
    assert ni.link_speed("wl", str(tmp_path)) == 0
    assert ni.link_speed("nope", str(tmp_path)) == 0


def test_list_addresses_of_this_machine():
    addrs = ni.list_addresses()
    assert any(name == "lo" or flags & ni.IFF_LOOPBACK for name, flags, _, _ in addrs)


@pytest.fixture
def env(tmp_path, monkeypatch):
    root = tmp_path / "share"
    root.mkdir()
    (root / "f").write_bytes(b"x")
    monkeypatch.setattr(ni, "list_addresses", lambda: ADDRS)
    monkeypatch.setattr(ni, "link_speed", lambda name, sys_net="": 0)
    monkeypatch.setattr(socket, "if_nametoindex", lambda n: 7)
    e = Env(root, dialect=h.SMB3_11)
    yield e
    e.close_all()


def call(env, body):
    return env.call(handle_ioctl, h.IOCTL, body)


def test_network_interface_ioctl(env):
    status, body = call(env, ioctl_body(ioctl.FSCTL_QUERY_NETWORK_INTERFACE_INFO, None))
    assert status == STATUS_SUCCESS
    fields = RESPONSE.unpack_from(body, 0)
    assert fields[3:5] == (ALL_ONES, ALL_ONES) and fields[8] == 2 * 152
    assert call(env, ioctl_body(ioctl.FSCTL_QUERY_NETWORK_INTERFACE_INFO, None,
                                max_out=1))[0] == STATUS_BUFFER_TOO_SMALL
    assert call(env, ioctl_body(ioctl.FSCTL_QUERY_NETWORK_INTERFACE_INFO, None, max_out=1,
                                file_id=(2**63 - 1, 2**63 - 1)))[0] == STATUS_INVALID_PARAMETER


# -- FSCTL_PIPE_TRANSCEIVE on an RpcPipe -------------------------------------------------------

SRVSVC = ("4b324fc8-1670-01d3-1278-5a47bf6ee188", 3)
NDR = ("8a885d04-1ceb-11c9-9fe8-08002b104860", 2)


def _bind(call_id=1) -> bytes:
    import uuid
    ctx = struct.pack("<HBB", 0, 1, 0) + uuid.UUID(SRVSVC[0]).bytes_le + \
        struct.pack("<HH", SRVSVC[1], 0) + uuid.UUID(NDR[0]).bytes_le + struct.pack("<I", NDR[1])
    body = struct.pack("<HHI", 4280, 4280, 0) + struct.pack("<B3x", 1) + ctx
    return struct.pack("<BBBB4sHHI", 5, 0, p.BIND, 3, b"\x10\0\0\0", 16 + len(body), 0,
                       call_id) + body


def test_pipe_transceive_overflow_then_read(env):
    op = env.open("f")
    op.pipe = RpcPipe("srvsvc", env.server, env.session)
    status, body = call(env, ioctl_body(ioctl.FSCTL_PIPE_TRANSCEIVE, op, _bind(), max_out=4280))
    assert status == STATUS_SUCCESS
    fields = RESPONSE.unpack_from(body, 0)
    ack = body[fields[7] - 64:]
    assert ack[2] == p.BIND_ACK and len(ack) == fields[8]
    # a response longer than MaxOutputResponse: its start, STATUS_BUFFER_OVERFLOW, and the
    # rest stays queued for READ (the pipe is busy for another transceive until then)
    status, body = call(env, ioctl_body(ioctl.FSCTL_PIPE_TRANSCEIVE, op, _bind(2), max_out=20))
    assert status == STATUS_BUFFER_OVERFLOW
    assert RESPONSE.unpack_from(body, 0)[8] == 20
    assert call(env, ioctl_body(ioctl.FSCTL_PIPE_TRANSCEIVE, op, _bind(3)))[0] == \
        STATUS_PIPE_BUSY
    rest_status, rest = op.pipe.read(65536)
    assert rest_status == STATUS_SUCCESS and len(rest) == len(ack) - 20


def test_pipe_transceive_errors_are_error_responses(env):
    """MS-SMB2 3.3.4.4: only STATUS_BUFFER_OVERFLOW keeps the IOCTL response body of a
    transceive; STATUS_PIPE_EMPTY / STATUS_PIPE_BUSY are failures, answered with the SMB2
    ERROR response (the handler raises; the connection writes the 9-byte body)."""
    op = env.open("f")
    op.pipe = RpcPipe("srvsvc", env.server, env.session)
    # two bytes are no whole PDU: nothing to read back
    assert call(env, ioctl_body(ioctl.FSCTL_PIPE_TRANSCEIVE, op, b"\x05\x00")) == \
        (STATUS_PIPE_EMPTY, b"")
    op.pipe = RpcPipe("srvsvc", env.server, env.session)
    status, _ = call(env, ioctl_body(ioctl.FSCTL_PIPE_TRANSCEIVE, op, _bind(), max_out=20))
    assert status == STATUS_BUFFER_OVERFLOW
    assert call(env, ioctl_body(ioctl.FSCTL_PIPE_TRANSCEIVE, op, _bind(2))) == \
        (STATUS_PIPE_BUSY, b"")

"""The ubusd stand-in replays the captured sessions: given the ids the real ubusd drew, it
answers every captured client message with exactly the bytes the real ubusd wrote."""

import json
import socket
import threading
from pathlib import Path

import pytest

from ksmbd_embedded.ubus import message as m

from .fake_ubusd import FakeUbusd, ubus_call

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "ubus" / "cli-session"


def capture():
    """[(number, conn, direction, bytes)] in the order ubusd read/wrote them."""
    out = []
    for e in json.loads((VECTORS / "index.json").read_text())["messages"]:
        number = int(e["file"][:3])
        out.append((number, e["conn"], e["direction"], bytes.fromhex(e["hex"])))
    return out


def drawn_ids(messages):
    """The random ids in the order ubusd drew them: a client id per HELLO; for each
    ADD_OBJECT the type id (with a signature), then the object id."""
    ids = []
    for _, _, direction, raw in messages:
        msg = m.Message.decode(raw)
        if direction != "ubusd_to_client":
            continue
        if msg.type == m.UBUS_MSG_HELLO:
            ids.append(msg.peer)
        elif msg.type == m.UBUS_MSG_DATA and [a for a, _ in msg.attrs] in (
                [m.UBUS_ATTR_OBJID, m.UBUS_ATTR_OBJTYPE], [m.UBUS_ATTR_OBJID]):
            if msg.get(m.UBUS_ATTR_OBJTYPE) is not None:
                ids.append(msg.get(m.UBUS_ATTR_OBJTYPE))
            ids.append(msg.get(m.UBUS_ATTR_OBJID))
    return ids


def recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "fake ubusd closed the connection"
        data += chunk
    return data


def test_replays_steps_1_to_11_byte_for_byte(tmp_path):
    """Steps 1-11: list on an empty bus, the example server registering, list, -v list,
    calls with replies, a deferred reply, missing method, bad arguments, missing object,
    every blobmsg type, no arguments. (Steps 12-14, events and subscriptions, are ubusd
    features an object owner does not need; the stand-in does not implement them.)"""
    messages = [x for x in capture() if x[0] <= 75]
    path = str(tmp_path / "ubus.sock")
    socks = {}
    with FakeUbusd(path, iter(drawn_ids(messages)), user="root", group="root"):
        for number, conn, direction, raw in messages:
            if conn not in socks:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(5)
                s.connect(path)
                socks[conn] = s
            if direction == "client_to_ubusd":
                socks[conn].sendall(raw)
            else:
                got = recv_exactly(socks[conn], len(raw))
                assert got == raw, f"message {number:03d}: {m.Message.decode(got)!r}"
        for s in socks.values():
            s.setblocking(False)
            with pytest.raises(BlockingIOError):
                s.recv(1)  # nothing the real ubusd did not send
            s.close()


def test_call_helper_sends_what_the_cli_sent(tmp_path):
    """ubus_call's LOOKUP and INVOKE equal the CLI's (capture 020 and 023)."""
    messages = capture()
    raw = {n: r for n, _, _, r in messages}
    path = str(tmp_path / "ubus.sock")
    ids = iter([0x3A02E1EA, 0xD90A3FB6, 0xAEFEE4A3, 0xDA776E35])
    with FakeUbusd(path, ids, user="root", group="root"):
        owner = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        owner.settimeout(5)
        owner.connect(path)
        recv_exactly(owner, 12)
        owner.sendall(raw[5])
        assert recv_exactly(owner, len(raw[6]) + len(raw[7])) == raw[6] + raw[7]

        def serve():
            recv_exactly(owner, len(raw[24]))
            owner.sendall(raw[25] + raw[27])

        thread = threading.Thread(target=serve)
        thread.start()
        sent = []
        status, data = ubus_call(path, "test", "count", {"to": 3, "string": "0 1 2 "},
                                 sent=sent)
        thread.join(5)
        assert (status, data) == (0, {"rc": 0})
        assert sent == [raw[20], raw[23]]
        assert ubus_call(path, "nosuchobj", "foo") == (m.UBUS_STATUS_NOT_FOUND, None)
        owner.close()


def test_objects_vanish_with_their_owner_and_paths_are_unique(tmp_path):
    path = str(tmp_path / "ubus.sock")
    add = m.Message(m.UBUS_MSG_ADD_OBJECT, 1, 0,
                    [(m.UBUS_ATTR_OBJPATH, "x"), (m.UBUS_ATTR_SIGNATURE, {})]).encode()
    with FakeUbusd(path) as ubusd:
        a = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        a.settimeout(5)
        a.connect(path)
        recv_exactly(a, 12)
        a.sendall(add)
        recv_exactly(a, 28 + 20)
        assert ubusd.object_paths() == ["x"]
        b = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        b.settimeout(5)
        b.connect(path)
        recv_exactly(b, 12)
        b.sendall(add)
        refusal = m.Message.decode(recv_exactly(b, 20))
        assert refusal.get(m.UBUS_ATTR_STATUS) == m.UBUS_STATUS_INVALID_ARGUMENT
        a.close()
        for _ in range(100):
            if not ubusd.object_paths():
                break
            threading.Event().wait(0.02)
        assert ubusd.object_paths() == []
        b.close()

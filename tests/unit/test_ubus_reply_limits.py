"""The ubus client never sends what ubusd would disconnect it for: a reply over
UBUS_MAX_MSGLEN (1 MiB) becomes an error answer, and the connection (the object id) stays."""

import socket

import pytest

from ksmbd_embedded.ubus import client as c
from ksmbd_embedded.ubus import message as m

OBJECT_ID = 0x1234ABCD
CALLER = 0x0BADCAFE


class FakeLoop:
    """The loop API the client uses; the test runs readers by hand."""

    def __init__(self):
        self.readers = {}
        self.timers = []

    def add_reader(self, fileobj, callback):
        self.readers[fileobj] = callback

    def remove_reader(self, fileobj):
        self.readers.pop(fileobj, None)

    def call_later(self, delay, callback):
        self.timers.append((delay, callback))

    def pump(self):
        for cb in list(self.readers.values()):
            cb()


def read_message(sock):
    sock.settimeout(2)

    def exactly(n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            assert chunk, "the client closed its connection"
            data += chunk
        return data
    head = exactly(12)
    return m.Message.decode(head + exactly(m.message_length(head) - 12))


@pytest.fixture
def registered(tmp_path):
    """A client registered with a ubusd played by the test; `replies` is what its handler
    answers next."""
    path = str(tmp_path / "ubus.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    replies = []
    loop = FakeLoop()
    cl = c.UbusClient(loop, path, "ksmbd", {"big": {}}, lambda method, args: replies.pop(0))
    cl.start()
    peer, _ = srv.accept()
    peer.sendall(m.Message(m.UBUS_MSG_HELLO, 0, 0x5000).encode())
    loop.pump()
    add = read_message(peer)
    assert add.type == m.UBUS_MSG_ADD_OBJECT
    peer.sendall(m.Message(m.UBUS_MSG_DATA, add.seq, 0, [(m.UBUS_ATTR_OBJID, OBJECT_ID),
                                                         (m.UBUS_ATTR_OBJTYPE, 77)]).encode()
                 + m.Message(m.UBUS_MSG_STATUS, add.seq, 0, [(m.UBUS_ATTR_STATUS, 0)]).encode())
    loop.pump()
    assert cl.state == c.READY and cl.object_id == OBJECT_ID
    yield loop, cl, peer, replies
    cl.close()
    peer.close()
    srv.close()


def invoke(loop, peer, seq):
    peer.sendall(m.Message(m.UBUS_MSG_INVOKE, seq, CALLER, [
        (m.UBUS_ATTR_OBJID, OBJECT_ID), (m.UBUS_ATTR_METHOD, "big"),
        (m.UBUS_ATTR_USER, "root"), (m.UBUS_ATTR_GROUP, "root"),
        (m.UBUS_ATTR_DATA, {})]).encode())
    loop.pump()


def answer(peer):
    """The DATA (or None) and STATUS the client sent for one INVOKE."""
    msg = read_message(peer)
    data = None
    if msg.type == m.UBUS_MSG_DATA:
        data = msg.get(m.UBUS_ATTR_DATA)
        msg = read_message(peer)
    assert msg.type == m.UBUS_MSG_STATUS and msg.get(m.UBUS_ATTR_OBJID) == OBJECT_ID
    assert msg.peer == CALLER
    return msg.get(m.UBUS_ATTR_STATUS), data


def test_encoder_refuses_a_message_over_the_limit():
    def data_message(size):  # a DATA message whose blob is exactly `size` bytes
        fixed = len(m.Message(m.UBUS_MSG_DATA, 1, 0, [(m.UBUS_ATTR_DATA, {"x": ""})]).encode())
        return m.Message(m.UBUS_MSG_DATA, 1, 0,
                         [(m.UBUS_ATTR_DATA, {"x": "a" * (size - fixed + 8)})])

    assert len(data_message(m.MAX_BLOB_LEN).encode()) == 8 + m.MAX_BLOB_LEN  # still taken
    with pytest.raises(m.MessageTooLarge) as exc:
        data_message(m.MAX_BLOB_LEN + 4).encode()
    assert exc.value.blob_len == m.MAX_BLOB_LEN + 4
    with pytest.raises(m.MessageTooLarge):  # past the 24-bit length field too
        m.Message(m.UBUS_MSG_DATA, 1, 0, [(m.UBUS_ATTR_DATA, {"x": "a" * 2**24})]).encode()


@pytest.mark.parametrize("size", [m.MAX_BLOB_LEN, 3 * m.MAX_BLOB_LEN, 2**24])
def test_a_reply_over_the_limit_is_answered_with_an_error(registered, size):
    loop, cl, peer, replies = registered
    replies += [(0, {"text": "a" * size}), (0, {"small": 1})]
    invoke(loop, peer, 7)
    status, data = answer(peer)
    assert status == m.UBUS_STATUS_NOT_SUPPORTED
    assert "larger than a ubus message" in data["error"] and "limit" in data["error"]
    # the connection and the object are still there, and the next call is answered
    assert cl.state == c.READY and cl.object_id == OBJECT_ID and cl.sock is not None
    invoke(loop, peer, 8)
    assert answer(peer) == (0, {"small": 1})


def test_a_reply_that_cannot_be_encoded_is_an_error_not_an_exception(registered):
    loop, cl, peer, replies = registered
    replies += [(0, {"name": "bad \udc80\ud800"}), (0, {"set": {1, 2}}), (0, {"ok": True})]
    invoke(loop, peer, 3)
    status, data = answer(peer)
    assert status == m.UBUS_STATUS_UNKNOWN_ERROR and data["error"]
    invoke(loop, peer, 4)
    assert answer(peer)[0] == m.UBUS_STATUS_UNKNOWN_ERROR
    invoke(loop, peer, 5)
    assert answer(peer) == (0, {"ok": True})
    assert cl.state == c.READY and cl.object_id == OBJECT_ID


def test_a_reply_the_output_buffer_cannot_take_is_an_error(registered):
    """ubusd has not read our earlier output yet: the new reply does not fit in what we keep
    unsent, so the caller gets an error status rather than the connection being dropped."""
    loop, cl, peer, replies = registered
    backlog = c.MAX_OUTPUT - 4096
    cl._out += bytes(backlog)  # as if ubusd were behind by this much
    replies.append((0, {"text": "a" * 100_000}))
    invoke(loop, peer, 9)
    assert cl.state == c.READY and cl.object_id == OBJECT_ID
    received = bytearray()
    peer.setblocking(False)
    for _ in range(100_000):  # ubusd catches up
        try:
            received += peer.recv(1 << 20)
        except BlockingIOError:
            if not cl._out:
                break
            cl._flush()
    assert received[:backlog] == bytes(backlog)
    tail = bytes(received[backlog:])
    first = m.message_length(tail[:12])
    error, status = m.Message.decode(tail[:first]), m.Message.decode(tail[first:])
    assert error.type == m.UBUS_MSG_DATA and "full" in error.get(m.UBUS_ATTR_DATA)["error"]
    assert status.get(m.UBUS_ATTR_STATUS) == m.UBUS_STATUS_NO_MEMORY
    assert cl.state == c.READY

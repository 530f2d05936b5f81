"""A ubusd stand-in for tests (Debian has no ubusd): the part of ubusd's side of the
protocol that an object owner and the `ubus call` CLI use (docs/notes/ubus-uci-opkg.md, "notes"
below: A8 (i)-(iv), (vii)):
HELLO, LOOKUP, ADD_OBJECT, REMOVE_OBJECT, INVOKE forwarding with USER/GROUP, DATA/STATUS
forwarding back to the caller, PING. It is checked against the captured ubusd bytes in
test_ubus_fake_ubusd.py. `ubus_call` plays the CLI's side (LOOKUP, then INVOKE).

ubusd's limits (notes A1), kept here on their own rather than taken from the server's code:
a client that announces a message whose padded blob length is over UBUS_MAX_MSGLEN (1 MiB),
or under 4, is disconnected (and its objects vanish); what a client does not read is queued,
and a message that would take that queue past UBUS_MAX_MSGLEN is silently dropped.
"""

from __future__ import annotations

import grp
import os
import pwd
import random
import selectors
import socket
import threading
from collections.abc import Iterator

from ksmbd_embedded.ubus import message as m

__all__ = ["FakeUbusd", "ubus_call", "UbusCallError", "UBUS_MAX_MSGLEN"]

UBUS_MAX_MSGLEN = 1048576  # ubusmsg.h; also ubusd's per-client transmit queue limit


def _blob_length(head: bytes) -> int:
    """The message blob's length from the first 12 bytes, as ubusd reads it; ValueError for
    one ubusd disconnects the sender for (blob_pad_len > UBUS_MAX_MSGLEN, or raw len < 4)."""
    raw = int.from_bytes(head[8:12], "big") & 0x00FFFFFF
    if raw < 4 or (raw + 3) & ~3 > UBUS_MAX_MSGLEN:
        raise ValueError(f"blob length {raw}")
    return raw


class _Client:
    def __init__(self, sock: socket.socket, client_id: int) -> None:
        self.sock = sock
        self.id = client_id
        self.buf = bytearray()
        self.txq: list[tuple[bytearray, int]] = []  # unsent messages (bytes, blob length)
        self.txq_len = 0  # sum of their blob lengths, as ubusd counts


class _Object:
    def __init__(self, obj_id: int, path: str | None, type_id: int, signature, owner) -> None:
        self.id = obj_id
        self.path = path
        self.type_id = type_id
        self.signature = signature
        self.owner = owner


class FakeUbusd:
    """Serve one unix socket from a thread. `ids` yields the random ids ubusd would draw
    (client ids at accept; for ADD_OBJECT the type id, then the object id)."""

    def __init__(self, path: str, ids: Iterator[int] | None = None, user: str | None = None,
                 group: str | None = None) -> None:
        self.path = path
        self._ids = ids
        self.user = user if user is not None else pwd.getpwuid(os.getuid()).pw_name
        self.group = group if group is not None else grp.getgrgid(os.getgid()).gr_name
        self.clients: dict[int, _Client] = {}
        self.objects: dict[int, _Object] = {}
        self.log: list[tuple[str, m.Message]] = []  # ("in"/"out", message), for tests
        self.dropped: list[tuple[int, str]] = []  # (client id, why), for tests
        self._sel = selectors.DefaultSelector()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()

    # -- running ----------------------------------------------------------------------------

    def start(self) -> FakeUbusd:
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        os.chmod(self.path, 0o666)
        self._listener.listen(16)
        self._sel.register(self._listener, selectors.EVENT_READ, None)
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._run, name="fake-ubusd", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop = True
        self._wake_w.send(b"x")
        if self._thread is not None:
            self._thread.join(5)
        for client in list(self.clients.values()):
            client.sock.close()
        self.clients.clear()
        self.objects.clear()
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()
        self._sel.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def __enter__(self) -> FakeUbusd:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def object_paths(self) -> list[str]:
        with self._lock:
            return [o.path for o in self.objects.values() if o.path]

    def _new_id(self) -> int:
        if self._ids is not None:
            try:
                return next(self._ids)
            except StopIteration:  # the given ids are used up: random ones from now on
                self._ids = None
        used = set(self.clients) | set(self.objects) | {o.type_id for o in self.objects.values()}
        while True:
            n = random.randrange(1024, 2**32)
            if n not in used:
                return n

    def _run(self) -> None:
        while not self._stop:
            for key, events in self._sel.select(timeout=1.0):
                if key.data == "wake":
                    continue
                with self._lock:
                    if key.data is None:
                        self._accept()
                        continue
                    client = key.data
                    if events & selectors.EVENT_WRITE and client.id in self.clients:
                        self._flush(client)
                    if events & selectors.EVENT_READ and client.id in self.clients:
                        self._read(client)

    def _accept(self) -> None:
        sock, _ = self._listener.accept()
        sock.setblocking(False)  # ubusd never waits for a client
        client = _Client(sock, self._new_id())
        self.clients[client.id] = client
        self._sel.register(sock, selectors.EVENT_READ, client)
        self._send(client, m.Message(m.UBUS_MSG_HELLO, 0, client.id))

    def _drop(self, client: _Client, why: str = "closed") -> None:
        self.dropped.append((client.id, why))
        self._sel.unregister(client.sock)
        client.sock.close()
        self.clients.pop(client.id, None)
        for obj_id in [o.id for o in self.objects.values() if o.owner is client]:
            del self.objects[obj_id]

    def _read(self, client: _Client) -> None:
        try:
            data = client.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(client)
            return
        client.buf += data
        while len(client.buf) >= 12:
            try:
                total = 8 + _blob_length(client.buf[:12])
            except ValueError as exc:
                self._drop(client, f"bad message length: {exc}")  # as ubusd
                return
            if len(client.buf) < total:
                return
            raw = bytes(client.buf[:total])
            del client.buf[:total]
            msg = m.Message.decode(raw)
            self.log.append(("in", msg))
            self._handle(client, msg)
            if client.id not in self.clients:
                return

    def _send(self, client: _Client, msg: m.Message) -> None:
        """ubusd's ubus_msg_send: write at once what the socket takes; queue the rest, or
        drop the whole message when the queue would pass UBUS_MAX_MSGLEN."""
        self.log.append(("out", msg))
        raw = msg.encode()
        blob_len = len(raw) - 8
        if client.txq:
            if client.txq_len + blob_len > UBUS_MAX_MSGLEN:
                return  # silently dropped, as ubusd does
            client.txq.append((bytearray(raw), blob_len))
            client.txq_len += blob_len
            return
        try:
            sent = client.sock.send(raw)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            return  # a dead client: its hang-up is read next
        if sent < len(raw):
            client.txq.append((bytearray(raw[sent:]), blob_len))
            client.txq_len += blob_len
            self._sel.modify(client.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, client)

    def _flush(self, client: _Client) -> None:
        while client.txq:
            data, blob_len = client.txq[0]
            try:
                sent = client.sock.send(data)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            del data[:sent]
            if data:
                return
            client.txq.pop(0)
            client.txq_len -= blob_len
        self._sel.modify(client.sock, selectors.EVENT_READ, client)

    def _reply(self, client: _Client, req: m.Message, msg_type: int, attrs: list) -> None:
        self._send(client, m.Message(msg_type, req.seq, req.peer, attrs))

    def _status(self, client: _Client, req: m.Message, status: int) -> None:
        self._reply(client, req, m.UBUS_MSG_STATUS, [(m.UBUS_ATTR_STATUS, status)])

    # -- protocol ---------------------------------------------------------------------------

    def _handle(self, client: _Client, msg: m.Message) -> None:
        kind = msg.type
        if kind == m.UBUS_MSG_LOOKUP:
            self._lookup(client, msg)
        elif kind == m.UBUS_MSG_ADD_OBJECT:
            self._add_object(client, msg)
        elif kind == m.UBUS_MSG_REMOVE_OBJECT:
            obj = self.objects.get(msg.get(m.UBUS_ATTR_OBJID))
            if obj is None:
                self._status(client, msg, m.UBUS_STATUS_NOT_FOUND)
            elif obj.owner is not client:
                self._status(client, msg, m.UBUS_STATUS_PERMISSION_DENIED)
            else:
                del self.objects[obj.id]
                self._reply(client, msg, m.UBUS_MSG_DATA, [(m.UBUS_ATTR_OBJID, obj.id)])
                self._status(client, msg, 0)
        elif kind == m.UBUS_MSG_INVOKE:
            self._invoke(client, msg)
        elif kind in (m.UBUS_MSG_STATUS, m.UBUS_MSG_DATA):
            self._forward_reply(client, msg)
        elif kind == m.UBUS_MSG_PING:
            self._reply(client, msg, m.UBUS_MSG_DATA, msg.attrs)
            self._status(client, msg, 0)
        else:
            self._status(client, msg, m.UBUS_STATUS_INVALID_COMMAND)

    def _lookup(self, client: _Client, msg: m.Message) -> None:
        path = msg.get(m.UBUS_ATTR_OBJPATH)
        if path == "":
            self._status(client, msg, m.UBUS_STATUS_INVALID_ARGUMENT)
            return
        found = [o for o in self.objects.values() if o.path and o.signature is not None and (
            path is None or o.path == path
            or (path.endswith("*") and o.path.startswith(path[:-1])))]
        if path is not None and not found:
            self._status(client, msg, m.UBUS_STATUS_NOT_FOUND)
            return
        for o in found:
            self._reply(client, msg, m.UBUS_MSG_DATA, [
                (m.UBUS_ATTR_OBJPATH, o.path), (m.UBUS_ATTR_OBJID, o.id),
                (m.UBUS_ATTR_OBJTYPE, o.type_id), (m.UBUS_ATTR_SIGNATURE, o.signature)])
        self._status(client, msg, 0)

    def _add_object(self, client: _Client, msg: m.Message) -> None:
        path = msg.get(m.UBUS_ATTR_OBJPATH)
        signature = msg.get(m.UBUS_ATTR_SIGNATURE)
        if path is not None and any(o.path == path for o in self.objects.values()):
            self._status(client, msg, m.UBUS_STATUS_INVALID_ARGUMENT)
            return
        if signature is not None and not all(isinstance(v, dict) for v in signature.values()):
            self._status(client, msg, m.UBUS_STATUS_INVALID_ARGUMENT)
            return
        type_id = self._new_id() if signature is not None else 0
        obj = _Object(self._new_id(), path, type_id, signature, client)
        self.objects[obj.id] = obj
        attrs = [(m.UBUS_ATTR_OBJID, obj.id)]
        if signature is not None:
            attrs.append((m.UBUS_ATTR_OBJTYPE, type_id))
        self._reply(client, msg, m.UBUS_MSG_DATA, attrs)
        self._status(client, msg, 0)

    def _invoke(self, client: _Client, msg: m.Message) -> None:
        obj = self.objects.get(msg.get(m.UBUS_ATTR_OBJID))
        method = msg.get(m.UBUS_ATTR_METHOD)
        if obj is None or method is None:
            self._status(client, msg, m.UBUS_STATUS_NOT_FOUND if obj is None
                         else m.UBUS_STATUS_INVALID_ARGUMENT)
            return
        attrs = [(m.UBUS_ATTR_OBJID, obj.id), (m.UBUS_ATTR_METHOD, method),
                 (m.UBUS_ATTR_USER, self.user), (m.UBUS_ATTR_GROUP, self.group)]
        attrs += [(aid, v) for aid, v in msg.attrs if aid == m.UBUS_ATTR_DATA]
        self._send(obj.owner, m.Message(m.UBUS_MSG_INVOKE, msg.seq, client.id, attrs))

    def _forward_reply(self, client: _Client, msg: m.Message) -> None:
        """An owner's DATA/STATUS for a caller (header peer = caller's client id): forward
        it with peer = the object id."""
        caller = self.clients.get(msg.peer)
        obj_id = msg.get(m.UBUS_ATTR_OBJID)
        if caller is None or obj_id not in self.objects:
            return
        self._send(caller, m.Message(msg.type, msg.seq, obj_id, msg.attrs, msg.version))


# -- the caller's side (what `ubus call` does) ------------------------------------------------

class UbusCallError(Exception):
    def __init__(self, status: int, data: dict | None) -> None:
        super().__init__(f"ubus status {status}: {data}")
        self.status = status
        self.data = data


def _read_message(sock: socket.socket) -> m.Message:
    def exactly(n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("ubusd closed the connection")
            out += chunk
        return out
    head = exactly(12)
    return m.Message.decode(head + exactly(_blob_length(head) - 4))


def ubus_call(path: str, obj: str, method: str, args: dict | None = None,
              timeout: float = 10.0, sent: list | None = None) -> tuple[int, dict | None]:
    """LOOKUP `obj`, INVOKE `method` with `args`; return (status, last DATA or None).
    `sent` collects the raw messages this caller sent (to compare with the CLI's)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        hello = _read_message(sock)
        assert hello.type == m.UBUS_MSG_HELLO
        lookup = m.Message(m.UBUS_MSG_LOOKUP, 1, 0, [(m.UBUS_ATTR_OBJPATH, obj)]).encode()
        if sent is not None:
            sent.append(lookup)
        sock.sendall(lookup)
        obj_id = None
        while True:
            reply = _read_message(sock)
            if reply.type == m.UBUS_MSG_DATA:
                obj_id = reply.get(m.UBUS_ATTR_OBJID)
            elif reply.type == m.UBUS_MSG_STATUS:
                status = reply.get(m.UBUS_ATTR_STATUS)
                if status:
                    return status, None
                break
        invoke = m.Message(m.UBUS_MSG_INVOKE, 2, obj_id, [
            (m.UBUS_ATTR_OBJID, obj_id), (m.UBUS_ATTR_METHOD, method),
            (m.UBUS_ATTR_DATA, args or {})]).encode()
        if sent is not None:
            sent.append(invoke)
        sock.sendall(invoke)
        data = None
        while True:
            reply = _read_message(sock)
            if reply.seq != 2 or reply.peer != obj_id:
                continue
            if reply.type == m.UBUS_MSG_DATA:
                data = reply.get(m.UBUS_ATTR_DATA)
            elif reply.type == m.UBUS_MSG_STATUS:
                return reply.get(m.UBUS_ATTR_STATUS), data

"""The connection to ubusd, driven by the server's own loop (docs/notes/ubus-uci-opkg.md, "notes"
below: A8 (i), (ii), (iv), A11).

Connect to the unix socket, read HELLO, send ADD_OBJECT {OBJPATH, SIGNATURE}, take the
object id from the DATA reply and wait for STATUS 0; then answer each INVOKE with an optional
DATA {OBJID, DATA} and one STATUS {STATUS, OBJID}, both with the INVOKE's seq and peer.

A reply that cannot go out as it is (over ubusd's 1 MiB message limit, not encodable, or more
than the output buffer still takes) is answered with DATA {"error"} and an error STATUS
instead: ubusd would disconnect us for an oversized message, and the caller would wait out
its timeout.

Nothing here blocks: the socket is non-blocking, reads come through `loop.add_reader`, and
output that the socket does not take at once stays in a bounded buffer retried by a timer.
When ubusd is missing or goes away the server keeps serving files: one warning per outage,
then reconnection attempts with a doubling, bounded delay.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from .blob import BlobError
from .message import (
    MAX_BLOB_LEN, UBUS_ATTR_DATA, UBUS_ATTR_NO_REPLY, UBUS_ATTR_OBJID, UBUS_ATTR_OBJPATH,
    UBUS_ATTR_OBJTYPE, UBUS_ATTR_METHOD, UBUS_ATTR_SIGNATURE, UBUS_ATTR_STATUS,
    UBUS_MSG_ADD_OBJECT, UBUS_MSG_DATA, UBUS_MSG_HELLO, UBUS_MSG_INVOKE, UBUS_MSG_STATUS,
    UBUS_STATUS_INVALID_ARGUMENT, UBUS_STATUS_METHOD_NOT_FOUND, UBUS_STATUS_NO_MEMORY,
    UBUS_STATUS_NOT_FOUND, UBUS_STATUS_NOT_SUPPORTED, UBUS_STATUS_UNKNOWN_ERROR, Message,
    MessageError, MessageTooLarge, RawAttr, message_length,
)

log = logging.getLogger("ksmbd.ubus")

__all__ = ["DEFAULT_SOCKET", "UbusClient", "install", "add_object_message", "reply_messages"]

DEFAULT_SOCKET = "/var/run/ubus/ubus.sock"
MAX_OUTPUT = 2 * MAX_BLOB_LEN  # unsent bytes kept: two of the largest messages ubusd takes
RETRY_MIN = 0.5
RETRY_MAX = 10.0
HANDSHAKE_TIMEOUT = 5.0
FLUSH_RETRY = 0.05

Handler = Callable[[str, dict], "tuple[int, dict | None]"]

# connection states
IDLE, HELLO, REGISTERING, READY, CLOSED = "idle", "hello", "registering", "ready", "closed"


def add_object_message(seq: int, path: str, signatures: dict) -> Message:
    """ADD_OBJECT {OBJPATH, SIGNATURE}: one TABLE per method of INT32 argument types."""
    return Message(UBUS_MSG_ADD_OBJECT, seq, 0,
                   [(UBUS_ATTR_OBJPATH, path), (UBUS_ATTR_SIGNATURE, signatures)])


def reply_messages(invoke: Message, object_id: int, status: int,
                   reply: dict | None) -> list[Message]:
    """The answer to one INVOKE: DATA {OBJID, DATA} when there is a reply, then STATUS."""
    out = []
    if reply is not None:
        out.append(Message(UBUS_MSG_DATA, invoke.seq, invoke.peer,
                           [(UBUS_ATTR_OBJID, object_id), (UBUS_ATTR_DATA, reply)]))
    out.append(Message(UBUS_MSG_STATUS, invoke.seq, invoke.peer,
                       [(UBUS_ATTR_STATUS, status), (UBUS_ATTR_OBJID, object_id)]))
    return out


class UbusClient:
    """Registers one object with ubusd and serves its INVOKEs from the loop."""

    def __init__(self, loop, path: str, object_name: str, signatures: dict,
                 handler: Handler, retry_min: float = RETRY_MIN,
                 retry_max: float = RETRY_MAX) -> None:
        self.loop = loop
        self.path = path
        self.object_name = object_name
        self.signatures = signatures
        self.handler = handler
        self.retry_min = retry_min
        self.retry_max = retry_max
        self.state = IDLE
        self.sock: socket.socket | None = None
        self.client_id = 0
        self.object_id = 0
        self.object_type = 0
        self._delay = retry_min
        self._warned = False
        self._gen = 0  # bumped on every disconnect: stale timers see a different value
        self._seq = 0
        self._reg_seq = 0
        self._inbuf = bytearray()
        self._out = bytearray()
        self._flush_scheduled = False

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._connect()

    def close(self) -> None:
        self._disconnect()
        self.state = CLOSED

    def _connect(self) -> None:
        if self.state == CLOSED:
            return
        try:
            # no descriptor left (EMFILE) is retried like a missing ubusd
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        except OSError as exc:
            self._fail(f"cannot connect to ubusd at {self.path}: {exc.strerror or exc}")
            return
        sock.setblocking(False)
        try:
            sock.connect(self.path)
        except OSError as exc:  # missing, refused, or a full backlog (EAGAIN): retry later
            sock.close()
            self._fail(f"cannot connect to ubusd at {self.path}: {exc.strerror or exc}")
            return
        self.sock = sock
        self.state = HELLO
        self._seq = 0
        self.loop.add_reader(sock, self._on_readable)
        gen = self._gen
        self.loop.call_later(HANDSHAKE_TIMEOUT, lambda: self._handshake_timeout(gen))
        log.debug("connected to %s", self.path)

    def _handshake_timeout(self, gen: int) -> None:
        if gen == self._gen and self.state in (HELLO, REGISTERING):
            self._fail(f"no answer from ubusd at {self.path}")

    def _disconnect(self) -> None:
        self._gen += 1
        if self.sock is not None:
            self.loop.remove_reader(self.sock)
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None
        self._inbuf.clear()
        self._out.clear()
        self._flush_scheduled = False
        self.object_id = 0
        if self.state != CLOSED:
            self.state = IDLE

    def _fail(self, reason: str) -> None:
        """Drop the connection and try again later; warn once per outage."""
        was_ready = self.state == READY
        self._disconnect()
        if self.state == CLOSED:
            return
        if not self._warned:
            self._warned = True
            log.warning("%s; object '%s' is unavailable, the server keeps serving and "
                        "retries", reason, self.object_name)
        else:
            log.debug("%s", reason)
        if was_ready:
            self._delay = self.retry_min
        delay = self._delay
        self._delay = min(self._delay * 2, self.retry_max)
        gen = self._gen
        self.loop.call_later(delay, lambda: self._retry(gen))

    def _retry(self, gen: int) -> None:
        if gen == self._gen and self.state == IDLE:
            self._connect()

    # -- input ------------------------------------------------------------------------------

    def _on_readable(self) -> None:
        sock = self.sock
        if sock is None:
            return
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._fail(f"connection to ubusd failed: {exc.strerror or exc}")
            return
        if not data:
            self._fail("ubusd closed the connection")
            return
        buf = self._inbuf
        buf += data
        while len(buf) >= 12:
            try:
                total = message_length(buf[:12])
                if len(buf) < total:
                    return
                msg = Message.decode(buf[:total])
            except MessageError as exc:
                self._fail(f"bad message from ubusd: {exc}")
                return
            del buf[:total]
            self._handle(msg)
            if self.sock is not sock:  # the handler failed the connection
                return

    def _handle(self, msg: Message) -> None:
        if self.state == HELLO:
            if msg.type != UBUS_MSG_HELLO or msg.version != 0 or msg.peer <= 1:
                self._fail(f"expected HELLO from ubusd, got {msg!r}")
                return
            self.client_id = msg.peer
            self._seq += 1
            self._reg_seq = self._seq
            self.state = REGISTERING
            self._send(add_object_message(self._reg_seq, self.object_name, self.signatures))
        elif self.state == REGISTERING:
            if msg.seq != self._reg_seq:
                return
            if msg.type == UBUS_MSG_DATA:
                self.object_id = msg.get(UBUS_ATTR_OBJID, 0)
                self.object_type = msg.get(UBUS_ATTR_OBJTYPE, 0)
            elif msg.type == UBUS_MSG_STATUS:
                status = msg.get(UBUS_ATTR_STATUS, UBUS_STATUS_UNKNOWN_ERROR)
                if status != 0 or not self.object_id:
                    self._fail(f"ubusd refused object '{self.object_name}' (status {status})")
                    return
                self.state = READY
                self._warned = False
                self._delay = self.retry_min
                log.info("object '%s' registered (id 0x%08x) at %s", self.object_name,
                         self.object_id, self.path)
        elif self.state == READY and msg.type == UBUS_MSG_INVOKE:
            self._invoke(msg)
        # Everything else (NOTIFY about subscribers, stray replies) needs no answer.

    def _invoke(self, msg: Message) -> None:
        method = msg.get(UBUS_ATTR_METHOD)
        data = msg.get(UBUS_ATTR_DATA, {})
        reply = None
        if msg.get(UBUS_ATTR_OBJID) != self.object_id:
            status = UBUS_STATUS_NOT_FOUND
        elif method is None or method not in self.signatures:
            status = UBUS_STATUS_METHOD_NOT_FOUND
        elif any(aid == UBUS_ATTR_DATA and isinstance(v, RawAttr) for aid, v in msg.attrs):
            status = UBUS_STATUS_INVALID_ARGUMENT  # DATA that is not valid blobmsg
        else:
            status, reply = self.handler(method, data)
        if msg.get(UBUS_ATTR_NO_REPLY):
            return
        for raw in self._encode_reply(msg, method, status, reply):
            self._send_raw(raw)

    def _encode_reply(self, msg: Message, method: str, status: int,
                      reply: dict | None) -> list[bytes]:
        """The reply's messages, or an error answer in their place: never a message ubusd
        would drop us for (over 1 MiB), nor more than the output buffer still takes."""
        try:
            out = [m.encode() for m in reply_messages(msg, self.object_id, status, reply)]
        except MessageTooLarge as exc:  # the methods page their lists: a bug if it happens
            log.error("reply of %s not sent: %s", method, exc)
            status, reply = UBUS_STATUS_NOT_SUPPORTED, {
                "error": f"the reply ({exc.blob_len} bytes) is larger than a ubus message "
                         f"may be ({MAX_BLOB_LEN} bytes); ask for fewer entries (limit)"}
        except (BlobError, MessageError, AttributeError, TypeError, ValueError) as exc:
            log.error("cannot encode the reply of %s: %s", method, exc)
            why = str(exc)[:200].encode("utf-8", "backslashreplace").decode("utf-8")
            status, reply = UBUS_STATUS_UNKNOWN_ERROR, {"error": f"cannot encode the reply: {why}"}
        else:
            if len(self._out) + sum(map(len, out)) <= MAX_OUTPUT:
                return out
            log.warning("reply of %s not sent: ubusd has not read %d bytes yet", method,
                        len(self._out))
            status, reply = UBUS_STATUS_NO_MEMORY, {
                "error": "the server's output to ubusd is full, try again"}
        return [m.encode() for m in reply_messages(msg, self.object_id, status, reply)]

    # -- output -----------------------------------------------------------------------------

    def _send(self, msg: Message) -> None:
        self._send_raw(msg.encode())

    def _send_raw(self, raw: bytes) -> None:
        if self.sock is None:
            return
        if len(self._out) + len(raw) > MAX_OUTPUT:
            self._fail("ubusd does not read its messages (output limit reached)")
            return
        self._out += raw
        self._flush()

    def _flush(self) -> None:
        sock = self.sock
        while self._out and sock is not None:
            try:
                sent = sock.send(self._out)
            except (BlockingIOError, InterruptedError):
                if not self._flush_scheduled:
                    self._flush_scheduled = True
                    gen = self._gen
                    self.loop.call_later(FLUSH_RETRY, lambda: self._flush_later(gen))
                return
            except OSError as exc:
                self._fail(f"sending to ubusd failed: {exc.strerror or exc}")
                return
            del self._out[:sent]

    def _flush_later(self, gen: int) -> None:
        if gen == self._gen:
            self._flush_scheduled = False
            self._flush()


def install(state, path: str, object_name: str = "ksmbd") -> None:
    """Register the `ksmbd` object once the server's loop runs (a startup hook)."""
    from .ksmbd_object import KsmbdObject
    obj = KsmbdObject(state)

    def start(loop) -> None:
        client = UbusClient(loop, path, object_name, KsmbdObject.SIGNATURES, obj.call)
        state.shutdown_hooks.append(client.close)
        client.start()

    state.startup_hooks.append(start)

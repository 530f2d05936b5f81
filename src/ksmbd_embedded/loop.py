"""The event loop: one epoll loop (poller.py) owns every socket, signal and timer.

Frames are cut from the byte stream here (Direct TCP: a zero byte and a 24-bit length,
MS-SMB2 2.1) and handed to `Connection.receive`; whatever the connection queued on its
outbox is sent with `sendmsg`, resuming partial sends when the socket is writable. A
connection whose unsent output passes a bound stops being read until it drains, so a client
that does not read cannot make the server grow without bound.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import logging
import os
import signal
import socket
import struct
import time

from . import heap
from .connection import Connection
from .file_range import FileRange
from .poller import READ, WRITE, Poller

log = logging.getLogger("ksmbd.loop")

_FRAME_HEADER = struct.Struct(">I")
MAX_PENDING_OUTPUT = 8 * 1024 * 1024
SCRATCH_SIZE = 64 * 1024
POOL_MAX = 4  # large receive buffers kept for reuse, shared by all connections
POOL_IDLE_SECONDS = 2.0  # an unused pool (up to 4 max-size buffers) is freed after this
FRAME_SLACK = 64 * 1024  # headers, compounds and contexts around a max-size payload


class StartupError(Exception):
    """Why the server cannot start, in one line for the user (the console command prints
    ``error: <message>`` and exits 1, no traceback)."""


class ListenError(StartupError, OSError):
    """A listen address that cannot be used; the message names it and says why."""


def _endpoint(addr: str, port: int) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def _listen_problem(addr: str, port: int, exc: OSError) -> str:
    """``cannot listen on ADDR:PORT: reason`` for a socket/bind/listen failure."""
    code = exc.errno
    if code == errno.EADDRINUSE:
        reason = "address already in use"
    elif code in (errno.EACCES, errno.EPERM):
        reason = "permission denied"
        if port < 1024:
            reason += " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
    elif code == errno.EADDRNOTAVAIL:
        reason = "address not available on this host"
    elif code == errno.EAFNOSUPPORT:
        reason = "IPv6 is not available on this host"
    else:
        text = exc.strerror or str(exc)
        reason = text[:1].lower() + text[1:]
    return f"cannot listen on {_endpoint(addr, port)}: {reason}"


class _Client:
    """Socket-side state of one connection: the bytes of a frame not complete yet, and
    unsent output. Idle, it holds no buffer (the loop's scratch buffer is shared)."""

    __slots__ = ("sock", "conn", "pending", "frame", "frame_view", "got",
                 "out", "out_bytes", "ranges", "fileno", "events")

    def __init__(self, sock: socket.socket, conn: Connection) -> None:
        self.sock = sock
        self.conn = conn
        self.pending = b""  # received bytes not dispatched yet (the start of a frame)
        self.frame: bytearray | None = None  # a large frame's buffer (from the shared pool)
        self.frame_view: memoryview | None = None  # the frame's part of that buffer
        self.got = 0
        self.out: list = []
        self.out_bytes = 0
        self.ranges = 0  # FileRanges in `out` (READ payloads sent with os.sendfile)
        self.fileno = sock.fileno()
        self.events = READ  # what the poller watches now


class _Listener:
    __slots__ = ("sock",)

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock


class _Reader:
    __slots__ = ("callback",)

    def __init__(self, callback) -> None:
        self.callback = callback


class Loop:
    def __init__(self, state, addresses: list[str], port: int) -> None:
        self.state = state
        self.sel = Poller()
        self.listeners: list[socket.socket] = []
        self.clients: dict[int, _Client] = {}
        self.running = True
        self.reload_requested = False
        self.max_frame = self._compute_max_frame()
        self.pool: list[bytearray] = []
        # One receive buffer for every connection (the loop is single-threaded): a
        # connection keeps only the few bytes of a frame that has not arrived whole.
        self.scratch = bytearray(SCRATCH_SIZE)
        self.scratch_view = memoryview(self.scratch)
        self.pool_used = time.monotonic()
        self._bind(addresses, port)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.sel.register(self._wake_r, READ, "wake")
        self._timers: list = []  # heap of (due, seq, callback)
        self._timer_seq = itertools.count()
        state.loop = self

    # -- extension points: other services living in the same loop (ubus, change notify) ---

    def add_reader(self, fileobj, callback) -> None:
        """Call `callback()` from the loop whenever `fileobj` is readable."""
        self.sel.register(fileobj, READ, _Reader(callback))

    def remove_reader(self, fileobj) -> None:
        try:
            self.sel.unregister(fileobj)
        except (KeyError, ValueError):
            pass

    def call_later(self, delay: float, callback) -> None:
        """Call `callback()` from the loop after `delay` seconds (at least once)."""
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._timer_seq), callback))

    def _run_timers(self, now: float) -> None:
        timers = self._timers
        while timers and timers[0][0] <= now:
            _, _, callback = heapq.heappop(timers)
            try:
                callback()
            except Exception:
                log.exception("timer callback failed")

    def disconnect(self, conn: Connection, reason: str) -> bool:
        """Drop one connection (administrative disconnect); False if it is already gone."""
        client = conn.transport
        if client is None or self.clients.get(client.fileno) is not client:
            return False
        self._drop(client, reason)
        return True

    def _compute_max_frame(self) -> int:
        cfg = self.state.config
        return max(cfg.max_write, cfg.max_trans, cfg.max_read) + FRAME_SLACK

    def _bind(self, addresses: list[str], port: int) -> None:
        """Bind every address, then listen on all: nothing listens (or is logged as
        listening) unless every address could be bound. A failure closes what was bound and
        raises ListenError naming the address ("cannot listen on 127.0.0.1:445: address
        already in use"). An IPv6 address this host lacks (IPv6 disabled) is skipped with a
        warning as long as another address is left."""
        bound: list[tuple[socket.socket, str]] = []
        skipped: list[str] = []
        try:
            for addr in addresses:
                family = socket.AF_INET6 if ":" in addr else socket.AF_INET
                try:
                    sock = socket.socket(family, socket.SOCK_STREAM)
                except OSError as exc:
                    if family == socket.AF_INET6 and exc.errno == errno.EAFNOSUPPORT:
                        skipped.append(_listen_problem(addr, port, exc))
                        continue
                    raise ListenError(_listen_problem(addr, port, exc)) from None
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    if family == socket.AF_INET6:
                        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    sock.bind((addr, port))
                except OSError as exc:
                    sock.close()
                    if exc.errno == errno.EADDRNOTAVAIL and family == socket.AF_INET6:
                        skipped.append(_listen_problem(addr, port, exc))
                        continue
                    raise ListenError(_listen_problem(addr, port, exc)) from None
                bound.append((sock, addr))
            if not bound:
                raise ListenError(skipped[0] if skipped else "no address to listen on")
            for sock, addr in bound:
                try:
                    sock.listen(128)
                except OSError as exc:
                    raise ListenError(_listen_problem(addr, port, exc)) from None
        except BaseException:
            for sock, _ in bound:
                sock.close()
            raise
        for problem in skipped:
            log.warning("%s; skipped", problem)
        for sock, addr in bound:
            sock.setblocking(False)
            self.sel.register(sock, READ, _Listener(sock))
            self.listeners.append(sock)
            log.info("listening on %s", _endpoint(addr, port))

    def wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> None:
        while self.running:
            # wake up to free the pool and trim the heap once idle
            timeout = POOL_IDLE_SECONDS if self.pool or heap.busy() else 5.0
            if self._timers:
                timeout = min(timeout, max(0.0, self._timers[0][0] - time.monotonic()))
            for tag, events in self.sel.poll(timeout):
                if tag.__class__ is _Client:
                    if self.clients.get(tag.fileno) is not tag:
                        continue  # dropped earlier in this round (its fd may be reused)
                    if events & READ:
                        self._read(tag)
                    if events & WRITE and tag.fileno in self.clients:
                        self._flush(tag)
                elif tag.__class__ is _Reader:
                    try:
                        tag.callback()
                    except Exception:
                        log.exception("reader callback failed")
                elif tag.__class__ is _Listener:
                    self._accept(tag.sock)
                elif tag == "wake":
                    try:
                        self._wake_r.recv(4096)
                    except OSError:
                        pass
            now = time.monotonic()
            if self._timers:
                self._run_timers(now)
            self._trim_pool(now)
            pending = self.state.flush_pending
            if pending:
                # Output queued outside a connection's own read path (an async completion
                # caused by another client): send it now.
                for conn in list(pending):
                    client = conn.transport
                    if client is not None and client.fileno in self.clients:
                        self._queue(client)
                        self._flush(client)
                pending.clear()
            if self.reload_requested:
                self.reload_requested = False
                try:
                    self.state.reload()
                    self.max_frame = self._compute_max_frame()
                except Exception as exc:  # a bad new config keeps the old one running
                    log.error("reload failed, keeping the running configuration: %s", exc)
        self.shutdown()

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(64):
            try:
                sock, addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("accept failed: %s", exc)
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            peer = f"[{addr[0]}]:{addr[1]}" if sock.family == socket.AF_INET6 else \
                f"{addr[0]}:{addr[1]}"
            conn = Connection(self.state, peer, time.monotonic())
            client = _Client(sock, conn)
            conn.transport = client
            self.clients[client.fileno] = client
            self.state.connections.add(conn)
            self.sel.register(sock, READ, client)
            log.info("%s: connected", peer)

    def _read(self, client: _Client) -> None:
        """Read what the socket has; dispatch every complete frame.

        Small frames are received into the loop's shared scratch buffer, after the bytes the
        connection kept from its last read, and cut out of it (copied, so nothing keeps a
        view on it). A frame larger than the scratch buffer gets its own buffer, filled by
        recv_into straight from the socket: a WRITE payload is never copied in Python.
        """
        kept = 0
        try:
            if client.frame is not None:
                n = client.sock.recv_into(client.frame_view[client.got:])
            else:
                kept = len(client.pending)
                if kept:  # the start of a frame (shorter than the scratch buffer)
                    self.scratch[:kept] = client.pending
                n = client.sock.recv_into(self.scratch_view[kept:])
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._drop(client, f"receive failed: {exc.strerror}")
            return
        if not n:
            self._drop(client, "closed by client")
            return
        if client.frame is not None:
            client.got += n
            view = client.frame_view
            if client.got < len(view):
                return
            buf = client.frame
            client.frame = client.frame_view = None
            alive = self._dispatch(client, view)
            self._give_back(buf, view)
            if alive:
                self._flush(client)
            return
        self._parse(client, kept + n)

    def _parse(self, client: _Client, have: int) -> None:
        """Dispatch the complete frames in scratch[:have], keep the rest (the start of a
        frame), send what they produced."""
        scratch = self.scratch
        start = 0
        limit = self.max_frame
        while have - start >= 4:
            length = _FRAME_HEADER.unpack_from(scratch, start)[0]
            if length >> 24:
                self._drop(client, "not a Direct TCP frame")
                return
            if length > limit:
                self._drop(client, f"frame of {length} bytes exceeds the limit {limit}")
                return
            end = start + 4 + length
            if end > have:
                if length > SCRATCH_SIZE - 4:
                    # Too big for the scratch buffer: its own buffer, from the pool.
                    part = have - start - 4
                    buf = self._take_buffer(length)
                    view = memoryview(buf)[:length]
                    view[:part] = scratch[start + 4:have]
                    client.frame = buf
                    client.frame_view = view
                    client.got = part
                    client.pending = b""
                    return
                break
            if not self._dispatch(client, memoryview(bytes(self.scratch_view[start + 4:end]))):
                return
            start = end
        client.pending = bytes(scratch[start:have]) if start < have else b""
        self._flush(client)

    def _take_buffer(self, length: int) -> bytearray:
        """A buffer of at least `length` bytes for one large frame: reused from the pool
        (pages already mapped) or new."""
        self.pool_used = time.monotonic()
        pool = self.pool
        for i, buf in enumerate(pool):
            if len(buf) >= length:
                return pool.pop(i)
        heap.large_buffers_in_use()
        return bytearray(max(length, self.max_frame) if length > SCRATCH_SIZE else length)

    def _give_back(self, buf: bytearray, view: memoryview) -> None:
        """Return a frame buffer to the pool, unless something still holds a view of it."""
        view.release()
        if len(self.pool) >= POOL_MAX or len(buf) < self.max_frame:
            return
        try:
            # A resize fails while any view of the buffer is alive (a handler kept a slice):
            # then the buffer is not reused, the garbage collector gets it.
            buf.append(0)
        except BufferError:
            return
        del buf[-1]
        self.pool.append(buf)

    def _trim_pool(self, now: float) -> None:
        if (self.pool or heap.busy()) and now - self.pool_used > POOL_IDLE_SECONDS:
            self.pool.clear()
            heap.trim()

    def _dispatch(self, client: _Client, frame: memoryview) -> bool:
        """Hand one frame to the protocol core; False if the connection was closed."""
        conn = client.conn
        conn.receive(frame)
        if conn.outbox:
            self._queue(client)
        if conn.closing:
            self._flush(client)
            self._drop(client, conn.close_reason)
            return False
        return True

    def _queue(self, client: _Client) -> None:
        out = client.conn.outbox
        n = 0
        for buf in out:
            if buf.__class__ is FileRange:
                client.ranges += 1
            n += len(buf)
        client.out += out
        client.out_bytes += n
        out.clear()
        if n > SCRATCH_SIZE:  # large responses: heap buffers (heap.py), trimmed when idle
            self.pool_used = time.monotonic()
            heap.large_buffers_in_use()

    def _flush(self, client: _Client) -> None:
        """Send queued output: byte buffers with sendmsg, READ payloads with os.sendfile."""
        out = client.out
        sock = client.sock
        if not client.ranges and 0 < len(out) <= 64:
            # The common case, small responses only: one sendmsg, all of it sent.
            try:
                sent = sock.sendmsg(out)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                self._drop(client, f"send failed: {exc.strerror}")
                return
            if sent == client.out_bytes:
                out.clear()
                client.out_bytes = 0
                self.state.flush_pending.discard(client.conn)
                if client.events != READ:
                    self._update_interest(client)
                return
            self._sent(client, sent)  # the socket is full: wait until it is writable
            self._update_interest(client)
            return
        while out:
            head = out[0]
            try:
                if isinstance(head, FileRange):
                    sent = os.sendfile(client.fileno, head.fd, head.offset, head.length)
                    if sent == 0:  # the file shrank under us: keep the framing with zeros
                        out[0] = bytes(head.length)
                        head.release()
                        client.ranges -= 1
                        continue
                    client.out_bytes -= sent
                    head.advance(sent)
                    if head.length == 0:
                        head.release()
                        out.pop(0)
                        client.ranges -= 1
                    continue
                batch = []
                for item in out:
                    if isinstance(item, FileRange) or len(batch) == 64:
                        break
                    batch.append(item)
                more = len(batch) < len(out) and isinstance(out[len(batch)], FileRange)
                sent = sock.sendmsg(batch, (), socket.MSG_MORE if more else 0)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                self._drop(client, f"send failed: {exc.strerror}")
                return
            self._sent(client, sent)
        self._update_interest(client)

    @staticmethod
    def _sent(client: _Client, sent: int) -> None:
        """Forget the first `sent` bytes of the queued byte buffers."""
        out = client.out
        client.out_bytes -= sent
        while sent:
            head = out[0]
            n = len(head)
            if sent >= n:
                sent -= n
                out.pop(0)
            else:
                out[0] = memoryview(head)[sent:]
                sent = 0

    def _update_interest(self, client: _Client) -> None:
        self.state.flush_pending.discard(client.conn)
        if client.fileno not in self.clients:
            return
        want_read = client.out_bytes < MAX_PENDING_OUTPUT
        events = (READ if want_read else 0) | (WRITE if client.out else 0)
        if not events:
            events = READ
        if events != client.events:  # epoll_ctl only when the interest really changes
            client.events = events
            self.sel.modify(client.sock, events, client)

    def _drop(self, client: _Client, reason: str) -> None:
        if self.clients.pop(client.fileno, None) is None:
            return
        try:
            self.sel.unregister(client.sock)
        except (KeyError, ValueError):
            pass
        try:
            client.sock.close()
        except OSError:
            pass
        for item in client.out:
            if isinstance(item, FileRange):
                item.release()
        client.out.clear()
        client.ranges = 0
        conn = client.conn
        self.state.connections.discard(conn)
        self.state.flush_pending.discard(conn)
        conn.transport = None
        conn.closing = True
        conn.cancel_async(lambda work: True, send=False)
        from .handlers.session_setup import close_session
        for session in list(conn.sessions.values()):
            try:
                close_session(self.state, session)
            except Exception:
                log.exception("%s: cleaning up a session failed", conn.peer)
        log.info("%s: disconnected (%s)", conn.peer, reason)

    def shutdown(self) -> None:
        for hook in list(self.state.shutdown_hooks):
            try:
                hook()
            except Exception:
                log.exception("shutdown hook failed")
        for client in list(self.clients.values()):
            self._drop(client, "server shutting down")
        for sock in self.listeners:
            self.sel.unregister(sock)
            sock.close()
        self.listeners.clear()
        self.sel.close()
        self._wake_r.close()
        self._wake_w.close()


def serve_forever(state, addresses: list[str], port: int) -> int:
    """Run until SIGTERM or SIGINT; SIGHUP reloads config and users in place."""
    loop = Loop(state, addresses, port)

    def stop(signum, frame):
        loop.running = False
        loop.wake()

    def hup(signum, frame):
        loop.reload_requested = True
        loop.wake()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, hup)
    for hook in list(state.startup_hooks):
        hook(loop)
    log.info("ksmbd-embedded %s serving %d share(s), pid %d", _version(),
             len(state.config.shares), os.getpid())
    loop.run()
    log.info("stopped")
    return 0


def _version() -> str:
    from . import __version__
    return __version__

"""The event loop: one epoll loop (poller.py) owns every socket, signal and timer.

Frames are cut from the byte stream here (Direct TCP: a zero byte and a 24-bit length,
MS-SMB2 2.1) and handed to `Connection.receive`; whatever the connection queued on its
outbox is sent with `sendmsg`, resuming partial sends when the socket is writable. A
connection whose unsent output passes a bound stops being read until it drains, so a client
that does not read cannot make the server grow without bound; the bounds are checked before
each frame, and one I/O budget covers the whole process (io_budget.py).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import signal
import socket
import struct
import time

from . import conn_limits, heap, io_budget
from .connection import Connection
from .file_range import FileRange
from .handlers.read_write import SPLICE_HEAD, SPLICE_MIN, splice_candidate
from .listeners import (  # noqa: F401 (ListenError, StartupError, ... re-exported)
    ACCEPT_PAUSE, AcceptingMixin, ListenError, StartupError, _Listener, _listen_problem,
)
from .poller import READ, WRITE, Poller
from .transport import _Client, _mid_frame  # noqa: F401 (_mid_frame re-exported)
from .write_splice import _SPLICE, SplicingMixin

log = logging.getLogger("ksmbd.loop")

_FRAME_HEADER = struct.Struct(">I")
MAX_PENDING_OUTPUT = io_budget.MAX_PENDING_OUTPUT
SCRATCH_SIZE = io_budget.SCRATCH_SIZE
MAX_QUEUED_RANGES = io_budget.MAX_QUEUED_RANGES
PRE_LOGON_MAX_FRAME = io_budget.PRE_LOGON_MAX_FRAME
HELD_OUTPUT, HELD_BUDGET = 1, 2  # _Client.held: waiting for its own output, for the budget
POOL_MAX = 4  # large receive buffers kept for reuse, shared by all connections
POOL_IDLE_SECONDS = 2.0  # an unused pool (up to 4 max-size buffers) is freed after this
FRAME_SLACK = 64 * 1024  # headers, compounds and contexts around a max-size payload


class _Reader:
    __slots__ = ("callback",)

    def __init__(self, callback) -> None:
        self.callback = callback


class Loop(AcceptingMixin, SplicingMixin):
    """The event loop; the accept side is in listeners.py, the WRITE splice in
    write_splice.py."""

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
        self.unheld: set[_Client] = set()  # held clients whose output drained: go on
        # The process's I/O buffer budget (io_budget.py): large receive buffers in use and
        # queued output in memory (not sendfile ranges) count in io_used.
        self.io_limit = state.config.memory_limit
        self.io_used = 0
        self.pool_bytes = 0  # idle buffers kept in the pool: inside the budget too
        self.budget_waiters: list[_Client] = []  # held for a receive buffer (HELD_BUDGET)
        self.pool_used = time.monotonic()
        self._pipe: tuple[int, int] | None = None  # (read, write) for splice, made on first use
        self._pipe_size = 0
        self._bind(addresses, port)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.sel.register(self._wake_r, READ, "wake")
        self._timers: list = []  # heap of (due, seq, callback)
        self._timer_seq = itertools.count()
        # Accept path: limits, reclaim and counters (conn_limits.py), the timer sweep
        # (conn_timeouts.py), a spare fd for the fd limit, listeners paused by it.
        self.conns = conn_limits.ConnTable()
        self.spare_fd = conn_limits.SpareFd()
        self.fd_base = conn_limits.open_fd_count()  # descriptors not per connection or open
        self._paused: set[socket.socket] = set()
        self._sweeping = False
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

    def wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> None:
        while self.running:
            # wake up to free the pool and trim the heap once idle
            timeout = self._trim_due() if self.pool or heap.busy() else 5.0
            if self.unheld:  # held clients whose output drained go on at once
                timeout = 0.0
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
            if self.budget_waiters and self.io_used < self.io_limit:
                self._wake_budget_waiters()
            if self.unheld:
                self._run_unheld()
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
                    self.io_limit = self.state.config.memory_limit
                except Exception as exc:  # a bad new config keeps the old one running
                    log.error("reload failed, keeping the running configuration: %s", exc)
        self.shutdown()

    def _read(self, client: _Client) -> None:
        """Read what the socket has; dispatch every complete frame.

        Small frames are received into the loop's shared scratch buffer, after the bytes the
        connection kept from its last read, and cut out of it (copied, so nothing keeps a
        view on it). A frame larger than the scratch buffer gets its own buffer once the
        scratch buffer is full of it, filled by recv_into straight from the socket: a WRITE
        payload is copied at most once, its first 64 KiB.
        """
        if client.held:  # its frames wait (for its output, or for the budget)
            if client.held == HELD_OUTPUT:
                self._unhold(client)
            return
        if client.splice is not None:
            self._splice_more(client)
            return
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
            self.io_used -= len(buf)
            self._give_back(buf, view)
            self._large_freed()
            if alive:
                self._flush(client)
            return
        self._parse(client, kept + n)

    def _parse(self, client: _Client, have: int) -> None:
        """Dispatch the complete frames in scratch[:have], keep the rest (the start of a
        frame), send what they produced. Before each frame the output bound is checked
        (io_budget.py): past it, the frames left are held until the output drains."""
        scratch = self.scratch
        start = 0
        while have - start >= 4:
            length = _FRAME_HEADER.unpack_from(scratch, start)[0]
            if length >> 24:
                self._drop(client, "not a Direct TCP frame")
                return
            if length > PRE_LOGON_MAX_FRAME:
                refused = io_budget.frame_refused(client.conn, length, self.max_frame)
                if refused:
                    self._drop(client, refused)
                    return
            end = start + 4 + length
            if end > have:
                if length >= SPLICE_HEAD + SPLICE_MIN and have - start >= 4 + SPLICE_HEAD \
                        and _SPLICE is not None and self._splice_pipe() is not None:
                    sw = splice_candidate(client.conn, self.scratch_view[start + 4:
                                                                          start + 4 + SPLICE_HEAD],
                                          length)
                    if sw is not None:
                        if self._output_hold(client, start, have):
                            return
                        self._splice_start(client, sw, start + 4 + SPLICE_HEAD, have)
                        if client.splice is not None and client.fileno in self.clients:
                            self._flush(client)  # (answers to the frames before it)
                        return
                if have - start == SCRATCH_SIZE:
                    # The scratch buffer is full of this frame and more is coming: its own
                    # buffer now (until then a frame announced but not sent costs nothing),
                    # if the budget has room; else the connection waits for it unread.
                    if self.io_used >= self.io_limit:
                        client.held = HELD_BUDGET
                        client.pending = bytes(scratch[start:have])
                        self.budget_waiters.append(client)
                        self._update_interest(client)
                        return
                    part = have - start - 4
                    buf = self._take_buffer(length)
                    self.io_used += len(buf)
                    if self.pool and self.io_used + self.pool_bytes > self.io_limit:
                        self._fit_pool()
                    view = memoryview(buf)[:length]
                    view[:part] = scratch[start + 4:have]
                    client.frame = buf
                    client.frame_view = view
                    client.got = part
                    client.pending = b""
                    if not client.events & READ:  # (resumed after a wait: read it again)
                        self._update_interest(client)
                    return
                break
            if self._output_hold(client, start, have):
                return
            if not self._dispatch(client, memoryview(bytes(self.scratch_view[start + 4:end]))):
                return
            start = end
        client.pending = bytes(scratch[start:have]) if start < have else b""
        self._flush(client)

    def _output_hold(self, client: _Client, start: int, have: int) -> bool:
        """The output bound before a frame (io_budget.py): True if the connection was
        dropped, or holds scratch[start:have] in `pending` until its output drains."""
        if client.held or client.out_bytes >= MAX_PENDING_OUTPUT or \
                client.ranges >= MAX_QUEUED_RANGES or \
                (client.out_bytes and self.io_used >= self.io_limit):
            self._flush(client)  # what the socket takes now
            if client.fileno not in self.clients:
                return True
            if client.held or client.out_bytes >= MAX_PENDING_OUTPUT or \
                    client.ranges >= MAX_QUEUED_RANGES or \
                    (client.out_bytes and self.io_used >= self.io_limit):
                # (with nothing of its own queued a client always gets one frame
                # through: the budget never stops a client that reads its answers)
                client.held = HELD_OUTPUT
                client.pending = bytes(self.scratch[start:have])
                self._update_interest(client)
                return True
        return False

    def _wake_budget_waiters(self) -> None:
        """The budget has room again: the clients waiting for a receive buffer go on, first
        come first (those that still find it spent wait again, in order)."""
        waiters = self.budget_waiters
        self.budget_waiters = []
        for client in waiters:
            if client.held == HELD_BUDGET and self.clients.get(client.fileno) is client:
                client.held = HELD_OUTPUT
                self._unhold(client)

    def _run_unheld(self) -> None:
        unheld = list(self.unheld)
        self.unheld.clear()
        for client in unheld:
            if client.held and self.clients.get(client.fileno) is client:
                self._unhold(client)

    def _take_buffer(self, length: int) -> bytearray:
        """A buffer of at least `length` bytes for one large frame: reused from the pool
        (pages already mapped) or new."""
        self.pool_used = time.monotonic()
        pool = self.pool
        for i, buf in enumerate(pool):
            if len(buf) >= length:
                self.pool_bytes -= len(buf)
                return pool.pop(i)
        heap.large_buffers_in_use()
        return bytearray(max(length, self.max_frame) if length > PRE_LOGON_MAX_FRAME
                         else length)

    def _give_back(self, buf: bytearray, view: memoryview) -> None:
        """Return a frame buffer to the pool, unless something still holds a view of it or
        the budget has no room for it (pooled buffers count in it: io_used + pool_bytes)."""
        view.release()
        if len(self.pool) >= POOL_MAX or len(buf) < self.max_frame or \
                self.io_used + self.pool_bytes + len(buf) > self.io_limit:
            return
        try:
            # A resize fails while any view of the buffer is alive (a handler kept a slice):
            # then the buffer is not reused, the garbage collector gets it.
            buf.append(0)
        except BufferError:
            return
        del buf[-1]
        self.pool.append(buf)
        self.pool_bytes += len(buf)

    def _fit_pool(self) -> None:
        """Buffers in use grew into the pool's share of the budget: free pooled ones."""
        while self.pool and self.io_used + self.pool_bytes > self.io_limit:
            self.pool_bytes -= len(self.pool.pop())

    def _large_freed(self) -> None:
        """A large buffer went back (to the pool or the heap): trim once idle again, even if
        a trim ran while it was in use (its pages would stay in the heap otherwise)."""
        self.pool_used = time.monotonic()
        heap.large_buffers_in_use()

    def _trim_due(self) -> float:
        """Seconds until the idle trim is due (a little after, so that it is)."""
        return max(0.01, self.pool_used + POOL_IDLE_SECONDS + 0.01 - time.monotonic())

    def _trim_pool(self, now: float) -> None:
        if (self.pool or heap.busy()) and now - self.pool_used > POOL_IDLE_SECONDS:
            self.pool.clear()
            self.pool_bytes = 0
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
        if conn.suspended is not None:  # a compound waits for its output to drain
            client.held = HELD_OUTPUT
        return True

    def _unhold(self, client: _Client) -> None:
        """Go on with a held client whose output has drained: the suspended compound first,
        then the frames kept in `pending`."""
        if client.out_bytes >= MAX_PENDING_OUTPUT or client.ranges >= MAX_QUEUED_RANGES:
            return  # still full: _update_interest brings it back when it drains
        client.held = False
        conn = client.conn
        if conn.suspended is not None:
            conn.resume()
            if conn.outbox:
                self._queue(client)
            if conn.closing:
                self._flush(client)
                self._drop(client, conn.close_reason)
                return
            if conn.suspended is not None:
                client.held = HELD_OUTPUT
                self._flush(client)
                return
        pending = client.pending
        n = len(pending)
        self.scratch[:n] = pending
        client.pending = b""
        self._parse(client, n)

    def _queue(self, client: _Client) -> None:
        out = client.conn.outbox
        n = 0
        on_disk = 0
        for buf in out:
            if buf.__class__ is FileRange:
                client.ranges += 1
                on_disk += len(buf)
            n += len(buf)
        client.out += out
        client.out_bytes += n
        self.io_used += n - on_disk
        out.clear()
        if self.pool and self.io_used + self.pool_bytes > self.io_limit:
            self._fit_pool()
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
                self.io_used -= sent
                if sent > SCRATCH_SIZE:
                    self._large_freed()
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
                        self.io_used += head.length
                        head.release()
                        client.ranges -= 1
                        continue
                    client.out_bytes -= sent
                    client.sent += sent
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

    def _sent(self, client: _Client, sent: int) -> None:
        """Forget the first `sent` bytes of the queued byte buffers."""
        out = client.out
        client.out_bytes -= sent
        client.sent += sent
        self.io_used -= sent
        while sent:
            head = out[0]
            n = len(head)
            if sent >= n:
                sent -= n
                out.pop(0)
                if n > SCRATCH_SIZE:
                    self._large_freed()
            else:
                out[0] = memoryview(head)[sent:]
                sent = 0

    def _update_interest(self, client: _Client) -> None:
        self.state.flush_pending.discard(client.conn)
        if client.fileno not in self.clients:
            return
        out_bytes = client.out_bytes
        want_read = out_bytes < MAX_PENDING_OUTPUT and client.ranges < MAX_QUEUED_RANGES and \
            not (out_bytes and self.io_used >= self.io_limit)
        if client.held:
            if want_read and client.held == HELD_OUTPUT:
                self.unheld.add(client)  # the loop goes on with its frames after this round
            want_read = False
        events = (READ if want_read else 0) | (WRITE if client.out else 0)
        if not events and not client.held:
            events = READ
        if events != client.events:  # epoll_ctl only when the interest really changes
            try:
                self.sel.modify(client.sock, events, client)
            except ValueError:  # (selectors, no epoll: cannot watch nothing)
                events = READ
                self.sel.modify(client.sock, events, client)
            client.events = events

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
        in_memory = 0
        for item in client.out:
            if isinstance(item, FileRange):
                item.release()
            else:
                in_memory += len(item)
        self.io_used -= in_memory
        client.out.clear()
        client.out_bytes = 0
        client.ranges = 0
        if client.splice is not None:
            if client.splice.fd >= 0:
                os.close(client.splice.fd)
                client.splice.fd = -1
            client.splice = None
        if client.frame is not None:
            self.io_used -= len(client.frame)
            client.frame = client.frame_view = None
            in_memory += SCRATCH_SIZE + 1
        if in_memory > SCRATCH_SIZE:
            self._large_freed()
        if client.held == HELD_BUDGET and client in self.budget_waiters:
            self.budget_waiters.remove(client)
        conn = client.conn
        self.conns.forget(conn)
        self.state.connections.discard(conn)
        self.state.flush_pending.discard(conn)
        conn.transport = None
        conn.closing = True
        conn.tear_down()
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
            if sock not in self._paused:  # (a paused listener is not watched)
                self.sel.unregister(sock)
            sock.close()
        self.listeners.clear()
        self._paused.clear()
        self.spare_fd.close()
        if self._pipe is not None:
            for fd in self._pipe:
                os.close(fd)
            self._pipe = None
        self.sel.close()
        self._wake_r.close()
        self._wake_w.close()


def serve_forever(state, addresses: list[str], port: int) -> int:
    """Run until SIGTERM or SIGINT; SIGHUP reloads config and users in place."""
    conn_limits.raise_fd_limit()
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

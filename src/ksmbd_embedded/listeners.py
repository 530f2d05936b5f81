"""The listening side of the loop: every listen address bound before any listens (a bad one
is a `ListenError`, one line for the user), accept with its limits and reclaim
(conn_limits.py), the pause when descriptors run out, TCP keepalive, and the once-a-second
timer sweep (conn_timeouts.py). `AcceptingMixin` is a part of `loop.Loop`: its methods use
the loop's state (poller, clients, conns, timers) and `_drop`.
"""

from __future__ import annotations

import errno
import logging
import socket
import time

from . import conn_limits, conn_timeouts, host_access
from .connection import Connection
from .poller import READ
from .transport import _Client, _mid_frame, _sent_so_far

log = logging.getLogger("ksmbd.loop")

ACCEPT_PAUSE = 0.5  # seconds a listener is not polled after accept() ran out of fds
_OUT_OF_FDS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_ACCEPT_GONE = (errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.ETIMEDOUT,
                errno.EHOSTUNREACH, errno.ENETUNREACH)


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


def _keepalive(sock: socket.socket) -> None:
    """TCP keepalive on an accepted connection, so a peer that vanished (power off, Wi-Fi
    gone: no FIN ever comes) is found and its connection closed: probes after 60 s idle,
    every 10 s, 6 unanswered ones end it; TCP_USER_TIMEOUT ends it likewise when sent data
    stays unacknowledged that long."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, value in _TCP_KEEPALIVE:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)
    except OSError:
        pass


_TCP_KEEPALIVE = [(getattr(socket, name), value) for name, value in (
    ("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 6),
    ("TCP_USER_TIMEOUT", 120_000)) if hasattr(socket, name)]


class _Listener:
    __slots__ = ("sock",)

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock


class AcceptingMixin:
    """Loop methods for listening, accepting and the timer sweep."""

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

    def _accept(self, listener: socket.socket) -> None:
        if listener in self._paused:  # (paused earlier in this round of events)
            return
        conns = self.conns
        fd_ceiling = conn_limits.fd_ceiling()
        for _ in range(64):
            try:
                sock, addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_FDS:
                    self._out_of_fds(listener, exc)
                    return
                if exc.errno in _ACCEPT_GONE:  # that connection died in the backlog
                    continue
                log.warning("accept failed: %s", exc)
                return
            if not host_access.admit_connection(self.state, addr[0]):
                sock.close()  # hosts allow / hosts deny (globals): no SMB answer, no slot
                continue
            ip = addr[0]
            now = time.monotonic()
            g = self.state.config.globals
            victims, rule = conns.admit(
                ip, now, conn_limits.effective(g.max_connections),
                conn_limits.effective(g.max_ip_connections),
                conn_limits.fd_tight(fd_ceiling, sock.fileno(), self.fd_base + 1 +
                                     len(self.clients) + len(self.state.opens)))
            if rule is not None:
                sock.close()
                self._refused(ip, rule, now)
                continue
            for victim, why in victims:
                conns.reclaimed += 1
                self._drop(victim.client, conn_limits.reclaim_reason(victim, why, g, now))
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _keepalive(sock)
            peer = f"[{addr[0]}]:{addr[1]}" if sock.family == socket.AF_INET6 else \
                f"{addr[0]}:{addr[1]}"
            conn = Connection(self.state, peer, now)
            client = _Client(sock, conn)
            conn.transport = client
            self.clients[client.fileno] = client
            self.state.connections.add(conn)
            self.sel.register(sock, READ, client)
            conns.add(client, conn, ip, now)
            if not self._sweeping:
                self._sweeping = True
                self.call_later(conn_timeouts.SWEEP_INTERVAL, self._sweep)
            log.info("%s: connected", peer)

    def _refused(self, ip: str, rule: str, now: float) -> None:
        """Count a refused connection; log it once per address per interval."""
        self.conns.refused[rule] += 1
        if self.conns.should_log(ip, now):
            log.warning("%s: connection refused: %s (further refusals of this address are "
                        "not logged for %d s)", ip, conn_limits.refusal_text(
                            rule, self.state.config.globals), conn_limits.LOG_INTERVAL)

    def _out_of_fds(self, listener: socket.socket, exc: OSError) -> None:
        """accept() failed for want of a descriptor: the listener stays readable, so polling
        it now would spin. Take the spare descriptor to accept and close what waits in the
        backlog (those clients see a clean close, not a hang), then stop polling the listener
        for ACCEPT_PAUSE; existing connections are served meanwhile."""
        refused = 0
        if self.spare_fd.release():
            try:
                for _ in range(64):
                    try:
                        sock, _ = listener.accept()
                    except OSError:
                        break
                    sock.close()
                    refused += 1
            finally:
                self.spare_fd.restore()
        self.conns.refused["fd_limit"] += refused
        if listener not in self._paused:
            try:
                self.sel.unregister(listener)
            except (KeyError, ValueError):
                pass
            else:
                self._paused.add(listener)
                self.call_later(ACCEPT_PAUSE, lambda: self._resume(listener))
        if self.conns.should_log("fd_limit", time.monotonic()):
            log.warning("out of file descriptors (%s, %d connections): new connections are "
                        "closed at once and accepting pauses %.1f s at a time (not logged "
                        "again for %d s)", exc.strerror or exc, len(self.clients),
                        ACCEPT_PAUSE, conn_limits.LOG_INTERVAL)

    def _resume(self, listener: socket.socket) -> None:
        if listener in self._paused:
            self._paused.discard(listener)
            if self.running and listener.fileno() >= 0:
                self.sel.register(listener, READ, _Listener(listener))

    def _sweep(self) -> None:
        """Once a second while there are connections: close those whose timer ran out
        (conn_timeouts.py)."""
        now = time.monotonic()
        conns = self.conns
        for tracked, kind, reason in conn_timeouts.expired(
                conns, now, self.state.config.globals, _mid_frame, _sent_so_far):
            conns.timed_out[kind] += 1
            self._drop(tracked.client, reason)
        conns.prune_log(now)
        if conns.entries:
            self.call_later(conn_timeouts.SWEEP_INTERVAL, self._sweep)
        else:
            self._sweeping = False

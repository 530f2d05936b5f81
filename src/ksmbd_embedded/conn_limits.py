"""How many connections the server takes, and which ones it lets go to take a new one.

`max_connections` (all clients) and `max_ip_connections` (one client address) bound the
connections, as ksmbd's options of the same names do (0 means 65536, as there). A limit
never locks a client out by its own stale connections: when a new connection would pass
a limit, the connections of that address (for the global limit: of any address) that have
no open files are closed first, the one idle longest first, so a laptop reconnecting
after a Wi-Fi drop gets in while its dead connections (no FIN ever came) still count. Only
when nothing can be reclaimed is the new connection refused: closed at once, counted, and
logged once per address per LOG_INTERVAL, not once per attempt.

`ConnTable` tracks what the decisions need per connection (address, when it was last seen
receiving a frame), by sampling counters the protocol core keeps anyway (Connection.bytes_in)
in the once-a-second sweep of conn_timeouts.py: nothing is added to the request path.

Descriptors: a new connection that would leave fewer than a headroom of them free
(`fd_ceiling`, `fd_tight`: 1/16 of RLIMIT_NOFILE, 8 to 64, for the files of the clients
already served) is treated like one over a limit (rule "fd_limit"). No sockets here
(listeners.py accepts and closes): `SpareFd` is the descriptor the loop keeps in reserve for
when accept() itself fails with EMFILE, and `raise_fd_limit` lifts RLIMIT_NOFILE's soft
limit at start.
"""

from __future__ import annotations

import heapq
import logging
import os
from typing import Any, Iterable

from .session import VALID

try:
    import resource as _resource
except ImportError:  # not on this platform or Python build: no fd limit handling
    _resource = None  # type: ignore[assignment]

log = logging.getLogger("ksmbd.limits")

REFUSED_RULES = ("max_connections", "max_ip_connections", "fd_limit")
TIMEOUT_KINDS = ("logon", "frame", "send", "deadtime")
UNLIMITED = 65536  # ksmbd: a limit of 0 means 65536
LOG_INTERVAL = 60.0  # a refusal is logged once per address (or rule) per interval
MAX_LOG_KEYS = 1024  # addresses remembered for that; past it, refusals go unlogged
MAX_LOG_LINES = 64  # refusal lines per interval in all (a scan from many addresses)


def effective(limit: int) -> int:
    """The limit in force for a configured value (0: ksmbd's 65536)."""
    return limit if limit > 0 else UNLIMITED


def has_open_files(conn: Any) -> bool:
    """Whether any tree of any session of `conn` has an open (file, directory or pipe), or
    a request of it is waiting (a blocking lock, a change notification)."""
    if conn.async_ops:
        return True
    for session in conn.sessions.values():
        for tree in session.trees.values():
            if tree.open_count:
                return True
    return False


def has_valid_session(conn: Any) -> bool:
    for session in conn.sessions.values():
        if session.state == VALID:
            return True
    return False


class Tracked:
    """What the limits and timeouts know of one connection."""

    __slots__ = ("client", "conn", "ip", "active", "seen_in", "mid_frame_since",
                 "no_session_since", "unsent_since", "seen_sent")

    def __init__(self, client: Any, conn: Any, ip: str, now: float) -> None:
        self.client = client  # the loop's object for the socket (what loop._drop takes)
        self.conn = conn
        self.ip = ip
        self.active = now  # when a frame was last seen arriving (to a sweep's precision)
        self.seen_in = conn.bytes_in
        self.mid_frame_since: float | None = None
        self.no_session_since: float | None = now
        self.unsent_since: float | None = None  # output waiting, no byte of it sent since
        self.seen_sent = 0

    def refresh(self, now: float) -> bool:
        """Note a frame received since the last look; True if one was."""
        seen = self.conn.bytes_in
        if seen == self.seen_in:
            return False
        self.seen_in = seen
        self.active = now
        return True


class ConnTable:
    """The connections by address, the counters ubus `status` shows, the log throttle."""

    __slots__ = ("entries", "by_ip", "refused", "reclaimed", "timed_out", "_logged",
                 "_window")

    def __init__(self) -> None:
        self.entries: dict[Any, Tracked] = {}  # Connection -> Tracked
        self.by_ip: dict[str, dict[Any, Tracked]] = {}
        self.refused = dict.fromkeys(REFUSED_RULES, 0)
        self.reclaimed = 0
        self.timed_out = dict.fromkeys(TIMEOUT_KINDS, 0)
        self._logged: dict[str, float] = {}
        self._window = (float("-inf"), 0)  # (start, lines logged since)

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, client: Any, conn: Any, ip: str, now: float) -> Tracked:
        tracked = Tracked(client, conn, ip, now)
        self.entries[conn] = tracked
        self.by_ip.setdefault(ip, {})[conn] = tracked
        return tracked

    def forget(self, conn: Any) -> None:
        tracked = self.entries.pop(conn, None)
        if tracked is None:
            return
        mine = self.by_ip.get(tracked.ip)
        if mine is not None:
            mine.pop(conn, None)
            if not mine:
                del self.by_ip[tracked.ip]

    def admit(self, ip: str, now: float, max_connections: int, max_ip_connections: int,
              fd_tight: bool = False) -> tuple[list[tuple[Tracked, str]], str | None]:
        """What to do with a new connection from `ip`: ``(to_close, None)`` takes it once
        the connections in `to_close` (each with the rule it makes room for) are closed;
        ``([], rule)`` refuses it. `fd_tight`: the new connection's descriptor eats into the
        headroom (fd_tight()), so one connection must go for it (rule "fd_limit"). Cost:
        nothing below the limits; at one, a pass over that address's (or every) connection."""
        victims: list[tuple[Tracked, str]] = []
        mine = self.by_ip.get(ip)
        if mine is not None and len(mine) >= max_ip_connections:
            need = len(mine) - max_ip_connections + 1
            picked = _idlest(mine.values(), need, now)
            if len(picked) < need:
                return [], "max_ip_connections"
            victims += [(t, "max_ip_connections") for t in picked]
        left = len(self.entries) - len(victims)
        if left >= max_connections:
            need = left - max_connections + 1
            chosen = {id(t) for t, _ in victims}
            picked = _idlest((t for t in self.entries.values() if id(t) not in chosen),
                             need, now)
            if len(picked) < need:
                return [], "max_connections"
            victims += [(t, "max_connections") for t in picked]
        if fd_tight and not victims:
            picked = _idlest(self.entries.values(), 1, now)
            if not picked:
                return [], "fd_limit"
            victims.append((picked[0], "fd_limit"))
        return victims, None

    def should_log(self, key: str, now: float, interval: float = LOG_INTERVAL) -> bool:
        """True at most once per `interval` per key (an address, or a rule), and at most
        MAX_LOG_LINES times per interval in all (the counters still count every one)."""
        last = self._logged.get(key)
        if last is not None and now - last < interval:
            return False
        start, lines = self._window
        if now - start >= interval:
            start, lines = now, 0
        if lines >= MAX_LOG_LINES:
            return False
        if last is None and len(self._logged) >= MAX_LOG_KEYS:
            self.prune_log(now, interval)
            if len(self._logged) >= MAX_LOG_KEYS:
                return False
        self._window = (start, lines + 1)
        self._logged[key] = now
        return True

    def prune_log(self, now: float, interval: float = LOG_INTERVAL) -> None:
        if self._logged:
            for key in [k for k, t in self._logged.items() if now - t >= interval]:
                del self._logged[key]

    def counters(self) -> dict[str, Any]:
        """For ubus `status`: refusals by rule, reclaimed connections, timeouts by kind."""
        return {"refused": dict(self.refused), "reclaimed": self.reclaimed,
                "timed_out": dict(self.timed_out)}


def _idlest(entries: Iterable[Tracked], n: int, now: float) -> list[Tracked]:
    """Up to `n` connections without open files, idle longest first."""
    candidates = []
    for tracked in entries:
        if has_open_files(tracked.conn):
            continue
        tracked.refresh(now)  # a frame since the last sweep: active now, not idle
        candidates.append(tracked)
    return heapq.nsmallest(n, candidates, key=lambda t: t.active)


def _why(rule: str, who: str, settings: Any) -> str:
    if rule == "fd_limit":
        return "the server is short of file descriptors"
    if rule == "max_connections":
        who = "the server"
    return f"{who} is at {rule} ({effective(getattr(settings, rule))})"


def reclaim_reason(tracked: Tracked, rule: str, settings: Any, now: float) -> str:
    """The disconnect reason of a connection closed to make room (`settings`: globals)."""
    return (f"reclaimed for a new connection: idle {now - tracked.active:.0f} s without "
            f"open files, {_why(rule, tracked.ip, settings)}")


def refusal_text(rule: str, settings: Any) -> str:
    """Why a connection was refused (logged after its address)."""
    whose = "of this address " if rule == "max_ip_connections" else ""
    return f"{_why(rule, 'this address', settings)} and every connection {whose}has open files"


FD_HEADROOM_MIN, FD_HEADROOM_MAX = 8, 64


def fd_ceiling() -> int | None:
    """How many descriptors may be in use once a new connection is taken: RLIMIT_NOFILE's
    soft limit less a headroom (1/16 of it, 8 to 64) kept for the files, directory handles
    and sendfile duplicates of the connections already served. None when the limit is
    unknown or unlimited. (Read at each round of accepts: the limit may be changed from
    outside, prlimit.)"""
    if _resource is None:
        return None
    try:
        soft = _resource.getrlimit(_resource.RLIMIT_NOFILE)[0]
    except (OSError, ValueError):
        return None
    if soft == _resource.RLIM_INFINITY:
        return None
    return soft - max(FD_HEADROOM_MIN, min(FD_HEADROOM_MAX, soft // 16))


class SpareFd:
    """One descriptor (/dev/null) held in reserve: at the process's fd limit the loop
    releases it to accept, and close at once, the connections it cannot serve, so their
    clients see a clean close instead of waiting in the backlog; then takes it back."""

    __slots__ = ("fd",)

    def __init__(self) -> None:
        self.fd = -1
        self.restore()

    def restore(self) -> bool:
        if self.fd < 0:
            try:
                self.fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                return False
        return True

    def release(self) -> bool:
        """Free the spare descriptor; False if there was none to free."""
        if self.fd < 0:
            return False
        try:
            os.close(self.fd)
        except OSError:
            pass
        self.fd = -1
        return True

    close = release


def fd_tight(ceiling: int | None, fileno: int, estimate: int) -> bool:
    """Whether a new connection with descriptor `fileno` leaves less than the headroom.
    In use: at least fileno + 1 (descriptors are allocated lowest first, so all below it
    are taken), and about `estimate` (the loop's count: descriptors at start, connections,
    opens, this one) when holes below make fileno say less."""
    return ceiling is not None and max(fileno + 1, estimate) > ceiling


def open_fd_count() -> int:
    """Descriptors open now (at start: stdio, log, poller, listeners, the spare...)."""
    try:
        return len(os.listdir("/proc/self/fd")) - 1  # (less the one listdir used)
    except OSError:
        return 16


def raise_fd_limit() -> tuple[int, int] | None:
    """Raise RLIMIT_NOFILE's soft limit to the hard one (procd gives nofile=16384; a shell
    often 1024 soft). Returns (before, after), or None when nothing changed."""
    resource = _resource
    if resource is None:
        return None
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return None
    infinity = resource.RLIM_INFINITY
    if soft == infinity:
        return None
    target = hard
    if hard == infinity:
        target = _nr_open()
    if target <= soft:
        return None
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (OSError, ValueError) as exc:
        log.debug("cannot raise the open files limit from %d to %d: %s", soft, target, exc)
        return None
    log.debug("open files limit raised from %d to %d", soft, target)
    return soft, target


def _nr_open() -> int:
    """The kernel's ceiling for RLIMIT_NOFILE (an unlimited hard limit cannot be set)."""
    try:
        with open("/proc/sys/fs/nr_open", encoding="ascii") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1 << 20

"""Connection timers: one sweep a second over the connections, nothing per request.

- `logon_timeout` (seconds, default 20): a connection without a valid session that long is
  closed: one that never completed NEGOTIATE and SESSION_SETUP, or whose last session
  logged off that long ago.
- `frame_timeout` (seconds, default 30): a frame (Direct TCP length and its bytes) that
  started arriving and is still not whole that long after is the connection's end (a peer
  trickling bytes holds a buffer and a connection slot).
- the same `frame_timeout` for answers: a connection with unsent output of which not one
  byte was taken by its socket that long is closed (a peer that stops reading holds up to
  MAX_PENDING_OUTPUT of the process's I/O budget, io_budget.py; a slow reader moves on).
- `deadtime` (minutes, default 0 = off; ksmbd.conf's name and meaning): a connection with
  no open files that sent no request that long is closed (clients reconnect on their own).

Each sweep looks at every connection once: whether Connection.bytes_in moved since the
last sweep (a frame came: the connection is active, and a partial frame seen now is a new
one), whether the loop holds part of a frame for it, and, only when a timer could expire,
its sessions and trees. Times are therefore exact to a sweep (one second): a timer never
fires early, and at most a sweep late. A 0 turns a timer off.
"""

from __future__ import annotations

from typing import Any, Callable

from .conn_limits import ConnTable, Tracked, has_open_files, has_valid_session

SWEEP_INTERVAL = 1.0  # seconds between sweeps (only while there are connections)
MINUTE = 60.0  # the unit of deadtime (ksmbd.conf: minutes); tests shorten it


def expired(table: ConnTable, now: float, settings: Any,
            mid_frame: Callable[[Any], bool],
            sent: Callable[[Any], int | None] = lambda client: None,
            ) -> list[tuple[Tracked, str, str]]:
    """Connections whose time is up: (tracked, kind, reason) with kind in
    conn_limits.TIMEOUT_KINDS. `settings` has logon_timeout, frame_timeout (seconds) and
    deadtime (minutes); `mid_frame(client)` says whether part of a frame is held;
    `sent(client)` is None without unsent output, else a count that grows as it is sent."""
    logon = settings.logon_timeout
    frame = settings.frame_timeout
    dead = settings.deadtime * MINUTE
    out: list[tuple[Tracked, str, str]] = []
    for tracked in table.entries.values():
        received = tracked.refresh(now)
        conn = tracked.conn
        if mid_frame(tracked.client):
            if tracked.mid_frame_since is None or received:
                tracked.mid_frame_since = now  # (a frame completed since: this is another)
            elif frame and now - tracked.mid_frame_since >= frame:
                out.append((tracked, "frame", f"frame not complete after {frame} s"))
                continue
        else:
            tracked.mid_frame_since = None
        progress = sent(tracked.client)
        if progress is None:
            tracked.unsent_since = None
        elif tracked.unsent_since is None or progress != tracked.seen_sent:
            tracked.unsent_since = now
            tracked.seen_sent = progress
        elif frame and now - tracked.unsent_since >= frame:
            out.append((tracked, "send", f"answers not read for {frame} s"))
            continue
        if has_valid_session(conn):
            tracked.no_session_since = None
        elif tracked.no_session_since is None:
            tracked.no_session_since = now
        elif logon and now - tracked.no_session_since >= logon:
            out.append((tracked, "logon", f"no logon within {logon} s"))
            continue
        if dead and now - tracked.active >= dead and not has_open_files(conn):
            out.append((tracked, "deadtime",
                        f"idle {settings.deadtime} min without open files (deadtime)"))
    return out

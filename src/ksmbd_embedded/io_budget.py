"""What a connection may hold in I/O buffers (issue 11: memory bounded under volume).

The loop (loop.py) and the protocol core (connection.py) ask here before memory is committed,
not after:

- **Frames before logon.** Until a SESSION_SETUP has succeeded on a connection, a frame may
  be no larger than what NEGOTIATE and SESSION_SETUP can need: a SESSION_SETUP's security
  buffer has a 16-bit length, so 64 KiB of token plus its headers; `PRE_LOGON_MAX_FRAME` adds
  some margin. A larger one closes the connection (one log line).
- **Bytes not arrived cost nothing.** A frame announced by its 4-byte length gets a buffer of
  its own only once the loop's 64 KiB scratch buffer is full of it (more is coming); before,
  the connection keeps just the bytes that came.
- **Output before it is produced.** A connection with `MAX_PENDING_OUTPUT` unsent (or
  `MAX_QUEUED_RANGES` READ payloads waiting for sendfile, each holding a duplicated file
  descriptor) has its next frame held until the output drains: the loop stops reading it,
  TCP flow control holds the rest in the kernel. A compound's answers go out in parts of about
  `COMPOUND_PART` bytes (MS-SMB2 3.3.4.1.3: compounding responses is a MAY); when the parts
  fill the output the compound waits (`Connection.suspended`) and goes on as it drains.
- **The pool inside the budget.** Up to 4 large receive buffers are kept for reuse while
  the server is busy (freed after 2 s idle); they count in the budget (`Loop.pool_bytes`):
  one is pooled only while the budget has room for it, and pooled ones are freed first
  when buffers in use grow into their share.

Not counted: the transient copies of the one answer being built (a compound's part of
about `COMPOUND_PART`, a signed or encrypted answer and its ciphertext while it is
encrypted): at most one answer's worth at a time, since the loop is single-threaded.
"""

from __future__ import annotations

from typing import Any

from .session import VALID

KIB = 1024
MIB = 1024 * KIB
SCRATCH_SIZE = 64 * KIB  # the loop's shared receive buffer
# A SESSION_SETUP: 64-byte header, 24-byte body, a token of at most 65,535 bytes; NEGOTIATE
# is far smaller. 4 KiB of margin over 64 KiB.
PRE_LOGON_MAX_FRAME = 68 * KIB
MAX_PENDING_OUTPUT = 8 * MIB  # unsent bytes per connection before its next frame waits
MAX_QUEUED_RANGES = 16  # READ payloads queued for sendfile per connection (one fd each)
COMPOUND_PART = 1 * MIB  # a compound's answers are sent once this much has been built


def logged_on(conn: Any) -> bool:
    """Whether a SESSION_SETUP has succeeded on the connection (a session of it is valid)."""
    for session in conn.sessions.values():
        if session.state == VALID:
            return True
    return False


def frame_refused(conn: Any, length: int, limit: int) -> str | None:
    """Why a frame announcing `length` bytes closes the connection, or None. Only frames
    above PRE_LOGON_MAX_FRAME are looked at (the common path pays one comparison)."""
    if length > limit:
        return f"frame of {length} bytes exceeds the limit {limit}"
    if not logged_on(conn):
        return (f"frame of {length} bytes before logon (at most {PRE_LOGON_MAX_FRAME} until "
                f"a SESSION_SETUP succeeds)")
    return None


def output_full(conn: Any) -> bool:
    """Whether the connection's unsent output (queued in the loop, and built but not yet
    queued) has reached MAX_PENDING_OUTPUT, or the process's I/O budget is spent while some
    of it is unsent: a compound stops there until it drains."""
    built = 0
    for buf in conn.outbox:
        built += len(buf)
    transport = conn.transport
    queued = built + (transport.out_bytes if transport is not None else 0)
    if queued >= MAX_PENDING_OUTPUT:
        return True
    # The process's budget (the loop's io_used/io_limit): spent, a connection goes on only
    # while it has nothing unsent of its own.
    loop = getattr(conn.server, "loop", None)
    return bool(queued) and loop is not None and loop.io_used + built >= loop.io_limit


def counters(loop: Any, limit: int) -> dict[str, int]:
    """For ubus `status`: the I/O budget (`limit` when there is no loop), what is in use
    (`used`, idle pooled receive buffers included; `pooled` of them), and how many
    connections wait unread (for their own output or for the budget)."""
    if loop is None or not hasattr(loop, "io_used"):
        return {"limit": limit, "used": 0, "pooled": 0, "held": 0}
    return {"limit": loop.io_limit, "used": loop.io_used + loop.pool_bytes,
            "pooled": loop.pool_bytes,
            "held": sum(1 for c in loop.clients.values() if c.held)}

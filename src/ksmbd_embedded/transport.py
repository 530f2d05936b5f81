"""`_Client`: the socket-side state of one connection (`Connection.transport`), shared by
the loop's modules (loop.py, listeners.py, write_splice.py)."""

from __future__ import annotations

import socket

from .connection import Connection
from .poller import READ


def _mid_frame(client: _Client) -> bool:
    """Whether part of a frame is held for the client (receive path state: `pending`, or a
    large frame's buffer) while it is being read; the sweep times frames with it
    (conn_timeouts.py). Not while frames are held or reading is paused for unsent output:
    that wait is ours, not the client's."""
    return (client.frame is not None or bool(client.pending) or client.splice is not None) \
        and not client.held and bool(client.events & READ)


def _sent_so_far(client: _Client) -> int | None:
    """None when nothing is queued for the client, else how many bytes were sent on the
    slow paths (what the sweep watches for a peer that stopped reading, conn_timeouts.py)."""
    return client.sent if client.out_bytes else None


class _Client:
    """Socket-side state of one connection: the bytes of a frame not complete yet, and
    unsent output. Idle, it holds no buffer (the loop's scratch buffer is shared)."""

    __slots__ = ("sock", "conn", "pending", "frame", "frame_view", "got",
                 "out", "out_bytes", "ranges", "fileno", "events", "held", "splice",
                 "splice_left", "sent")

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
        # Frames (whole ones, in `pending`) or a compound (conn.suspended) wait for the
        # output to drain (io_budget.py): the socket is not read meanwhile.
        self.held = False
        # A WRITE payload going from the socket to the file (read_write.SpliceWrite), and
        # how many of its bytes have not arrived yet.
        self.splice = None
        self.splice_left = 0
        self.sent = 0  # bytes sent when not all of the output went at once

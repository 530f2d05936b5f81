"""Requests that finish later (MS-SMB2 3.3.4.2 interim responses, 3.3.5.16 CANCEL).

A handler that must wait (a blocking byte-range lock, a change notification) calls
`req.go_async(on_cancel)` and returns (STATUS_PENDING, None). The connection then sends the
interim response (STATUS_PENDING, SMB2_FLAGS_ASYNC_COMMAND, the new AsyncId). Whoever later
finishes the work calls `work.complete(status, body)`; the final response goes out with the same
AsyncId and MessageId, signed and encrypted as the original request required. CANCEL, a LOGOFF,
a TREE_DISCONNECT, a CLOSE of the handle or the connection going away ends it through
`cancel()`, which runs the handler's clean-up and answers STATUS_CANCELLED (except when the
connection is gone, where nothing can be sent).
"""

from __future__ import annotations

from typing import Any, Callable


class AsyncWork:
    __slots__ = ("conn", "async_id", "msg_id", "command", "session", "tree", "encrypted",
                 "signed", "on_cancel", "done", "open")

    def __init__(self, conn: Any, async_id: int, msg_id: int, command: int, session: Any,
                 tree: Any, encrypted: bool, on_cancel: Callable[[], None] | None) -> None:
        self.conn = conn
        self.async_id = async_id
        self.msg_id = msg_id
        self.command = command
        self.session = session
        self.tree = tree
        self.encrypted = encrypted
        self.signed = False  # the request was signed: so is the final response
        self.on_cancel = on_cancel
        self.done = False
        self.open: Any = None  # the Open it waits on, if any (CLOSE cancels it)

    def complete(self, status: int, body: Any) -> None:
        """Send the final response (once); later calls are ignored."""
        if self.done:
            return
        self.done = True
        self.conn.complete_async(self, status, body)

    def cancel(self, send: bool = True) -> None:
        """Stop waiting: the handler cleans up, and the client gets STATUS_CANCELLED."""
        if self.done:
            return
        if self.on_cancel is not None:
            self.on_cancel()
        if send:
            from .header import ERROR_BODY
            from .status import STATUS_CANCELLED
            self.complete(STATUS_CANCELLED, ERROR_BODY)
        else:
            self.done = True
            self.conn.async_ops.pop(self.async_id, None)

"""What a handler gets for one SMB2 request of a (possibly compound) message."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .header import FILE_ID_ANY, HEADER_SIZE
from .status import (
    STATUS_FILE_CLOSED, STATUS_INVALID_HANDLE, STATUS_INVALID_PARAMETER, SmbError,
)

if TYPE_CHECKING:
    from .opens import Open
    from .session import Session
    from .tree import TreeConnect


class Request:
    """One request: its bytes, the header fields handlers need, and the resolved state.

    `view` is the request from its header to the end of its part of the message, so offsets
    on the wire (which count from the header) index it directly.
    """

    __slots__ = ("conn", "server", "command", "msg_id", "flags", "credit_charge", "view",
                 "session", "tree", "related", "encrypted", "sign_response", "chain",
                 "async_id", "process_id", "on_response", "async_work")

    def __init__(self, conn: Any, command: int, msg_id: int, flags: int, credit_charge: int,
                 view: memoryview, chain: Any) -> None:
        self.conn = conn
        self.server = conn.server
        self.command = command
        self.msg_id = msg_id
        self.flags = flags
        self.credit_charge = credit_charge
        self.view = view
        self.session: Session | None = None
        self.tree: TreeConnect | None = None
        self.related = False
        self.encrypted = False
        self.sign_response = False
        self.chain = chain  # the compound state shared by all requests of one message
        self.async_id = 0
        self.process_id = 0
        self.on_response: Any = None  # called with the finished response before signing
        self.async_work: Any = None  # set by go_async()

    @property
    def body_len(self) -> int:
        return len(self.view) - HEADER_SIZE

    def data(self, offset: int, length: int) -> memoryview:
        """The `length` bytes at wire `offset` of this request, checked against the message."""
        if length == 0:
            return self.view[0:0]
        if offset < HEADER_SIZE or offset + length > len(self.view):
            raise SmbError(STATUS_INVALID_PARAMETER)
        return self.view[offset:offset + length]

    def open_for(self, persistent_id: int, volatile_id: int) -> Open:
        """Resolve a FileId (MS-SMB2 3.3.5.2.7.2: all-ones in a related compound = previous;
        STATUS_INVALID_HANDLE when nothing before it in the chain carried or generated one,
        STATUS_FILE_CLOSED when that FileId is closed or did not resolve)."""
        if persistent_id == FILE_ID_ANY and volatile_id == FILE_ID_ANY and self.related:
            op = self.chain.open
            if op is None:
                if not self.chain.has_file_id:
                    self.chain.file_error = STATUS_INVALID_HANDLE  # "and all subsequent"
                    raise SmbError(STATUS_INVALID_HANDLE)
                raise SmbError(STATUS_FILE_CLOSED)
            return op
        op = self.server.opens.get(volatile_id)
        if op is None or op.persistent_id != persistent_id or op.session is not self.session \
                or (self.tree is not None and op.tree is not self.tree):
            raise SmbError(STATUS_FILE_CLOSED)
        self.chain.open = op
        self.chain.has_file_id = True
        return op

    def go_async(self, on_cancel=None):
        """Finish this request later: returns the AsyncWork to complete; the handler then
        returns (STATUS_PENDING, None) and the client gets an interim response."""
        work = self.conn.new_async(self, on_cancel)
        self.async_work = work
        return work

    def set_open(self, op: Open) -> None:
        """Make `op` the FileId later related requests of this compound refer to."""
        self.chain.open = op
        self.chain.has_file_id = True

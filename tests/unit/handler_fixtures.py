"""Hand-built server state for calling one handler directly: no sockets, no NEGOTIATE.

`HandlerEnv` holds a stand-in server and connection (only the attributes handlers read), a real
`Session`, `TreeConnect` and `OpenTable`, and builds `Request`s from a body packed by the test.
"""

from __future__ import annotations

import os
import struct

from ksmbd_embedded.file_range import FileRange

from ksmbd_embedded import header as h
from ksmbd_embedded.config import ShareConfig
from ksmbd_embedded.connection import Chain
from ksmbd_embedded.opens import Open, OpenTable
from ksmbd_embedded.request import Request
from ksmbd_embedded.session import VALID, Session
from ksmbd_embedded.status import SmbError
from ksmbd_embedded.tree import TreeConnect

MIB = 1024 * 1024


def make_share(path: str, **overrides) -> ShareConfig:
    """A writable share at `path`, dot files shown, nothing vetoed, unless overridden."""
    fields = dict(name="share", path=path, read_only=False, hide_dot_files=False, veto_files=())
    fields.update(overrides)
    return ShareConfig(**fields)


class FakeServer:
    def __init__(self) -> None:
        self.opens = OpenTable()
        self.bytes_read = 0
        self.bytes_written = 0

    def now(self) -> float:
        return 0.0


class FakeConnection:
    """What handlers read from a Connection after NEGOTIATE."""

    def __init__(self, server: FakeServer, dialect: int = h.SMB3_11) -> None:
        self.server = server
        self.dialect = dialect
        self.server_capabilities = h.CAP_LARGE_MTU if dialect >= h.SMB2_10 else 0
        self.max_read = 8 * MIB
        self.max_write = 8 * MIB
        self.max_trans = 8 * MIB
        self.negotiated = True


class HandlerEnv:
    def __init__(self, root: str, dialect: int = h.SMB3_11, writable: bool = True,
                 **share_fields) -> None:
        self.root = os.path.realpath(root)
        self.server = FakeServer()
        self.conn = FakeConnection(self.server, dialect)
        self.session = Session(0x1001, self.conn, 0.0)
        self.session.state = VALID
        self.share = make_share(self.root, **share_fields)
        self.tree = TreeConnect(1, self.session, self.share, writable, False, self.root)
        self.session.add_tree(self.tree)
        self._msg_id = 0

    def open(self, name: str, access: int, create_options: int = 0,
             flags: int = os.O_RDWR | os.O_CREAT) -> Open:
        """An Open as CREATE would make it; `name` is share-relative ("" = the root)."""
        path = os.path.join(self.root, name) if name else self.root
        is_dir = os.path.isdir(path)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY if is_dir else flags, 0o644)
        op = Open(self.session, self.tree, fd, path, name, is_dir, access, 7, create_options)
        st = os.fstat(fd)
        op.file_key = (st.st_dev, st.st_ino)
        self.server.opens.add(op)
        return op

    def close(self, op: Open) -> None:
        self.server.opens.remove(op)

    def request(self, command: int, body: bytes, credit_charge: int = 1,
                related: bool = False) -> Request:
        self._msg_id += 1
        flags = h.FLAGS_RELATED_OPERATIONS if related else 0
        hdr = bytearray(h.HEADER_SIZE)
        h.HEADER.pack_into(hdr, 0, h.SMB2_MAGIC, 64, credit_charge, 0, command, 1, flags, 0,
                           self._msg_id, self.tree.tree_id << 32, self.session.session_id)
        view = memoryview(bytes(hdr) + body)
        req = Request(self.conn, command, self._msg_id, flags, credit_charge, view, Chain())
        req.session = self.session
        req.tree = self.tree
        req.related = related
        return req


def call(handler, req: Request):
    """Run a handler; (status, body) where body is bytes (list parts joined), or
    (status, None) for an SmbError."""
    try:
        status, body = handler(req)
    except SmbError as exc:
        return exc.status, None
    if isinstance(body, (list, tuple)):
        # A READ payload may still be on disk (FileRange): read it as the connection would.
        body = b"".join(p.read() if isinstance(p, FileRange) else bytes(p) for p in body)
    return status, bytes(body)


def u16(buf, off: int) -> int:
    return struct.unpack_from("<H", buf, off)[0]


def u32(buf, off: int) -> int:
    return struct.unpack_from("<I", buf, off)[0]


__all__ = ["HandlerEnv", "MIB", "call", "make_share", "u16", "u32"]

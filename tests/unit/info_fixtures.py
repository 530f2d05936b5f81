"""Hand-built server state and hand-packed requests for QUERY_INFO, SET_INFO and IOCTL tests.

`Env` is a real ServerState / Connection / Session / TreeConnect over a tmp directory (the
share root); `Env.open()` makes a real Open with a real descriptor, as CREATE would; the
`*_body` helpers pack request bodies field by field; `Env.call()` runs a handler the way the
dispatcher does and returns (status, response body bytes).
"""

from __future__ import annotations

import os
import stat
import struct
import time
from pathlib import Path

from ksmbd_embedded import header as h
from ksmbd_embedded.config import GlobalConfig, ServerConfig, ShareConfig
from ksmbd_embedded.connection import Chain, Connection
from ksmbd_embedded.opens import Open
from ksmbd_embedded.pwddb import PasswordDb
from ksmbd_embedded.request import Request
from ksmbd_embedded.server import ServerState
from ksmbd_embedded.session import VALID, Session
from ksmbd_embedded.status import SmbError
from ksmbd_embedded.tree import FILE_ALL_ACCESS, TreeConnect

ALL_ONES = 0xFFFFFFFFFFFFFFFF
CLIENT_GUID = bytes(range(16))
CLIENT_DIALECTS = (h.SMB2_02, h.SMB2_10, h.SMB3_00, h.SMB3_02, h.SMB3_11)

_QUERY = struct.Struct("<HBBIHHIIIQQ")  # 2.2.37
_SET = struct.Struct("<HBBIHHIQQ")  # 2.2.39
_IOCTL = struct.Struct("<HHIQQIIIIIIII")  # 2.2.31


class Env:
    """One share ("share" at `root`), one connection, session and tree."""

    def __init__(self, root: Path, *, dialect: int = h.SMB3_11, writable: bool = True,
                 hide_dot: bool = True, veto: tuple[str, ...] = ()) -> None:
        self.root = root
        share = ShareConfig(name="share", path=str(root), read_only=not writable,
                            hide_dot_files=hide_dot, veto_files=veto)
        config = ServerConfig(globals=GlobalConfig(smb2_max_trans=1 << 20), shares=(share,),
                              mem_total_kb=1 << 20)
        self.server = ServerState(config, PasswordDb())
        conn = Connection(self.server, "test", time.monotonic())
        conn.dialect = dialect
        conn.negotiated = True
        conn.client_guid = CLIENT_GUID
        conn.client_capabilities = 0x7F
        conn.client_security_mode = h.NEGOTIATE_SIGNING_ENABLED
        conn.client_dialects = CLIENT_DIALECTS
        conn.server_capabilities = h.CAP_LARGE_MTU | h.CAP_LEASING
        self.conn = conn
        session = Session(0x1234, conn, time.monotonic())
        session.state = VALID
        conn.sessions[session.session_id] = session
        self.session = session
        tree = TreeConnect(1, session, share, writable, False, os.path.realpath(root))
        session.add_tree(tree)
        self.tree = tree

    # -- opens ------------------------------------------------------------------------------

    def open(self, name: str, access: int = FILE_ALL_ACCESS, share_access: int = 7) -> Open:
        """An Open of an existing share-relative name ("" = root), as CREATE would make it."""
        path = os.path.join(self.tree.root, *name.split("\\")) if name else self.tree.root
        st = os.stat(path)
        is_dir = stat.S_ISDIR(st.st_mode)
        if is_dir:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        else:
            fd = os.open(path, os.O_RDWR if self.tree.writable else os.O_RDONLY)
        op = Open(self.session, self.tree, fd, path, name, is_dir, access, share_access, 0)
        op.file_key = (st.st_dev, st.st_ino)
        self.server.opens.add(op)
        return op

    def close_all(self) -> None:
        for op in list(self.server.opens.by_id.values()):
            self.server.opens.remove(op)

    # -- requests -------------------------------------------------------------------------------

    def request(self, command: int, body: bytes, *, credit_charge: int = 1,
                related: bool = False, chain: Chain | None = None) -> Request:
        flags = h.FLAGS_RELATED_OPERATIONS if related else 0
        hdr = h.HEADER.pack(h.SMB2_MAGIC, 64, credit_charge, 0, command, 1, flags, 0, 7,
                            self.tree.tree_id << 32, self.session.session_id) + bytes(16)
        req = Request(self.conn, command, 7, flags, credit_charge, memoryview(hdr + body),
                      chain or Chain())
        req.related = related
        req.session = self.session
        req.tree = self.tree
        return req

    def call(self, handler, command: int, body: bytes, **kw) -> tuple[int, bytes]:
        """Run `handler` like the dispatcher: (status, body) or the raised SmbError's status."""
        req = self.request(command, body, **kw)
        try:
            status, out = handler(req)
        except SmbError as exc:
            return exc.status, b""
        if isinstance(out, (list, tuple)):
            out = b"".join(bytes(p) for p in out)
        return status, bytes(out)


def fid(op: Open | None) -> tuple[int, int]:
    if op is None:
        return ALL_ONES, ALL_ONES
    return op.persistent_id, op.volatile_id


def query_body(info_type: int, info_class: int, op: Open | None, out_len: int = 65536,
               additional: int = 0, flags: int = 0, input_data: bytes = b"") -> bytes:
    p, v = fid(op)
    in_off = 64 + 40 if input_data else 0
    body = _QUERY.pack(41, info_type, info_class, out_len, in_off, 0, len(input_data),
                       additional, flags, p, v)
    return body + (input_data or b"\x00")


def set_body(info_type: int, info_class: int, op: Open | None, buffer: bytes,
             additional: int = 0, buf_off: int | None = None,
             buf_len: int | None = None) -> bytes:
    p, v = fid(op)
    body = _SET.pack(33, info_type, info_class,
                     len(buffer) if buf_len is None else buf_len,
                     64 + 32 if buf_off is None else buf_off, 0, additional, p, v)
    return body + (buffer or b"\x00")


def ioctl_body(ctl_code: int, op: Open | None, input_data: bytes = b"", *,
               max_out: int = 65536, max_in: int = 0, flags: int = 1,
               file_id: tuple[int, int] | None = None) -> bytes:
    p, v = fid(op) if file_id is None else file_id
    in_off = 64 + 56 if input_data else 0
    body = _IOCTL.pack(57, 0, ctl_code, p, v, in_off, len(input_data), max_in, 0, 0, max_out,
                       flags, 0)
    return body + (input_data or b"\x00")


def rename_buffer(name: str, replace: bool = False, root_dir: int = 0) -> bytes:
    """FILE_RENAME_INFORMATION_TYPE_2 (MS-FSCC 2.4.42.2); also FILE_LINK_INFORMATION."""
    nb = name.encode("utf-16-le")
    return struct.pack("<B7xQI", 1 if replace else 0, root_dir, len(nb)) + nb


def basic_buffer(ctime: int = 0, atime: int = 0, mtime: int = 0, chtime: int = 0,
                 attrs: int = 0) -> bytes:
    return struct.pack("<qqqqI4x", ctime, atime, mtime, chtime, attrs)


def unix_to_filetime(seconds: float) -> int:
    return int(seconds * 10_000_000) + 116444736000000000

"""TREE_CONNECT and TREE_DISCONNECT (MS-SMB2 2.2.9-2.2.12, 3.3.5.7, 3.3.5.8)."""

from __future__ import annotations

import logging
import struct
from typing import TYPE_CHECKING

from .. import header as h
from .. import host_access
from ..status import (
    STATUS_ACCESS_DENIED, STATUS_BAD_NETWORK_NAME, STATUS_INVALID_PARAMETER, STATUS_SUCCESS,
    SmbError,
)
from ..tree import (
    SHARE_TYPE_DISK, SHARE_TYPE_PIPE, SHAREFLAG_ENCRYPT_DATA, SHAREFLAG_NO_CACHING, TreeConnect,
)

if TYPE_CHECKING:
    from ..config import ShareConfig
    from ..request import Request
    from ..session import Session

log = logging.getLogger("ksmbd.tree")

_REQUEST = struct.Struct("<HHHH")  # StructureSize, Flags, PathOffset, PathLength
_RESPONSE = struct.Struct("<HBBIII")  # StructureSize, ShareType, Reserved, ShareFlags, Caps, MaxAccess
_DISCONNECT_RESPONSE = b"\x04\x00\x00\x00"
MAX_TREES_PER_SESSION = 1024


def share_name_from_path(path: str) -> str:
    r"""The share of a UNC path "\\server\share" (the server part is not checked)."""
    if not path.startswith("\\\\"):
        raise SmbError(STATUS_BAD_NETWORK_NAME)
    parts = path[2:].split("\\")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise SmbError(STATUS_BAD_NETWORK_NAME)
    return parts[1]


def share_access(share: ShareConfig, session: Session) -> bool | None:
    """None if the session may not use the share, else whether it may write.

    Rules of ksmbd.conf(5)/smb.conf: guests and anonymous users only on `guest ok` shares;
    a non-empty `users` (valid users) list admits only those users, and that keeps guests
    out too, `guest ok` or not (as Samba's `valid users`: a guest is the guest account,
    admitted only where the list names it; anonymous never); `read list` forces read-only
    and `write list` grants write on a read-only share.
    """
    user = session.user.lower()
    listed = {u.lower() for u in share.users}
    if listed and user not in listed:
        return None
    if session.is_guest or session.is_anonymous:
        return share.writable if share.guest_ok else None
    if user in {u.lower() for u in share.read_list}:
        return False
    if user in {u.lower() for u in share.write_list}:
        return True
    return share.writable


def handle_tree_connect(req: Request):
    session = req.session
    server = req.server
    _, flags, path_off, path_len = _REQUEST.unpack_from(req.view, h.HEADER_SIZE)
    if path_len % 2:
        raise SmbError(STATUS_INVALID_PARAMETER)
    try:
        path = bytes(req.data(path_off, path_len)).decode("utf-16-le")
    except UnicodeDecodeError:
        raise SmbError(STATUS_BAD_NETWORK_NAME) from None
    name = share_name_from_path(path)
    if len(session.trees) >= MAX_TREES_PER_SESSION:
        raise SmbError(STATUS_ACCESS_DENIED)
    g = server.config.globals

    # hosts allow / hosts deny first: the globals (again, as a reload may have changed them)
    # and the share's own lists; host_access counts and logs (throttled) a refusal.
    if name.upper() == "IPC$":
        if host_access.tree_refusal(server, None, req.conn.peer):
            raise SmbError(STATUS_ACCESS_DENIED)
        share = None
        writable = True
        encrypt = False
        root = ""
    else:
        share = server.config.share(name)
        if share is None:
            log.info("%s: tree connect to unknown share %r", req.conn.peer, name)
            raise SmbError(STATUS_BAD_NETWORK_NAME)
        if host_access.tree_refusal(server, share, req.conn.peer):
            raise SmbError(STATUS_ACCESS_DENIED)
        writable = share_access(share, session)
        if writable is None:
            log.info("%s: %s refused on share %r", req.conn.peer,
                     session.user or "anonymous", share.name)
            raise SmbError(STATUS_ACCESS_DENIED)
        policy = share.smb3_encryption or g.smb3_encryption
        encrypt = policy == "mandatory" or session.encrypt_data
        if encrypt and session.encryptor is None:
            log.info("%s: share %r needs encryption the session cannot do", req.conn.peer,
                     share.name)
            raise SmbError(STATUS_ACCESS_DENIED)
        root = server.share_roots[share.name.lower()]

    tree_id = session.next_tree_id
    session.next_tree_id += 1
    tree = TreeConnect(tree_id, session, share, writable, encrypt, root)
    session.add_tree(tree)
    req.tree = tree
    if share is None:
        share_type, share_flags = SHARE_TYPE_PIPE, SHAREFLAG_NO_CACHING
    else:
        share_type, share_flags = SHARE_TYPE_DISK, 0
        if encrypt:
            share_flags |= SHAREFLAG_ENCRYPT_DATA
    log.info("%s: %s connected to %s%s", req.conn.peer, session.user or "anonymous",
             tree.share_name, "" if writable else " (read-only)")
    return STATUS_SUCCESS, _RESPONSE.pack(16, share_type, 0, share_flags, 0,
                                          tree.maximal_access)


def close_tree(server, tree: TreeConnect) -> None:
    """Close every open of a tree connect and forget it."""
    from ..fs.share_modes import close_open
    tree.closed = True  # from here on no Open can be added to it (handlers/create.py)
    # Close the opens first: a lock waiting on one of them is then granted, not cancelled.
    for op in server.opens.for_tree(tree):
        close_open(server, op)
    tree.session.connection.cancel_async(lambda work: work.tree is tree)
    tree.session.trees.pop(tree.tree_id, None)


def handle_tree_disconnect(req: Request):
    close_tree(req.server, req.tree)
    return STATUS_SUCCESS, _DISCONNECT_RESPONSE

"""srvsvc (MS-SRVS): NetrShareEnum (15, and NetrShareEnumSticky 36), NetrShareGetInfo (16),
NetrServerGetInfo (21).

Shares listed: every configured share with `browseable` set, then IPC$ (STYPE_IPC |
STYPE_SPECIAL, as Windows lists it). Hidden shares are left out of enumerations but
NetrShareGetInfo answers for them. Everything fits in one answer (no ERROR_MORE_DATA): the
share list of a router is short, and the response is fragmented by the pipe anyway.

Paths (levels 2 and 502) are shown the way Windows clients expect, a drive letter and
backslashes: /mnt/usb becomes C:\\mnt\\usb. The security descriptor of level 502 is NULL.
"""

from __future__ import annotations

import uuid
from typing import Any

from .ndr import NdrReader, NdrWriter
from .pdu import NCA_S_OP_RNG_ERROR, RpcFault

UUID = uuid.UUID("4b324fc8-1670-01d3-1278-5a47bf6ee188").bytes_le
VERSION = (3, 0)
SEC_ADDR = "\\PIPE\\srvsvc"

OP_NETR_SHARE_ENUM = 15
OP_NETR_SHARE_GET_INFO = 16
OP_NETR_SERVER_GET_INFO = 21
OP_NETR_SHARE_ENUM_STICKY = 36

# Win32 error codes (MS-ERREF 2.2)
WERR_OK = 0
WERR_INVALID_LEVEL = 124
WERR_NET_NAME_NOT_FOUND = 2310

# shi*_type (MS-SRVS 2.2.2.4)
STYPE_DISKTREE = 0x00000000
STYPE_IPC = 0x00000003
STYPE_SPECIAL = 0x80000000

# shi501/shi1005 flags: client-side caching (MS-SRVS 2.2.4.29)
CSC_CACHE_MANUAL_REINT = 0x00
CSC_CACHE_NONE = 0x30

# MS-SRVS 2.2.2.6 platform id, 2.2.2.7 server types
PLATFORM_ID_NT = 500
SV_TYPE_WORKSTATION = 0x00000001
SV_TYPE_SERVER = 0x00000002
SV_TYPE_SERVER_UNIX = 0x00000800
SV_TYPE_SERVER_NT = 0x00008000
SERVER_TYPE = SV_TYPE_WORKSTATION | SV_TYPE_SERVER | SV_TYPE_SERVER_UNIX | SV_TYPE_SERVER_NT
VERSION_MAJOR = 6
VERSION_MINOR = 1

ENUM_LEVELS = (0, 1, 2, 501, 502)
PATH_LEVELS = (2, 502)  # carry the share's path on disk: not for guests or anonymous users
WERR_ACCESS_DENIED = 5


def _may_see_paths(ctx: Any) -> bool:
    """Windows gives levels 2 and 502 to administrators only; here, to authenticated users
    (no guest or anonymous session learns where the shares live on disk)."""
    session = ctx.session
    return session is not None and not (session.is_guest or session.is_anonymous)
GET_INFO_LEVELS = (0, 1, 2, 501, 502, 1005)
SERVER_LEVELS = (100, 101, 102)


class ShareEntry:
    __slots__ = ("name", "type", "remark", "path", "flags")

    def __init__(self, name: str, type_: int, remark: str, path: str, flags: int) -> None:
        self.name = name
        self.type = type_
        self.remark = remark
        self.path = path
        self.flags = flags


def _windows_path(path: str) -> str:
    return "C:" + path.replace("/", "\\")


def _ipc_entry(server: Any) -> ShareEntry:
    description = server.config.globals.description
    return ShareEntry("IPC$", STYPE_IPC | STYPE_SPECIAL, f"IPC Service ({description})", "",
                      CSC_CACHE_NONE)


def _entry(share: Any) -> ShareEntry:
    return ShareEntry(share.name, STYPE_DISKTREE, share.comment or "",
                      _windows_path(share.path), CSC_CACHE_MANUAL_REINT)


def share_entries(server: Any) -> list[ShareEntry]:
    """What NetrShareEnum lists: browseable shares, then IPC$."""
    entries = [_entry(s) for s in server.config.shares if s.browseable]
    entries.append(_ipc_entry(server))
    return entries


def find_share(server: Any, name: str) -> ShareEntry | None:
    if name.upper() == "IPC$":
        return _ipc_entry(server)
    share = server.config.share(name)
    return None if share is None else _entry(share)


def _write_info(w: NdrWriter, level: int, s: ShareEntry) -> None:
    """One SHARE_INFO_<level> structure (MS-SRVS 2.2.4.22-2.2.4.29), pointers deferred."""
    if level == 1005:
        w.u32(s.flags)
        return
    w.unique_wstr(s.name)
    if level == 0:
        return
    w.u32(s.type)
    w.unique_wstr(s.remark)
    if level == 1:
        return
    if level == 501:
        w.u32(s.flags)
        return
    # 2 and 502
    w.u32(0)  # permissions (share-level security: ignored)
    w.u32(0xFFFFFFFF)  # max_uses: unlimited
    w.u32(0)  # current_uses
    w.unique_wstr(s.path)
    w.unique_wstr(None)  # passwd
    if level == 502:
        w.u32(0)  # reserved: length of the security descriptor
        w.pointer(False)  # security descriptor: NULL


# -- NetrShareEnum ---------------------------------------------------------------------------

def netr_share_enum(stub: bytes, ctx: Any) -> bytes:
    """MS-SRVS 3.1.4.8 (and 3.1.4.36 Sticky, same shape)."""
    r = NdrReader(stub)
    r.unique_wstr()  # ServerName
    level = r.u32()
    r.u32()  # union discriminant
    resume_present = False
    if r.pointer():
        r.u32()  # EntriesRead
        buffer = r.pointer()
    else:
        buffer = 0
    if not buffer:  # clients send an empty container; if not, the rest is not needed
        r.u32()  # PreferedMaximumLength
        if r.pointer():
            r.u32()
            resume_present = True

    w = NdrWriter()
    w.u32(level)
    w.u32(level)  # union discriminant
    if level in PATH_LEVELS and not _may_see_paths(ctx):
        w.pointer(False)
        total, status = 0, WERR_ACCESS_DENIED
    elif level in ENUM_LEVELS:
        entries = share_entries(ctx.server)
        w.pointer(True)
        w.u32(len(entries))  # EntriesRead
        if w.pointer(bool(entries)):
            w.struct_array(entries, lambda e: _write_info(w, level, e))
        total, status = len(entries), WERR_OK
    else:
        w.pointer(False)
        total, status = 0, WERR_INVALID_LEVEL
    w.u32(total)  # TotalEntries
    if w.pointer(resume_present):
        w.u32(0)  # ResumeHandle: everything was returned
    w.u32(status)
    return w.getvalue()


# -- NetrShareGetInfo ------------------------------------------------------------------------

def netr_share_get_info(stub: bytes, ctx: Any) -> bytes:
    """MS-SRVS 3.1.4.10."""
    r = NdrReader(stub)
    r.unique_wstr()  # ServerName
    net_name = r.wstr()  # [in, string] wchar_t*: a reference pointer, no referent id
    level = r.u32()
    w = NdrWriter()
    w.u32(level)  # union discriminant
    entry = find_share(ctx.server, net_name)
    if level not in GET_INFO_LEVELS:
        status = WERR_INVALID_LEVEL
    elif level in PATH_LEVELS and not _may_see_paths(ctx):
        status = WERR_ACCESS_DENIED
    elif entry is None:
        status = WERR_NET_NAME_NOT_FOUND
    else:
        status = WERR_OK
    if status == WERR_OK:
        w.top_unique(True, lambda: _write_info(w, level, entry))
    else:
        w.pointer(False)
    w.u32(status)
    return w.getvalue()


# -- NetrServerGetInfo -----------------------------------------------------------------------

def netr_server_get_info(stub: bytes, ctx: Any) -> bytes:
    """MS-SRVS 3.1.4.17: SERVER_INFO_100/101/102 (2.2.4.40-2.2.4.42)."""
    r = NdrReader(stub)
    r.unique_wstr()  # ServerName
    level = r.u32()
    g = ctx.server.config.globals
    w = NdrWriter()
    w.u32(level)
    if level not in SERVER_LEVELS:
        w.pointer(False)
        w.u32(WERR_INVALID_LEVEL)
        return w.getvalue()

    def info() -> None:
        w.u32(PLATFORM_ID_NT)
        w.unique_wstr(g.netbios_name)
        if level == 100:
            return
        w.u32(VERSION_MAJOR)
        w.u32(VERSION_MINOR)
        w.u32(SERVER_TYPE)
        w.unique_wstr(g.description)
        if level == 101:
            return
        w.u32(len(getattr(ctx.server, "sessions", ()) or ()))  # sv102_users
        w.i32(15)  # sv102_disc: idle minutes before autodisconnect
        w.u32(0)  # sv102_hidden: the server is visible
        w.u32(240)  # sv102_announce (seconds)
        w.u32(3000)  # sv102_anndelta (milliseconds)
        w.u32(0)  # sv102_licenses
        w.unique_wstr("C:\\")  # sv102_userpath

    w.top_unique(True, info)
    w.u32(WERR_OK)
    return w.getvalue()


_OPS = {
    OP_NETR_SHARE_ENUM: netr_share_enum,
    OP_NETR_SHARE_GET_INFO: netr_share_get_info,
    OP_NETR_SERVER_GET_INFO: netr_server_get_info,
    OP_NETR_SHARE_ENUM_STICKY: netr_share_enum,
}


def dispatch(opnum: int, stub: bytes, ctx: Any) -> bytes:
    op = _OPS.get(opnum)
    if op is None:
        raise RpcFault(NCA_S_OP_RNG_ERROR)
    return op(stub, ctx)

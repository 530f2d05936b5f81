"""wkssvc (MS-WKST): NetrWkstaGetInfo (opnum 0), levels 100, 101 and 102 (2.2.5.1-2.2.5.3)."""

from __future__ import annotations

import uuid
from typing import Any

from .ndr import NdrReader, NdrWriter
from .pdu import NCA_S_OP_RNG_ERROR, RpcFault

UUID = uuid.UUID("6bffd098-a112-3610-9833-46c3f87e345a").bytes_le
VERSION = (1, 0)
SEC_ADDR = "\\PIPE\\wkssvc"

OP_NETR_WKSTA_GET_INFO = 0

WERR_OK = 0
WERR_INVALID_LEVEL = 124

PLATFORM_ID_NT = 500
VERSION_MAJOR = 6
VERSION_MINOR = 1
LEVELS = (100, 101, 102)


def netr_wksta_get_info(stub: bytes, ctx: Any) -> bytes:
    """MS-WKST 3.2.4.1."""
    r = NdrReader(stub)
    r.unique_wstr()  # ServerName
    level = r.u32()
    g = ctx.server.config.globals
    w = NdrWriter()
    w.u32(level)  # union discriminant
    if level not in LEVELS:
        w.pointer(False)
        w.u32(WERR_INVALID_LEVEL)
        return w.getvalue()

    def info() -> None:
        w.u32(PLATFORM_ID_NT)
        w.unique_wstr(g.netbios_name)  # wki10x_computername
        w.unique_wstr(g.workgroup)  # wki10x_langroup
        w.u32(VERSION_MAJOR)
        w.u32(VERSION_MINOR)
        if level == 100:
            return
        w.unique_wstr("")  # wki10x_lanroot
        if level == 102:
            w.u32(len(getattr(ctx.server, "sessions", ()) or ()))  # wki102_logged_on_users

    w.top_unique(True, info)
    w.u32(WERR_OK)
    return w.getvalue()


def dispatch(opnum: int, stub: bytes, ctx: Any) -> bytes:
    if opnum == OP_NETR_WKSTA_GET_INFO:
        return netr_wksta_get_info(stub, ctx)
    raise RpcFault(NCA_S_OP_RNG_ERROR)

"""DCE/RPC over IPC$ named pipes: srvsvc and wkssvc.

pdu.py   connection-oriented PDUs (bind, alter_context, request/response, fault)
ndr.py   the NDR 2.0 subset the operations need
pipe.py  RpcPipe: the pipe object behind an IPC$ open (write/read/transceive)
srvsvc.py, wkssvc.py  the interfaces (module attributes UUID, VERSION, SEC_ADDR, dispatch)
"""

from __future__ import annotations

from types import ModuleType

from . import srvsvc, wkssvc

INTERFACES: dict[str, ModuleType] = {"srvsvc": srvsvc, "wkssvc": wkssvc}


def pipe_name(name: str) -> str | None:
    """The interface key for a CREATE name on IPC$ ("srvsvc", "\\srvsvc", "\\PIPE\\srvsvc",
    any case), or None when no pipe of that name exists."""
    key = name.replace("/", "\\").strip("\\").lower()
    if key.startswith("pipe\\"):
        key = key[5:]
    return key if key in INTERFACES else None


def interface_for(name: str) -> ModuleType | None:
    key = pipe_name(name)
    return None if key is None else INTERFACES[key]

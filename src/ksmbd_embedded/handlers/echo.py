"""ECHO and CANCEL (MS-SMB2 2.2.28-2.2.30, 3.3.5.16, 3.3.5.17)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..header import FLAGS_ASYNC_COMMAND
from ..status import STATUS_SUCCESS

if TYPE_CHECKING:
    from ..request import Request

_ECHO_RESPONSE = b"\x04\x00\x00\x00"


def handle_echo(req: Request):
    return STATUS_SUCCESS, _ECHO_RESPONSE


def handle_cancel(conn, msg_id: int, flags: int, async_id: int, session_id: int) -> None:
    """3.3.5.16: cancel a pending request; CANCEL itself never gets a response.

    An async CANCEL names the request by AsyncId; a sync one by the MessageId of a request
    that has not been answered yet. The cancelled request is answered STATUS_CANCELLED.
    """
    if flags & FLAGS_ASYNC_COMMAND:
        work = conn.async_ops.get(async_id)
    else:
        work = next((w for w in conn.async_ops.values() if w.msg_id == msg_id), None)
    if work is None:
        return
    if work.session is not None and work.session.session_id != session_id:
        return  # 3.3.5.16: only the session that sent the request may cancel it
    work.cancel()

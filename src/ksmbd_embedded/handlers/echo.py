"""ECHO and CANCEL (MS-SMB2 2.2.28-2.2.30, 3.3.5.16, 3.3.5.17)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..status import STATUS_SUCCESS

if TYPE_CHECKING:
    from ..request import Request

_ECHO_RESPONSE = b"\x04\x00\x00\x00"


def handle_echo(req: Request):
    return STATUS_SUCCESS, _ECHO_RESPONSE


def handle_cancel(conn, msg_id: int, flags: int, async_id: int, session_id: int) -> None:
    """3.3.5.16: cancel a pending request; CANCEL itself never gets a response.

    No request of this server goes asynchronous yet (blocking locks and change notify
    arrive with them), so there is never anything to cancel.
    """
    return None

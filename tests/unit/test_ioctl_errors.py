"""A failed IOCTL is the SMB2 ERROR response on the wire (MS-SMB2 3.3.4.4): 64-byte header
plus the 9-byte ERROR body, not the 49-byte IOCTL response; STATUS_BUFFER_OVERFLOW of
FSCTL_PIPE_TRANSCEIVE keeps its IOCTL response with the data."""

import struct

from test_connection import CONFIG, header, logon, send, status_of
from test_create import create_body
from test_ioctl_network_pipe import _bind

from ksmbd_embedded import header as h
from ksmbd_embedded.config import config_from_text
from ksmbd_embedded.pwddb import PasswordDb, nt_hash
from ksmbd_embedded.server import ServerState
from ksmbd_embedded.status import (
    STATUS_BUFFER_OVERFLOW, STATUS_PIPE_BUSY, STATUS_PIPE_EMPTY, STATUS_SUCCESS,
)

FSCTL_PIPE_TRANSCEIVE = 0x0011C017


def _pipe(tmp_path):
    share_dir = tmp_path / "share"
    share_dir.mkdir()
    state = ServerState(config_from_text(CONFIG.format(path=share_dir), "test.uci"),
                        PasswordDb.load(tmp_path / "db"))
    state.pwddb.set("alice", nt_hash("secret"))
    conn, sid, signer, status, msg_id = logon(state)
    assert status == STATUS_SUCCESS
    unc = "\\\\srv\\IPC$".encode("utf-16-le")
    req = header(h.TREE_CONNECT, msg_id, session_id=sid) + struct.pack("<HHHH", 9, 0, 72,
                                                                      len(unc)) + unc
    signer.sign(req)
    resp = send(conn, req)
    assert status_of(resp) == STATUS_SUCCESS
    tree_id = struct.unpack_from("<Q", resp, 32)[0] >> 32
    req = header(h.CREATE, msg_id + 1, session_id=sid, tree_id=tree_id) + \
        create_body("srvsvc", access=0x0012019F)
    signer.sign(req)
    resp = send(conn, req)
    assert status_of(resp) == STATUS_SUCCESS
    fid = struct.unpack_from("<QQ", resp, 64 + 64)
    return conn, sid, signer, tree_id, fid, msg_id + 2


def _transceive(conn, sid, signer, tree_id, fid, msg_id, data, max_out=4280):
    body = struct.pack("<HHIQQIIIIIIII", 57, 0, FSCTL_PIPE_TRANSCEIVE, *fid, 64 + 56,
                       len(data), 0, 0, 0, max_out, 1, 0) + data
    req = header(h.IOCTL, msg_id, session_id=sid, tree_id=tree_id) + body
    signer.sign(req)
    return send(conn, req)


def test_pipe_transceive_failures_are_error_responses(tmp_path):
    conn, sid, signer, tree_id, fid, msg_id = _pipe(tmp_path)
    # a response longer than MaxOutputResponse: the IOCTL response with its first bytes
    resp = _transceive(conn, sid, signer, tree_id, fid, msg_id, _bind(), max_out=20)
    assert status_of(resp) == STATUS_BUFFER_OVERFLOW
    assert struct.unpack_from("<H", resp, 64)[0] == 49 and len(resp) == 64 + 48 + 20
    # the rest still unread: another transceive is STATUS_PIPE_BUSY, as an ERROR response
    resp = _transceive(conn, sid, signer, tree_id, fid, msg_id + 1, _bind(2))
    assert status_of(resp) == STATUS_PIPE_BUSY
    assert len(resp) == 64 + 9 and resp[64:] == b"\x09" + bytes(8)
    assert signer.verify(bytearray(resp))
    conn.server.opens.get(fid[1]).pipe.read(65536)  # the rest read (as READ would)
    # two bytes are no whole PDU: nothing to read back
    resp = _transceive(conn, sid, signer, tree_id, fid, msg_id + 2, b"\x05\x00")
    assert status_of(resp) == STATUS_PIPE_EMPTY
    assert len(resp) == 64 + 9 and resp[64:] == b"\x09" + bytes(8)

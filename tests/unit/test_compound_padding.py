"""Responses of a compound are each 8-byte aligned, the last one too (MS-SMB2 3.3.4.1.3, what
Windows sends; smbtorture smb2.compound.compound-padding); a lone response is not padded."""

import struct

from test_connection import CONFIG, header, logon, send, status_of
from test_create import create_body

from ksmbd_embedded import header as h
from ksmbd_embedded.config import config_from_text
from ksmbd_embedded.crypto.signing import Signer  # noqa: F401  (signer type from logon)
from ksmbd_embedded.pwddb import PasswordDb, nt_hash
from ksmbd_embedded.server import ServerState
from ksmbd_embedded.status import STATUS_SUCCESS


def _tree(tmp_path):
    share_dir = tmp_path / "share"
    share_dir.mkdir()
    (share_dir / "hello.txt").write_text("hi")
    cfg = config_from_text(CONFIG.format(path=share_dir), "test.uci")
    db = PasswordDb.load(tmp_path / "db")
    db.set("alice", nt_hash("secret"))
    state = ServerState(cfg, db)
    conn, sid, signer, status, msg_id = logon(state)
    assert status == STATUS_SUCCESS
    unc = "\\\\srv\\share".encode("utf-16-le")
    req = header(h.TREE_CONNECT, msg_id, session_id=sid) + struct.pack("<HHHH", 9, 0, 72,
                                                                      len(unc)) + unc
    signer.sign(req)
    resp = send(conn, req)
    assert status_of(resp) == STATUS_SUCCESS
    return conn, sid, signer, msg_id + 1, struct.unpack_from("<Q", resp, 32)[0] >> 32


def test_every_response_of_a_compound_is_padded_and_signed(tmp_path):
    conn, sid, signer, msg_id, tree_id = _tree(tmp_path)
    create = bytearray(header(h.CREATE, msg_id, session_id=sid, tree_id=tree_id))
    create += create_body("hello.txt")
    create += bytes(-len(create) % 8)
    struct.pack_into("<I", create, 20, len(create))
    close = header(h.CLOSE, msg_id + 1, session_id=sid, tree_id=tree_id,
                   flags=h.FLAGS_RELATED_OPERATIONS)
    close += struct.pack("<HHIQQ", 24, 0, 0, 2**64 - 1, 2**64 - 1)
    signer.sign(create)
    signer.sign(close)
    resp = send(conn, bytes(create) + bytes(close))
    first_len = struct.unpack_from("<I", resp, 20)[0]
    assert first_len % 8 == 0
    last = resp[first_len:]
    assert struct.unpack_from("<I", last, 20)[0] == 0  # NextCommand of the last stays 0
    assert len(last) == 64 + 64  # CLOSE response (60 bytes) padded to 64
    assert status_of(last) == STATUS_SUCCESS
    assert signer.verify(bytearray(resp[:first_len])) and signer.verify(bytearray(last))


def test_a_lone_response_is_not_padded(tmp_path):
    conn, sid, signer, msg_id, tree_id = _tree(tmp_path)
    req = header(h.ECHO, msg_id, session_id=sid) + struct.pack("<HH", 4, 0)
    signer.sign(req)
    resp = send(conn, req)
    assert status_of(resp) == STATUS_SUCCESS and len(resp) == 64 + 4

"""The protocol core without sockets: Connection.receive(frame) -> framed responses."""

import logging
import random
import struct
import uuid

import pytest
import spnego

from ksmbd_embedded import header as h
from ksmbd_embedded.config import config_from_text
from ksmbd_embedded.connection import Connection
from ksmbd_embedded.crypto.kdf import derive_keys
from ksmbd_embedded.crypto.preauth import PreauthHash
from ksmbd_embedded.crypto.signing import Signer
from ksmbd_embedded.pwddb import PasswordDb, nt_hash
from ksmbd_embedded.server import ServerState
from ksmbd_embedded.status import (
    STATUS_ACCESS_DENIED, STATUS_INVALID_PARAMETER, STATUS_LOGON_FAILURE,
    STATUS_MORE_PROCESSING_REQUIRED, STATUS_NOT_SUPPORTED, STATUS_SUCCESS,
    STATUS_USER_SESSION_DELETED,
)

CONFIG = """
config globals
\toption workgroup 'TESTGROUP'

config share
\toption name 'share'
\toption path '{path}'
\toption read_only 'no'
"""


@pytest.fixture
def state(tmp_path):
    cfg = config_from_text(CONFIG.format(path=tmp_path), "test.uci")
    db = PasswordDb.load(tmp_path / "db")
    db.set("alice", nt_hash("secret"))
    return ServerState(cfg, db)


def new_conn(state):
    return Connection(state, "test:1", 0.0)


def header(command, msg_id, session_id=0, tree_id=0, flags=0, credit_charge=1, credits=64,
           next_cmd=0):
    buf = bytearray(64)
    h.HEADER.pack_into(buf, 0, h.SMB2_MAGIC, 64, credit_charge, 0, command, credits, flags,
                       next_cmd, msg_id, tree_id << 32, session_id)
    return buf


def negotiate_request(dialects=(0x0202, 0x0210, 0x0300, 0x0302, 0x0311), ciphers=(2, 1),
                      signing=(1,), preauth=True, msg_id=0):
    body = bytearray(struct.pack("<HHHHI16sIHH", 36, len(dialects), 1, 0, 0x7F,
                                 uuid.uuid4().bytes, 0, 0, 0))
    body += struct.pack(f"<{len(dialects)}H", *dialects)
    contexts = []
    if preauth:
        contexts.append((1, struct.pack("<HHH", 1, 32, 1) + bytes(32)))
    if ciphers:
        contexts.append((2, struct.pack("<H", len(ciphers)) + struct.pack(f"<{len(ciphers)}H",
                                                                          *ciphers)))
    if signing:
        contexts.append((8, struct.pack("<H", len(signing)) + struct.pack(f"<{len(signing)}H",
                                                                          *signing)))
    if 0x0311 in dialects and contexts:
        body += bytes(-(64 + len(body)) % 8)
        struct.pack_into("<IH", body, 28, 64 + len(body), len(contexts))
        for i, (ctype, data) in enumerate(contexts):
            if i:
                body += bytes(-(64 + len(body)) % 8)
            body += struct.pack("<HHI", ctype, len(data), 0) + data
    return header(h.NEGOTIATE, msg_id, credit_charge=0) + body


def send(conn, message):
    conn.outbox.clear()
    conn.receive(memoryview(bytes(message)))
    if not conn.outbox:
        return None
    frames = b"".join(bytes(b) for b in conn.outbox)
    length = struct.unpack(">I", frames[:4])[0]
    assert len(frames) == 4 + length
    return frames[4:]


def status_of(resp):
    return struct.unpack_from("<I", resp, 8)[0]


def test_negotiate_311_picks_client_preferences(state):
    conn = new_conn(state)
    resp = send(conn, negotiate_request(ciphers=(4, 2), signing=(2, 1)))
    assert status_of(resp) == STATUS_SUCCESS
    (size, mode, dialect, ctx_count) = struct.unpack_from("<HHHH", resp, 64)
    assert (size, dialect, ctx_count) == (65, 0x0311, 3)
    assert mode & h.NEGOTIATE_SIGNING_ENABLED
    assert conn.cipher_id == 4 and conn.signing_algorithm == 2
    sec_off, sec_len, ctx_off = struct.unpack_from("<HHI", resp, 64 + 56)
    assert b"\x2b\x06\x01\x05\x05\x02" in resp[sec_off:sec_off + sec_len]  # SPNEGO OID
    assert ctx_off % 8 == 0
    assert struct.unpack_from("<HH", resp, ctx_off)[0] == 1  # preauth context first


def test_negotiate_no_common_dialect(state):
    resp = send(new_conn(state), negotiate_request(dialects=(0x0400,)))
    assert status_of(resp) == STATUS_NOT_SUPPORTED


def test_negotiate_below_configured_minimum_refused(tmp_path):
    text = CONFIG.replace("'TESTGROUP'\n", "'TESTGROUP'\n\toption server_min_protocol 'SMB2_10'\n")
    state = ServerState(config_from_text(text.format(path=tmp_path), "test.uci"),
                        PasswordDb.load(tmp_path / "db"))
    resp = send(new_conn(state), negotiate_request(dialects=(0x0202,)))
    assert status_of(resp) == STATUS_NOT_SUPPORTED


def test_negotiate_311_without_preauth_context(state):
    resp = send(new_conn(state), negotiate_request(dialects=(0x0311,), preauth=False))
    assert status_of(resp) == STATUS_INVALID_PARAMETER


def test_negotiate_malformed_context_list(state):
    msg = negotiate_request(dialects=(0x0311,))
    struct.pack_into("<H", msg, 64 + 32, 9)  # claims 9 contexts
    resp = send(new_conn(state), msg)
    assert status_of(resp) == STATUS_INVALID_PARAMETER


def test_second_negotiate_disconnects(state):
    conn = new_conn(state)
    send(conn, negotiate_request())
    assert send(conn, negotiate_request(msg_id=1)) is None
    assert conn.closing


def test_smb1_negotiate_upgrades(state):
    conn = new_conn(state)
    names = b"".join(b"\x02" + n + b"\x00" for n in (b"NT LM 0.12", b"SMB 2.002", b"SMB 2.???"))
    smb1 = bytearray(b"\xffSMB\x72" + bytes(27)) + b"\x00" + struct.pack("<H", len(names)) + names
    resp = send(conn, smb1)
    assert resp[:4] == b"\xfeSMB" and struct.unpack_from("<H", resp, 68)[0] == 0x02FF
    resp = send(conn, negotiate_request(msg_id=1))
    assert status_of(resp) == STATUS_SUCCESS and not conn.closing


def test_smb1_only_client_is_disconnected(state):
    conn = new_conn(state)
    names = b"\x02NT LM 0.12\x00"
    smb1 = bytearray(b"\xffSMB\x72" + bytes(27)) + b"\x00" + struct.pack("<H", len(names)) + names
    assert send(conn, smb1) is None and conn.closing


def test_message_id_outside_window_disconnects(state):
    conn = new_conn(state)
    send(conn, negotiate_request())
    assert send(conn, header(h.ECHO, 500) + struct.pack("<HH", 4, 0)) is None
    assert conn.closing


def test_message_id_reuse_disconnects(state):
    conn = new_conn(state)
    send(conn, negotiate_request())
    assert status_of(send(conn, header(h.ECHO, 1) + struct.pack("<HH", 4, 0))) == STATUS_SUCCESS
    assert send(conn, header(h.ECHO, 1) + struct.pack("<HH", 4, 0)) is None
    assert conn.closing


def test_bad_structure_size(state):
    conn = new_conn(state)
    send(conn, negotiate_request())
    resp = send(conn, header(h.ECHO, 1) + struct.pack("<HH", 5, 0))
    assert status_of(resp) == STATUS_INVALID_PARAMETER


def test_unknown_command(state):
    conn = new_conn(state)
    send(conn, negotiate_request())
    resp = send(conn, header(0x55, 1) + bytes(8))
    assert status_of(resp) == STATUS_INVALID_PARAMETER


def test_request_without_session(state):
    conn = new_conn(state)
    send(conn, negotiate_request())
    resp = send(conn, header(h.TREE_CONNECT, 1, session_id=1234) + struct.pack("<HHHH", 9, 0, 0, 0))
    assert status_of(resp) == STATUS_USER_SESSION_DELETED


def session_setup(token, msg_id, session_id=0):
    body = struct.pack("<HBBIIHHQ", 25, 0, 1, 0, 0, 64 + 24, len(token), 0) + token
    return header(h.SESSION_SETUP, msg_id, session_id=session_id) + body


def logon(state, password="secret", dialect_list=(0x0311,)):
    """Negotiate and authenticate with pyspnego as the client; returns (conn, sid, keys)."""
    conn = new_conn(state)
    neg_req = negotiate_request(dialects=dialect_list)
    neg_resp = send(conn, neg_req)
    preauth = PreauthHash()
    preauth.update(neg_req)
    preauth.update(neg_resp)
    client = spnego.client("alice", password, hostname="srv", protocol="ntlm")
    token = client.step()
    msg_id, sid = 1, 0
    while True:
        req = session_setup(token, msg_id, sid)
        resp = send(conn, req)
        preauth.update(req)
        status = status_of(resp)
        sid = struct.unpack_from("<Q", resp, 40)[0]
        msg_id += 1
        if status != STATUS_MORE_PROCESSING_REQUIRED:
            break
        preauth.update(resp)
        _, _, off, ln = struct.unpack_from("<HHHH", resp, 64)
        token = client.step(resp[off:off + ln])
    if status != STATUS_SUCCESS:
        return conn, sid, None, status, msg_id
    keys = derive_keys(0x0311, client.session_key, preauth.value, conn.cipher_id)
    LAST_KEYS[0] = keys
    signer = Signer(conn.signing_algorithm, keys.signing_key)
    assert signer.verify(bytearray(resp)), "final SESSION_SETUP response must be signed"
    return conn, sid, signer, status, msg_id


LAST_KEYS = [None]  # client-side keys of the last logon() (tests that encrypt use them)


def test_ntlm_logon_and_signed_requests(state):
    conn, sid, signer, status, msg_id = logon(state)
    assert status == STATUS_SUCCESS
    path = "\\\\srv\\share".encode("utf-16-le")
    req = header(h.TREE_CONNECT, msg_id, session_id=sid) + struct.pack("<HHHH", 9, 0, 72,
                                                                      len(path)) + path
    signer.sign(req)
    resp = send(conn, req)
    assert status_of(resp) == STATUS_SUCCESS
    assert signer.verify(bytearray(resp))
    # A tampered signed request is refused and not executed.
    req = header(h.TREE_CONNECT, msg_id + 1, session_id=sid) + struct.pack(
        "<HHHH", 9, 0, 72, len(path)) + path
    signer.sign(req)
    req[-1] ^= 1
    resp = send(conn, req)
    assert status_of(resp) == STATUS_ACCESS_DENIED
    assert len(state.sessions[sid].trees) == 1


def test_wrong_password(state):
    _, sid, _, status, _ = logon(state, password="wrong")
    assert status == STATUS_LOGON_FAILURE
    assert sid not in state.sessions


def test_garbage_never_raises(state, caplog):
    """Bounded fuzz: mutated valid messages end in a response or a clean close, and no
    handler reaches the internal-error path."""
    rnd = random.Random(1234)
    seeds = [negotiate_request(), header(h.ECHO, 1) + struct.pack("<HH", 4, 0),
             session_setup(b"NTLMSSP\x00\x01\x00\x00\x00" + bytes(24), 1)]
    caplog.set_level(logging.ERROR)
    for i in range(600):
        conn = new_conn(state)
        if i % 3:
            send(conn, negotiate_request())
        msg = bytearray(rnd.choice(seeds))
        for _ in range(rnd.randint(1, 6)):
            pos = rnd.randrange(len(msg))
            msg[pos] = rnd.randrange(256)
        if rnd.random() < 0.3:
            msg = msg[:rnd.randrange(len(msg))]
        send(conn, msg)
    assert "internal error" not in caplog.text
    assert "Traceback" not in caplog.text


def test_reauthentication_keeps_session_and_keys(state):
    conn, sid, signer, status, msg_id = logon(state)
    assert status == STATUS_SUCCESS
    client = spnego.client("alice", "secret", hostname="srv", protocol="ntlm")
    token = client.step()
    while True:
        req = session_setup(token, msg_id, sid)
        signer.sign(req)
        resp = send(conn, req)
        msg_id += 1
        if status_of(resp) != STATUS_MORE_PROCESSING_REQUIRED:
            break
        _, _, off, ln = struct.unpack_from("<HHHH", resp, 64)
        token = client.step(resp[off:off + ln])
    assert status_of(resp) == STATUS_SUCCESS
    assert struct.unpack_from("<Q", resp, 40)[0] == sid
    assert signer.verify(bytearray(resp))  # still the original session's signing key
    # The session still works with its old key.
    req = header(h.ECHO, msg_id, session_id=sid) + struct.pack("<HH", 4, 0)
    signer.sign(req)
    assert status_of(send(conn, req)) == STATUS_SUCCESS


def test_sessions_per_connection_are_bounded(state):
    from ksmbd_embedded.handlers.session_setup import MAX_SESSIONS_PER_CONNECTION
    from ksmbd_embedded.status import STATUS_INSUFFICIENT_RESOURCES
    conn = new_conn(state)
    send(conn, negotiate_request())
    token = spnego.client("alice", "secret", hostname="srv", protocol="ntlm").step()
    statuses = [status_of(send(conn, session_setup(token, i + 1)))
                for i in range(MAX_SESSIONS_PER_CONNECTION + 3)]
    assert statuses[:MAX_SESSIONS_PER_CONNECTION] == \
        [STATUS_MORE_PROCESSING_REQUIRED] * MAX_SESSIONS_PER_CONNECTION
    assert statuses[-1] == STATUS_INSUFFICIENT_RESOURCES
    assert len(conn.sessions) == MAX_SESSIONS_PER_CONNECTION


def test_encrypting_share_refuses_plain_requests(tmp_path):
    from ksmbd_embedded.crypto.encryption import Cipher
    from ksmbd_embedded.tree import SHAREFLAG_ENCRYPT_DATA
    cfg = config_from_text(CONFIG.format(path=tmp_path) + "\toption smb3_encryption 'mandatory'\n",
                           "test.uci")
    db = PasswordDb.load(tmp_path / "db")
    db.set("alice", nt_hash("secret"))
    st = ServerState(cfg, db)
    conn, sid, signer, status, msg_id = logon(st)
    assert status == STATUS_SUCCESS
    path = "\\\\srv\\share".encode("utf-16-le")
    req = header(h.TREE_CONNECT, msg_id, session_id=sid) + struct.pack("<HHHH", 9, 0, 72,
                                                                      len(path)) + path
    signer.sign(req)
    resp = send(conn, req)
    assert status_of(resp) == STATUS_SUCCESS
    assert struct.unpack_from("<I", resp, 64 + 4)[0] & SHAREFLAG_ENCRYPT_DATA
    tree_id = struct.unpack_from("<Q", resp, 32)[0] >> 32
    # A signed but unencrypted request on that tree is refused.
    create = header(h.CREATE, msg_id + 1, session_id=sid, tree_id=tree_id) + struct.pack(
        "<HBBIQQIIIIIHHII", 57, 0, 0, 2, 0, 0, 0x80000000, 0, 7, 1, 0, 120, 0, 0, 0) + b"\0" * 8
    signer.sign(create)
    assert status_of(send(conn, create)) == STATUS_ACCESS_DENIED
    # The same request encrypted as the client would (client->server key) is served.
    keys = LAST_KEYS[0]
    create2 = header(h.CREATE, msg_id + 2, session_id=sid, tree_id=tree_id) + create[64:]
    frame = Cipher(conn.cipher_id, keys.decryption_key).encrypt(sid, bytes(create2))
    conn.outbox.clear()
    conn.receive(memoryview(bytes(frame)))
    out = b"".join(bytes(b) for b in conn.outbox)[4:]
    assert out[:4] == b"\xfdSMB"
    _, plain = Cipher(conn.cipher_id, keys.encryption_key).decrypt(memoryview(out))
    assert status_of(plain) == STATUS_SUCCESS

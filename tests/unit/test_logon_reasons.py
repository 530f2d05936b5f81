"""Why a logon was refused (NtlmAcceptor/SpnegoAcceptor.reason) and the lines SESSION_SETUP
logs for it, driven through the protocol core (Connection.receive) without sockets."""

from __future__ import annotations

import logging
import struct
import uuid

import pytest
import spnego
from impacket import ntlm as impacket_ntlm
from spnego._spnego import NegTokenResp as PyResp
from spnego._spnego import unpack_token

from ksmbd_embedded import header as h
from ksmbd_embedded.auth import ntlm as N
from ksmbd_embedded.auth.ntlm import NtlmAcceptor
from ksmbd_embedded.auth.spnego import SpnegoAcceptor
from ksmbd_embedded.config import config_from_text
from ksmbd_embedded.connection import Connection
from ksmbd_embedded.crypto.encryption import Cipher
from ksmbd_embedded.crypto.kdf import derive_keys
from ksmbd_embedded.crypto.preauth import PreauthHash
from ksmbd_embedded.handlers.session_setup import close_session
from ksmbd_embedded.pwddb import PasswordDb, nt_hash
from ksmbd_embedded.server import ServerState
from ksmbd_embedded.status import (
    STATUS_ACCESS_DENIED, STATUS_INVALID_PARAMETER, STATUS_LOGON_FAILURE,
    STATUS_MORE_PROCESSING_REQUIRED, STATUS_SUCCESS,
)

USERS = {"alice": nt_hash("secret")}


def _acceptor() -> NtlmAcceptor:
    return NtlmAcceptor(lambda u: USERS.get(u.lower()), "KSMBD", "WORKGROUP",
                        now=lambda: 1_700_000_000.0)


def _authenticate(*, lm=b"", nt=b"", user="", domain="", flags=0x62088215) -> bytes:
    """An AUTHENTICATE_MESSAGE (MS-NLMP 2.2.1.3) without Version/MIC: header then payload."""
    fields = [lm, nt, domain.encode("utf-16-le"), user.encode("utf-16-le"), b"", b""]
    msg = b"NTLMSSP\x00" + struct.pack("<I", 3)
    payload = b""
    for f in fields:
        msg += struct.pack("<HHI", len(f), len(f), 64 + len(payload))
        payload += f
    return msg + struct.pack("<I", flags) + payload


def _challenged() -> NtlmAcceptor:
    acc = _acceptor()
    acc.step(b"NTLMSSP\x00" + struct.pack("<II", 1, 0x62088215) + bytes(16))
    return acc


# -- reasons from the NTLM acceptor ----------------------------------------------------------


@pytest.mark.parametrize("level", ["0", "2"])
def test_ntlmv1_reason_pyspnego(monkeypatch, level):
    monkeypatch.setenv("LM_COMPAT_LEVEL", level)  # 0: LM + NTLMv1, 2: NTLMv1 only
    acc = _acceptor()
    c = spnego.client("alice", "secret", hostname="srv", protocol="ntlm")
    acc.step(c.step(acc.step(c.step())))
    assert acc.nt_response_length == 24
    assert (acc.result, acc.reason) == ("refused", "NTLMv1 refused")


def test_ntlmv1_reason_impacket():
    acc = _acceptor()
    type1 = impacket_ntlm.getNTLMSSPType1("WS", "", use_ntlmv2=False)
    type3, _ = impacket_ntlm.getNTLMSSPType3(type1, acc.step(type1.getData()), "alice", "secret",
                                             "WORKGROUP", use_ntlmv2=False)
    acc.step(type3.getData())
    assert (acc.result, acc.reason) == ("refused", "NTLMv1 refused")


def test_lm_only_reason():
    acc = _challenged()
    acc.step(_authenticate(user="alice", lm=b"\x01" * 24))
    assert (acc.result, acc.reason) == ("refused", "LM refused")
    assert (acc.lm_response_length, acc.nt_response_length) == (24, 0)


def test_lm_without_user_name_reason():
    acc = _challenged()
    acc.step(_authenticate(lm=b"\x01" * 24))
    assert acc.result == "refused" and acc.reason.startswith("LM refused")


def test_known_user_without_password_is_refused_as_such():
    """What smbclient -N sends first (login name, empty LM and NT responses) for a known
    user: nothing to verify."""
    acc = _challenged()
    acc.step(_authenticate(user="alice", domain="WORKGROUP"))
    assert (acc.result, acc.reason) == ("refused", "no password sent")


def test_unknown_user_without_password_is_an_unknown_user():
    """The same for a name not in the db: an unknown user like any other (mapped to guest
    under map_to_guest = bad_user), not a refusal."""
    acc = _challenged()
    acc.step(_authenticate(user="root", domain="WORKGROUP"))
    assert (acc.result, acc.reason) == ("unknown_user", "unknown user, no password sent")
    assert acc.session_key is None


@pytest.mark.parametrize("user,password,result,reason", [
    ("alice", "wrong", "bad_password", "wrong password"),
    ("mallory", "x", "unknown_user", "unknown user"),
])
def test_ntlmv2_reasons(user, password, result, reason):
    acc = _acceptor()
    c = spnego.client(user, password, hostname="srv", protocol="ntlm")
    acc.step(c.step(acc.step(c.step())))
    assert (acc.result, acc.reason) == (result, reason)


def test_spnego_mech_list_mic_reason():
    acc = SpnegoAcceptor(_acceptor())
    c = spnego.client("alice", "secret", hostname="srv", protocol="negotiate",
                      options=spnego.NegotiateOptions.use_negotiate)
    final_in = unpack_token(c.step(acc.step(c.step())))
    mic = bytearray(final_in.mech_list_mic)
    mic[4] ^= 1
    acc.step(PyResp(response_token=final_in.response_token, mech_list_mic=bytes(mic)).pack())
    assert (acc.result, acc.reason) == ("refused", "SPNEGO mechListMIC mismatch")


def test_spnego_passes_the_ntlm_reason_on():
    acc = SpnegoAcceptor(_acceptor())
    c = spnego.client("alice", "wrong", hostname="srv", protocol="negotiate",
                      options=spnego.NegotiateOptions.use_negotiate)
    acc.step(c.step(acc.step(c.step())))
    assert (acc.result, acc.reason) == ("bad_password", "wrong password")


# -- the log of SESSION_SETUP -------------------------------------------------------------------

CONFIG = """
config globals
\toption workgroup 'TESTGROUP'
{globals}
config share
\toption name 'share'
\toption path '{path}'
\toption read_only 'no'
\toption guest_ok 'yes'
"""
PEER = "192.0.2.7:50123"


def _state(tmp_path, globals_text=""):
    cfg = config_from_text(CONFIG.format(path=tmp_path, globals=globals_text), "test.uci")
    db = PasswordDb.load(tmp_path / "db")
    db.set("alice", nt_hash("secret"))
    return ServerState(cfg, db)


def _header(command, msg_id, session_id=0, tree_id=0, flags=0, credit_charge=1):
    buf = bytearray(64)
    h.HEADER.pack_into(buf, 0, h.SMB2_MAGIC, 64, credit_charge, 0, command, 64, flags, 0,
                       msg_id, tree_id << 32, session_id)
    return buf


def _negotiate(security_mode=1):
    """An SMB 3.1.1 NEGOTIATE offering AES-128-GCM and AES-CMAC."""
    body = bytearray(struct.pack("<HHHHI16sIHH", 36, 1, security_mode, 0, 0x7F,
                                 uuid.uuid4().bytes, 0, 0, 0))
    body += struct.pack("<H", 0x0311)
    contexts = [(1, struct.pack("<HHH", 1, 32, 1) + bytes(32)), (2, struct.pack("<HH", 1, 2)),
                (8, struct.pack("<HH", 1, 1))]
    body += bytes(-(64 + len(body)) % 8)
    struct.pack_into("<IH", body, 28, 64 + len(body), len(contexts))
    for i, (ctype, data) in enumerate(contexts):
        if i:
            body += bytes(-(64 + len(body)) % 8)
        body += struct.pack("<HHI", ctype, len(data), 0) + data
    return _header(h.NEGOTIATE, 0, credit_charge=0) + body


def _send(conn, message):
    conn.outbox.clear()
    conn.receive(memoryview(bytes(message)))
    frames = b"".join(bytes(b) for b in conn.outbox)
    return frames[4:] if frames else None


def _status(resp):
    return struct.unpack_from("<I", resp, 8)[0]


def _logon(state, user="alice", password="secret", security_mode=1):
    """Negotiate and authenticate (pyspnego client); (conn, status, session id, next msg id,
    client's encryption key or None)."""
    conn = Connection(state, PEER, 0.0)
    neg_req = _negotiate(security_mode)
    preauth = PreauthHash()
    preauth.update(neg_req)
    preauth.update(_send(conn, neg_req))
    client = spnego.client(user, password, hostname="srv", protocol="ntlm")
    token, msg_id, sid = client.step(), 1, 0
    while True:
        body = struct.pack("<HBBIIHHQ", 25, 0, security_mode, 0, 0, 64 + 24, len(token), 0)
        req = _header(h.SESSION_SETUP, msg_id, session_id=sid) + body + token
        resp = _send(conn, req)
        preauth.update(req)
        msg_id += 1
        status = _status(resp)
        sid = struct.unpack_from("<Q", resp, 40)[0]
        if status != STATUS_MORE_PROCESSING_REQUIRED:
            break
        preauth.update(resp)
        _, _, off, ln = struct.unpack_from("<HHHH", resp, 64)
        token = client.step(resp[off:off + ln])
    key = None
    if status == STATUS_SUCCESS and client.session_key:
        key = derive_keys(0x0311, client.session_key, preauth.value, conn.cipher_id)
    return conn, status, sid, msg_id, key


def _tree_connect(msg_id, sid):
    path = "\\\\srv\\share".encode("utf-16-le")
    return _header(h.TREE_CONNECT, msg_id, session_id=sid) + struct.pack(
        "<HHHH", 9, 0, 72, len(path)) + path


def _auth_records(caplog):
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "ksmbd.auth"
            and r.levelno >= logging.INFO]


def test_plain_session_is_logged_at_its_first_request(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="ksmbd")
    state = _state(tmp_path)
    conn, status, sid, msg_id, _ = _logon(state)
    assert status == STATUS_SUCCESS
    assert _auth_records(caplog) == []  # could still turn out encrypted
    assert _status(_send(conn, _tree_connect(msg_id, sid))) == STATUS_SUCCESS
    assert _auth_records(caplog) == [
        ("INFO", f"session 0x{sid:x} user 'alice' from {PEER} dialect 3.1.1: "
                 "not signed, not encrypted")]


def test_encrypting_client_is_logged_encrypted(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="ksmbd")
    state = _state(tmp_path)
    conn, status, sid, msg_id, keys = _logon(state, security_mode=3)  # signing required
    frame = Cipher(conn.cipher_id, keys.decryption_key).encrypt(sid, bytes(_tree_connect(msg_id,
                                                                                         sid)))
    out = _send(conn, frame)
    assert out is not None and struct.unpack_from("<I", out, 0)[0] == 0x424D53FD  # encrypted
    assert _auth_records(caplog) == [
        ("INFO", f"session 0x{sid:x} user 'alice' from {PEER} dialect 3.1.1: "
                 "signed (AES-CMAC), encrypted (AES-128-GCM)")]
    # The session is a plain one again: later requests log nothing more.
    _send(conn, Cipher(conn.cipher_id, keys.decryption_key).encrypt(
        sid, bytes(_header(h.ECHO, msg_id + 1, session_id=sid) + struct.pack("<HH", 4, 0))))
    assert len(_auth_records(caplog)) == 1
    assert type(state.sessions[sid]).__name__ == "Session"


def test_session_closed_before_any_request_is_still_logged_once(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="ksmbd")
    state = _state(tmp_path)
    conn, status, sid, _, _ = _logon(state)
    close_session(state, state.sessions[sid])
    assert _auth_records(caplog) == [
        ("INFO", f"session 0x{sid:x} user 'alice' from {PEER} dialect 3.1.1: "
                 "not signed, not encrypted")]


def test_mandatory_encryption_is_logged_at_once(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="ksmbd")
    state = _state(tmp_path, "\toption smb3_encryption 'mandatory'\n")
    _, status, sid, _, _ = _logon(state)
    assert status == STATUS_SUCCESS
    assert _auth_records(caplog) == [
        ("INFO", f"session 0x{sid:x} user 'alice' from {PEER} dialect 3.1.1: "
                 "not signed, encrypted (AES-128-GCM)")]


def test_unknown_user_as_guest_is_one_info_line(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="ksmbd")
    state = _state(tmp_path, "\toption map_to_guest 'bad_user'\n")
    _, status, sid, _, _ = _logon(state, user="visitor", password="x")
    assert status == STATUS_SUCCESS
    assert _auth_records(caplog) == [
        ("INFO", f"session 0x{sid:x} guest 'nobody' from {PEER} dialect 3.1.1: unknown user "
                 "'visitor' logged on as guest (map_to_guest = bad_user); "
                 "not signed, not encrypted")]


@pytest.mark.parametrize("globals_text,user,password,status,reason", [
    ("", "alice", "wrong", STATUS_LOGON_FAILURE, "wrong password"),
    ("\toption map_to_guest 'never'\n", "visitor", "x", STATUS_LOGON_FAILURE, "unknown user"),
    ("\toption smb3_encryption 'mandatory'\n", "visitor", "x", STATUS_ACCESS_DENIED,
     "guest logon refused: encryption is mandatory"),
])
def test_refused_logon_is_one_warning_with_the_reason(tmp_path, caplog, globals_text, user,
                                                      password, status, reason):
    caplog.set_level(logging.INFO, logger="ksmbd")
    state = _state(tmp_path, globals_text)
    _, got, _, _, _ = _logon(state, user=user, password=password)
    assert got == status
    assert _auth_records(caplog) == [
        ("WARNING", f"logon failure for user {user!r} from {PEER}: {reason}")]


def test_ntlmv1_client_is_one_warning(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("LM_COMPAT_LEVEL", "2")  # pyspnego sends NTLMv1
    caplog.set_level(logging.INFO, logger="ksmbd")
    _, status, _, _, _ = _logon(_state(tmp_path))
    assert status == STATUS_LOGON_FAILURE
    assert _auth_records(caplog) == [
        ("WARNING", f"logon failure for user 'alice' from {PEER}: NTLMv1 refused")]


def test_debug_line_shows_what_the_client_sent(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("LM_COMPAT_LEVEL", "2")
    caplog.set_level(logging.DEBUG, logger="ksmbd")
    _logon(_state(tmp_path))
    debug = [r.getMessage() for r in caplog.records
             if r.name == "ksmbd.auth" and r.levelno == logging.DEBUG]
    assert len(debug) == 1 and "user 'alice'" in debug[0], debug
    assert "NT response 24 bytes" in debug[0] and debug[0].endswith("refused (NTLMv1 refused)")



def test_bad_encrypted_session_key_length_is_one_warning(tmp_path, caplog):
    """A raw NTLMSSP exchange whose AUTHENTICATE has KEY_EXCH and an 8-byte
    EncryptedRandomSessionKey (MS-NLMP 2.2.1.3 makes it 16): a malformed token,
    STATUS_INVALID_PARAMETER, logged once with the length, and no session is left."""
    caplog.set_level(logging.INFO, logger="ksmbd")
    state = _state(tmp_path)
    conn = Connection(state, PEER, 0.0)
    _send(conn, _negotiate())

    def setup(token, msg_id, sid):
        body = struct.pack("<HBBIIHHQ", 25, 0, 1, 0, 0, 64 + 24, len(token), 0)
        return _send(conn, _header(h.SESSION_SETUP, msg_id, session_id=sid) + body + token)

    resp = setup(b"NTLMSSP\x00" + struct.pack("<II", 1, 0x62088215) + bytes(16), 1, 0)
    assert _status(resp) == STATUS_MORE_PROCESSING_REQUIRED
    sid = struct.unpack_from("<Q", resp, 40)[0]
    _, _, off, ln = struct.unpack_from("<HHHH", resp, 64)
    server_challenge = resp[off + 24:off + 32]
    key = N.ntowfv2(nt_hash("secret"), "alice", "")
    temp = N.ntlmv2_temp(N.filetime(1_700_000_000.0), b"\x11" * 8, N.encode_av_pairs([]))
    nt = N.ntproofstr(key, server_challenge, temp) + temp
    fields = [b"", nt, b"", "alice".encode("utf-16-le"), b"", b"\x42" * 8]
    msg = b"NTLMSSP\x00" + struct.pack("<I", 3)
    payload = b""
    for f in fields:
        msg += struct.pack("<HHI", len(f), len(f), 64 + len(payload))
        payload += f
    msg += struct.pack("<I", 0x62088215) + payload  # KEY_EXCH | SIGN | ...
    resp = setup(msg, 2, sid)
    assert _status(resp) == STATUS_INVALID_PARAMETER
    assert _auth_records(caplog) == [
        ("WARNING", f"logon failure for user 'alice' from {PEER}: malformed authentication "
                    "token (NTLM: EncryptedRandomSessionKey of 8 bytes)")]
    assert sid not in conn.sessions and sid not in state.sessions

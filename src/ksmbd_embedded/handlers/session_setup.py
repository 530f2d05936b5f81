"""SESSION_SETUP and LOGOFF (MS-SMB2 2.2.5-2.2.8, 3.3.5.5, 3.3.5.6).

The log says once per logon what happened (logger ``ksmbd.auth``):

* INFO ``session 0x... user 'alice' from <peer> dialect 3.1.1: signed (AES-GMAC),
  encrypted (AES-128-GCM)``; ``guest 'nobody'`` with ``unknown user 'x' logged on as guest
  (map_to_guest = bad_user);`` before the protection; ``anonymous``. "signed" is
  Session.SigningRequired (every message signed or encrypted), "encrypted" is the server's
  EncryptData or a client that encrypts on its own: that is known only at the session's first
  request, so a session that could encrypt but is not asked to is logged then (or when it
  closes first).
* WARNING ``logon failure for user 'x' from <peer>: <reason>`` for every refused logon, the
  reason from the NTLM/SPNEGO acceptor ("wrong password", "NTLMv1 refused", ...) or from the
  server's policy.
* DEBUG: what the NTLM AUTHENTICATE carried (names, response sizes, flags).
"""

from __future__ import annotations

import logging
import struct
from typing import TYPE_CHECKING, NoReturn

from .. import header as h
from ..auth.ntlm import NtlmAcceptor, NtlmError
from ..auth.spnego import SpnegoAcceptor, SpnegoError
from ..session import EXPIRED, VALID, Session
from ..status import (
    STATUS_ACCESS_DENIED, STATUS_INSUFFICIENT_RESOURCES, STATUS_INVALID_PARAMETER,
    STATUS_LOGON_FAILURE, STATUS_MORE_PROCESSING_REQUIRED, STATUS_REQUEST_NOT_ACCEPTED,
    STATUS_SUCCESS, SmbError,
)

if TYPE_CHECKING:
    from ..request import Request

log = logging.getLogger("ksmbd.auth")

# StructureSize, Flags, SecurityMode, Capabilities, Channel, SecurityBufferOffset,
# SecurityBufferLength, PreviousSessionId
_REQUEST = struct.Struct("<HBBIIHHQ")
# StructureSize, SessionFlags, SecurityBufferOffset, SecurityBufferLength
_RESPONSE = struct.Struct("<HHHH")
_SESSION_FLAG_BINDING = 0x01
_LOGOFF_RESPONSE = b"\x04\x00\x00\x00"
# Sessions (incl. ones still authenticating) one connection may hold: bounds memory per client.
MAX_SESSIONS_PER_CONNECTION = 64


def _new_acceptor(req: Request) -> SpnegoAcceptor:
    server = req.server
    g = server.config.globals
    netbios = g.netbios_name.upper()
    ntlm = NtlmAcceptor(server.pwddb.get, netbios_name=netbios,
                        netbios_domain=g.workgroup.upper(), dns_name=netbios.lower())
    accept = {"ok", "anonymous"}
    if g.map_to_guest == "bad_user":
        accept.add("unknown_user")  # the final SPNEGO token must agree with the guest logon
    return SpnegoAcceptor(ntlm, accept_results=accept)


def handle_session_setup(req: Request):
    conn = req.conn
    server = req.server
    view = req.view
    _, flags, _, _, _, sec_off, sec_len, _ = _REQUEST.unpack_from(view, h.HEADER_SIZE)
    if flags & _SESSION_FLAG_BINDING:
        # Binding a second channel (multichannel) is not offered: no CAP_MULTI_CHANNEL.
        raise SmbError(STATUS_REQUEST_NOT_ACCEPTED)
    token = bytes(req.data(sec_off, sec_len))

    session = req.session
    if session is None:
        if len(conn.sessions) >= MAX_SESSIONS_PER_CONNECTION:
            log.warning("%s: too many sessions on one connection", conn.peer)
            raise SmbError(STATUS_INSUFFICIENT_RESOURCES)
        session = Session(server.new_session_id(), conn, server.now())
        session.dialect = conn.dialect
        conn.sessions[session.session_id] = session
        server.sessions[session.session_id] = session
        if conn.dialect == h.SMB3_11:
            session.preauth = conn.preauth.copy()
    if session.auth is None:  # first leg, or re-authentication of a valid session
        session.auth = _new_acceptor(req)
    if session.preauth is not None and session.state != VALID:
        session.preauth.update(view)

    try:
        out = session.auth.step(token)
    except (NtlmError, SpnegoError, ValueError) as exc:
        _refuse(req, session, session.auth.ntlm.user, f"malformed authentication token ({exc})",
                STATUS_INVALID_PARAMETER)
    out = out or b""
    if not session.auth.complete:
        req.session = session
        if session.preauth is not None and session.state != VALID:
            req.on_response = session.preauth.update
        return STATUS_MORE_PROCESSING_REQUIRED, _body(0, out)

    auth = session.auth
    ntlm = auth.ntlm
    result = auth.result
    g = server.config.globals
    reauth = session.state == VALID
    log.debug("%s: NTLM AUTHENTICATE user %r domain %r workstation %r, LM response %d bytes, "
              "NT response %d bytes, flags 0x%08x: %s%s", conn.peer, ntlm.user, ntlm.domain,
              ntlm.workstation, ntlm.lm_response_length, ntlm.nt_response_length,
              ntlm.negotiate_flags, result, f" ({auth.reason})" if auth.reason else "")
    note = ""
    if result == "ok":
        is_guest, is_anon, user = False, False, ntlm.user
    elif result == "anonymous":
        is_guest, is_anon, user = False, True, ""
    elif result == "unknown_user" and g.map_to_guest == "bad_user":
        is_guest, is_anon, user = True, False, g.guest_account
        note = f"unknown user {ntlm.user!r} logged on as guest (map_to_guest = bad_user); "
    else:
        _refuse(req, session, ntlm.user, auth.reason or result)

    kind = "anonymous" if is_anon else "guest"
    if reauth and (is_guest or is_anon) and session.signer is not None:
        # 3.3.5.5.3: re-authentication keeps the session's keys; a session that signs
        # or encrypts cannot silently become guest or anonymous (and keeps its identity).
        _refuse(req, session, ntlm.user, f"{kind} re-authentication of a signing session refused")
    session.auth = None
    session.user = user
    session.domain = ntlm.domain
    session.is_guest = is_guest
    session.is_anonymous = is_anon
    if not reauth and not (is_guest or is_anon):
        _derive_session_keys(req, session, auth.session_key)
    elif not reauth and g.smb3_encryption == "mandatory":
        _refuse(req, session, ntlm.user, f"{kind} logon refused: encryption is mandatory",
                STATUS_ACCESS_DENIED)
    if g.smb3_encryption == "mandatory" and session.encryptor is None:
        _refuse(req, session, ntlm.user,
                "encryption is mandatory and the client cannot encrypt", STATUS_ACCESS_DENIED)
    session.encrypt_data = g.smb3_encryption == "mandatory"
    session.state = VALID
    session.preauth = None
    req.session = session
    # 3.3.5.5.3: the final response is signed when the session can sign (always for 3.1.1).
    req.sign_response = session.signer is not None and (
        conn.dialect == h.SMB3_11 or session.signing_required)
    if not reauth:
        if session.encryptor is not None and not session.encrypt_data:
            # The client may still encrypt on its own: known at its first request.
            session.await_first_request(lambda s: _log_session(s, note))
        else:
            _log_session(session, note)
    return STATUS_SUCCESS, _body(session.flags, out)


_DIALECT_VERSIONS = {h.SMB2_02: "2.0.2", h.SMB2_10: "2.1", h.SMB3_00: "3.0",
                     h.SMB3_02: "3.0.2", h.SMB3_11: "3.1.1"}
# MS-SMB2 2.2.3.1.7 SigningAlgorithmId, 2.2.3.1.2 Ciphers: the names the spec gives them
_SIGNING_NAMES = {0: "HMAC-SHA256", 1: "AES-CMAC", 2: "AES-GMAC"}
_CIPHER_NAMES = {1: "AES-128-CCM", 2: "AES-128-GCM", 3: "AES-256-CCM", 4: "AES-256-GCM"}


def session_line(session: Session, note: str = "") -> str:
    """The one log line of a logon: who, from where, which dialect, signed and encrypted."""
    conn = session.connection
    if session.is_anonymous:
        who = "anonymous"
    elif session.is_guest:
        who = f"guest {session.user!r}"
    else:
        who = f"user {session.user!r}"
    dialect = _DIALECT_VERSIONS.get(session.dialect, f"0x{session.dialect:04x}")
    if session.signing_required:
        signed = f"signed ({_SIGNING_NAMES.get(conn.signing_algorithm, '?')})"
    else:
        signed = "not signed"
    if session.encryptor is not None and (session.encrypt_data or session.client_encrypts):
        encrypted = f"encrypted ({_CIPHER_NAMES.get(conn.cipher_id, '?')})"
    else:
        encrypted = "not encrypted"
    return (f"session 0x{session.session_id:x} {who} from {conn.peer} dialect {dialect}: "
            f"{note}{signed}, {encrypted}")


def _log_session(session: Session, note: str = "") -> None:
    log.info("%s", session_line(session, note))


def _refuse(req: Request, session: Session, user: str | None, reason: str,
            status: int = STATUS_LOGON_FAILURE) -> NoReturn:
    """Log a refused logon (one WARNING line: user, client, reason), forget the session and
    fail the request."""
    if user:
        who = f"user {user!r}"
    elif user == "":
        who = "anonymous"
    else:  # the token was refused before a user name was read
        who = "an unnamed user"
    log.warning("logon failure for %s from %s: %s", who, req.conn.peer, reason)
    _fail(req, session)
    raise SmbError(status)


def _derive_session_keys(req: Request, session: Session, gss_key: bytes | None) -> None:
    """Session.SessionKey and the signing/encryption keys (3.3.5.5.3, 3.1.4.2)."""
    # Imported on the first logon, not at start: an idle server does not map the cipher
    # library (several MB of PSS on a router).
    from ..crypto.encryption import Cipher
    from ..crypto.kdf import derive_keys
    from ..crypto.signing import Signer
    conn = req.conn
    key = (gss_key or b"")[:16].ljust(16, b"\x00")
    session.session_key = key
    preauth = session.preauth.value if session.preauth is not None else None
    keys = derive_keys(conn.dialect, key, preauth, conn.cipher_id or 1)
    session.signer = Signer(conn.signing_algorithm, keys.signing_key)
    session.application_key = keys.application_key
    session.signing_required = bool(
        conn.client_security_mode & h.NEGOTIATE_SIGNING_REQUIRED
        or req.server.config.globals.server_signing == "mandatory")
    if conn.dialect >= h.SMB3_00 and conn.cipher_id and keys.encryption_key:
        session.encryptor = Cipher(conn.cipher_id, keys.encryption_key)
        session.decryptor = Cipher(conn.cipher_id, keys.decryption_key)


def _fail(req: Request, session: Session) -> None:
    """Forget a session whose authentication failed (a valid one keeps its old identity)."""
    if session.state == VALID:
        session.auth = None
        return
    session.state = EXPIRED
    req.conn.sessions.pop(session.session_id, None)
    req.server.sessions.pop(session.session_id, None)
    req.session = None


def _body(flags: int, token: bytes) -> bytes:
    return _RESPONSE.pack(9, flags, h.HEADER_SIZE + _RESPONSE.size if token else 0,
                          len(token)) + token


def close_session(server, session: Session) -> None:
    """Close every tree and open of a session and forget it (LOGOFF, disconnect)."""
    from .tree_connect import close_tree
    session.first_request()  # a logon not yet logged (no request came): logged now
    for tree in list(session.trees.values()):
        close_tree(server, tree)
    session.connection.cancel_async(lambda work: work.session is session)
    session.state = EXPIRED
    server.sessions.pop(session.session_id, None)
    session.connection.sessions.pop(session.session_id, None)


def handle_logoff(req: Request):
    session = req.session
    close_session(req.server, session)
    log.info("%s: session 0x%x logged off", req.conn.peer, session.session_id)
    return STATUS_SUCCESS, _LOGOFF_RESPONSE

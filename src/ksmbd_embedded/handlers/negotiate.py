"""NEGOTIATE (MS-SMB2 2.2.3, 2.2.4, 3.3.5.3.1 SMB1 upgrade, 3.3.5.4)."""

from __future__ import annotations

import logging
import os
import struct
from typing import TYPE_CHECKING

from .. import header as h
from ..crypto.preauth import PreauthHash
from ..status import (
    STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED, STATUS_SUCCESS, SmbError,
)

if TYPE_CHECKING:
    from ..connection import Connection
    from ..request import Request

log = logging.getLogger("ksmbd.negotiate")

# StructureSize, DialectCount, SecurityMode, Reserved, Capabilities, ClientGuid,
# NegotiateContextOffset, NegotiateContextCount, Reserved2 (or ClientStartTime)
_REQUEST = struct.Struct("<HHHHI16sIHH")
# StructureSize, SecurityMode, DialectRevision, NegotiateContextCount, ServerGuid, Capabilities,
# MaxTransactSize, MaxReadSize, MaxWriteSize, SystemTime, ServerStartTime,
# SecurityBufferOffset, SecurityBufferLength, NegotiateContextOffset
_RESPONSE = struct.Struct("<HHHH16sIIIIQQHHI")
_CONTEXT = struct.Struct("<HHI")  # ContextType, DataLength, Reserved
_U16 = struct.Struct("<H")

# Negotiate context types (2.2.3.1)
PREAUTH_INTEGRITY_CAPABILITIES = 0x0001
ENCRYPTION_CAPABILITIES = 0x0002
COMPRESSION_CAPABILITIES = 0x0003
NETNAME_NEGOTIATE_CONTEXT_ID = 0x0005
TRANSPORT_CAPABILITIES = 0x0006
RDMA_TRANSFORM_CAPABILITIES = 0x0007
SIGNING_CAPABILITIES = 0x0008
SHA_512 = 0x0001
STATUS_SMB_NO_PREAUTH_INTEGRITY_HASH_OVERLAP = 0xC05D0000

CIPHERS = (1, 2, 3, 4)  # AES-128-CCM, AES-128-GCM, AES-256-CCM, AES-256-GCM
SIGNING_ALGORITHMS = (0, 1, 2)  # HMAC-SHA256, AES-CMAC, AES-GMAC
HMAC_SHA256, AES_CMAC, AES_GMAC = 0, 1, 2
DIALECTS = (h.SMB2_02, h.SMB2_10, h.SMB3_00, h.SMB3_02, h.SMB3_11)
SMB1_NEGOTIATE = 0x72
SMB2_64K = 65536


def _dialect_range(conn: Connection) -> tuple[int, int]:
    g = conn.server.config.globals
    return h.DIALECT_BY_NAME[g.server_min_protocol], h.DIALECT_BY_NAME[g.server_max_protocol]


def server_security_mode(conn: Connection) -> int:
    """The SecurityMode this server answers NEGOTIATE with (and VALIDATE_NEGOTIATE_INFO)."""
    mode = h.NEGOTIATE_SIGNING_ENABLED
    if conn.server.config.globals.server_signing == "mandatory":
        mode |= h.NEGOTIATE_SIGNING_REQUIRED
    return mode


def _spnego_hint() -> bytes:
    from ..auth.spnego import negotiate_hint
    return negotiate_hint()


def _response_body(conn: Connection, dialect: int, contexts: list[tuple[int, bytes]]) -> bytearray:
    """The NEGOTIATE response body: fixed part, security buffer, then 8-aligned contexts."""
    from ..fs.dos_attrs import filetime_now
    hint = _spnego_hint()
    sec_off = h.HEADER_SIZE + _RESPONSE.size
    body = bytearray(_RESPONSE.size)
    body += hint
    ctx_off = 0
    if contexts:
        body += bytes(-len(body) % 8)
        ctx_off = h.HEADER_SIZE + len(body)
        for i, (ctype, data) in enumerate(contexts):
            if i:
                body += bytes(-len(body) % 8)
            body += _CONTEXT.pack(ctype, len(data), 0)
            body += data
    small = dialect == h.SMB2_02 or dialect == h.SMB2_WILDCARD
    _RESPONSE.pack_into(
        body, 0, 65, server_security_mode(conn), dialect, len(contexts), conn.server.server_guid,
        conn.server_capabilities,
        SMB2_64K if small else conn.max_trans,
        SMB2_64K if small else conn.max_read,
        SMB2_64K if small else conn.max_write,
        filetime_now(), 0, sec_off, len(hint), ctx_off)
    return body


def handle_negotiate(req: Request):
    conn = req.conn
    if conn.negotiated:
        # 3.3.5.4: a second NEGOTIATE on a connection ends it.
        from ..connection import Disconnect
        raise Disconnect("second NEGOTIATE on a negotiated connection")
    view = req.view
    (_, count, sec_mode, _, caps, guid, ctx_off, ctx_count, _) = _REQUEST.unpack_from(view, 64)
    if count == 0:
        raise SmbError(STATUS_INVALID_PARAMETER)
    dialects_end = h.HEADER_SIZE + _REQUEST.size + 2 * count
    if dialects_end > len(view):
        raise SmbError(STATUS_INVALID_PARAMETER)
    offered = struct.unpack_from(f"<{count}H", view, h.HEADER_SIZE + _REQUEST.size)
    low, high = _dialect_range(conn)
    common = [d for d in DIALECTS if d in offered and low <= d <= high]
    if not common:
        log.info("%s: no common dialect in %s", conn.peer,
                 ",".join(f"0x{d:04x}" for d in offered))
        raise SmbError(STATUS_NOT_SUPPORTED)
    dialect = common[-1]
    conn.client_capabilities = caps
    conn.client_security_mode = sec_mode
    conn.client_guid = bytes(guid)
    conn.client_dialects = tuple(offered)

    contexts: list[tuple[int, bytes]] = []
    if dialect == h.SMB3_11:
        contexts = _negotiate_contexts(conn, view, ctx_off, ctx_count)
        conn.preauth = PreauthHash()
        conn.preauth.update(view)
        req.on_response = conn.preauth.update
    elif dialect >= h.SMB3_00:
        conn.signing_algorithm = AES_CMAC
        if caps & h.CAP_ENCRYPTION and _encryption_allowed(conn):
            conn.cipher_id = 1  # SMB 3.0/3.0.2 have AES-128-CCM only
    conn.server_capabilities = _capabilities(conn, dialect)
    conn.dialect = dialect
    conn.negotiated = True
    log.debug("%s: negotiated %s", conn.peer, h.DIALECT_NAMES[dialect])
    return STATUS_SUCCESS, _response_body(conn, dialect, contexts)


def _encryption_allowed(conn: Connection) -> bool:
    return conn.server.config.globals.smb3_encryption != "disabled" or any(
        s.smb3_encryption == "mandatory" for s in conn.server.config.shares)


def _capabilities(conn: Connection, dialect: int) -> int:
    caps = 0
    if dialect >= h.SMB2_10:
        caps |= h.CAP_LARGE_MTU
    if dialect in (h.SMB3_00, h.SMB3_02) and conn.cipher_id:
        caps |= h.CAP_ENCRYPTION
    return caps


def _negotiate_contexts(conn: Connection, view: memoryview, off: int,
                        count: int) -> list[tuple[int, bytes]]:
    """Read the 3.1.1 context list (2.2.3.1) and choose what we answer (3.3.5.4)."""
    seen: set[int] = set()
    preauth_ok = False
    cipher_ctx: tuple[int, ...] | None = None
    signing_ctx: tuple[int, ...] | None = None
    pos = off
    for _ in range(count):
        pos += -pos % 8 if pos != off else 0
        if pos < h.HEADER_SIZE or pos + _CONTEXT.size > len(view):
            raise SmbError(STATUS_INVALID_PARAMETER)
        ctype, dlen, _ = _CONTEXT.unpack_from(view, pos)
        data_off = pos + _CONTEXT.size
        if data_off + dlen > len(view):
            raise SmbError(STATUS_INVALID_PARAMETER)
        data = view[data_off:data_off + dlen]
        if ctype in (PREAUTH_INTEGRITY_CAPABILITIES, ENCRYPTION_CAPABILITIES,
                     COMPRESSION_CAPABILITIES, SIGNING_CAPABILITIES, NETNAME_NEGOTIATE_CONTEXT_ID,
                     TRANSPORT_CAPABILITIES, RDMA_TRANSFORM_CAPABILITIES):
            if ctype in seen:
                raise SmbError(STATUS_INVALID_PARAMETER)  # each at most once
            seen.add(ctype)
        if ctype == PREAUTH_INTEGRITY_CAPABILITIES:
            algs = _id_list(data, 4)
            if SHA_512 not in algs:
                raise SmbError(STATUS_SMB_NO_PREAUTH_INTEGRITY_HASH_OVERLAP)
            preauth_ok = True
        elif ctype == ENCRYPTION_CAPABILITIES:
            cipher_ctx = _id_list(data, 2)
        elif ctype == SIGNING_CAPABILITIES:
            signing_ctx = _id_list(data, 2)
        # Unknown contexts, compression, netname, transport and RDMA are ignored (3.3.5.4).
        pos = data_off + dlen
    if not preauth_ok:
        raise SmbError(STATUS_INVALID_PARAMETER)

    out = [(PREAUTH_INTEGRITY_CAPABILITIES,
            struct.pack("<HHH", 1, 32, SHA_512) + os.urandom(32))]
    if cipher_ctx is not None:
        chosen = 0
        if _encryption_allowed(conn):
            chosen = next((c for c in cipher_ctx if c in CIPHERS), 0)
        conn.cipher_id = chosen
        out.append((ENCRYPTION_CAPABILITIES, struct.pack("<HH", 1, chosen)))
    conn.signing_algorithm = AES_CMAC
    if signing_ctx is not None:
        chosen = next((a for a in signing_ctx if a in SIGNING_ALGORITHMS), AES_CMAC)
        conn.signing_algorithm = chosen
        out.append((SIGNING_CAPABILITIES, struct.pack("<HH", 1, chosen)))
    return out


def _id_list(data: memoryview, header_len: int) -> tuple[int, ...]:
    """A context's count-prefixed list of u16 ids (after `header_len` bytes of counts)."""
    if len(data) < header_len:
        raise SmbError(STATUS_INVALID_PARAMETER)
    n = _U16.unpack_from(data, 0)[0]
    if n == 0 or header_len + 2 * n > len(data):
        raise SmbError(STATUS_INVALID_PARAMETER)
    return struct.unpack_from(f"<{n}H", data, header_len)


# -- SMB1 multi-protocol negotiate (3.3.5.3.1) ---------------------------------------------------

def handle_smb1_negotiate(conn: Connection, frame: memoryview) -> bytearray:
    """Answer an SMB1 NEGOTIATE that offers SMB2 with an SMB2 NEGOTIATE response."""
    from ..connection import Disconnect
    if conn.negotiated or conn.dialect:
        raise Disconnect("SMB1 message after negotiation")
    if len(frame) < 35 or frame[4] != SMB1_NEGOTIATE:
        raise Disconnect("SMB1 request other than NEGOTIATE (SMB1 is not served)")
    byte_count = _U16.unpack_from(frame, 33)[0]
    if 35 + byte_count > len(frame):
        raise Disconnect("SMB1 NEGOTIATE with a bad ByteCount")
    names = [bytes(p[1:]) for p in bytes(frame[35:35 + byte_count]).split(b"\x00") if p]
    low, high = _dialect_range(conn)
    if b"SMB 2.???" in names and high >= h.SMB2_10:
        dialect = h.SMB2_WILDCARD
    elif b"SMB 2.002" in names and low <= h.SMB2_02:
        dialect = h.SMB2_02
    else:
        raise Disconnect("SMB1 NEGOTIATE without an SMB2 dialect we serve")
    if not conn.credits.consume(0, 1):
        raise Disconnect("SMB1 NEGOTIATE out of sequence")
    granted = conn.credits.grant(1)
    conn.server_capabilities = _capabilities(conn, dialect) if dialect != h.SMB2_WILDCARD else 0
    conn.dialect = dialect
    if dialect == h.SMB2_02:
        conn.negotiated = True
    buf = bytearray(h.HEADER_SIZE)
    h.pack_response_header(buf, 0, h.NEGOTIATE, STATUS_SUCCESS, granted, 0, 0, 0, 0, 0)
    buf += _response_body(conn, dialect, [])
    log.debug("%s: SMB1 negotiate upgraded to 0x%04x", conn.peer, dialect)
    return buf

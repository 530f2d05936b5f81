"""Connection-oriented DCE/RPC PDUs (C706 chapter 12.6; MS-RPCE 2.2.2), little-endian NDR.

Decoding: `parse_header`, `parse_bind` (bind and alter_context share a layout),
`parse_request`. Encoding: `bind_ack` (also alter_context_resp), `bind_nak`,
`response_fragments` (a response's stub cut to the negotiated fragment size) and `fault`.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass

# PTYPE (C706 12.6.4.2)
REQUEST = 0
RESPONSE = 2
FAULT = 3
BIND = 11
BIND_ACK = 12
BIND_NAK = 13
ALTER_CONTEXT = 14
ALTER_CONTEXT_RESP = 15
AUTH3 = 16
SHUTDOWN = 17
CO_CANCEL = 18
ORPHANED = 19

# pfc_flags (C706 12.6.3.1; MS-RPCE 2.2.2.3)
PFC_FIRST_FRAG = 0x01
PFC_LAST_FRAG = 0x02
PFC_PENDING_CANCEL = 0x04
PFC_SUPPORT_HEADER_SIGN = 0x04  # in bind/bind_ack (MS-RPCE)
PFC_CONC_MPX = 0x10
PFC_DID_NOT_EXECUTE = 0x20
PFC_MAYBE = 0x40
PFC_OBJECT_UUID = 0x80

# p_cont_def_result_t (C706 12.6.3.1; MS-RPCE 2.2.2.4)
ACCEPTANCE = 0
USER_REJECTION = 1
PROVIDER_REJECTION = 2
NEGOTIATE_ACK = 3  # bind time feature negotiation (MS-RPCE 3.3.1.5.3)

# p_provider_reason_t
REASON_NOT_SPECIFIED = 0
ABSTRACT_SYNTAX_NOT_SUPPORTED = 1
PROPOSED_TRANSFER_SYNTAXES_NOT_SUPPORTED = 2
LOCAL_LIMIT_EXCEEDED = 3

# bind_nak provider_reject_reason (C706 12.6.3.1; MS-RPCE 2.2.2.5 adds 8 and 9)
NAK_REASON_NOT_SPECIFIED = 0
NAK_PROTOCOL_VERSION_NOT_SUPPORTED = 4
NAK_AUTHENTICATION_TYPE_NOT_RECOGNIZED = 8

# fault status codes (C706 appendix E; MS-RPCE 2.2.2.11)
NCA_S_OP_RNG_ERROR = 0x1C010002
NCA_S_UNKNOWN_IF = 0x1C010003
NCA_S_PROTO_ERROR = 0x1C01000B
NCA_S_FAULT_NDR = 0x000006F7  # RPC_X_BAD_STUB_DATA, what Windows sends for undecodable stubs
NCA_S_FAULT_REMOTE_NO_MEMORY = 0x1C000016  # nca_s_fault_remote_no_memory

RPC_VERS = 5
RPC_VERS_MINOR = 0
DREP_LE = b"\x10\x00\x00\x00"  # little-endian integers, ASCII, IEEE floats

HEADER = struct.Struct("<BBBB4sHHI")  # rpc_vers, minor, ptype, flags, drep, frag, auth, call_id
HEADER_SIZE = HEADER.size  # 16
_BIND_FIXED = struct.Struct("<HHI")  # max_xmit_frag, max_recv_frag, assoc_group_id
_REQUEST_FIXED = struct.Struct("<IHH")  # alloc_hint, p_cont_id, opnum
_RESPONSE_FIXED = struct.Struct("<IHBB")  # alloc_hint, p_cont_id, cancel_count, reserved
RESPONSE_HEADER_SIZE = HEADER_SIZE + _RESPONSE_FIXED.size  # 24

# The fragment size Windows offers and clients (Samba, impacket) ask for.
DEFAULT_MAX_FRAG = 4280
MIN_FRAG = 1432  # C706: every implementation must accept fragments of this size

NDR20_UUID = uuid.UUID("8a885d04-1ceb-11c9-9fe8-08002b104860").bytes_le
NDR20_VERSION = 2
NDR64_UUID = uuid.UUID("71710533-beba-4937-8319-b5dbef9ccc36").bytes_le
# MS-RPCE 3.3.1.5.3: a "transfer syntax" 6cb71c2c-9812-4540-xxxx-xxxxxxxxxxxx, the last eight
# bytes holding the client's feature bitmask.
BTFN_PREFIX = uuid.UUID("6cb71c2c-9812-4540-0000-000000000000").bytes_le[:8]
NULL_SYNTAX = bytes(20)


class PduError(Exception):
    """Malformed PDU: the association cannot continue."""


@dataclass
class Header:
    ptype: int
    flags: int
    frag_length: int
    auth_length: int
    call_id: int
    little_endian: bool
    version_ok: bool


def parse_header(data: bytes | memoryview) -> Header:
    if len(data) < HEADER_SIZE:
        raise PduError("short header")
    vers, minor, ptype, flags, drep, frag, auth, call_id = HEADER.unpack_from(data, 0)
    little = bool(drep[0] & 0x10)
    if not little:
        frag, auth, call_id = struct.unpack_from(">HHI", data, 8)
    return Header(ptype, flags, frag, auth, call_id, little,
                  vers == RPC_VERS and minor in (0, 1))


def frag_length_of(data: bytes | memoryview) -> int:
    """The frag_length field of a buffered header (drep decides the byte order)."""
    if data[4] & 0x10:
        return data[8] | data[9] << 8
    return data[8] << 8 | data[9]


def _header(ptype: int, flags: int, frag_length: int, call_id: int, auth_length: int = 0):
    return HEADER.pack(RPC_VERS, RPC_VERS_MINOR, ptype, flags, DREP_LE, frag_length,
                       auth_length, call_id)


# -- bind / alter_context ------------------------------------------------------------------------

@dataclass
class ContextElem:
    context_id: int
    abstract_uuid: bytes  # 16 bytes, wire (little-endian) form
    abstract_version: tuple[int, int]  # (major, minor)
    transfer_syntaxes: list[tuple[bytes, int]]  # (uuid wire bytes, version u32)


@dataclass
class Bind:
    max_xmit_frag: int
    max_recv_frag: int
    assoc_group_id: int
    contexts: list[ContextElem]


def parse_bind(pdu: bytes | memoryview, header: Header) -> Bind:
    """bind and alter_context (C706 12.6.4.3, 12.6.4.1)."""
    end = header.frag_length - (header.auth_length + 8 if header.auth_length else 0)
    if end < HEADER_SIZE + _BIND_FIXED.size + 4 or end > len(pdu):
        raise PduError("short bind")
    max_xmit, max_recv, group = _BIND_FIXED.unpack_from(pdu, HEADER_SIZE)
    pos = HEADER_SIZE + _BIND_FIXED.size
    n_ctx = pdu[pos]
    pos += 4
    contexts = []
    for _ in range(n_ctx):
        if pos + 24 > end:
            raise PduError("short context element")
        ctx_id, n_ts = struct.unpack_from("<HB", pdu, pos)
        abstract = bytes(pdu[pos + 4:pos + 20])
        major, minor = struct.unpack_from("<HH", pdu, pos + 20)
        pos += 24
        syntaxes = []
        for _ in range(n_ts):
            if pos + 20 > end:
                raise PduError("short transfer syntax")
            syntaxes.append((bytes(pdu[pos:pos + 16]), struct.unpack_from("<I", pdu, pos + 16)[0]))
            pos += 20
        contexts.append(ContextElem(ctx_id, abstract, (major, minor), syntaxes))
    return Bind(max_xmit, max_recv, group, contexts)


def bind_ack(ptype: int, call_id: int, max_xmit: int, max_recv: int, assoc_group: int,
             sec_addr: str, results: list[tuple[int, int, bytes]]) -> bytes:
    """bind_ack (ptype BIND_ACK) or alter_context_resp (ALTER_CONTEXT_RESP): results are
    (result, reason, transfer syntax 20 bytes). `sec_addr` "" gives a zero-length port spec
    (what alter_context_resp carries)."""
    body = bytearray(_BIND_FIXED.pack(max_xmit, max_recv, assoc_group))
    if sec_addr:
        addr = sec_addr.encode("ascii") + b"\x00"
        body += struct.pack("<H", len(addr)) + addr
    else:
        body += b"\x00\x00"
    body += bytes(-(HEADER_SIZE + len(body)) % 4)
    body += struct.pack("<BBH", len(results), 0, 0)
    for result, reason, syntax in results:
        body += struct.pack("<HH", result, reason) + syntax
    flags = PFC_FIRST_FRAG | PFC_LAST_FRAG
    return _header(ptype, flags, HEADER_SIZE + len(body), call_id) + body


def bind_nak(call_id: int, reason: int) -> bytes:
    """bind_nak with one supported version, 5.0."""
    body = struct.pack("<HBBB", reason, 1, RPC_VERS, RPC_VERS_MINOR)
    body += bytes(-(HEADER_SIZE + len(body)) % 4)
    return _header(BIND_NAK, PFC_FIRST_FRAG | PFC_LAST_FRAG, HEADER_SIZE + len(body),
                   call_id) + body


# -- request / response / fault ------------------------------------------------------------------

@dataclass
class RequestPdu:
    context_id: int
    opnum: int
    stub: bytes


def parse_request(pdu: bytes | memoryview, header: Header) -> RequestPdu:
    end = header.frag_length - (header.auth_length + 8 if header.auth_length else 0)
    start = HEADER_SIZE + _REQUEST_FIXED.size
    if header.flags & PFC_OBJECT_UUID:
        start += 16
    if end < start or end > len(pdu):
        raise PduError("short request")
    _, ctx_id, opnum = _REQUEST_FIXED.unpack_from(pdu, HEADER_SIZE)
    return RequestPdu(ctx_id, opnum, bytes(pdu[start:end]))


def response_fragments(call_id: int, context_id: int, stub: bytes, max_frag: int) -> list[bytes]:
    """A response cut into fragments of at most `max_frag` bytes; every fragment but the last
    carries a multiple of 8 stub bytes (C706 12.6.3.7: alloc_hint = stub bytes remaining)."""
    room = max(8, (max_frag - RESPONSE_HEADER_SIZE) & ~7)
    frags = []
    pos = 0
    total = len(stub)
    while True:
        chunk = stub[pos:pos + room]
        flags = 0
        if pos == 0:
            flags |= PFC_FIRST_FRAG
        if pos + len(chunk) >= total:
            flags |= PFC_LAST_FRAG
        frag = _header(RESPONSE, flags, RESPONSE_HEADER_SIZE + len(chunk), call_id) \
            + _RESPONSE_FIXED.pack(total - pos, context_id, 0, 0) + chunk
        frags.append(frag)
        pos += len(chunk)
        if flags & PFC_LAST_FRAG:
            return frags


def fault(call_id: int, context_id: int, status: int, did_not_execute: bool = True) -> bytes:
    """fault PDU (C706 12.6.4.7): alloc_hint, p_cont_id, cancel_count, reserved, status,
    reserved."""
    flags = PFC_FIRST_FRAG | PFC_LAST_FRAG
    if did_not_execute:
        flags |= PFC_DID_NOT_EXECUTE
    body = _RESPONSE_FIXED.pack(0, context_id, 0, 0) + struct.pack("<II", status, 0)
    return _header(FAULT, flags, HEADER_SIZE + len(body), call_id) + body


class RpcFault(Exception):
    """An operation ends in a fault PDU with this status (nca_op_rng_error, ...)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"fault 0x{status:08x}")
        self.status = status

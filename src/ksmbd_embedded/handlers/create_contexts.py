"""SMB2 CREATE contexts: the chained list in requests and responses (MS-SMB2 2.2.13.2, 2.2.14.2).

Each context: Next (u32, offset of the next context from this one, 0 for the last),
NameOffset (u16), NameLength (u16), Reserved (u16), DataOffset (u16), DataLength (u32), then
the name and the data, both at offsets from the start of the context. Every offset and length
is checked against the context's own extent; anything malformed is STATUS_INVALID_PARAMETER.

Answered now: MxAc (2.2.14.2.5 maximal access) and QFid (2.2.14.2.9 on-disk file id).
ExtA (2.2.13.2.1, a FILE_FULL_EA_INFORMATION list) is checked here (`ea_buffer`) and applied
by create.py to a created or overwritten file (fs/eas.py); STATUS_EAS_NOT_SUPPORTED where the
share's file system takes no user xattrs.
Durable handles (DHnQ, DH2Q) and leases (RqLs) are accepted and not answered: a client that
gets no response context knows it got no durable handle and no lease. A durable reconnect
(DHnC, DH2C) can only name a handle this server never granted: STATUS_OBJECT_NAME_NOT_FOUND
(3.3.5.9.7). A previous-version open (TWrp) names a snapshot that does not exist:
STATUS_OBJECT_NAME_NOT_FOUND. SecD (2.2.13.2.2, SMB2_CREATE_SD_BUFFER) is checked here
(`sd_buffer`: a malformed descriptor is STATUS_INVALID_SECURITY_DESCR, one with a SACL
STATUS_PRIVILEGE_NOT_HELD -- no token holds SeSecurityPrivilege) and becomes the security
descriptor of a created file (fs/acl.py `inherit`). Other contexts (AlSi, AAPL...) are ignored.
"""

from __future__ import annotations

import struct

from ..fs import eas
from ..status import STATUS_EAS_NOT_SUPPORTED, STATUS_INVALID_PARAMETER, SmbError

# Next, NameOffset, NameLength, Reserved, DataOffset, DataLength
CONTEXT_HEADER = struct.Struct("<IHHHHI")
_U32_PAIR = struct.Struct("<II")
_QFID = struct.Struct("<QQQQ")  # DiskFileId (16), VolumeId (16)

MXAC = b"MxAc"
QFID = b"QFid"
DHNQ = b"DHnQ"
DHNC = b"DHnC"
DH2Q = b"DH2Q"
DH2C = b"DH2C"
RQLS = b"RqLs"
TWRP = b"TWrp"
EXTA = b"ExtA"
SECD = b"SecD"
ALSI = b"AlSi"

MAX_CONTEXTS = 64  # far more than any client sends; bounds the work on hostile input


def parse_contexts(buf: memoryview) -> list[tuple[bytes, memoryview]]:
    """The (name, data) pairs of a create context chain (`buf` = exactly the chain)."""
    out: list[tuple[bytes, memoryview]] = []
    end = len(buf)
    pos = 0
    while True:
        if end - pos < CONTEXT_HEADER.size or len(out) >= MAX_CONTEXTS:
            raise SmbError(STATUS_INVALID_PARAMETER)
        nxt, name_off, name_len, _, data_off, data_len = CONTEXT_HEADER.unpack_from(buf, pos)
        if nxt:
            if nxt % 8 or nxt < CONTEXT_HEADER.size or pos + nxt > end - CONTEXT_HEADER.size:
                raise SmbError(STATUS_INVALID_PARAMETER)
            extent = nxt
        else:
            extent = end - pos
        if name_len == 0 or name_off < CONTEXT_HEADER.size or name_off + name_len > extent:
            raise SmbError(STATUS_INVALID_PARAMETER)
        if data_len:
            if data_off < CONTEXT_HEADER.size or data_off + data_len > extent:
                raise SmbError(STATUS_INVALID_PARAMETER)
            data = buf[pos + data_off:pos + data_off + data_len]
        else:
            data = buf[0:0]
        out.append((bytes(buf[pos + name_off:pos + name_off + name_len]), data))
        if not nxt:
            return out
        pos += nxt


def ea_buffer(data: memoryview, supported: bool) -> list:
    """SMB2_CREATE_EA_BUFFER (2.2.13.2.1): the EAs to set, checked whole before the CREATE
    touches the disk (malformed list, invalid or reserved names, oversized values)."""
    if not supported:
        raise SmbError(STATUS_EAS_NOT_SUPPORTED)
    ea_list = eas.parse_full_ea_list(data)
    eas.check_settable(ea_list)
    return ea_list


def sd_buffer(data: memoryview):
    """SMB2_CREATE_SD_BUFFER (2.2.13.2.2): the self-relative descriptor, parsed and checked."""
    from ..fs.acl import SE_SACL_PRESENT, InvalidDescriptor, parse_sd
    from ..status import STATUS_INVALID_SECURITY_DESCR, STATUS_PRIVILEGE_NOT_HELD
    try:
        sd = parse_sd(data)
    except InvalidDescriptor:
        raise SmbError(STATUS_INVALID_SECURITY_DESCR) from None
    if sd.control & SE_SACL_PRESENT:
        raise SmbError(STATUS_PRIVILEGE_NOT_HELD)
    return sd


def find(contexts: list[tuple[bytes, memoryview]], name: bytes) -> memoryview | None:
    for cname, data in contexts:
        if cname == name:
            return data
    return None


def encode_contexts(items: list[tuple[bytes, bytes]]) -> bytearray:
    """A response context chain: each context 8-aligned, name at 16, data 8-aligned after it."""
    out = bytearray()
    last = len(items) - 1
    for i, (name, data) in enumerate(items):
        start = len(out)
        name_off = CONTEXT_HEADER.size
        data_off = (name_off + len(name) + 7) & ~7 if data else 0
        size = (data_off + len(data)) if data else name_off + len(name)
        padded = (size + 7) & ~7
        out += bytes(padded)
        CONTEXT_HEADER.pack_into(out, start, padded if i != last else 0, name_off, len(name),
                                 0, data_off, len(data))
        out[start + name_off:start + name_off + len(name)] = name
        if data:
            out[start + data_off:start + data_off + len(data)] = data
        if i == last:
            del out[start + size:]  # no trailing padding after the last context
    return out


def maximal_access_response(maximal_access: int) -> tuple[bytes, bytes]:
    """MxAc response (2.2.14.2.5): QueryStatus STATUS_SUCCESS, MaximalAccess."""
    return MXAC, _U32_PAIR.pack(0, maximal_access)


def query_on_disk_id_response(st_ino: int, st_dev: int) -> tuple[bytes, bytes]:
    """QFid response (2.2.14.2.9): DiskFileId = inode, VolumeId = device, each 8+8 bytes."""
    return QFID, _QFID.pack(st_ino & 0xFFFFFFFFFFFFFFFF, 0, st_dev & 0xFFFFFFFFFFFFFFFF, 0)

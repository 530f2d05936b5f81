"""IOCTL (MS-SMB2 2.2.31, 2.2.32; 3.3.5.15, 3.3.5.15.2, 3.3.5.15.8, 3.3.5.15.12).

Only FSCTLs are served (Flags must be SMB2_0_IOCTL_IS_FSCTL, else STATUS_NOT_SUPPORTED).

Decisions
---------
* FSCTL_VALIDATE_NEGOTIATE_INFO (3.3.5.15.12) compares the request with what NEGOTIATE
  recorded: Dialects (the whole array, since we implement 3.1.1) and the greatest common
  dialect, ClientGuid, SecurityMode, Capabilities. Any mismatch, a 3.1.1 connection (which
  must never send it: the negotiate contexts protect 3.1.1), a too small MaxOutputResponse
  or a truncated input terminates the connection: `conn.close()` plus STATUS_ACCESS_DENIED,
  which the loop flushes before it drops the socket (a client seeing ACCESS_DENIED also
  disconnects, 3.2.5.14.12). On a match the answer is the server's Capabilities, ServerGuid,
  SecurityMode and the dialect.
* FSCTL_DFS_GET_REFERRALS(_EX): this server is not DFS capable, so STATUS_FS_DRIVER_REQUIRED
  (3.3.5.15.2, "IsDfsCapable is FALSE"); Samba answers the same without "host msdfs".
* FSCTL_QUERY_NETWORK_INTERFACE_INFO: STATUS_NOT_SUPPORTED until multichannel exists (the
  Linux client treats it as "no interfaces" and carries on).
* Named-pipe FSCTLs (PIPE_TRANSCEIVE, PIPE_PEEK, PIPE_WAIT): STATUS_NOT_SUPPORTED until IPC$
  pipes exist; PIPE_TRANSCEIVE is handed to ``op.pipe.transceive(data, max_output)`` ->
  (status, bytes) once a pipe object provides it.
* SMB2-server FSCTLs not implemented yet (copychunk, resume key, snapshots, read hash,
  resiliency): STATUS_NOT_SUPPORTED.
* Pass-through (3.3.5.15.8): an FSCTL that MS-FSCC 2.3 defines goes to the object store.
  FSCTL_GET_COMPRESSION answers COMPRESSION_FORMAT_NONE; FSCTL_SET_COMPRESSION accepts NONE
  and refuses compressing with STATUS_NOT_SUPPORTED (what Windows answers on a volume without
  compression, smbtorture smb2.ioctl.compress_notsup_*). The others are not supported by the
  object store yet: STATUS_INVALID_DEVICE_REQUEST (MS-FSA 2.1.5.10, what an object store
  answers for an FSCTL it does not implement). A code MS-FSCC does not define is
  STATUS_NOT_SUPPORTED.
"""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING

from .. import header as h
from ..status import (
    STATUS_BUFFER_TOO_SMALL,
    STATUS_ACCESS_DENIED, STATUS_FS_DRIVER_REQUIRED, STATUS_INVALID_DEVICE_REQUEST,
    STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED, STATUS_SUCCESS, SmbError,
)
from ..tree import FILE_WRITE_DATA
from .negotiate import DIALECTS, server_security_mode
from .read_write import check_credit_charge, max_transact_size

if TYPE_CHECKING:
    from ..request import Request

SMB2_0_IOCTL_IS_FSCTL = 0x00000001

# MS-SMB2 2.2.31 CtlCodes the SMB2 server itself handles
FSCTL_DFS_GET_REFERRALS = 0x00060194
FSCTL_DFS_GET_REFERRALS_EX = 0x000601B0
FSCTL_PIPE_PEEK = 0x0011400C
FSCTL_PIPE_WAIT = 0x00110018
FSCTL_PIPE_TRANSCEIVE = 0x0011C017
FSCTL_SRV_COPYCHUNK = 0x001440F2
FSCTL_SRV_COPYCHUNK_WRITE = 0x001480F2
FSCTL_SRV_ENUMERATE_SNAPSHOTS = 0x00144064
FSCTL_SRV_REQUEST_RESUME_KEY = 0x00140078
FSCTL_SRV_READ_HASH = 0x001441BB
FSCTL_LMR_REQUEST_RESILIENCY = 0x001401D4
FSCTL_QUERY_NETWORK_INTERFACE_INFO = 0x001401FC
FSCTL_VALIDATE_NEGOTIATE_INFO = 0x00140204

# MS-FSCC 2.3 FSCTLs (object store; the pass-through ones of 3.3.5.15.8)
FSCTL_CREATE_OR_GET_OBJECT_ID = 0x000900C0
FSCTL_DELETE_OBJECT_ID = 0x000900A0
FSCTL_DELETE_REPARSE_POINT = 0x000900AC
FSCTL_DUPLICATE_EXTENTS_TO_FILE = 0x00098344
FSCTL_DUPLICATE_EXTENTS_TO_FILE_EX = 0x000983E8
FSCTL_FILE_LEVEL_TRIM = 0x00098208
FSCTL_FILESYSTEM_GET_STATISTICS = 0x00090060
FSCTL_FIND_FILES_BY_SID = 0x0009008F
FSCTL_GET_COMPRESSION = 0x0009003C
FSCTL_GET_INTEGRITY_INFORMATION = 0x0009027C
FSCTL_GET_NTFS_VOLUME_DATA = 0x00090064
FSCTL_GET_REFS_VOLUME_DATA = 0x000902D8
FSCTL_GET_OBJECT_ID = 0x0009009C
FSCTL_GET_REPARSE_POINT = 0x000900A8
FSCTL_GET_RETRIEVAL_POINTER_COUNT = 0x0009042B
FSCTL_GET_RETRIEVAL_POINTERS = 0x00090073
FSCTL_GET_RETRIEVAL_POINTERS_AND_REFCOUNT = 0x000903D3
FSCTL_IS_PATHNAME_VALID = 0x0009002C
FSCTL_LMR_SET_LINK_TRACKING_INFORMATION = 0x001400EC
FSCTL_MARK_HANDLE = 0x000900FC
FSCTL_OFFLOAD_READ = 0x00094264
FSCTL_OFFLOAD_WRITE = 0x00098268
FSCTL_QUERY_ALLOCATED_RANGES = 0x000940CF
FSCTL_QUERY_FAT_BPB = 0x00090058
FSCTL_QUERY_FILE_REGIONS = 0x00090284
FSCTL_QUERY_ON_DISK_VOLUME_INFO = 0x0009013C
FSCTL_QUERY_SHARED_VIRTUAL_DISK_SUPPORT = 0x00090300
FSCTL_QUERY_SPARING_INFO = 0x00090138
FSCTL_READ_FILE_USN_DATA = 0x000900EB
FSCTL_RECALL_FILE = 0x00090117
FSCTL_REFS_STREAM_SNAPSHOT_MANAGEMENT = 0x00090440
FSCTL_SET_COMPRESSION = 0x0009C040
FSCTL_SET_DEFECT_MANAGEMENT = 0x00098134
FSCTL_SET_ENCRYPTION = 0x000900D7
FSCTL_SET_INTEGRITY_INFORMATION = 0x0009C280
FSCTL_SET_INTEGRITY_INFORMATION_EX = 0x00090380
FSCTL_SET_OBJECT_ID = 0x00090098
FSCTL_SET_OBJECT_ID_EXTENDED = 0x000900BC
FSCTL_SET_REPARSE_POINT = 0x000900A4
FSCTL_SET_SPARSE = 0x000900C4
FSCTL_SET_ZERO_DATA = 0x000980C8
FSCTL_SET_ZERO_ON_DEALLOCATION = 0x00090194
FSCTL_SIS_COPYFILE = 0x00090100
FSCTL_STORAGE_QOS_CONTROL = 0x00090350
FSCTL_SVHDX_SYNC_TUNNEL_REQUEST = 0x00090304
FSCTL_WRITE_USN_CLOSE_RECORD = 0x000900EF

FSCC_FSCTLS = frozenset(
    v for k, v in list(globals().items())
    if k.startswith("FSCTL_") and isinstance(v, int) and v >> 16 == 0x0009
) | {FSCTL_LMR_SET_LINK_TRACKING_INFORMATION}

# 3.3.5.15: these take FileId { all ones } instead of an open
_NO_OPEN = frozenset((FSCTL_DFS_GET_REFERRALS, FSCTL_DFS_GET_REFERRALS_EX,
                      FSCTL_QUERY_NETWORK_INTERFACE_INFO, FSCTL_VALIDATE_NEGOTIATE_INFO,
                      FSCTL_PIPE_WAIT))
_SERVER_UNSUPPORTED = frozenset((FSCTL_SRV_COPYCHUNK, FSCTL_SRV_COPYCHUNK_WRITE,
                                 FSCTL_SRV_ENUMERATE_SNAPSHOTS, FSCTL_SRV_REQUEST_RESUME_KEY,
                                 FSCTL_SRV_READ_HASH, FSCTL_LMR_REQUEST_RESILIENCY,
                                 FSCTL_PIPE_PEEK))

_ALL_ONES = 0xFFFFFFFFFFFFFFFF

# 2.2.31: StructureSize, Reserved, CtlCode, FileId (2 x Q), InputOffset, InputCount,
# MaxInputResponse, OutputOffset, OutputCount, MaxOutputResponse, Flags, Reserved2
_REQUEST = struct.Struct("<HHIQQIIIIIIII")
# 2.2.32: StructureSize 49, Reserved, CtlCode, FileId (2 x Q), InputOffset, InputCount,
# OutputOffset, OutputCount, Flags, Reserved2
_RESPONSE = struct.Struct("<HHIQQIIIIII")
_BUFFER_OFFSET = h.HEADER_SIZE + _RESPONSE.size  # 112, already 8-aligned

# 2.2.31.4 VALIDATE_NEGOTIATE_INFO request: Capabilities, Guid, SecurityMode, DialectCount
_VNEG_REQUEST = struct.Struct("<I16sHH")
# 2.2.32.6 VALIDATE_NEGOTIATE_INFO response: Capabilities, Guid, SecurityMode, Dialect
_VNEG_RESPONSE = struct.Struct("<I16sHH")


def handle_ioctl(req: Request):
    (_, _, ctl_code, fid_p, fid_v, in_off, in_count, max_in, _out_off, out_count, max_out,
     flags, _) = _REQUEST.unpack_from(req.view, h.HEADER_SIZE)
    # 3.3.5.15
    if flags != SMB2_0_IOCTL_IS_FSCTL:
        raise SmbError(STATUS_NOT_SUPPORTED)
    op = None
    if ctl_code in _NO_OPEN:
        if fid_p != _ALL_ONES or fid_v != _ALL_ONES:
            raise SmbError(STATUS_INVALID_PARAMETER)
    else:
        op = req.open_for(fid_p, fid_v)
    limit = max_transact_size(req.conn)
    if in_count > limit or out_count > limit or max_in > limit or max_out > limit:
        raise SmbError(STATUS_INVALID_PARAMETER)
    check_credit_charge(req, max(in_count + out_count, max_in + max_out))
    data = req.data(in_off, in_count)

    if ctl_code == FSCTL_VALIDATE_NEGOTIATE_INFO:
        return _validate_negotiate(req, data, max_out)
    if ctl_code in (FSCTL_DFS_GET_REFERRALS, FSCTL_DFS_GET_REFERRALS_EX):
        raise SmbError(STATUS_FS_DRIVER_REQUIRED)
    if ctl_code == FSCTL_QUERY_NETWORK_INTERFACE_INFO:
        raise SmbError(STATUS_NOT_SUPPORTED)
    if ctl_code == FSCTL_PIPE_TRANSCEIVE:
        return _pipe_transceive(op, ctl_code, fid_p, fid_v, data, max_out)
    if ctl_code == FSCTL_PIPE_WAIT or ctl_code in _SERVER_UNSUPPORTED:
        raise SmbError(STATUS_NOT_SUPPORTED)
    if ctl_code == FSCTL_GET_COMPRESSION:
        return _get_compression(op, fid_p, fid_v, max_out)
    if ctl_code == FSCTL_SET_COMPRESSION:
        return _set_compression(op, fid_p, fid_v, data)
    if ctl_code in (FSCTL_CREATE_OR_GET_OBJECT_ID, FSCTL_GET_OBJECT_ID):
        return _object_id(op, ctl_code, fid_p, fid_v, max_out)
    if ctl_code in FSCC_FSCTLS:
        raise SmbError(STATUS_INVALID_DEVICE_REQUEST)  # 3.3.5.15.8 -> object store
    raise SmbError(STATUS_NOT_SUPPORTED)


def ioctl_response(ctl_code: int, fid_p: int, fid_v: int, output: bytes, status=STATUS_SUCCESS):
    """(status, body) of an IOCTL response with no input echoed and `output` at 112."""
    n = len(output)
    body = _RESPONSE.pack(49, 0, ctl_code, fid_p, fid_v, _BUFFER_OFFSET, 0,
                          _BUFFER_OFFSET if n else 0, n, 0, 0)
    return status, [body, output] if n else body + b"\x00"


# -- FSCTL_VALIDATE_NEGOTIATE_INFO (3.3.5.15.12) --------------------------------------------------

def _validate_negotiate(req: Request, data: memoryview, max_out: int):
    conn = req.conn
    reason = _validate_negotiate_mismatch(conn, data, max_out)
    if reason:
        conn.close(f"validate negotiate: {reason}")
        raise SmbError(STATUS_ACCESS_DENIED)
    out = _VNEG_RESPONSE.pack(conn.server_capabilities, conn.server.server_guid,
                              server_security_mode(conn), conn.dialect)
    return ioctl_response(FSCTL_VALIDATE_NEGOTIATE_INFO, _ALL_ONES, _ALL_ONES, out)


def _validate_negotiate_mismatch(conn, data: memoryview, max_out: int) -> str:
    """Why the request does not validate the negotiation, or "" when it does."""
    if conn.dialect == h.SMB3_11:
        return "sent on a 3.1.1 connection"
    if max_out < _VNEG_RESPONSE.size:
        return "MaxOutputResponse too small"
    if len(data) < _VNEG_REQUEST.size:
        return "input too short"
    caps, guid, sec_mode, count = _VNEG_REQUEST.unpack_from(data, 0)
    if len(data) < _VNEG_REQUEST.size + 2 * count:
        return "input too short for its dialects"
    dialects = struct.unpack_from(f"<{count}H", data, _VNEG_REQUEST.size)
    if dialects != tuple(conn.client_dialects):
        return "dialects differ"
    g = conn.server.config.globals
    low = h.DIALECT_BY_NAME[g.server_min_protocol]
    high = h.DIALECT_BY_NAME[g.server_max_protocol]
    common = [d for d in DIALECTS if d in dialects and low <= d <= high]
    if not common or common[-1] != conn.dialect:
        return "dialect differs"
    if guid != conn.client_guid:
        return "client guid differs"
    if sec_mode != conn.client_security_mode:
        return "security mode differs"
    if caps != conn.client_capabilities:
        return "capabilities differ"
    return ""


# -- compression (MS-FSA 2.1.5.10.7, 2.1.5.10.29) ----------------------------------------------

COMPRESSION_FORMAT_NONE = 0x0000
COMPRESSION_FORMAT_DEFAULT = 0x0001
COMPRESSION_FORMAT_LZNT1 = 0x0002
_U16 = struct.Struct("<H")


def _get_compression(op, fid_p: int, fid_v: int, max_out: int):
    """Nothing here is compressed: CompressionState COMPRESSION_FORMAT_NONE, any access."""
    if op.pipe is not None or op.fd < 0:
        raise SmbError(STATUS_INVALID_DEVICE_REQUEST)
    if max_out < _U16.size:
        raise SmbError(STATUS_INVALID_PARAMETER)
    return ioctl_response(FSCTL_GET_COMPRESSION, fid_p, fid_v,
                          _U16.pack(COMPRESSION_FORMAT_NONE))


def _set_compression(op, fid_p: int, fid_v: int, data: memoryview):
    """No file system here compresses (no FILE_FILE_COMPRESSION): turning compression off is
    a success with nothing to do, turning it on is STATUS_NOT_SUPPORTED."""
    if op.pipe is not None or op.fd < 0:
        raise SmbError(STATUS_INVALID_DEVICE_REQUEST)
    if len(data) < _U16.size:
        raise SmbError(STATUS_INVALID_PARAMETER)
    fmt = _U16.unpack_from(data, 0)[0]
    if fmt not in (COMPRESSION_FORMAT_NONE, COMPRESSION_FORMAT_DEFAULT,
                   COMPRESSION_FORMAT_LZNT1):
        raise SmbError(STATUS_INVALID_PARAMETER)
    if not op.granted_access & FILE_WRITE_DATA or not op.tree.writable:
        raise SmbError(STATUS_ACCESS_DENIED)
    if fmt != COMPRESSION_FORMAT_NONE:
        raise SmbError(STATUS_NOT_SUPPORTED)
    return ioctl_response(FSCTL_SET_COMPRESSION, fid_p, fid_v, b"")


# -- object ids (MS-FSCC 2.3.7 / 2.3.21, FILE_OBJECTID_BUFFER 2.1.3.1) ---------------------------

_OBJECTID_BUFFER_SIZE = 64  # ObjectId, BirthVolumeId, BirthObjectId, DomainId: 16 bytes each


def _object_id(op, ctl_code: int, fid_p: int, fid_v: int, max_out: int):
    """Object ids are not stored: each file's id is derived from its identity (st_ino, st_dev),
    so it is stable for the file's life and the same from every open."""
    if op.pipe is not None or op.fd < 0:
        raise SmbError(STATUS_INVALID_DEVICE_REQUEST)
    if max_out < _OBJECTID_BUFFER_SIZE:
        raise SmbError(STATUS_BUFFER_TOO_SMALL)
    st = os.fstat(op.fd)
    object_id = struct.pack("<QQ", st.st_ino, st.st_dev)
    volume = struct.pack("<QQ", st.st_dev, 0)
    return ioctl_response(ctl_code, fid_p, fid_v, object_id + volume + object_id + bytes(16))


# -- named pipes ----------------------------------------------------------------------------------

def _pipe_transceive(op, ctl_code: int, fid_p: int, fid_v: int, data: memoryview,
                     max_out: int):
    pipe = op.pipe if op is not None else None
    transceive = getattr(pipe, "transceive", None)
    if transceive is None:
        raise SmbError(STATUS_NOT_SUPPORTED)  # IPC$ pipes come later
    status, output = transceive(data, max_out)
    return ioctl_response(ctl_code, fid_p, fid_v, bytes(output[:max_out]), status)

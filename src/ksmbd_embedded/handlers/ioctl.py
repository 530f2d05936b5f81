"""IOCTL (MS-SMB2 2.2.31, 2.2.32; 3.3.5.15 and its subsections).

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
* FSCTL_QUERY_NETWORK_INTERFACE_INFO (3.3.5.15.11): on SMB 3.x, the interfaces and addresses
  the server listens on (fs/net_interfaces.py: up, not loopback, no IPv6 link-local; link
  speed from sysfs; Capability 0, no RSS/RDMA). The spec lets a server without
  SMB2_GLOBAL_CAP_MULTI_CHANNEL fail it ("MAY ... STATUS_NOT_SUPPORTED") but does not
  require it, so the list is answered; we never announce that capability, and clients
  (Windows, Linux) open no further channels without it. SMB 2.x: STATUS_NOT_SUPPORTED. A
  list longer than MaxOutputResponse is STATUS_BUFFER_TOO_SMALL (smbtorture bug14788).
* FSCTL_PIPE_TRANSCEIVE (3.3.5.15.3) on an IPC$ pipe: one DCE/RPC write + read through
  ``op.pipe.transceive`` (rpc/pipe.py). A response longer than MaxOutputResponse returns its
  first MaxOutputResponse bytes with STATUS_BUFFER_OVERFLOW; the rest stays queued and is
  read with READ (3.3.5.12); another transceive meanwhile is STATUS_PIPE_BUSY, a request
  that leaves no response to read STATUS_PIPE_EMPTY, both SMB2 ERROR responses (3.3.4.4:
  every IOCTL failure is, see `ioctl_response`). On a file:
  STATUS_NOT_SUPPORTED (not a named pipe share). PIPE_PEEK and PIPE_WAIT: NOT_SUPPORTED.
* FSCTL_SRV_REQUEST_RESUME_KEY / FSCTL_SRV_COPYCHUNK(_WRITE) (3.3.5.15.5, 3.3.5.15.6;
  fs/copychunk.py): the key is 24 opaque bytes naming the source open, honoured for the
  session that owns that open only. Limits 256 chunks, 1 MiB per chunk, 16 MiB per request;
  a request over them (or a zero-length chunk, or a truncated one) is STATUS_INVALID_PARAMETER
  with the limits in the response. Access: the source needs FILE_READ_DATA or FILE_EXECUTE
  (as READ), the target FILE_WRITE_DATA, and COPYCHUNK also FILE_READ_DATA on the target.
  Chunks are copied one by one, each checked like a READ of the source and a WRITE of the
  target: byte-range locks of other opens (STATUS_FILE_LOCK_CONFLICT), a source range past
  the end of file (STATUS_INVALID_VIEW_SIZE, what Windows answers), the WRITE offset limits;
  a failure answers the error with the chunks and bytes copied before it (3.3.5.15.6.1).
  Data moves with os.copy_file_range, else pread/pwrite; a deferred end of file on FAT-like
  shares (fs/deferred_size.py) is honoured on both sides, named streams are copied too.
* Sparse files (fs/sparse.py; only where the share's file system has holes,
  `FsCaps.sparse`, which is also where FileFsAttributeInformation says
  FILE_SUPPORTS_SPARSE_FILES): FSCTL_SET_SPARSE keeps the flag with the DOS attributes
  (fs/dos_attrs.py; FILE_ATTRIBUTE_SPARSE_FILE is reported from it, SetSparse FALSE or a
  missing buffer work as MS-FSCC says); FSCTL_SET_ZERO_DATA punches a hole in a sparse file
  and zeroes (allocated) otherwise, never past the end of file, and needs FILE_WRITE_DATA and
  no conflicting lock; FSCTL_QUERY_ALLOCATED_RANGES uses SEEK_DATA/SEEK_HOLE in 64 KiB units,
  STATUS_BUFFER_TOO_SMALL without room for one range, STATUS_BUFFER_OVERFLOW with the ranges
  that fit. A named-stream open's SET_SPARSE marks the file; its ranges are the stream's.
* FSCTL_GET_REPARSE_POINT (MS-FSA 2.1.5.10.14; fs/reparse.py): only an Open of a symlink
  itself (CREATE with FILE_OPEN_REPARSE_POINT on a link) is a reparse point; it gets the
  symbolic link reparse data buffer (MS-FSCC 2.1.2.4, IO_REPARSE_TAG_SYMLINK, always
  SYMLINK_FLAG_RELATIVE: absolute in-share targets are made relative to the link), or
  STATUS_ACCESS_DENIED for a target outside the share (its path is never revealed). Every
  other Open: STATUS_NOT_A_REPARSE_POINT. MaxOutputResponse below the 8-byte
  REPARSE_DATA_BUFFER header (MS-FSCC 2.1.2.2, the structure's fixed part) is
  STATUS_BUFFER_TOO_SMALL; above it but short of the whole buffer, the first
  MaxOutputResponse bytes with STATUS_BUFFER_OVERFLOW (ReparseDataLength still the full
  length). No access right is needed (MS-FSA names none).
* FSCTL_SET_REPARSE_POINT / FSCTL_DELETE_REPARSE_POINT: not implemented (creating links
  through SMB is optional, MS-FSA 2.1.5.10.37): STATUS_INVALID_DEVICE_REQUEST, as any
  object-store FSCTL we do not implement (below).
* SMB2-server FSCTLs not implemented (snapshots, read hash, resiliency): STATUS_NOT_SUPPORTED.
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
from ..fs import byte_locks, copychunk, deferred_size, net_interfaces, reparse, sparse, streams
from ..fs.dos_attrs import is_sparse, set_sparse
from ..fs.errno_status import oserror_to_status
from ..fs.fs_caps import caps_for
from ..status import (
    STATUS_ACCESS_DENIED, STATUS_BUFFER_OVERFLOW, STATUS_BUFFER_TOO_SMALL,
    STATUS_FS_DRIVER_REQUIRED, STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_PARAMETER,
    STATUS_MEDIA_WRITE_PROTECTED, STATUS_NOT_A_REPARSE_POINT, STATUS_NOT_SUPPORTED,
    STATUS_OBJECT_NAME_NOT_FOUND, STATUS_SUCCESS, SmbError,
)
from ..tree import (
    FILE_APPEND_DATA, FILE_EXECUTE, FILE_READ_DATA, FILE_WRITE_ATTRIBUTES, FILE_WRITE_DATA,
)
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
_SERVER_UNSUPPORTED = frozenset((FSCTL_SRV_ENUMERATE_SNAPSHOTS, FSCTL_SRV_READ_HASH,
                                 FSCTL_LMR_REQUEST_RESILIENCY, FSCTL_PIPE_PEEK))

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
        return _network_interfaces(req, max_out)
    if ctl_code == FSCTL_PIPE_TRANSCEIVE:
        return _pipe_transceive(op, ctl_code, fid_p, fid_v, data, max_out)
    if ctl_code == FSCTL_PIPE_WAIT or ctl_code in _SERVER_UNSUPPORTED:
        raise SmbError(STATUS_NOT_SUPPORTED)
    if ctl_code == FSCTL_SRV_REQUEST_RESUME_KEY:
        return _request_resume_key(req, op, fid_p, fid_v, max_out)
    if ctl_code in (FSCTL_SRV_COPYCHUNK, FSCTL_SRV_COPYCHUNK_WRITE):
        return _copychunk(req, op, ctl_code, fid_p, fid_v, data, max_out)
    if ctl_code == FSCTL_SET_SPARSE:
        return _set_sparse(op, fid_p, fid_v, data)
    if ctl_code == FSCTL_SET_ZERO_DATA:
        return _set_zero_data(req, op, fid_p, fid_v, data)
    if ctl_code == FSCTL_QUERY_ALLOCATED_RANGES:
        return _query_allocated_ranges(req, op, fid_p, fid_v, data, max_out)
    if ctl_code == FSCTL_GET_REPARSE_POINT:
        return _get_reparse_point(op, fid_p, fid_v, max_out)
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
    """(status, body) of an IOCTL response with no input echoed and `output` at 112.

    A failure raises SmbError instead: MS-SMB2 3.3.4.4 answers it with the SMB2 ERROR
    response. Not failures, so answered with this body: STATUS_BUFFER_OVERFLOW (3.3.4.4
    names PIPE_TRANSCEIVE, PIPE_PEEK, DFS_GET_REFERRALS; for the object-store FSCTLs that
    answer it here, GET_REPARSE_POINT and QUERY_ALLOCATED_RANGES, MS-FSCC 2.2 makes it a
    warning with "as much data as it reasonably can", so the data is kept too) and
    COPYCHUNK's statuses with the SRV_COPYCHUNK_RESPONSE (the limits with
    STATUS_INVALID_PARAMETER, 3.3.5.15.6.2; the chunks copied before an error,
    3.3.5.15.6.1)."""
    if status != STATUS_SUCCESS and status != STATUS_BUFFER_OVERFLOW \
            and ctl_code not in (FSCTL_SRV_COPYCHUNK, FSCTL_SRV_COPYCHUNK_WRITE):
        raise SmbError(status)
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


# -- reparse points (MS-FSA 2.1.5.10.14; fs/reparse.py) -----------------------------------------

def _get_reparse_point(op, fid_p: int, fid_v: int, max_out: int):
    _data_file(op)
    if reparse.link_of(op) is None:
        raise SmbError(STATUS_NOT_A_REPARSE_POINT)  # phase 1
    if max_out < reparse.REPARSE_HEADER.size:
        raise SmbError(STATUS_BUFFER_TOO_SMALL)  # phase 2
    out = reparse.read_reparse_buffer(op)
    if len(out) > max_out:  # phase 3: as much as fits
        return ioctl_response(FSCTL_GET_REPARSE_POINT, fid_p, fid_v, out[:max_out],
                              STATUS_BUFFER_OVERFLOW)
    return ioctl_response(FSCTL_GET_REPARSE_POINT, fid_p, fid_v, out)


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


# -- server-side copy (3.3.5.15.5, 3.3.5.15.6; fs/copychunk.py) ----------------------------------

STATUS_INVALID_VIEW_SIZE = 0xC000001F  # MS-ERREF: what Windows answers for a source range
#                                         past the end of file (smbtorture copy_chunk_src_exceed)
_MAX_OFFSET = 0x7FFFFFFFFFFFFFFF
_MAX_WRITE_END = 0xFFFFFFF0000  # as WRITE (read_write.py)
_RESUME_KEY_RESPONSE = 32  # 2.2.32.3: ResumeKey (24), ContextLength (4) = 0, Context (4)


def _data_file(op) -> None:
    """An open of a regular file (not a pipe): what the object-store FSCTLs work on."""
    if op.pipe is not None or op.fd < 0:
        raise SmbError(STATUS_INVALID_DEVICE_REQUEST)


def _data_size(server, op) -> int:
    """The end of file the client sees: a named stream's size, or the file's with a deferred
    end of file counted (fs/deferred_size.py)."""
    stream = streams.stream_of(op)
    if stream is not None:
        return streams.stream_size(op.fd, stream.name)
    return deferred_size.effective_size(server, op.file_key, os.fstat(op.fd).st_size)


def _request_resume_key(req: Request, op, fid_p: int, fid_v: int, max_out: int):
    _data_file(op)
    if max_out < _RESUME_KEY_RESPONSE - 4:
        raise SmbError(STATUS_INVALID_PARAMETER)
    out = copychunk.resume_key(req.server, op) + bytes(4 if max_out < _RESUME_KEY_RESPONSE
                                                       else 8)
    return ioctl_response(FSCTL_SRV_REQUEST_RESUME_KEY, fid_p, fid_v, out)


def _copychunk(req: Request, op, ctl_code: int, fid_p: int, fid_v: int, data: memoryview,
               max_out: int):
    server = req.server
    _data_file(op)
    key = copychunk.key_of(data)
    src = copychunk.open_for_key(server, req.session, key) if key is not None else None
    if key is not None and src is None:
        raise SmbError(STATUS_OBJECT_NAME_NOT_FOUND)
    if max_out < copychunk.RESPONSE.size:
        raise SmbError(STATUS_INVALID_PARAMETER)
    parsed = copychunk.parse_copy(data)
    if parsed is None or src is None:  # 3.3.5.15.6.2: answer with the limits
        return ioctl_response(ctl_code, fid_p, fid_v, copychunk.LIMITS_RESPONSE,
                              STATUS_INVALID_PARAMETER)
    _data_file(src)
    if op.is_dir or src.is_dir:
        raise SmbError(STATUS_INVALID_DEVICE_REQUEST)
    needed = FILE_WRITE_DATA | (FILE_READ_DATA if ctl_code == FSCTL_SRV_COPYCHUNK else 0)
    # the source is read as READ would: FILE_READ_DATA or FILE_EXECUTE (smbtorture
    # copy_chunk_bad_access accepts an execute-only source, as Windows does)
    if op.granted_access & needed != needed or \
            not src.granted_access & (FILE_READ_DATA | FILE_EXECUTE):
        raise SmbError(STATUS_ACCESS_DENIED)
    chunks_written = total = 0
    deferred = deferred_size.table(server) is not None
    try:
        for src_off, dst_off, length in parsed[1]:
            if src_off + length > _MAX_OFFSET or dst_off + length > _MAX_WRITE_END:
                raise SmbError(STATUS_INVALID_PARAMETER)
            if src_off + length > _data_size(server, src):
                raise SmbError(STATUS_INVALID_VIEW_SIZE)
            # MS-FSA 2.1.4.10, as READ and WRITE would (Windows 2012+ copies with them)
            byte_locks.check_io(server, src, src_off, length, False)
            byte_locks.check_io(server, op, dst_off, length, True)
            copychunk.copy_between(src, op, src_off, dst_off, length)
            if deferred:
                deferred_size.written(server, op.file_key, dst_off + length)
            chunks_written += 1
            total += length
    except (SmbError, OSError) as exc:
        # 3.3.5.15.6.1: the error with what was copied before it
        status = exc.status if isinstance(exc, SmbError) else oserror_to_status(exc, "COPYCHUNK")
        return ioctl_response(ctl_code, fid_p, fid_v,
                              copychunk.RESPONSE.pack(chunks_written, 0, total), status)
    return ioctl_response(ctl_code, fid_p, fid_v, copychunk.RESPONSE.pack(chunks_written, 0,
                                                                          total))


# -- sparse files (MS-FSA 2.1.5.10.22, .38, .39; fs/sparse.py) -----------------------------------

_RANGE = struct.Struct("<qq")  # FILE_ALLOCATED_RANGE_BUFFER / FILE_ZERO_DATA_INFORMATION


def _sparse_capable(op) -> bool:
    return bool(op.tree.root) and caps_for(op.tree.root).sparse


def _check_writable_volume(op) -> None:
    if not op.tree.writable or (op.tree.root and caps_for(op.tree.root).read_only):
        raise SmbError(STATUS_MEDIA_WRITE_PROTECTED)


def _set_sparse(op, fid_p: int, fid_v: int, data: memoryview):
    """FSCTL_SET_SPARSE (MS-FSA 2.1.5.10.38): the flag lives with the DOS attributes. No
    input buffer means SetSparse TRUE; a longer one than FILE_SET_SPARSE_BUFFER is accepted.
    Clearing the flag does not allocate the file's holes: reads give the same zeros and
    QUERY_ALLOCATED_RANGES reports a non-sparse file fully allocated anyway."""
    _data_file(op)
    if not _sparse_capable(op):
        raise SmbError(STATUS_INVALID_DEVICE_REQUEST)  # FAT-like: no sparse files
    if op.is_dir:
        raise SmbError(STATUS_INVALID_PARAMETER)
    _check_writable_volume(op)
    # MS-FSA names FILE_WRITE_DATA or FILE_WRITE_ATTRIBUTES; Windows also takes
    # FILE_APPEND_DATA alone (smbtorture smb2.ioctl.sparse_perms)
    if not op.granted_access & (FILE_WRITE_DATA | FILE_WRITE_ATTRIBUTES | FILE_APPEND_DATA):
        raise SmbError(STATUS_ACCESS_DENIED)
    on = len(data) == 0 or data[0] != 0
    try:
        if not set_sparse(op.fd, on):
            raise SmbError(STATUS_INVALID_DEVICE_REQUEST)  # no user xattrs to keep it in
    except OSError as exc:
        raise SmbError(oserror_to_status(exc, "SET_SPARSE")) from None
    return ioctl_response(FSCTL_SET_SPARSE, fid_p, fid_v, b"")


def _set_zero_data(req: Request, op, fid_p: int, fid_v: int, data: memoryview):
    """FSCTL_SET_ZERO_DATA (MS-FSA 2.1.5.10.39): a hole in sparse files, zeros otherwise;
    never past the end of file. Needs FILE_WRITE_DATA and no conflicting byte-range lock."""
    _data_file(op)
    if len(data) < _RANGE.size:
        raise SmbError(STATUS_INVALID_PARAMETER)
    start, end = _RANGE.unpack_from(data, 0)
    if start < 0 or end < 0 or start > end or op.is_dir:
        raise SmbError(STATUS_INVALID_PARAMETER)
    _check_writable_volume(op)
    if not op.granted_access & FILE_WRITE_DATA:
        raise SmbError(STATUS_ACCESS_DENIED)
    byte_locks.check_io(req.server, op, start, end - start, True)
    try:
        stream = streams.stream_of(op)
        if stream is not None:
            size = streams.stream_size(op.fd, stream.name)
            if start < size:
                streams.write_at(op.fd, stream.name, start, bytes(min(end, size) - start))
        else:
            sparse.zero_range(op.fd, start, end, _sparse_capable(op) and is_sparse(op.fd))
    except OSError as exc:
        raise SmbError(oserror_to_status(exc, "SET_ZERO_DATA")) from None
    return ioctl_response(FSCTL_SET_ZERO_DATA, fid_p, fid_v, b"")


def _query_allocated_ranges(req: Request, op, fid_p: int, fid_v: int, data: memoryview,
                            max_out: int):
    """FSCTL_QUERY_ALLOCATED_RANGES (MS-FSA 2.1.5.10.22; MS-FSCC 2.3.51, 2.3.52). No room
    for even one range when there is one: STATUS_BUFFER_TOO_SMALL; more ranges than fit:
    as many as fit with STATUS_BUFFER_OVERFLOW."""
    _data_file(op)
    if len(data) < _RANGE.size:
        raise SmbError(STATUS_INVALID_PARAMETER)
    offset, length = _RANGE.unpack_from(data, 0)
    if offset < 0 or length < 0 or offset + length > _MAX_OFFSET or op.is_dir:
        raise SmbError(STATUS_INVALID_PARAMETER)
    if not op.granted_access & FILE_READ_DATA:
        raise SmbError(STATUS_ACCESS_DENIED)
    limit = max_out // _RANGE.size
    try:
        size = _data_size(req.server, op)
        sparse_file = streams.stream_of(op) is None and _sparse_capable(op) and is_sparse(op.fd)
        ranges = sparse.allocated_ranges(op.fd, offset, length, size, sparse_file, limit)
    except OSError as exc:
        raise SmbError(oserror_to_status(exc, "QUERY_ALLOCATED_RANGES")) from None
    if ranges and limit == 0:
        raise SmbError(STATUS_BUFFER_TOO_SMALL)
    status = STATUS_BUFFER_OVERFLOW if len(ranges) > limit else STATUS_SUCCESS
    out = b"".join(_RANGE.pack(o, n) for o, n in ranges[:limit])
    return ioctl_response(FSCTL_QUERY_ALLOCATED_RANGES, fid_p, fid_v, out, status)


# -- FSCTL_QUERY_NETWORK_INTERFACE_INFO (3.3.5.15.11; fs/net_interfaces.py) ---------------------

def _network_interfaces(req: Request, max_out: int):
    """SMB 3.x only (the section applies to 3.x; 2.x gets STATUS_NOT_SUPPORTED). The server
    does not offer SMB2_GLOBAL_CAP_MULTI_CHANNEL, which makes STATUS_NOT_SUPPORTED allowed
    ("MAY") but not required: the list is answered anyway, and without the capability no
    client opens further channels from it (Windows and Linux check it, MS-SMB2 3.2.5.2)."""
    dialect = req.conn.dialect
    if dialect < h.SMB3_00 or dialect == h.SMB2_WILDCARD:
        raise SmbError(STATUS_NOT_SUPPORTED)
    out = net_interfaces.encode(net_interfaces.served_interfaces(
        tuple(req.server.config.globals.listen)))
    if len(out) > max_out:
        raise SmbError(STATUS_BUFFER_TOO_SMALL)
    return ioctl_response(FSCTL_QUERY_NETWORK_INTERFACE_INFO, _ALL_ONES, _ALL_ONES, out)

"""QUERY_INFO (MS-SMB2 2.2.37, 2.2.38; 3.3.5.20, 3.3.5.20.1-4).

File classes are the MS-FSCC 2.4 encoders of `fs.file_info` over a `FileMeta` read from the
open's descriptor (so a renamed or unlinked file still answers); file system classes are the
MS-FSCC 2.5 encoders of `fs.fs_info` over ``fstatvfs``; security descriptors are synthesized
from owner, group and mode by `fs.security`. Quotas are not supported.

Decisions
---------
* Class validity follows 3.3.5.20.1/.2: a class listed in 2.2.37 is served (or
  STATUS_NOT_SUPPORTED where the store lacks it: pipes), one only
  documented in MS-FSCC is STATUS_NOT_SUPPORTED, anything else STATUS_INVALID_INFO_CLASS.
  FileNameInformation (9, "LOCAL" in MS-FSCC) is served anyway, as Samba does: harmless, and
  some clients ask.
* An OutputBufferLength below the structure's C sizeof (FILE_FIXED_SIZES, FS_FIXED_SIZES) is
  STATUS_INFO_LENGTH_MISMATCH; the classes ending in a variable part (All, Name,
  AlternateName, Stream, NormalizedName, FsVolume, FsAttribute) are truncated beyond it with
  STATUS_BUFFER_OVERFLOW.
  Security descriptors are never truncated: STATUS_BUFFER_TOO_SMALL with the size needed.
  Both carry the error data 2.2.2 asks for (an error context in 3.1.1).
* Names: FileAllInformation and FileNameInformation give the path from the share root with a
  leading backslash ("\\dir\\file", "\\" for the root), FileNormalizedNameInformation the same
  path without it. FileAlternateNameInformation gives `short_names.short_name` of the last
  component (STATUS_OBJECT_NAME_NOT_FOUND for the share root, which has no name).
  FileFullEaInformation lists the EAs (fs/eas.py): all of them, or those the input buffer's
  FILE_GET_EA_INFORMATION list names (a missing one with an empty value); as many whole
  entries as fit (STATUS_BUFFER_OVERFLOW when some did not, STATUS_BUFFER_TOO_SMALL when none
  did), one with SL_RETURN_SINGLE_ENTRY; no EAs at all is STATUS_NO_EAS_ON_FILE. The scan
  always starts at the first EA (no per-open EA index is kept). EaSize in FileEaInformation
  and FileAllInformation is the size of that whole list.
* An Open of a symlink itself (CREATE with FILE_OPEN_REPARSE_POINT, fs/reparse.py) reports
  FILE_ATTRIBUTE_REPARSE_POINT (plus DIRECTORY for a link to an in-share directory), size 0,
  and IO_REPARSE_TAG_SYMLINK in FileAttributeTagInformation; no other Open has a tag.
* Named streams (fs/streams.py): an open of a stream reports the file's metadata with the
  stream's size; FileStreamInformation lists "::$DATA" (files only) and every named stream.
* FilePositionInformation returns Open.position, which SET_INFO and synchronous-mode reads and
  writes keep (3.3.5.20.1 says SHOULD return 0; the value a client set is more useful).
* Volume identity: VolumeSerialNumber is a CRC-32 of st_dev (stable while the disk stays on the
  same device numbers), the label is the share name, the object id an MD5 of the share root.
  FileFsVolumeInformation is zero-padded to 24 bytes (the C sizeof) when the label is shorter
  than 3 characters: smbclient's `volume` refuses anything shorter. FileFsControlInformation
  says "no quotas": flags 0, no default threshold or limit.
* FileFsAttributeInformation: FILE_CASE_PRESERVED_NAMES | FILE_UNICODE_ON_DISK, plus
  FILE_NAMED_STREAMS | FILE_SUPPORTS_EXTENDED_ATTRIBUTES | FILE_PERSISTENT_ACLS where the file
  system takes user xattrs (`streams.supported`; stored security descriptors need them too),
  FILE_SUPPORTS_SPARSE_FILES where the file system has real holes (`fs_caps`; not FAT/exFAT),
  FILE_SUPPORTS_HARD_LINKS where it has hard links (not FAT/exFAT), FILE_READ_ONLY_VOLUME
  for a read-only tree or mount; name
  "NTFS", 255 per component.
"""

from __future__ import annotations

import os
import stat as _stat
import struct
import zlib
from typing import TYPE_CHECKING

from .. import header as h
from ..fs import file_info as fi
from ..fs import deferred_size, eas, reparse, streams
from ..fs import fs_info as fsi
from ..fs.dos_attrs import FileMeta, read_meta
from ..fs.errno_status import status_from_oserror
from ..fs.fs_caps import caps_for
from ..fs.security import (
    ATTRIBUTE_SECURITY_INFORMATION, DACL_SECURITY_INFORMATION, GROUP_SECURITY_INFORMATION,
    LABEL_SECURITY_INFORMATION, OWNER_SECURITY_INFORMATION, SACL_SECURITY_INFORMATION,
    SCOPE_SECURITY_INFORMATION, descriptor_of,
)
from ..fs.sid import token_for
from ..fs.share_modes import is_delete_pending
from ..fs.share_paths import hides_dot_files, split_name
from ..fs.short_names import short_name
from ..status import (
    STATUS_ACCESS_DENIED, STATUS_BUFFER_OVERFLOW, STATUS_BUFFER_TOO_SMALL,
    STATUS_INFO_LENGTH_MISMATCH, STATUS_INVALID_INFO_CLASS, STATUS_INVALID_PARAMETER,
    STATUS_NO_EAS_ON_FILE, STATUS_NOT_SUPPORTED, STATUS_OBJECT_NAME_NOT_FOUND, STATUS_SUCCESS,
    SmbError,
)
from ..tree import ACCESS_SYSTEM_SECURITY, FILE_READ_ATTRIBUTES, FILE_READ_EA, READ_CONTROL
from .read_write import check_credit_charge, max_transact_size

if TYPE_CHECKING:
    from ..opens import Open
    from ..request import Request

# InfoType (2.2.37)
SMB2_0_INFO_FILE = 0x01
SMB2_0_INFO_FILESYSTEM = 0x02
SMB2_0_INFO_SECURITY = 0x03
SMB2_0_INFO_QUOTA = 0x04

# 2.2.37: StructureSize, InfoType, FileInfoClass, OutputBufferLength, InputBufferOffset,
# Reserved, InputBufferLength, AdditionalInformation, Flags, FileId (2 x Q)
_REQUEST = struct.Struct("<HBBIHHIIIQQ")
# 2.2.38: StructureSize 9, OutputBufferOffset, OutputBufferLength; Buffer follows
_RESPONSE = struct.Struct("<HHI")
_OUTPUT_OFFSET = h.HEADER_SIZE + _RESPONSE.size  # 72
# 2.2.2 ERROR response: StructureSize 9, ErrorContextCount, Reserved, ByteCount
_ERROR = struct.Struct("<HBBI")
# 2.2.2.1 ERROR context: ErrorDataLength, ErrorId
_ERROR_CONTEXT = struct.Struct("<II")
_U32 = struct.Struct("<I")

# File classes 2.2.37 lists for queries (plus FileNameInformation, see above).
FILE_CLASSES = frozenset((
    fi.FILE_ACCESS_INFORMATION, fi.FILE_ALIGNMENT_INFORMATION, fi.FILE_ALL_INFORMATION,
    fi.FILE_ALTERNATE_NAME_INFORMATION, fi.FILE_ATTRIBUTE_TAG_INFORMATION,
    fi.FILE_BASIC_INFORMATION, fi.FILE_COMPRESSION_INFORMATION, fi.FILE_EA_INFORMATION,
    fi.FILE_FULL_EA_INFORMATION, fi.FILE_ID_INFORMATION, fi.FILE_INTERNAL_INFORMATION,
    fi.FILE_MODE_INFORMATION, fi.FILE_NETWORK_OPEN_INFORMATION,
    fi.FILE_NORMALIZED_NAME_INFORMATION, fi.FILE_PIPE_INFORMATION,
    fi.FILE_PIPE_LOCAL_INFORMATION, fi.FILE_PIPE_REMOTE_INFORMATION,
    fi.FILE_POSITION_INFORMATION, fi.FILE_STANDARD_INFORMATION, fi.FILE_STREAM_INFORMATION,
    fi.FILE_NAME_INFORMATION,
))
# Every level MS-FSCC 2.4 documents (query, set or local use).
DOCUMENTED_FILE_CLASSES = frozenset((
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 44, 45, 46, 48, 50, 54, 59, 60, 64,
    65, 78, 79, 80, 81,
))
# Classes that end in a variable part: truncated with STATUS_BUFFER_OVERFLOW.
VARIABLE_FILE_CLASSES = frozenset((
    fi.FILE_ALL_INFORMATION, fi.FILE_NAME_INFORMATION, fi.FILE_ALTERNATE_NAME_INFORMATION,
    fi.FILE_STREAM_INFORMATION, fi.FILE_NORMALIZED_NAME_INFORMATION,
))
# The floor of OutputBufferLength (else STATUS_INFO_LENGTH_MISMATCH): the C sizeof of each
# structure, the first WCHAR of a trailing name included and aligned to 8, as MS-FSA
# 2.1.5.12.x states it (BlockAlign(FieldOffset(FileName) + 2, 8)) and Windows answers
# (smbtorture smb2.getinfo.qfile_buffercheck / qfs_buffercheck). FileNormalizedName keeps
# its 4-byte fixed part: Windows clients ask with only that room and expect
# STATUS_BUFFER_OVERFLOW.
FILE_FIXED_SIZES = {
    **fi.FILE_INFO_MIN_SIZES,
    fi.FILE_ALL_INFORMATION: 104,
    fi.FILE_NAME_INFORMATION: 8,
    fi.FILE_ALTERNATE_NAME_INFORMATION: 8,
    fi.FILE_STREAM_INFORMATION: 32,
    fi.FILE_NORMALIZED_NAME_INFORMATION: 4,
    fi.FILE_FULL_EA_INFORMATION: 0,
    fi.FILE_PIPE_INFORMATION: 8,
    fi.FILE_PIPE_LOCAL_INFORMATION: 40,
    fi.FILE_PIPE_REMOTE_INFORMATION: 12,
}
# 3.3.5.20.1: classes that need FILE_READ_ATTRIBUTES (FileFullEa needs FILE_READ_EA).
_NEED_READ_ATTRIBUTES = frozenset((
    fi.FILE_BASIC_INFORMATION, fi.FILE_ALL_INFORMATION, fi.FILE_PIPE_INFORMATION,
    fi.FILE_PIPE_LOCAL_INFORMATION, fi.FILE_PIPE_REMOTE_INFORMATION,
    fi.FILE_NETWORK_OPEN_INFORMATION, fi.FILE_ATTRIBUTE_TAG_INFORMATION,
))

FS_CLASSES = frozenset((
    fsi.FILE_FS_VOLUME_INFORMATION, fsi.FILE_FS_SIZE_INFORMATION,
    fsi.FILE_FS_DEVICE_INFORMATION, fsi.FILE_FS_ATTRIBUTE_INFORMATION,
    fsi.FILE_FS_CONTROL_INFORMATION, fsi.FILE_FS_FULL_SIZE_INFORMATION,
    fsi.FILE_FS_OBJECT_ID_INFORMATION, fsi.FILE_FS_SECTOR_SIZE_INFORMATION,
))
DOCUMENTED_FS_CLASSES = frozenset(range(1, 12))
FS_FIXED_SIZES = {
    **fsi.FS_INFO_MIN_SIZES,
    fsi.FILE_FS_VOLUME_INFORMATION: 24,
    fsi.FILE_FS_ATTRIBUTE_INFORMATION: 16,
    fsi.FILE_FS_CONTROL_INFORMATION: 48,
}
FS_VARIABLE_CLASSES = frozenset((fsi.FILE_FS_VOLUME_INFORMATION,
                                 fsi.FILE_FS_ATTRIBUTE_INFORMATION))

# AdditionalInformation bits 2.2.37 defines for security queries; the others are ignored.
_SECURITY_KNOWN = (OWNER_SECURITY_INFORMATION | GROUP_SECURITY_INFORMATION
                   | DACL_SECURITY_INFORMATION | SACL_SECURITY_INFORMATION
                   | LABEL_SECURITY_INFORMATION | ATTRIBUTE_SECURITY_INFORMATION
                   | SCOPE_SECURITY_INFORMATION | 0x00010000)  # BACKUP
_SECURITY_NEEDS_READ_CONTROL = _SECURITY_KNOWN & ~SACL_SECURITY_INFORMATION & ~0x00010000

_MAX_COMPONENT_NAME = 255
# FILE_FS_CONTROL_INFORMATION (MS-FSCC 2.5.2): FreeSpaceStartFiltering, FreeSpaceThreshold,
# FreeSpaceStopFiltering, DefaultQuotaThreshold, DefaultQuotaLimit, FileSystemControlFlags,
# Padding
_FS_CONTROL = struct.Struct("<qqqqqI4x")
_NO_QUOTA_LIMIT = -1
_FS_NAME = "NTFS"


def handle_query_info(req: Request):
    (_, info_type, info_class, out_len, in_off, _, in_len, additional, _, fid_p,
     fid_v) = _REQUEST.unpack_from(req.view, h.HEADER_SIZE)
    op = req.open_for(fid_p, fid_v)
    conn = req.conn
    # 3.3.5.20
    if out_len > max_transact_size(conn):
        raise SmbError(STATUS_INVALID_PARAMETER)
    check_credit_charge(req, max(in_len, out_len))
    if in_len:
        req.data(in_off, in_len)  # bounds only; no class we serve reads its input
    if info_type == SMB2_0_INFO_FILE:
        return _query_file(req, op, info_class, out_len)
    if info_type == SMB2_0_INFO_FILESYSTEM:
        return _query_fs(req, op, info_class, out_len)
    if info_type == SMB2_0_INFO_SECURITY:
        return _query_security(req, op, additional, out_len)
    if info_type == SMB2_0_INFO_QUOTA:
        raise SmbError(STATUS_NOT_SUPPORTED)
    raise SmbError(STATUS_INVALID_PARAMETER)


# -- responses ------------------------------------------------------------------------------------

def _success(data: bytes, out_len: int, fixed: int | None):
    """The response for `data`; `fixed` is None for a fixed-size class, else its fixed part."""
    n = len(data)
    status = STATUS_SUCCESS
    if n > out_len:
        if fixed is None:  # cannot happen after the length check; be safe
            raise SmbError(STATUS_INFO_LENGTH_MISMATCH)
        data = data[:out_len]
        n = out_len
        status = STATUS_BUFFER_OVERFLOW  # 3.3.5.20.1/2: a success body, truncated
    body = _RESPONSE.pack(9, _OUTPUT_OFFSET, n)
    # StructureSize 9 counts one byte of Buffer: send it even when there is no data
    return status, [body, data] if n else body + b"\x00"


def error_with_data(conn, status: int, data: bytes = b""):
    """An ERROR response (2.2.2) carrying `data`: in 3.1.1 as one error context (ErrorId 0),
    before 3.1.1 as plain ErrorData. Used for STATUS_INFO_LENGTH_MISMATCH (no data, but an
    empty context in 3.1.1) and STATUS_BUFFER_TOO_SMALL (the size needed)."""
    if conn.dialect == h.SMB3_11:
        ctx = _ERROR_CONTEXT.pack(len(data), 0) + data
        return status, _ERROR.pack(9, 1, 0, len(ctx)) + ctx
    if data:
        return status, _ERROR.pack(9, 0, 0, len(data)) + data
    return status, _ERROR.pack(9, 0, 0, 0) + b"\x00"


# -- SMB2_0_INFO_FILE (3.3.5.20.1) ----------------------------------------------------------------

def _query_file(req: Request, op: Open, info_class: int, out_len: int):
    if info_class not in FILE_CLASSES:
        if info_class in DOCUMENTED_FILE_CLASSES:
            raise SmbError(STATUS_NOT_SUPPORTED)
        raise SmbError(STATUS_INVALID_INFO_CLASS)
    dialect = req.conn.dialect
    if info_class == fi.FILE_ID_INFORMATION and not h.SMB3_00 <= dialect <= h.SMB3_11:
        raise SmbError(STATUS_NOT_SUPPORTED)
    if info_class == fi.FILE_NORMALIZED_NAME_INFORMATION and dialect in (
            h.SMB2_02, h.SMB2_10, h.SMB3_02):
        raise SmbError(STATUS_NOT_SUPPORTED)
    access = op.granted_access
    if info_class in _NEED_READ_ATTRIBUTES and not access & FILE_READ_ATTRIBUTES:
        raise SmbError(STATUS_ACCESS_DENIED)
    if info_class == fi.FILE_FULL_EA_INFORMATION and not access & FILE_READ_EA:
        raise SmbError(STATUS_ACCESS_DENIED)
    fixed = FILE_FIXED_SIZES[info_class]
    if out_len < fixed or out_len == 0:
        return error_with_data(req.conn, STATUS_INFO_LENGTH_MISMATCH)
    if op.pipe is not None or op.fd < 0:
        raise SmbError(STATUS_NOT_SUPPORTED)  # named pipes come with IPC$ support
    if info_class in (fi.FILE_PIPE_INFORMATION, fi.FILE_PIPE_LOCAL_INFORMATION,
                      fi.FILE_PIPE_REMOTE_INFORMATION):
        raise SmbError(STATUS_INVALID_PARAMETER)  # MS-FSA: not a pipe
    if info_class == fi.FILE_FULL_EA_INFORMATION:
        return _query_full_ea(req, op, out_len)
    meta = file_meta(req, op)
    name = op.name
    if info_class == fi.FILE_STREAM_INFORMATION:
        data = fi.encode_stream_list(_stream_entries(op, meta))
        if 0 < len(data) < fixed:
            data = data.ljust(fixed, b"\x00")
        return _success(data, out_len, fixed)
    if info_class == fi.FILE_ALTERNATE_NAME_INFORMATION:
        if not name:
            raise SmbError(STATUS_OBJECT_NAME_NOT_FOUND)  # the share root has no name
        data = fi.encode_alternate_name(meta, short_name(split_name(name)[1]))
        return _success(data.ljust(fixed, b"\x00"), out_len, fixed)
    data = fi.encode_query(
        info_class, meta,
        name=name if info_class == fi.FILE_NORMALIZED_NAME_INFORMATION else "\\" + name,
        access_flags=access, position=op.position, mode=op.mode,
        volume_serial=volume_serial(_st_dev(op)),
        ea_size=eas.total_size(op.fd) if info_class in _WITH_EA_SIZE else 0,
        reparse_tag=reparse.tag_of(op),
    )
    if data is None:  # pragma: no cover - every class above has an encoder
        raise SmbError(STATUS_NOT_SUPPORTED)
    if info_class in VARIABLE_FILE_CLASSES:
        if 0 < len(data) < fixed:
            data = data.ljust(fixed, b"\x00")  # a short name: pad to the sizeof
        return _success(data, out_len, fixed)
    return _success(data, out_len, None)


def file_meta(req: Request, op: Open) -> FileMeta:
    """The FileMeta of an open, DeletePending (and the NumberOfLinks it leaves) included."""
    tree = op.tree
    try:
        meta = read_meta(op.fd, hide_dot=hides_dot_files(tree.share),
                         name=split_name(op.name)[1] or None)
    except OSError as exc:
        raise SmbError(status_from_oserror(exc)) from None
    # a deferred end of file (FAT-like file systems, fs/deferred_size.py) is the file's size
    deferred_size.adjust_meta(deferred_size.table(req.server), op.file_key, meta)
    if is_delete_pending(req.server, op.file_key):
        meta.delete_pending = True
        if meta.nlink:
            meta.nlink -= 1  # MS-FSA 2.1.5.12.27: links not marked for deletion
    stream = streams.stream_of(op)
    if stream is not None:  # the file's metadata, the stream's size
        meta.end_of_file = streams.stream_size(op.fd, stream.name)
        meta.allocation_size = streams.allocation(meta.end_of_file)
        meta.is_dir = False
    link = reparse.link_of(op)
    if link is not None:  # an Open of a symlink itself: a reparse point (fs/reparse.py)
        reparse.adjust_meta(meta, link)
    return meta


_WITH_EA_SIZE = frozenset((fi.FILE_EA_INFORMATION, fi.FILE_ALL_INFORMATION))


def _stream_entries(op: Open, meta: FileMeta) -> list[tuple[str, int, int]]:
    """FileStreamInformation entries: (name, size, allocation) of the default stream (files
    only) and of every named stream."""
    stream = streams.stream_of(op)
    try:
        st = os.fstat(op.fd)
    except OSError as exc:
        raise SmbError(status_from_oserror(exc)) from None
    out = []
    if not _stat.S_ISDIR(st.st_mode):
        if stream is None:
            out.append(("::$DATA", meta.end_of_file, meta.allocation_size))
        else:
            out.append(("::$DATA", st.st_size, st.st_blocks * 512))
    for sname, size in streams.list_streams(op.fd):
        out.append((":" + sname + ":$DATA", size, streams.allocation(size)))
    return out


# QUERY_INFO Flags for FileFullEaInformation (MS-SMB2 2.2.37)
SL_RESTART_SCAN = 0x00000001
SL_RETURN_SINGLE_ENTRY = 0x00000002
SL_INDEX_SPECIFIED = 0x00000004


def _query_full_ea(req: Request, op: Open, out_len: int):
    """FileFullEaInformation (see the module docstring)."""
    (_, _, _, _, in_off, _, in_len, _, flags, _, _) = _REQUEST.unpack_from(req.view,
                                                                         h.HEADER_SIZE)
    have = eas.list_eas(op.fd)
    if in_len:
        wanted = eas.parse_get_ea_list(req.data(in_off, in_len))
        by_name = {ea.name.upper(): ea for ea in have}
        found = [by_name.get(n) or eas.Ea(n, b"") for n in wanted]
    else:
        if not have:
            raise SmbError(STATUS_NO_EAS_ON_FILE)
        found = have
    if flags & SL_RETURN_SINGLE_ENTRY:
        found = found[:1]
    data, count = eas.encode_full_ea_list(found, out_len)
    if count == 0:
        raise SmbError(STATUS_BUFFER_TOO_SMALL)
    if count < len(found):
        return STATUS_BUFFER_OVERFLOW, [_RESPONSE.pack(9, _OUTPUT_OFFSET, len(data)), data]
    return _success(data, out_len, None)


def _st_dev(op: Open) -> int:
    if op.file_key is not None:
        return op.file_key[0]
    try:
        return os.fstat(op.fd).st_dev
    except OSError:
        return 0


def volume_serial(st_dev: int) -> int:
    """VolumeSerialNumber: a 32-bit digest of the device number."""
    return zlib.crc32(struct.pack("<Q", st_dev & 0xFFFFFFFFFFFFFFFF))


# -- SMB2_0_INFO_FILESYSTEM (3.3.5.20.2) ----------------------------------------------------------

def _query_fs(req: Request, op: Open, info_class: int, out_len: int):
    if info_class not in FS_CLASSES:
        if info_class in DOCUMENTED_FS_CLASSES:
            raise SmbError(STATUS_NOT_SUPPORTED)
        raise SmbError(STATUS_INVALID_INFO_CLASS)
    fixed = FS_FIXED_SIZES[info_class]
    if out_len < fixed:
        return error_with_data(req.conn, STATUS_INFO_LENGTH_MISMATCH)
    tree = op.tree
    if tree.is_ipc or op.pipe is not None or op.fd < 0:
        raise SmbError(STATUS_NOT_SUPPORTED)
    try:
        data = encode_fs_class(info_class, tree, op.fd)
    except OSError as exc:
        raise SmbError(status_from_oserror(exc)) from None
    if len(data) < fixed:
        data = data.ljust(fixed, b"\x00")  # a label under 3 characters: pad to the sizeof
    return _success(data, out_len, fixed if info_class in FS_VARIABLE_CLASSES else None)


def encode_fs_class(info_class: int, tree, fd: int) -> bytes:
    """One MS-FSCC 2.5 structure for the volume under `tree` (`fd`: any open on it)."""
    if info_class == fsi.FILE_FS_SIZE_INFORMATION:
        return fsi.encode_fs_size(os.fstatvfs(fd))
    if info_class == fsi.FILE_FS_FULL_SIZE_INFORMATION:
        return fsi.encode_fs_full_size(os.fstatvfs(fd))
    if info_class == fsi.FILE_FS_ATTRIBUTE_INFORMATION:
        return fsi.encode_fs_attribute(fs_attributes(tree, os.fstatvfs(fd)),
                                       _MAX_COMPONENT_NAME, _FS_NAME)
    if info_class == fsi.FILE_FS_DEVICE_INFORMATION:
        characteristics = fsi.FILE_DEVICE_IS_MOUNTED
        if not tree.writable:
            characteristics |= fsi.FILE_READ_ONLY_DEVICE
        return fsi.encode_fs_device(fsi.FILE_DEVICE_DISK, characteristics)
    if info_class == fsi.FILE_FS_VOLUME_INFORMATION:
        root = read_meta(tree.root)
        return fsi.encode_fs_volume(root.creation_time, volume_serial(os.stat(tree.root).st_dev),
                                    tree.share_name)
    if info_class == fsi.FILE_FS_OBJECT_ID_INFORMATION:
        import hashlib  # rare: not loaded at start (issue 11)

        return fsi.encode_fs_object_id(hashlib.md5(os.fsencode(tree.root)).digest())
    if info_class == fsi.FILE_FS_SECTOR_SIZE_INFORMATION:
        return fsi.encode_fs_sector_size()
    if info_class == fsi.FILE_FS_CONTROL_INFORMATION:
        # quotas neither tracked nor enforced (FileSystemControlFlags 0), no default limit
        return _FS_CONTROL.pack(0, 0, 0, _NO_QUOTA_LIMIT, _NO_QUOTA_LIMIT, 0)
    raise SmbError(STATUS_NOT_SUPPORTED)  # pragma: no cover


def fs_attributes(tree, st_vfs) -> int:
    """FileSystemAttributes of a share (see the module docstring)."""
    caps = caps_for(tree.root)
    attrs = fsi.DEFAULT_FS_ATTRIBUTES
    if streams.supported(tree.root):
        # all three live in user xattrs (fs/streams.py, fs/eas.py, fs/acl.py)
        attrs |= fsi.FILE_NAMED_STREAMS | fsi.FILE_SUPPORTS_EXTENDED_ATTRIBUTES \
            | fsi.FILE_PERSISTENT_ACLS
    if caps.sparse:  # FSCTL_SET_SPARSE / SET_ZERO_DATA / QUERY_ALLOCATED_RANGES (ioctl.py)
        attrs |= fsi.FILE_SUPPORTS_SPARSE_FILES
    if caps.hard_links:
        attrs |= fsi.FILE_SUPPORTS_HARD_LINKS  # SET_INFO FileLinkInformation
    if not tree.writable or caps.read_only:
        attrs |= fsi.FILE_READ_ONLY_VOLUME
    return fsi.fs_attributes_from_statvfs(st_vfs, attrs)


# -- SMB2_0_INFO_SECURITY (3.3.5.20.3) ------------------------------------------------------------

def _query_security(req: Request, op: Open, additional: int, out_len: int):
    additional &= _SECURITY_KNOWN  # 3.3.5.20.3: ignore undefined bits
    access = op.granted_access
    # MS-FSA 2.1.5.13
    if additional & _SECURITY_NEEDS_READ_CONTROL and not access & READ_CONTROL:
        raise SmbError(STATUS_ACCESS_DENIED)
    if additional & SACL_SECURITY_INFORMATION and not access & ACCESS_SYSTEM_SECURITY:
        raise SmbError(STATUS_ACCESS_DENIED)
    if op.pipe is not None or op.fd < 0:
        raise SmbError(STATUS_NOT_SUPPORTED)
    try:
        st = os.fstat(op.fd)
    except OSError as exc:
        raise SmbError(status_from_oserror(exc)) from None
    # the stored descriptor, else one synthesized from the mode (fs/security.py); never
    # through the path of a symlink Open (that would read its target's)
    path = None if reparse.link_of(op) is not None else op.path
    sd = descriptor_of(op.fd, st, token_for(op.session), path)[0].pack(additional)
    if len(sd) > out_len:
        # never a partial descriptor: tell the client the size it needs
        return error_with_data(req.conn, STATUS_BUFFER_TOO_SMALL, _U32.pack(len(sd)))
    return _success(sd, out_len, None)

"""QUERY_INFO / SET_INFO file information classes (MS-FSCC 2.4).

Encoders take a FileMeta (ksmbd_embedded.fs.dos_attrs) first, then whatever
per-open state the class needs, and return the structure as bytes.  They do
no output-buffer-length checks: FILE_INFO_MIN_SIZES gives the fixed size of
each class for the caller's STATUS_INFO_LENGTH_MISMATCH check, and the caller
truncates variable-length results (STATUS_BUFFER_OVERFLOW).

Decoders take the SET_INFO input buffer (bytes, bytearray or memoryview),
check it and return plain values, or raise InfoError carrying an NTSTATUS.

Names are UTF-16LE with 'surrogatepass', so a name that os.listdir() gave
with surrogateescape'd bytes (U+DC80..U+DCFF) goes out as those code units
and comes back unchanged through the decoders.  Any name argument may also
be given as bytes already in UTF-16LE.
"""

from __future__ import annotations

import struct

from .dos_attrs import FileMeta

# NTSTATUS values (MS-ERREF 2.3.1); ksmbd_embedded.status holds the same ones.
STATUS_INFO_LENGTH_MISMATCH = 0xC0000004
STATUS_INVALID_PARAMETER = 0xC000000D


class InfoError(Exception):
    """A SET_INFO buffer was rejected; ``status`` is the NTSTATUS to return."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message or f"NTSTATUS 0x{status:08X}")
        self.status = status


# File information classes (MS-FSCC 2.4)
FILE_DIRECTORY_INFORMATION = 1
FILE_FULL_DIRECTORY_INFORMATION = 2
FILE_BOTH_DIRECTORY_INFORMATION = 3
FILE_BASIC_INFORMATION = 4
FILE_STANDARD_INFORMATION = 5
FILE_INTERNAL_INFORMATION = 6
FILE_EA_INFORMATION = 7
FILE_ACCESS_INFORMATION = 8
FILE_NAME_INFORMATION = 9
FILE_RENAME_INFORMATION = 10
FILE_LINK_INFORMATION = 11
FILE_NAMES_INFORMATION = 12
FILE_DISPOSITION_INFORMATION = 13
FILE_POSITION_INFORMATION = 14
FILE_FULL_EA_INFORMATION = 15
FILE_MODE_INFORMATION = 16
FILE_ALIGNMENT_INFORMATION = 17
FILE_ALL_INFORMATION = 18
FILE_ALLOCATION_INFORMATION = 19
FILE_END_OF_FILE_INFORMATION = 20
FILE_ALTERNATE_NAME_INFORMATION = 21
FILE_STREAM_INFORMATION = 22
FILE_PIPE_INFORMATION = 23
FILE_PIPE_LOCAL_INFORMATION = 24
FILE_PIPE_REMOTE_INFORMATION = 25
FILE_COMPRESSION_INFORMATION = 28
FILE_QUOTA_INFORMATION = 32
FILE_NETWORK_OPEN_INFORMATION = 34
FILE_ATTRIBUTE_TAG_INFORMATION = 35
FILE_ID_BOTH_DIRECTORY_INFORMATION = 37
FILE_ID_FULL_DIRECTORY_INFORMATION = 38
FILE_VALID_DATA_LENGTH_INFORMATION = 39
FILE_SHORT_NAME_INFORMATION = 40
FILE_NORMALIZED_NAME_INFORMATION = 48
FILE_ID_INFORMATION = 59
FILE_ID_EXTD_DIRECTORY_INFORMATION = 60
FILE_DISPOSITION_INFORMATION_EX = 64
FILE_RENAME_INFORMATION_EX = 65

FILE_INFO_CLASS_NAMES = {
    v: k for k, v in globals().items()
    if k.startswith("FILE_") and k.endswith(("_INFORMATION", "_INFORMATION_EX"))
    and isinstance(v, int)
}

# Fixed part of each QUERY_INFO result: an OutputBufferLength below this is
# STATUS_INFO_LENGTH_MISMATCH (MS-SMB2 3.3.5.20.1, MS-FSA 2.1.5.12).  For the
# classes ending in a name, the name follows the fixed part.
FILE_INFO_MIN_SIZES = {
    FILE_BASIC_INFORMATION: 40,
    FILE_STANDARD_INFORMATION: 24,
    FILE_INTERNAL_INFORMATION: 8,
    FILE_EA_INFORMATION: 4,
    FILE_ACCESS_INFORMATION: 4,
    FILE_NAME_INFORMATION: 4,
    FILE_POSITION_INFORMATION: 8,
    FILE_MODE_INFORMATION: 4,
    FILE_ALIGNMENT_INFORMATION: 4,
    FILE_ALL_INFORMATION: 100,
    FILE_ALTERNATE_NAME_INFORMATION: 4,
    FILE_STREAM_INFORMATION: 24,
    FILE_COMPRESSION_INFORMATION: 16,
    FILE_NETWORK_OPEN_INFORMATION: 56,
    FILE_ATTRIBUTE_TAG_INFORMATION: 8,
    FILE_NORMALIZED_NAME_INFORMATION: 4,
    FILE_ID_INFORMATION: 24,
}

# FileModeInformation flags (MS-FSCC 2.4.30)
FILE_WRITE_THROUGH = 0x00000002
FILE_SEQUENTIAL_ONLY = 0x00000004
FILE_NO_INTERMEDIATE_BUFFERING = 0x00000008
FILE_SYNCHRONOUS_IO_ALERT = 0x00000010
FILE_SYNCHRONOUS_IO_NONALERT = 0x00000020
FILE_DELETE_ON_CLOSE = 0x00001000
_MODE_SETTABLE = (FILE_WRITE_THROUGH | FILE_SEQUENTIAL_ONLY
                  | FILE_SYNCHRONOUS_IO_ALERT | FILE_SYNCHRONOUS_IO_NONALERT)

# FileAlignmentInformation (MS-FSCC 2.4.3)
FILE_BYTE_ALIGNMENT = 0x00000000

# FileDispositionInformationEx flags (MS-FSCC 2.4.12)
FILE_DISPOSITION_DO_NOT_DELETE = 0x00000000
FILE_DISPOSITION_DELETE = 0x00000001
FILE_DISPOSITION_POSIX_SEMANTICS = 0x00000002
FILE_DISPOSITION_FORCE_IMAGE_SECTION_CHECK = 0x00000004
FILE_DISPOSITION_ON_CLOSE = 0x00000008
FILE_DISPOSITION_IGNORE_READONLY_ATTRIBUTE = 0x00000010
_DISPOSITION_EX_VALID = 0x0000001F

# FileCompressionInformation CompressionFormat (MS-FSCC 2.4.9)
COMPRESSION_FORMAT_NONE = 0x0000
COMPRESSION_FORMAT_LZNT1 = 0x0002

# SET_INFO FileBasicInformation time values with a special meaning (2.4.7)
TIME_NO_CHANGE = 0
TIME_STOP_UPDATING = -1
TIME_RESUME_UPDATING = -2

STREAM_DATA_NAME = "::$DATA"

# --- structures, one per layout --------------------------------------------

# CreationTime, LastAccessTime, LastWriteTime, ChangeTime, FileAttributes, Reserved
_BASIC = struct.Struct("<QQQQI4x")                 # 40
_BASIC_IN = struct.Struct("<qqqqI")                 # 36 read of the 40
# AllocationSize, EndOfFile, NumberOfLinks, DeletePending, Directory, Reserved
_STANDARD = struct.Struct("<QQIBB2x")               # 24
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
# Basic + Standard + Internal + Ea + Access + Position + Mode + Alignment
# + NameInformation.FileNameLength; the name follows at 100.
_ALL = struct.Struct("<QQQQI4x" "QQIBB2x" "Q" "I" "I" "Q" "I" "I" "I")  # 100
# NextEntryOffset, StreamNameLength, StreamSize, StreamAllocationSize
_STREAM = struct.Struct("<IIQQ")                    # 24
# CompressedFileSize, CompressionFormat, CompressionUnitShift, ChunkShift,
# ClusterShift, Reserved
_COMPRESSION = struct.Struct("<QHBBB3x")            # 16
# CreationTime, LastAccessTime, LastWriteTime, ChangeTime, AllocationSize,
# EndOfFile, FileAttributes, Reserved
_NETWORK_OPEN = struct.Struct("<QQQQQQI4x")         # 56
# FileAttributes, ReparseTag
_ATTRIBUTE_TAG = struct.Struct("<II")               # 8
# VolumeSerialNumber, FileId (128 bits: low 64, high 64)
_ID = struct.Struct("<QQQ")                         # 24
# ReplaceIfExists, Reserved(7), RootDirectory, FileNameLength (TYPE_2)
_RENAME = struct.Struct("<B7xQI")                   # 20


def _utf16(name) -> bytes:
    if isinstance(name, str):
        return name.encode("utf-16-le", "surrogatepass")
    return bytes(name)


# --- QUERY_INFO encoders ---------------------------------------------------

def encode_basic(meta: FileMeta) -> bytes:
    """FileBasicInformation (4), 40 bytes."""
    return _BASIC.pack(meta.creation_time, meta.last_access_time, meta.last_write_time,
                       meta.change_time, meta.attributes)


def encode_standard(meta: FileMeta) -> bytes:
    """FileStandardInformation (5), 24 bytes; DeletePending from meta.delete_pending."""
    return _STANDARD.pack(meta.allocation_size, meta.end_of_file, meta.nlink,
                          1 if meta.delete_pending else 0, 1 if meta.is_dir else 0)


def encode_internal(meta: FileMeta) -> bytes:
    """FileInternalInformation (6): IndexNumber = file_id, 8 bytes."""
    return _U64.pack(meta.file_id)


def encode_ea(meta: FileMeta, ea_size: int = 0) -> bytes:
    """FileEaInformation (7), 4 bytes."""
    return _U32.pack(ea_size)


def encode_access(meta: FileMeta, access_flags: int) -> bytes:
    """FileAccessInformation (8): the open's granted access mask, 4 bytes."""
    return _U32.pack(access_flags)


def encode_name(meta: FileMeta, name) -> bytes:
    """FileNameInformation (9): FileNameLength + name."""
    nb = _utf16(name)
    return _U32.pack(len(nb)) + nb


def encode_position(meta: FileMeta, position: int = 0) -> bytes:
    """FilePositionInformation (14): CurrentByteOffset, 8 bytes."""
    return _U64.pack(position)


def encode_mode(meta: FileMeta, mode: int = 0) -> bytes:
    """FileModeInformation (16), 4 bytes."""
    return _U32.pack(mode)


def encode_alignment(meta: FileMeta, alignment: int = FILE_BYTE_ALIGNMENT) -> bytes:
    """FileAlignmentInformation (17), 4 bytes."""
    return _U32.pack(alignment)


def encode_all(
    meta: FileMeta,
    name,
    access_flags: int = 0,
    position: int = 0,
    mode: int = 0,
    alignment: int = FILE_BYTE_ALIGNMENT,
    ea_size: int = 0,
) -> bytes:
    """FileAllInformation (18): 100 fixed bytes, then the name.

    Offsets: Basic 0, Standard 40, Internal 64, Ea 72, Access 76,
    Position 80, Mode 88, Alignment 92, NameInformation 96 (length at 96,
    name from 100).  Windows puts the path from the share root there, with a
    leading backslash; that choice is the caller's.
    """
    nb = _utf16(name)
    return _ALL.pack(
        meta.creation_time, meta.last_access_time, meta.last_write_time,
        meta.change_time, meta.attributes,
        meta.allocation_size, meta.end_of_file, meta.nlink,
        1 if meta.delete_pending else 0, 1 if meta.is_dir else 0,
        meta.file_id, ea_size, access_flags, position, mode, alignment, len(nb),
    ) + nb


def encode_alternate_name(meta: FileMeta, short_name) -> bytes:
    """FileAlternateNameInformation (21): FILE_NAME_INFORMATION with the 8.3 name.

    We generate no short names; a server without one returns
    STATUS_OBJECT_NAME_NOT_FOUND instead of calling this.
    """
    return encode_name(meta, short_name)


_DATA_STREAM_NAME = STREAM_DATA_NAME.encode("utf-16-le")


def encode_stream(meta: FileMeta) -> bytes:
    """FileStreamInformation (22): one "::$DATA" entry for a file, b"" for a directory."""
    if meta.is_dir:
        return b""
    return _STREAM.pack(0, len(_DATA_STREAM_NAME), meta.end_of_file,
                        meta.allocation_size) + _DATA_STREAM_NAME


def encode_stream_list(entries) -> bytes:
    """FileStreamInformation (22) from (name, size, allocation) entries, each name in its
    "::$DATA" / ":name:$DATA" form; entries 8-aligned, b"" for none (MS-FSCC 2.4.49)."""
    out = bytearray()
    last = len(entries) - 1
    for i, (name, size, alloc) in enumerate(entries):
        nb = _utf16(name)
        entry_len = _STREAM.size + len(nb)
        padded = entry_len if i == last else (entry_len + 7) & ~7
        out += _STREAM.pack(0 if i == last else padded, len(nb), size, alloc) + nb
        out += bytes(padded - entry_len)
    return bytes(out)


def encode_compression(meta: FileMeta) -> bytes:
    """FileCompressionInformation (28): uncompressed, 16 bytes (MS-FSA 2.1.5.12.8)."""
    return _COMPRESSION.pack(0 if meta.is_dir else meta.allocation_size,
                             COMPRESSION_FORMAT_NONE, 0, 0, 0)


def encode_network_open(meta: FileMeta) -> bytes:
    """FileNetworkOpenInformation (34), 56 bytes."""
    return _NETWORK_OPEN.pack(meta.creation_time, meta.last_access_time,
                              meta.last_write_time, meta.change_time,
                              meta.allocation_size, meta.end_of_file, meta.attributes)


def encode_attribute_tag(meta: FileMeta, reparse_tag: int = 0) -> bytes:
    """FileAttributeTagInformation (35), 8 bytes."""
    return _ATTRIBUTE_TAG.pack(meta.attributes, reparse_tag)


def encode_normalized_name(meta: FileMeta, name) -> bytes:
    """FileNormalizedNameInformation (48): FILE_NAME_INFORMATION layout."""
    return encode_name(meta, name)


def encode_id(meta: FileMeta, volume_serial: int = 0) -> bytes:
    """FileIdInformation (59): VolumeSerialNumber u64 + FileId 128 (file_id zero-extended)."""
    return _ID.pack(volume_serial, meta.file_id, 0)


def encode_query(
    info_class: int,
    meta: FileMeta,
    *,
    name="",
    access_flags: int = 0,
    position: int = 0,
    mode: int = 0,
    alignment: int = FILE_BYTE_ALIGNMENT,
    ea_size: int = 0,
    reparse_tag: int = 0,
    volume_serial: int = 0,
) -> bytes | None:
    """Dispatch on a QUERY_INFO class; None for a class not encoded here.

    FileAlternateNameInformation is not dispatched (no short names).
    """
    c = info_class
    if c == FILE_BASIC_INFORMATION:
        return encode_basic(meta)
    if c == FILE_STANDARD_INFORMATION:
        return encode_standard(meta)
    if c == FILE_NETWORK_OPEN_INFORMATION:
        return encode_network_open(meta)
    if c == FILE_ALL_INFORMATION:
        return encode_all(meta, name, access_flags, position, mode, alignment, ea_size)
    if c == FILE_INTERNAL_INFORMATION:
        return encode_internal(meta)
    if c == FILE_EA_INFORMATION:
        return encode_ea(meta, ea_size)
    if c == FILE_ACCESS_INFORMATION:
        return encode_access(meta, access_flags)
    if c == FILE_NAME_INFORMATION:
        return encode_name(meta, name)
    if c == FILE_POSITION_INFORMATION:
        return encode_position(meta, position)
    if c == FILE_MODE_INFORMATION:
        return encode_mode(meta, mode)
    if c == FILE_ALIGNMENT_INFORMATION:
        return encode_alignment(meta, alignment)
    if c == FILE_STREAM_INFORMATION:
        return encode_stream(meta)
    if c == FILE_COMPRESSION_INFORMATION:
        return encode_compression(meta)
    if c == FILE_ATTRIBUTE_TAG_INFORMATION:
        return encode_attribute_tag(meta, reparse_tag)
    if c == FILE_NORMALIZED_NAME_INFORMATION:
        return encode_normalized_name(meta, name)
    if c == FILE_ID_INFORMATION:
        return encode_id(meta, volume_serial)
    return None


# --- SET_INFO decoders -----------------------------------------------------

def _need(view, size: int) -> None:
    if len(view) < size:
        raise InfoError(STATUS_INFO_LENGTH_MISMATCH,
                        f"input buffer {len(view)} bytes, need {size}")


def decode_basic(view) -> tuple[int, int, int, int, int]:
    """FileBasicInformation (4) -> (ctime, atime, mtime, chtime, attributes).

    Times are signed FILETIMEs returned as given: 0 = leave unchanged,
    -1 = leave unchanged and stop updating it for this handle, -2 = resume
    updating.  Anything below -2 is STATUS_INVALID_PARAMETER.  attributes 0
    means leave unchanged; the caller validates the bits against the open
    (DIRECTORY on a file, TEMPORARY on a directory).
    """
    _need(view, 40)
    ct, at, wt, cht, attrs = _BASIC_IN.unpack_from(view)
    if ct < -2 or at < -2 or wt < -2 or cht < -2:
        raise InfoError(STATUS_INVALID_PARAMETER, "time below -2")
    return ct, at, wt, cht, attrs


def decode_end_of_file(view) -> int:
    """FileEndOfFileInformation (20) -> EndOfFile (>= 0)."""
    _need(view, 8)
    v = _I64.unpack_from(view)[0]
    if v < 0:
        raise InfoError(STATUS_INVALID_PARAMETER, "negative EndOfFile")
    return v


def decode_allocation(view) -> int:
    """FileAllocationInformation (19) -> AllocationSize (>= 0)."""
    _need(view, 8)
    v = _I64.unpack_from(view)[0]
    if v < 0:
        raise InfoError(STATUS_INVALID_PARAMETER, "negative AllocationSize")
    return v


def decode_valid_data_length(view) -> int:
    """FileValidDataLengthInformation (39) -> ValidDataLength (>= 0)."""
    _need(view, 8)
    v = _I64.unpack_from(view)[0]
    if v < 0:
        raise InfoError(STATUS_INVALID_PARAMETER, "negative ValidDataLength")
    return v


def decode_disposition(view) -> bool:
    """FileDispositionInformation (13) -> DeletePending."""
    _need(view, 1)
    return view[0] != 0


def decode_disposition_ex(view) -> int:
    """FileDispositionInformationEx (64) -> Flags (FILE_DISPOSITION_*)."""
    _need(view, 4)
    flags = _U32.unpack_from(view)[0]
    if flags & ~_DISPOSITION_EX_VALID:
        raise InfoError(STATUS_INVALID_PARAMETER, f"unknown disposition flags 0x{flags:x}")
    return flags


def _decode_rename_form(view) -> tuple[bool, int, str]:
    _need(view, _RENAME.size)
    replace, root, nlen = _RENAME.unpack_from(view)
    if nlen == 0 or nlen & 1 or nlen > len(view) - _RENAME.size:
        raise InfoError(STATUS_INVALID_PARAMETER, f"bad FileNameLength {nlen}")
    try:
        name = str(view[_RENAME.size:_RENAME.size + nlen], "utf-16-le", "surrogatepass")
    except UnicodeDecodeError as e:  # pragma: no cover - surrogatepass takes any even length
        raise InfoError(STATUS_INVALID_PARAMETER, "bad FileName") from e
    return replace != 0, root, name


def decode_rename(view) -> tuple[bool, int, str]:
    """FileRenameInformation (10), SMB2 form (FILE_RENAME_INFORMATION_TYPE_2).

    -> (replace_if_exists, root_directory, name).  Layout: ReplaceIfExists
    (1), Reserved (7), RootDirectory (8), FileNameLength (4), FileName.
    A zero or odd FileNameLength, or one past the buffer, is
    STATUS_INVALID_PARAMETER.  The caller rejects a non-zero root_directory
    (STATUS_INVALID_PARAMETER for network operations) and parses the name.
    """
    return _decode_rename_form(view)


def decode_link(view) -> tuple[bool, int, str]:
    """FileLinkInformation (11), SMB2 form; same layout and checks as decode_rename."""
    return _decode_rename_form(view)


def decode_position(view) -> int:
    """FilePositionInformation (14) -> CurrentByteOffset (>= 0)."""
    _need(view, 8)
    v = _I64.unpack_from(view)[0]
    if v < 0:
        raise InfoError(STATUS_INVALID_PARAMETER, "negative CurrentByteOffset")
    return v


def decode_mode(view) -> int:
    """FileModeInformation (16) -> Mode.

    Only WRITE_THROUGH, SEQUENTIAL_ONLY, SYNCHRONOUS_IO_ALERT and
    SYNCHRONOUS_IO_NONALERT may be set, and not both SYNCHRONOUS ones
    (MS-FSA 2.1.5.15.7); the checks against the open's own mode are the
    caller's.
    """
    _need(view, 4)
    mode = _U32.unpack_from(view)[0]
    if mode & ~_MODE_SETTABLE:
        raise InfoError(STATUS_INVALID_PARAMETER, f"mode flags 0x{mode:x} not settable")
    both = FILE_SYNCHRONOUS_IO_ALERT | FILE_SYNCHRONOUS_IO_NONALERT
    if mode & both == both:
        raise InfoError(STATUS_INVALID_PARAMETER, "both SYNCHRONOUS_IO flags")
    return mode

"""QUERY_DIRECTORY (MS-SMB2 2.2.33, 2.2.34, 3.3.5.18; MS-FSA 2.1.5.6.3).

The enumeration state is a `DirScan` on `Open.dir_state` (fs/dir_scan.py). When it starts over:
- the first QUERY_DIRECTORY on the Open, or SMB2_REOPEN: a new search with the request's
  pattern ("*" if empty); finding nothing is STATUS_NO_SUCH_FILE;
- SMB2_RESTART_SCANS: back to the first entry, with the request's pattern if it gives one, else
  the previous one (as NTFS does; finding nothing is then STATUS_NO_MORE_FILES);
- a non-empty pattern different from the current one: a new search, as with REOPEN. An empty
  pattern on a continuation keeps the current one.
SMB2_INDEX_SPECIFIED / FileIndex is ignored (FileIndex is always 0 in our entries, as on NTFS).
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from .. import header as h
from ..fs.dir_info import DIR_INFO_CLASSES, DIR_INFO_FIXED_SIZES, encode_entry, \
    set_next_entry_offset
from ..fs.dir_scan import DirScan
from ..fs.errno_status import oserror_to_status
from ..status import (
    STATUS_ACCESS_DENIED, STATUS_BUFFER_OVERFLOW, STATUS_INFO_LENGTH_MISMATCH,
    STATUS_INVALID_INFO_CLASS, STATUS_INVALID_PARAMETER, STATUS_NO_MORE_FILES,
    STATUS_NO_SUCH_FILE, STATUS_SUCCESS, SmbError,
)
from ..tree import FILE_READ_DATA
from .read_write import check_credit_charge, max_transact_size

if TYPE_CHECKING:
    from ..request import Request

# 2.2.33 request: StructureSize, FileInformationClass, Flags, FileIndex, FileId (2 x Q),
# FileNameOffset, FileNameLength, OutputBufferLength.
_REQUEST = struct.Struct("<HBBIQQHHI")
# 2.2.34 response: StructureSize, OutputBufferOffset, OutputBufferLength.
_RESPONSE = struct.Struct("<HHI")
_BUFFER_OFFSET = h.HEADER_SIZE + _RESPONSE.size  # 72

SMB2_RESTART_SCANS = 0x01
SMB2_RETURN_SINGLE_ENTRY = 0x02
SMB2_INDEX_SPECIFIED = 0x04
SMB2_REOPEN = 0x10
FILE_LIST_DIRECTORY = FILE_READ_DATA


def handle_query_directory(req: Request):
    (_, info_class, flags, _, fid_p, fid_v, name_off, name_len,
     out_len) = _REQUEST.unpack_from(req.view, h.HEADER_SIZE)
    op = req.open_for(fid_p, fid_v)
    # 3.3.5.18, in the spec's order.
    if not op.is_dir:
        raise SmbError(STATUS_INVALID_PARAMETER)  # also with SMB2_REOPEN (<400>)
    if out_len > max_transact_size(req.conn):
        raise SmbError(STATUS_INVALID_PARAMETER)
    check_credit_charge(req, max(out_len, name_len))
    if not op.granted_access & FILE_LIST_DIRECTORY:
        raise SmbError(STATUS_ACCESS_DENIED)
    if info_class not in DIR_INFO_CLASSES:
        raise SmbError(STATUS_INVALID_INFO_CLASS)
    pattern = _pattern(req, name_off, name_len)
    # MS-FSA 2.1.5.6.3.x: a buffer that cannot hold an entry's fixed part.
    fixed = DIR_INFO_FIXED_SIZES[info_class]
    if out_len < fixed:
        raise SmbError(STATUS_INFO_LENGTH_MISMATCH)

    try:
        scan = _scan_for(op, flags, pattern)
        return _fill(scan, info_class, out_len, bool(flags & SMB2_RETURN_SINGLE_ENTRY))
    except OSError as exc:
        raise SmbError(oserror_to_status(exc, "QUERY_DIRECTORY")) from None


def _pattern(req: Request, offset: int, length: int) -> str:
    if length == 0:
        return ""
    if length & 1:
        raise SmbError(STATUS_INVALID_PARAMETER)
    try:
        return str(req.data(offset, length), "utf-16-le")
    except UnicodeDecodeError:
        raise SmbError(STATUS_INVALID_PARAMETER) from None


def _scan_for(op, flags: int, pattern: str) -> DirScan:
    """The Open's enumeration, started or restarted as the flags and pattern say."""
    scan: DirScan | None = op.dir_state
    if scan is None or flags & SMB2_REOPEN:
        if scan is not None:
            scan.close()
        scan = DirScan.for_open(op, pattern or "*", first=True)
        op.dir_state = scan
    elif flags & SMB2_RESTART_SCANS:
        scan.restart(pattern or scan.pattern, first=False)
    elif pattern and pattern != scan.pattern:
        scan.restart(pattern, first=True)
    return scan


def _fill(scan: DirScan, info_class: int, out_len: int, single: bool):
    """Encode entries into the response until the buffer is full (MS-FSA 2.1.5.6.3)."""
    first = scan.first
    scan.first = False  # only the first request of a search can find "no such file"
    body = bytearray(_RESPONSE.size)  # the response's fixed part; entries follow it
    limit = _RESPONSE.size + out_len
    off = _RESPONSE.size
    prev = -1
    end = off
    while True:
        entry = scan.next_entry()
        if entry is None:
            break
        n = encode_entry(info_class, entry[1], entry[0], body, off, limit)
        if n is None:
            scan.push_back(entry)  # kept for the next request
            if prev < 0:
                # The first entry does not fit even alone: nothing can be returned.
                raise SmbError(STATUS_BUFFER_OVERFLOW)
            break
        if prev >= 0:
            set_next_entry_offset(body, prev, off)
        prev = off
        end = off + n
        scan.returned += 1
        if single:
            break
        off = (end + 7) & ~7
        if off >= limit:
            break
    if prev < 0:
        if first and scan.returned == 0:
            raise SmbError(STATUS_NO_SUCH_FILE)
        raise SmbError(STATUS_NO_MORE_FILES)
    if len(body) > end:
        del body[end:]
    _RESPONSE.pack_into(body, 0, 9, _BUFFER_OFFSET, end - _RESPONSE.size)
    return STATUS_SUCCESS, body

"""FLUSH, READ and WRITE (MS-SMB2 2.2.17-2.2.22; 3.3.5.11 FLUSH, 3.3.5.12 READ, 3.3.5.13 WRITE).

The READ payload is returned as its own element of the response list, so the transport can
later send it with sendfile or from a pooled buffer without copying it into the body. WRITE
hands the request's memoryview slice straight to `os.pwrite`; a plain large WRITE's payload is
not in the request at all: the loop splices it from the socket to the file once handle_write
has accepted the request's 112 bytes (`SpliceWrite`, ARCHITECTURE.md "WRITE splice").

Access: READ needs FILE_READ_DATA or FILE_EXECUTE; WRITE needs FILE_WRITE_DATA (anywhere) or
FILE_APPEND_DATA alone (then only at or past the end of file); FLUSH needs either write bit.
Offsets follow what Windows answers (smbtorture smb2.read, smb2.rw.invalid): see the limits
below. Every read and write moves Open.position (FilePositionInformation).

On FAT-like file systems a file may have a deferred end of file (fs/deferred_size.py): READ
serves zeros between the data on disk and it, WRITE past the data forgets it once the disk
catches up, FLUSH writes it to disk.

Named pipes (IPC$ opens, `op.pipe` set) are delegated to the pipe object, which provides
`read(length) -> (status, bytes-like)` and `write(data: memoryview) -> int`.

Opens of a named stream (fs/streams.py) read and write the stream's xattr: a READ answers
from a copy of it, a WRITE rewrites it whole (STATUS_DISK_FULL past what an xattr holds).
"""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING

from .. import header as h
from ..caching import oplock as fsa
from ..file_range import FileRange
from ..fs import byte_locks, deferred_size, streams
from ..fs.errno_status import oserror_to_status
from ..status import (
    STATUS_ACCESS_DENIED, STATUS_BUFFER_OVERFLOW, STATUS_END_OF_FILE,
    STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_PARAMETER, STATUS_SUCCESS, SmbError,
)
from ..tree import FILE_APPEND_DATA, FILE_EXECUTE, FILE_READ_DATA, FILE_WRITE_DATA
from . import oplock_break

if TYPE_CHECKING:
    from ..request import Request

# 2.2.17 FLUSH request: StructureSize, Reserved1, Reserved2, FileId.
_FLUSH_REQ = struct.Struct("<HHIQQ")
# 2.2.19 READ request: StructureSize, Padding, Flags, Length, Offset, FileId (2 x Q),
# MinimumCount, Channel, RemainingBytes, ReadChannelInfoOffset, ReadChannelInfoLength.
_READ_REQ = struct.Struct("<HBBIQQQIIIHH")
# 2.2.20 READ response: StructureSize, DataOffset, Reserved, DataLength, DataRemaining,
# Reserved2 (Flags in 3.1.1).
_READ_RSP = struct.Struct("<HBBIII")
# 2.2.21 WRITE request: StructureSize, DataOffset, Length, Offset, FileId (2 x Q), Channel,
# RemainingBytes, WriteChannelInfoOffset, WriteChannelInfoLength, Flags.
_WRITE_REQ = struct.Struct("<HHIQQQIIHHI")
# 2.2.22 WRITE response: StructureSize, Reserved, Count, Remaining, WriteChannelInfoOffset,
# WriteChannelInfoLength.
_WRITE_RSP = struct.Struct("<HHIIHH")

_FLUSH_RSP = b"\x04\x00\x00\x00"  # 2.2.18: StructureSize 4, Reserved
_READ_DATA_OFFSET = h.HEADER_SIZE + _READ_RSP.size  # 0x50

SMB2_WRITEFLAG_WRITE_THROUGH = 0x00000001
FILE_WRITE_THROUGH = 0x00000002  # CreateOptions / FileModeInformation bit

# Offsets are signed 64-bit in the object store: above this, STATUS_INVALID_PARAMETER for
# READ and WRITE alike, even with Length 0 (what Windows answers; smbtorture smb2.rw.invalid).
_MAX_FILE_OFFSET = 0x7FFFFFFFFFFFFFFF
# A write may not end beyond NTFS's largest file size (Windows: STATUS_INVALID_PARAMETER).
_MAX_WRITE_END = 0xFFFFFFF0000
# MS-FSA 2.1.5.4 FILE_WRITE_TO_END_OF_FILE: offset -1 appends. Windows refuses it over SMB2 on
# a handle with FILE_WRITE_DATA; we honour it on append-only handles, where any other offset
# inside the file would be refused anyway.
WRITE_TO_END_OF_FILE = 0xFFFFFFFFFFFFFFFF
_SMB2_64K = 65536

_fdatasync = getattr(os, "fdatasync", os.fsync)


# -- checks shared with other commands that move a large payload ------------------------------

def supports_multi_credit(conn) -> bool:
    """Connection.SupportsMultiCredit (MS-SMB2 3.3.5.4): SMB 2.1+ with LARGE_MTU."""
    dialect = conn.dialect
    return (dialect >= h.SMB2_10 and dialect != h.SMB2_WILDCARD
            and bool(conn.server_capabilities & h.CAP_LARGE_MTU))


def check_credit_charge(req: Request, payload: int) -> None:
    """MS-SMB2 3.3.5.2.5: the CreditCharge must cover the larger of request and response payload.

    Without multi-credit support every payload is limited to 64 KiB (3.2.4.1.5).
    """
    if payload <= _SMB2_64K:
        return  # one credit (or CreditCharge 0) always covers up to 64 KiB
    if not supports_multi_credit(req.conn):
        raise SmbError(STATUS_INVALID_PARAMETER)
    charge = req.credit_charge
    if charge == 0 or ((payload - 1) >> 16) + 1 > charge:
        raise SmbError(STATUS_INVALID_PARAMETER)


def max_read_size(conn) -> int:
    """Connection.MaxReadSize as announced in NEGOTIATE (SMB 2.0.2 gets 64 KiB)."""
    return conn.max_read if supports_multi_credit(conn) else min(conn.max_read, _SMB2_64K)


def max_write_size(conn) -> int:
    return conn.max_write if supports_multi_credit(conn) else min(conn.max_write, _SMB2_64K)


def max_transact_size(conn) -> int:
    return conn.max_trans if supports_multi_credit(conn) else min(conn.max_trans, _SMB2_64K)


# -- FLUSH (3.3.5.11) ---------------------------------------------------------------------------

def handle_flush(req: Request):
    _, _, _, fid_p, fid_v = _FLUSH_REQ.unpack_from(req.view, h.HEADER_SIZE)
    op = req.open_for(fid_p, fid_v)
    # 3.3.5.11: a file needs FILE_WRITE_DATA or FILE_APPEND_DATA; a directory needs
    # FILE_ADD_FILE or FILE_ADD_SUBDIRECTORY, which are the same two bits.
    if not op.granted_access & (FILE_WRITE_DATA | FILE_APPEND_DATA):
        raise SmbError(STATUS_ACCESS_DENIED)
    if op.pipe is not None:
        return STATUS_SUCCESS, _FLUSH_RSP  # pipe writes are never buffered here
    try:
        if deferred_size.table(req.server) is not None:
            deferred_size.materialize(req.server, op)  # a deferred end of file reaches disk
        os.fsync(op.fd)
    except OSError as exc:
        raise SmbError(oserror_to_status(exc, "FLUSH")) from None
    return STATUS_SUCCESS, _FLUSH_RSP


# -- READ (3.3.5.12) ----------------------------------------------------------------------------

# Sequential READs of at least this size make the disk read ahead of the client: the next
# _READAHEAD_FACTOR ranges of the same size are asked for with POSIX_FADV_WILLNEED, which
# starts the I/O without waiting for it. Measured on a cold cache, 1 GiB in 4 MiB READs: 2.7 s
# without, 1.0 s with (the kernel's own readahead window alone leaves the loop waiting).
_READAHEAD_MIN = 256 * 1024
_READAHEAD_FACTOR = 4


def handle_read(req: Request):
    (_, _, _, length, offset, fid_p, fid_v, min_count, channel, _, _,
     _) = _READ_REQ.unpack_from(req.view, h.HEADER_SIZE)
    op = req.open_for(fid_p, fid_v)
    conn = req.conn
    # 3.3.5.12 names FILE_READ_DATA; Windows servers also read through a handle opened for
    # FILE_EXECUTE only (a program run from the share), and so do we.
    if not op.granted_access & (FILE_READ_DATA | FILE_EXECUTE):
        raise SmbError(STATUS_ACCESS_DENIED)
    if length > max_read_size(conn):
        raise SmbError(STATUS_INVALID_PARAMETER)
    check_credit_charge(req, length)
    if channel and conn.dialect >= h.SMB3_00:
        raise SmbError(STATUS_INVALID_PARAMETER)  # RDMA channels need an RDMA transport
    if op.pipe is not None:
        return _pipe_read(req, op, length)
    if op.is_dir:
        raise SmbError(STATUS_INVALID_DEVICE_REQUEST)
    if offset + length > _MAX_FILE_OFFSET:
        raise SmbError(STATUS_INVALID_PARAMETER)
    if length == 0:
        if min_count:
            raise SmbError(STATUS_END_OF_FILE)
        return STATUS_SUCCESS, _READ_RSP.pack(17, _READ_DATA_OFFSET, 0, 0, 0, 0)
    # MS-FSA 2.1.4.10: another open's exclusive lock on the range refuses the read.
    byte_locks.check_io(req.server, op, offset, length, False)
    stream = streams.stream_of(op)
    if stream is not None:
        return _stream_read(req, op, stream, offset, length, min_count)
    try:
        size = os.fstat(op.fd).st_size
    except OSError as exc:
        raise SmbError(oserror_to_status(exc, "READ")) from None
    # A deferred end of file (fs/deferred_size.py) counts: the FileRange reads zeros past the
    # data on disk (sendfile stops there and the loop pads; read()/read_after() pad too).
    size = deferred_size.effective_size(req.server, op.file_key, size)
    n = min(length, size - offset) if offset < size else 0
    # MS-FSA 2.1.5.3: at or past the end of file -> STATUS_END_OF_FILE; MS-SMB2 3.3.5.12:
    # fewer than MinimumCount bytes -> STATUS_END_OF_FILE.
    if n <= 0 or n < min_count:
        raise SmbError(STATUS_END_OF_FILE)
    if offset == op.position and n >= _READAHEAD_MIN:
        # A sequential reader: start the disk on what it will ask for next, so that while
        # this range is sent the next ones are read (the loop never waits on two in a row).
        try:
            os.posix_fadvise(op.fd, offset + n, n * _READAHEAD_FACTOR, os.POSIX_FADV_WILLNEED)
        except OSError:
            pass
    # The server's own handle does synchronous I/O, so the position follows every read and
    # write (what Windows reports in FilePositionInformation; smbtorture smb2.read.position).
    op.position = offset + n
    req.session.bytes_read += n
    req.server.bytes_read += n
    # The data stays on disk: the connection sends it with os.sendfile when it can.
    return STATUS_SUCCESS, [_READ_RSP.pack(17, _READ_DATA_OFFSET, 0, n, 0, 0),
                            FileRange(op.fd, offset, n)]


def _stream_read(req: Request, op, stream, offset: int, length: int, min_count: int):
    data = streams.read_stream(op.fd, stream.name)[offset:offset + length]
    n = len(data)
    if n == 0 or n < min_count:
        raise SmbError(STATUS_END_OF_FILE)  # MS-FSA 2.1.5.3, as for the file's own data
    op.position = offset + n
    req.session.bytes_read += n
    req.server.bytes_read += n
    return STATUS_SUCCESS, [_READ_RSP.pack(17, _READ_DATA_OFFSET, 0, n, 0, 0), data]


def _pipe_read(req: Request, op, length: int):
    status, data = op.pipe.read(length)
    if status not in (STATUS_SUCCESS, STATUS_BUFFER_OVERFLOW):
        raise SmbError(status)
    n = len(data)
    req.session.bytes_read += n
    req.server.bytes_read += n
    # 3.3.4.4: STATUS_BUFFER_OVERFLOW on a pipe read carries the data, not an error body.
    return status, [_READ_RSP.pack(17, _READ_DATA_OFFSET, 0, n, 0, 0), data]


# -- WRITE (3.3.5.13) ---------------------------------------------------------------------------

def handle_write(req: Request):
    (_, data_off, length, offset, fid_p, fid_v, channel, _, _, _,
     flags) = _WRITE_REQ.unpack_from(req.view, h.HEADER_SIZE)
    op = req.open_for(fid_p, fid_v)
    conn = req.conn
    access = op.granted_access
    if not access & (FILE_WRITE_DATA | FILE_APPEND_DATA):
        raise SmbError(STATUS_ACCESS_DENIED)
    if length > max_write_size(conn):
        raise SmbError(STATUS_INVALID_PARAMETER)
    check_credit_charge(req, length)
    if channel and conn.dialect >= h.SMB3_00:
        raise SmbError(STATUS_INVALID_PARAMETER)
    # A payload the loop splices from the socket to the file (SpliceWrite): its request is
    # the 112 bytes of header and body only; the payload follows once this accepts it.
    spliced = getattr(getattr(conn, "transport", None), "splice", None)
    if type(spliced) is SpliceWrite and spliced.frame is req.view:
        if data_off != SPLICE_HEAD or length != spliced.length:
            raise SmbError(STATUS_INVALID_PARAMETER)  # (splice_candidate checked both)
        data = None
    else:
        spliced = None
        data = req.data(data_off, length)
    if op.pipe is not None:
        return _pipe_write(req, op, data)
    if op.is_dir:
        raise SmbError(STATUS_INVALID_DEVICE_REQUEST)
    fd = op.fd
    append_only = access & (FILE_WRITE_DATA | FILE_APPEND_DATA) == FILE_APPEND_DATA
    if offset > _MAX_FILE_OFFSET and not (offset == WRITE_TO_END_OF_FILE and append_only):
        raise SmbError(STATUS_INVALID_PARAMETER)
    if length == 0:
        return STATUS_SUCCESS, _WRITE_RSP.pack(17, 0, 0, 0, 0, 0)
    server = req.server
    oplock_break.break_for(server, op, fsa.WRITE)  # MS-FSA 2.1.5.3: Level II -> none
    stream = streams.stream_of(op)
    if stream is not None:
        return _stream_write(req, op, stream, offset, data, append_only)
    sw = spliced if spliced is not None and spliced.frame is req.view else None
    try:
        if offset == WRITE_TO_END_OF_FILE:
            offset = deferred_size.effective_size(server, op.file_key, os.fstat(fd).st_size)
        if offset + length > _MAX_WRITE_END:
            raise SmbError(STATUS_INVALID_PARAMETER)
        # MS-FSA 2.1.4.10: any lock on the range but this open's own exclusive one refuses it.
        byte_locks.check_io(server, op, offset, length, True)
        if append_only:
            _check_append_only(server, op, offset)
        sync = bool(flags & SMB2_WRITEFLAG_WRITE_THROUGH or (op.create_options | op.mode)
                    & FILE_WRITE_THROUGH)
        if sw is not None:
            # The loop moves the payload and answers once it is on disk (finish_splice).
            sw.accept(op, offset, sync, req.session)
            return STATUS_SUCCESS, _WRITE_RSP.pack(17, 0, length, 0, 0, 0)
        written = 0
        while written < length:
            # A short pwrite (a signal, a nearly full disk) is continued; ENOSPC then raises.
            written += os.pwrite(fd, data[written:] if written else data, offset + written)
        if sync:
            _fdatasync(fd)
    except OSError as exc:
        raise SmbError(oserror_to_status(exc, "WRITE")) from None
    op.position = offset + length
    if deferred_size.table(server) is not None:
        deferred_size.written(server, op.file_key, offset + length)
    req.session.bytes_written += length
    server.bytes_written += length
    return STATUS_SUCCESS, _WRITE_RSP.pack(17, 0, length, 0, 0, 0)


# -- WRITE payloads spliced from the socket to the file (issue 11; write_splice.py) -------------

SPLICE_MIN = 64 * 1024  # payloads at least this large are spliced when the WRITE allows it
SPLICE_HEAD = h.HEADER_SIZE + 48  # header + WRITE body: where a spliced payload starts (112)
_U32 = struct.Struct("<I")


class SpliceWrite:
    """One plain WRITE whose payload goes from the socket to the file with os.splice, never
    through Python's memory. The loop hands its 112-byte request (`frame`) to the protocol
    core; handle_write runs every check it always runs and, instead of writing, `accept`s:
    the loop then moves `length` bytes to `offset` (or discards them if the WRITE failed)
    and answers with `finish_splice` once all of them are in the file."""

    __slots__ = ("frame", "length", "op", "fd", "offset", "sync", "session", "response",
                 "status", "done")

    def __init__(self, frame, length: int) -> None:
        self.frame = frame
        self.length = length
        self.op = None  # set by accept(): the payload is written; else it is discarded
        self.fd = -1  # the loop's own dup() of the file's descriptor while it splices
        self.offset = 0
        self.sync = False
        self.session = None
        self.response: list = []  # the answer, held until the payload is in the file
        self.status = STATUS_SUCCESS  # a failed write's status
        self.done = 0  # payload bytes in the file so far

    def accept(self, op, offset: int, sync: bool, session) -> None:
        self.op = op
        self.offset = offset
        self.sync = sync
        self.session = session


def splice_candidate(conn, head, frame_len: int) -> SpliceWrite | None:
    """A SpliceWrite for a frame of `frame_len` bytes whose first SPLICE_HEAD bytes are
    `head`, when it is one unsigned, unencrypted WRITE (not part of a compound) of at least
    SPLICE_MIN bytes with its payload right after its body, on an open of a file's own data
    (not a pipe, directory or named stream), in a session that neither requires signing nor
    encrypts; else None (the frame takes the ordinary path). Nothing is checked for good
    here: the WRITE's own checks run on the 112 bytes (handle_write)."""
    payload = frame_len - SPLICE_HEAD
    if payload < SPLICE_MIN:
        return None
    (magic, hsize, _, _, command, _, flags, next_cmd, _, _,
     session_id) = h.HEADER.unpack_from(head, 0)
    if magic != h.SMB2_MAGIC or hsize != h.HEADER_SIZE or command != h.WRITE or next_cmd \
            or flags & (h.FLAGS_SIGNED | h.FLAGS_RELATED_OPERATIONS):
        return None
    (size, data_off, length, _, _, fid_v, _, _, _, _,
     _) = _WRITE_REQ.unpack_from(head, h.HEADER_SIZE)
    if size != 49 or data_off != SPLICE_HEAD or length != payload:
        return None
    session = conn.sessions.get(session_id)
    if session is None or session.signing_required or session.encrypt_data:
        return None
    op = conn.server.opens.get(fid_v)
    if op is None or op.pipe is not None or op.is_dir or streams.stream_of(op) is not None:
        return None
    return SpliceWrite(memoryview(bytes(head[:SPLICE_HEAD])), payload)


def finish_splice(server, sw: SpliceWrite) -> None:
    """The payload is in the file (or failed, `sw.status`): write-through, bookkeeping as a
    WRITE done in place, and the held answer turned into an error answer if it failed."""
    op = sw.op
    if op is not None and sw.status == STATUS_SUCCESS:
        try:
            if sw.sync:
                _fdatasync(sw.fd)
        except OSError as exc:
            sw.status = oserror_to_status(exc, "WRITE")
        else:
            end = sw.offset + sw.length
            op.position = end
            if deferred_size.table(server) is not None:
                deferred_size.written(server, op.file_key, end)
            sw.session.bytes_written += sw.length
            server.bytes_written += sw.length
    if op is not None and sw.status != STATUS_SUCCESS and len(sw.response) == 2:
        # The answer was built for success (unsigned: accept() needs an unsigned request in
        # a session that does not require signing): the same header with the error status
        # and the error body, as a WRITE that failed in place answers.
        buf = bytearray(sw.response[1][:h.HEADER_SIZE])
        _U32.pack_into(buf, 8, sw.status)
        buf += h.ERROR_BODY
        sw.response[0] = struct.pack(">I", len(buf))
        sw.response[1] = buf


def _stream_write(req: Request, op, stream, offset: int, data, append_only: bool):
    size = streams.stream_size(op.fd, stream.name)
    if offset == WRITE_TO_END_OF_FILE:
        offset = size
    length = len(data)
    byte_locks.check_io(req.server, op, offset, length, True)
    if append_only and offset < size:
        raise SmbError(STATUS_ACCESS_DENIED)  # 3.3.5.13, as _check_append_only
    streams.write_at(op.fd, stream.name, offset, data)
    op.position = offset + length
    req.session.bytes_written += length
    req.server.bytes_written += length
    return STATUS_SUCCESS, _WRITE_RSP.pack(17, 0, length, 0, 0, 0)


def _check_append_only(server, op, offset: int) -> None:
    """3.3.5.13: without FILE_WRITE_DATA, bytes already in the file may not be rewritten.

    The spec's second rule (extending needs FILE_APPEND_DATA) is a SHOULD that Windows does not
    apply: FILE_WRITE_DATA alone writes anywhere, and clients (impacket) rely on it.
    """
    if offset < deferred_size.effective_size(server, op.file_key, os.fstat(op.fd).st_size):
        raise SmbError(STATUS_ACCESS_DENIED)


def _pipe_write(req: Request, op, data: memoryview):
    n = op.pipe.write(data)
    req.session.bytes_written += n
    req.server.bytes_written += n
    return STATUS_SUCCESS, _WRITE_RSP.pack(17, 0, n, 0, 0, 0)

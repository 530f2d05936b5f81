"""Server-side copy: resume keys, SRV_COPYCHUNK_COPY and the chunk copy itself
(MS-SMB2 2.2.31.1, 2.2.32.1, 2.2.32.3, 3.3.5.15.5, 3.3.5.15.6).

* Resume keys are opaque 24-byte values naming an open: the open's volatile id (8 bytes,
  never reused by a server) and 16 bytes of HMAC-SHA256 over it under a random per-server
  secret. Nothing is stored per key; a key cannot be guessed or forged, and a key of a
  closed open finds nothing (its id is gone from the open table). A key is only honoured
  for the session that owns the source open: another user cannot read a file through a key
  that leaked to them.
* Limits (3.3.1.5 ServerSideCopyMaxNumberofChunks, MaxChunkSize, MaxDataSize): 256 chunks,
  1 MiB per chunk, 16 MiB per request; a request over them is answered with the limits.
* `copy_chunk` copies one range with os.copy_file_range (in the kernel, no data through
  Python) and falls back to pread + pwrite of the whole chunk (at most 1 MiB) where the
  kernel cannot (another file system, overlapping ranges of one file, old kernels). Reading
  the whole chunk before writing it makes an overlapping copy inside one file behave like
  memmove. Bytes past the data on disk but inside a deferred end of file
  (fs/deferred_size.py) are zeros: they are written as zeros. Named streams (whose bytes
  are an xattr, at most 64 KiB) are copied through a buffer by `copy_between`.
"""

from __future__ import annotations

import errno
import os
import struct
from typing import Any

from . import streams
from .server_tables import PerServer

MAX_CHUNKS = 256
MAX_CHUNK_SIZE = 1 << 20
MAX_DATA_SIZE = 16 << 20

RESUME_KEY_SIZE = 24
# 2.2.31.1 SRV_COPYCHUNK_COPY: SourceKey, ChunkCount, Reserved; then the chunks
COPY_HEADER = struct.Struct("<24sII")
# 2.2.31.1.1 SRV_COPYCHUNK: SourceOffset, TargetOffset, Length, Reserved
CHUNK = struct.Struct("<QQII")
# 2.2.32.1 SRV_COPYCHUNK_RESPONSE: ChunksWritten, ChunkBytesWritten, TotalBytesWritten
RESPONSE = struct.Struct("<III")
LIMITS_RESPONSE = RESPONSE.pack(MAX_CHUNKS, MAX_CHUNK_SIZE, MAX_DATA_SIZE)

_secrets = PerServer("resume_key_secret")  # server -> bytes
_ID = struct.Struct("<Q")


def _secret(server: Any) -> bytes:
    secret = _secrets.get(server)
    if secret is None:
        secret = _secrets[server] = os.urandom(32)
    return secret


def resume_key(server: Any, op: Any) -> bytes:
    """The 24-byte resume key of an open (2.2.32.3 ResumeKey)."""
    import hashlib  # hashlib/hmac at first use, not at start (issue 11: idle memory)
    import hmac

    vid = _ID.pack(op.volatile_id)
    return vid + hmac.new(_secret(server), vid, hashlib.sha256).digest()[:16]


def open_for_key(server: Any, session: Any, key: bytes) -> Any:
    """The open a resume key names, or None (unknown, forged, closed, another session's)."""
    if len(key) != RESUME_KEY_SIZE:
        return None
    import hashlib
    import hmac

    vid = key[:8]
    mac = hmac.new(_secret(server), vid, hashlib.sha256).digest()[:16]
    if not hmac.compare_digest(mac, key[8:]):
        return None
    op = server.opens.get(_ID.unpack(vid)[0])
    if op is None or op.session is not session:
        return None
    return op


def parse_copy(data) -> tuple[bytes, list[tuple[int, int, int]]] | None:
    """(SourceKey, [(source offset, target offset, length)]) of a SRV_COPYCHUNK_COPY, or
    None when it breaks the limits or is shorter than its ChunkCount says (3.3.5.15.6: both
    are answered with the limits)."""
    if len(data) < COPY_HEADER.size:
        return None
    key, count, _ = COPY_HEADER.unpack_from(data, 0)
    if count > MAX_CHUNKS or len(data) < COPY_HEADER.size + count * CHUNK.size:
        return None
    chunks = []
    total = 0
    for i in range(count):
        src, dst, length, _ = CHUNK.unpack_from(data, COPY_HEADER.size + i * CHUNK.size)
        if length == 0 or length > MAX_CHUNK_SIZE:
            return None
        total += length
        chunks.append((src, dst, length))
    if total > MAX_DATA_SIZE:
        return None
    return bytes(key), chunks


def key_of(data) -> bytes | None:
    """Just the SourceKey, when the input holds one (looked up before any other check)."""
    if len(data) < RESUME_KEY_SIZE:
        return None
    return bytes(data[:RESUME_KEY_SIZE])


# copy_file_range errors that mean "not here": use pread/pwrite instead
_FALLBACK = frozenset(e for e in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP,
                                  getattr(errno, "ENOTSUP", None), errno.EBADF,
                                  errno.ETXTBSY, errno.EPERM) if e is not None)
_copy_file_range = getattr(os, "copy_file_range", None)


def copy_chunk(src_fd: int, dst_fd: int, src_off: int, dst_off: int, length: int) -> None:
    """Copy `length` bytes; those past the source's data on disk are zeros. Raises OSError."""
    done = 0
    if _copy_file_range is not None and not _same_file(src_fd, dst_fd):
        try:
            while done < length:
                n = _copy_file_range(src_fd, dst_fd, length - done, src_off + done,
                                     dst_off + done)
                if n == 0:
                    break  # the source's data on disk ends here
                done += n
        except OSError as exc:
            if exc.errno not in _FALLBACK:
                raise
    if done < length:
        data = os.pread(src_fd, length - done, src_off + done)
        if len(data) < length - done:
            data += bytes(length - done - len(data))
        view = memoryview(data)
        written = 0
        while written < len(view):
            written += os.pwrite(dst_fd, view[written:], dst_off + done + written)


def copy_between(src: Any, dst: Any, src_off: int, dst_off: int, length: int) -> None:
    """Copy between two opens, either of which may be a named stream (fs/streams.py: its
    bytes live in an xattr of the base file, whose descriptor the open holds). Raises
    OSError, or SmbError(STATUS_DISK_FULL) when a stream would outgrow what an xattr holds."""
    s_stream, d_stream = streams.stream_of(src), streams.stream_of(dst)
    if s_stream is None and d_stream is None:
        copy_chunk(src.fd, dst.fd, src_off, dst_off, length)
        return
    if s_stream is not None:
        data = streams.read_stream(src.fd, s_stream.name)[src_off:src_off + length]
    else:
        data = os.pread(src.fd, length, src_off)
    if len(data) < length:
        data += bytes(length - len(data))
    if d_stream is not None:
        streams.write_at(dst.fd, d_stream.name, dst_off, data)
    else:
        view = memoryview(data)
        written = 0
        while written < length:
            written += os.pwrite(dst.fd, view[written:], dst_off + written)


def _same_file(a: int, b: int) -> bool:
    """Both descriptors on one file: the copy may overlap itself, so it goes through a buffer
    (copy_file_range refuses overlapping ranges of one file with EINVAL anyway)."""
    if a == b:
        return True
    sa, sb = os.fstat(a), os.fstat(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)

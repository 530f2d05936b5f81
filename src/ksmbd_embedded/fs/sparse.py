"""Sparse files: zeroing ranges and finding allocated ranges (MS-FSA 2.1.5.10.22, .38, .39).

* `zero_range` is FSCTL_SET_ZERO_DATA on disk. On a file marked sparse it punches a hole
  (fallocate PUNCH_HOLE|KEEP_SIZE, so the disk space is given back, as NTFS does for sparse
  files); on other files it asks for ZERO_RANGE|KEEP_SIZE (the range stays allocated, as NTFS
  keeps it for non-sparse files). Where the file system or libc has neither (vfat, exFAT,
  FUSE, tmpfs for ZERO_RANGE, no ctypes), zeros are written in 1 MiB chunks. The range never
  goes past the data on disk: zeroing does not change the end of file, and bytes past the
  data on disk (a deferred end of file, fs/deferred_size.py) read as zeros already.
* `allocated_ranges` is FSCTL_QUERY_ALLOCATED_RANGES. A file that is not marked sparse is
  reported fully allocated over the queried range (what the FSCTL's definition says of
  non-sparse files). For a sparse file, SEEK_DATA/SEEK_HOLE find the data; each data extent
  is widened to 64 KiB boundaries, the sparse allocation unit of NTFS (MS-FSA <50>, what
  smbtorture smb2.ioctl.sparse_qar expects), then clipped to the queried range and the end of
  file, and touching extents merge. Widening only ever reports zeros as "allocated", which
  the reply allows (allocated ranges may hold zeros); a hole is never reported over data.
  A file system without SEEK_DATA reports the whole range.

fallocate(2) comes from libc through ctypes (Python has only posix_fallocate), loaded on first
use; `fallocate64` is preferred where it exists (32-bit glibc), musl's `fallocate` takes a
64-bit off_t everywhere.
"""

from __future__ import annotations

import errno
import os

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02
FALLOC_FL_ZERO_RANGE = 0x10

SPARSE_UNIT = 64 * 1024  # NTFS frees and reports sparse allocation in 64 KiB units
_ZERO_CHUNK = 1 << 20
_ZEROS = bytes(_ZERO_CHUNK)

# errors meaning "this file system / kernel cannot do that": fall back, do not fail
_UNSUPPORTED = frozenset(e for e in (errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", None),
                                     errno.ENOSYS, errno.EINVAL) if e is not None)

_fallocate = None
_fallocate_loaded = False


def _load_fallocate():
    global _fallocate, _fallocate_loaded
    if not _fallocate_loaded:
        _fallocate_loaded = True
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            func = getattr(libc, "fallocate64", None) or libc.fallocate
            func.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
            func.restype = ctypes.c_int
            _fallocate = func
        except (OSError, AttributeError, ImportError):
            _fallocate = None
    return _fallocate


def fallocate(fd: int, mode: int, offset: int, length: int) -> None:
    """fallocate(2); OSError(ENOSYS) when libc does not offer it."""
    func = _load_fallocate()
    if func is None:
        raise OSError(errno.ENOSYS, "fallocate unavailable")
    if func(fd, mode, offset, length) != 0:
        import ctypes
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def zero_range(fd: int, start: int, end: int, sparse: bool) -> None:
    """Make [start, end) read as zeros without changing the end of file. Raises OSError."""
    end = min(end, os.fstat(fd).st_size)
    if start >= end:
        return
    mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE if sparse else \
        FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE
    try:
        fallocate(fd, mode, start, end - start)
        return
    except OSError as exc:
        if exc.errno not in _UNSUPPORTED:
            raise
    write_zeros(fd, start, end)


def write_zeros(fd: int, start: int, end: int) -> None:
    pos = start
    view = memoryview(_ZEROS)
    while pos < end:
        pos += os.pwrite(fd, view[:min(_ZERO_CHUNK, end - pos)], pos)


def allocated_ranges(fd: int, offset: int, length: int, size: int, sparse: bool,
                     limit: int) -> list[tuple[int, int]]:
    """(offset, length) pairs of the allocated parts of [offset, offset+length) in a file
    of `size` bytes; at most `limit` + 1 of them (one more than fits tells the caller the
    answer overflows). Raises OSError."""
    end = min(offset + length, size)
    if length <= 0 or offset >= end:
        return []
    if not sparse:
        return [(offset, end - offset)]
    ranges: list[list[int]] = []
    pos = offset
    while pos < end and len(ranges) <= limit:
        try:
            data = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                break  # no data at or after pos
            if exc.errno in _UNSUPPORTED:
                return [(offset, end - offset)]
            raise
        unit_start = data - data % SPARSE_UNIT
        if unit_start >= end:
            break
        hole = os.lseek(fd, data, os.SEEK_HOLE)
        lo = max(offset, unit_start)
        hi = min(end, -(-hole // SPARSE_UNIT) * SPARSE_UNIT)
        if ranges and lo <= ranges[-1][1]:
            ranges[-1][1] = max(ranges[-1][1], hi)
        else:
            ranges.append([lo, hi])
        pos = max(hole, hi)
    return [(lo, hi - lo) for lo, hi in ranges]

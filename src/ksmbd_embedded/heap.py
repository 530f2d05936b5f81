"""glibc heap settings for multi-megabyte I/O buffers, and giving memory back when idle.

Every large READ response (read into memory to be signed, encrypted or compounded), every
decrypted WRITE and every large received frame is a buffer of up to smb2 max read/write
size. glibc's default gives an allocation that large its own mmap, and raises that
threshold only to the size of the largest block freed, so same-sized buffers keep being
mmapped: each one page-faults in (~0.25 us per 4 KiB page, and far more on a VM whose
freed memory is reported back to the host) and is unmapped again on free. Measured on an
encrypted 1 GiB read: 12% of the server's CPU in page faults.

So, on the first large buffer (the heap settings wait for it), large blocks are taken
from the heap (M_MMAP_THRESHOLD above any frame) and freed ones stay there for the next
(M_TRIM_THRESHOLD); the loop calls `trim()` once the server has been idle for a moment,
which returns every free page to the system (malloc_trim), so an idle server stays small.
Once the server listens, `release_startup_memory()` trims once: the pages that importing
(and compiling) the server's modules left free (issue 11, idle size).
Other C libraries (musl on OpenWrt) have neither call: nothing is done there.
"""

from __future__ import annotations

import os

M_TRIM_THRESHOLD = -1  # glibc mallopt parameters
M_MMAP_THRESHOLD = -3
_LARGE_BLOCKS_FROM_HEAP = 64 * 1024 * 1024  # above the largest frame (8 MiB + slack)

_libc = []  # [ctypes libc] once prepared, [None] where there is no glibc
_busy = [False]  # large buffers were used since the last trim


def large_buffers_in_use() -> None:
    """A large buffer is (about to be) allocated: set the heap up once, note the use."""
    _busy[0] = True
    if _libc:
        return
    try:
        import ctypes
        libc = ctypes.CDLL(None)
        ok = libc.mallopt(M_MMAP_THRESHOLD, _LARGE_BLOCKS_FROM_HEAP) and \
            libc.mallopt(M_TRIM_THRESHOLD, 2 * _LARGE_BLOCKS_FROM_HEAP)
        _libc.append(libc if ok else None)
    except (OSError, AttributeError):  # not glibc
        _libc.append(None)


def release_startup_memory() -> None:
    """Once the server listens: give back the heap pages that importing and compiling the
    server's modules freed (~1.2 MB of a ~20 MB idle server, issue 11). glibc only: ctypes
    (~0.2 MB) is not loaded where there is no malloc_trim (musl), and the heap settings
    above are left for the first large buffer."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return
    except (ValueError, OSError, AttributeError):  # not glibc
        return
    try:
        import ctypes
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def busy() -> bool:
    return _busy[0]


def trim() -> None:
    """Give free heap memory back to the system (call when idle)."""
    _busy[0] = False
    libc = _libc[0] if _libc else None
    if libc is not None:
        try:
            libc.malloc_trim(0)
        except AttributeError:
            pass

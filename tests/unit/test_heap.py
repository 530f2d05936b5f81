"""heap.py: large buffers from glibc's heap while busy, memory given back when idle."""

import ctypes
import ctypes.util

from ksmbd_embedded import heap


def test_busy_until_trimmed_and_trim_gives_memory_back():
    heap.large_buffers_in_use()
    assert heap.busy()
    # The tests run on Debian (glibc >= 2.36); on musl (OpenWrt) heap.py does nothing by design.
    assert heap._libc and heap._libc[0] is not None, "glibc's mallopt was not found"
    bufs = [bytearray(8 << 20) for _ in range(4)]  # from the heap now (M_MMAP_THRESHOLD)
    del bufs
    heap.trim()
    assert not heap.busy()
    libc = ctypes.CDLL(ctypes.util.find_library("c"))

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]
    assert hasattr(libc, "mallinfo2"), "glibc >= 2.33 expected (Debian)"
    libc.mallinfo2.restype = Mallinfo2
    info = libc.mallinfo2()
    assert info.keepcost < 8 << 20  # the freed 32 MiB did not stay at the top of the heap


def test_trim_without_setup_is_harmless(monkeypatch):
    monkeypatch.setattr(heap, "_libc", [])
    heap.trim()
    assert not heap.busy()

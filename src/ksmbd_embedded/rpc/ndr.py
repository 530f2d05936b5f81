"""A small NDR 2.0 encoder/decoder (C706 chapter 14; MS-RPCE 2.2.5), little-endian only.

Only what srvsvc and wkssvc need: aligned integers, unique pointers with referent ids,
conformant varying unicode strings ([string] wchar_t*), conformant arrays of structures
whose embedded pointers are deferred.

Deferral: a structure's embedded pointers are written as referent ids where the pointer sits;
the pointees follow the whole top-level construct (parameter), in the order their pointers
appeared, and a pointee's own embedded pointers follow it in turn. `NdrWriter.defer` queues a
callable that writes one pointee; `NdrWriter.flush` drains the queue breadth-first per level,
which is the order NDR prescribes.
"""

from __future__ import annotations

import struct
from typing import Callable

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")

FIRST_REFERENT_ID = 0x00020000  # what Windows starts with; any non-zero value is valid


class NdrError(Exception):
    """The stub data cannot be decoded (becomes the fault nca_s_fault_ndr)."""


class NdrWriter:
    __slots__ = ("buf", "_next_ref", "_deferred")

    def __init__(self) -> None:
        self.buf = bytearray()
        self._next_ref = FIRST_REFERENT_ID
        self._deferred: list[Callable[[], None]] = []

    # -- primitives -------------------------------------------------------------------------
    def align(self, n: int) -> None:
        pad = -len(self.buf) % n
        if pad:
            self.buf += bytes(pad)

    def u8(self, value: int) -> None:
        self.buf.append(value & 0xFF)

    def u16(self, value: int) -> None:
        self.align(2)
        self.buf += _U16.pack(value & 0xFFFF)

    def u32(self, value: int) -> None:
        self.align(4)
        self.buf += _U32.pack(value & 0xFFFFFFFF)

    def i32(self, value: int) -> None:
        self.align(4)
        self.buf += _I32.pack(value)

    # -- pointers ---------------------------------------------------------------------------
    def pointer(self, present: bool) -> bool:
        """A unique/full pointer: its referent id (0 for NULL). Returns `present`."""
        if present:
            self.u32(self._next_ref)
            self._next_ref += 4
        else:
            self.u32(0)
        return present

    def defer(self, write: Callable[[], None]) -> None:
        self._deferred.append(write)

    def flush(self) -> None:
        """Write all deferred pointees (and theirs), in NDR order."""
        while self._deferred:
            level, self._deferred = self._deferred, []
            for write in level:
                # pointees queued by this pointee come right after it, before its siblings
                outer, self._deferred = self._deferred, []
                write()
                self.flush()
                self._deferred = outer

    def unique_wstr(self, value: str | None) -> None:
        """An embedded `[string, unique] wchar_t*`: referent id now, the string deferred."""
        if self.pointer(value is not None):
            self.defer(lambda: self.wstr(value))

    # -- constructed types ------------------------------------------------------------------
    def wstr(self, value: str) -> None:
        """A conformant varying string of wchar_t, NUL terminated (counts include the NUL)."""
        data = value.encode("utf-16-le") + b"\x00\x00"
        count = len(data) // 2
        self.u32(count)  # MaximumCount
        self.u32(0)  # Offset
        self.u32(count)  # ActualCount
        self.buf += data

    def top_unique(self, present: bool, write: Callable[[], None]) -> None:
        """A top-level unique pointer parameter/field: referent id, then its pointee (and the
        pointee's deferred pointers) right away."""
        if self.pointer(present):
            write()
            self.flush()

    def struct_array(self, items: list, write_item: Callable[[object], None]) -> None:
        """A conformant array of structures: MaximumCount, the structures (their pointers
        queued), then the pointees."""
        self.u32(len(items))
        for item in items:
            write_item(item)
        self.flush()

    def getvalue(self) -> bytes:
        return bytes(self.buf)


class NdrReader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes | memoryview) -> None:
        self.data = bytes(data)
        self.pos = 0

    def align(self, n: int) -> None:
        self.pos += -self.pos % n

    def _take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise NdrError("stub data too short")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def u16(self) -> int:
        self.align(2)
        return _U16.unpack(self._take(2))[0]

    def u32(self) -> int:
        self.align(4)
        return _U32.unpack(self._take(4))[0]

    def pointer(self) -> int:
        """A unique pointer's referent id (0 = NULL)."""
        return self.u32()

    def wstr(self) -> str:
        """A conformant varying wchar_t string; the terminating NUL is dropped."""
        max_count = self.u32()
        offset = self.u32()
        actual = self.u32()
        if offset != 0 or actual > max_count:
            raise NdrError("bad string bounds")
        raw = self._take(actual * 2)
        try:
            text = raw.decode("utf-16-le")
        except UnicodeDecodeError:
            raise NdrError("bad UTF-16") from None
        nul = text.find("\x00")
        return text if nul < 0 else text[:nul]

    def unique_wstr(self) -> str | None:
        """A top-level `[in, string, unique] wchar_t*` parameter."""
        if self.pointer() == 0:
            return None
        return self.wstr()

    def remaining(self) -> int:
        return len(self.data) - self.pos

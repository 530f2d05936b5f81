"""libubox blob and blobmsg TLV encoding (docs/notes/ubus-uci-opkg.md A3, A4).

A blob attribute is one big-endian 32-bit word — bit 31 "extended", bits 30..24 the id,
bits 23..0 the length including this header but not the padding — then the payload, padded
with zeros to a multiple of 4. A blobmsg attribute is an extended attribute whose id is the
blobmsg type; its payload starts with a name header (16-bit length, the name, a NUL, zero
padding to 4 bytes) followed by the value.

Decoding keeps the wire type of every integer (`Int8`, `Int16`, `Int32`, `Int64`, int
subclasses that encode back to their own type), so ``encode_members(decode_members(b)) == b``
for anything libubox writes. Plain Python values map like the ubus CLI maps JSON: bool -> INT8,
int -> INT32 when it fits in signed 32 bits else INT64, float -> DOUBLE, str -> STRING,
None -> UNSPEC, dict -> TABLE, list/tuple -> ARRAY.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

__all__ = [
    "BlobError", "BlobTooLong", "Int8", "Int16", "Int32", "Int64", "attr", "iter_attrs",
    "encode_members", "decode_members", "encode_value", "pad4",
    "BLOBMSG_TYPE_UNSPEC", "BLOBMSG_TYPE_ARRAY", "BLOBMSG_TYPE_TABLE", "BLOBMSG_TYPE_STRING",
    "BLOBMSG_TYPE_INT64", "BLOBMSG_TYPE_INT32", "BLOBMSG_TYPE_INT16", "BLOBMSG_TYPE_INT8",
    "BLOBMSG_TYPE_BOOL", "BLOBMSG_TYPE_DOUBLE",
]

BLOBMSG_TYPE_UNSPEC = 0
BLOBMSG_TYPE_ARRAY = 1
BLOBMSG_TYPE_TABLE = 2
BLOBMSG_TYPE_STRING = 3
BLOBMSG_TYPE_INT64 = 4
BLOBMSG_TYPE_INT32 = 5
BLOBMSG_TYPE_INT16 = 6
BLOBMSG_TYPE_INT8 = 7
BLOBMSG_TYPE_BOOL = BLOBMSG_TYPE_INT8
BLOBMSG_TYPE_DOUBLE = 8

EXTENDED = 0x80000000
ID_MASK = 0x7F000000
ID_SHIFT = 24
LEN_MASK = 0x00FFFFFF

_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
_DOUBLE = struct.Struct(">d")
_INT_FORMATS = {  # blobmsg type -> (struct, signed range)
    BLOBMSG_TYPE_INT8: (struct.Struct(">b"), 8),
    BLOBMSG_TYPE_INT16: (struct.Struct(">h"), 16),
    BLOBMSG_TYPE_INT32: (struct.Struct(">i"), 32),
    BLOBMSG_TYPE_INT64: (struct.Struct(">q"), 64),
}


class BlobError(ValueError):
    """Malformed blob data, or a value that has no blobmsg encoding."""


class BlobTooLong(BlobError):
    """An attribute longer than its 24-bit length field holds (16 MiB)."""

    def __init__(self, length: int) -> None:
        super().__init__(f"blob attribute of {length} bytes is too long")
        self.length = length


class Int8(int):
    """An integer sent as blobmsg INT8 (libubox's BOOL type, when not 0/1)."""


class Int16(int):
    """An integer sent as blobmsg INT16."""


class Int32(int):
    """An integer sent as blobmsg INT32 even where the JSON rule would say otherwise."""


class Int64(int):
    """An integer sent as blobmsg INT64 even when it fits in 32 bits."""


_INT_CLASSES = {Int8: BLOBMSG_TYPE_INT8, Int16: BLOBMSG_TYPE_INT16,
                Int32: BLOBMSG_TYPE_INT32, Int64: BLOBMSG_TYPE_INT64}
_CLASS_OF_TYPE = {v: k for k, v in _INT_CLASSES.items()}


def pad4(n: int) -> int:
    return (n + 3) & ~3


def attr(attr_id: int, payload: bytes, extended: bool = False) -> bytes:
    """One blob attribute: header, payload, zero padding to 4 bytes."""
    raw = 4 + len(payload)
    if raw > LEN_MASK:
        raise BlobTooLong(raw)
    if not 0 <= attr_id <= 0x7F:
        raise BlobError(f"blob attribute id {attr_id} out of range")
    head = (EXTENDED if extended else 0) | (attr_id << ID_SHIFT) | raw
    return _U32.pack(head) + payload + bytes(pad4(raw) - raw)


def iter_attrs(buf: bytes | memoryview) -> Iterator[tuple[int, bool, bytes]]:
    """(id, extended, payload) of each attribute in a list of attributes."""
    view = memoryview(buf)
    pos = 0
    end = len(view)
    while pos < end:
        if end - pos < 4:
            raise BlobError("truncated blob attribute header")
        head = _U32.unpack_from(view, pos)[0]
        raw = head & LEN_MASK
        if raw < 4 or pos + raw > end:
            raise BlobError(f"blob attribute length {raw} does not fit")
        yield (head & ID_MASK) >> ID_SHIFT, bool(head & EXTENDED), bytes(view[pos + 4:pos + raw])
        pos += pad4(raw)


# -- blobmsg --------------------------------------------------------------------------------

def _name_header(name: str) -> bytes:
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) > 0xFFFF:
        raise BlobError("blobmsg name too long")
    head = _U16.pack(len(raw)) + raw + b"\0"
    return head + bytes(pad4(len(head)) - len(head))


def _blobmsg(msg_type: int, name: str, value: bytes) -> bytes:
    return attr(msg_type, _name_header(name) + value, extended=True)


def encode_value(name: str, value: object) -> bytes:
    """One named blobmsg attribute for a Python value."""
    cls = type(value)
    if value is None:
        return _blobmsg(BLOBMSG_TYPE_UNSPEC, name, b"")
    if cls is bool:
        return _blobmsg(BLOBMSG_TYPE_INT8, name, b"\1" if value else b"\0")
    if isinstance(value, int):
        msg_type = _INT_CLASSES.get(cls)
        if msg_type is None:
            msg_type = BLOBMSG_TYPE_INT32 if -2**31 <= value < 2**31 else BLOBMSG_TYPE_INT64
        fmt, bits = _INT_FORMATS[msg_type]
        if not -2**(bits - 1) <= value < 2**(bits - 1):
            raise BlobError(f"{name!r}: {value} does not fit a signed {bits}-bit blobmsg integer")
        return _blobmsg(msg_type, name, fmt.pack(value))
    if isinstance(value, float):
        return _blobmsg(BLOBMSG_TYPE_DOUBLE, name, _DOUBLE.pack(value))
    if isinstance(value, str):
        return _blobmsg(BLOBMSG_TYPE_STRING, name,
                        value.encode("utf-8", "surrogateescape") + b"\0")
    if isinstance(value, dict):
        return _blobmsg(BLOBMSG_TYPE_TABLE, name, encode_members(value))
    if isinstance(value, (list, tuple)):
        return _blobmsg(BLOBMSG_TYPE_ARRAY, name, encode_members(value))
    raise BlobError(f"{name!r}: no blobmsg encoding for {cls.__name__}")


def encode_members(value: dict | list | tuple) -> bytes:
    """The member list of a TABLE (a dict: named members) or ARRAY (a list: unnamed)."""
    if isinstance(value, dict):
        parts = []
        for key, item in value.items():
            if not isinstance(key, str) or not key:
                raise BlobError("table member names must be non-empty strings")
            parts.append(encode_value(key, item))
        return b"".join(parts)
    return b"".join(encode_value("", item) for item in value)


def _decode_one(msg_type: int, payload: bytes) -> tuple[str, object]:
    if len(payload) < 3:
        raise BlobError("blobmsg attribute without a name header")
    name_len = _U16.unpack_from(payload, 0)[0]
    head = pad4(2 + name_len + 1)
    if head > len(payload) or payload[2 + name_len] != 0:
        raise BlobError("blobmsg name does not fit or lacks its NUL")
    name = payload[2:2 + name_len].decode("utf-8", "surrogateescape")
    data = payload[head:]
    if msg_type == BLOBMSG_TYPE_UNSPEC:
        if data:
            raise BlobError(f"{name!r}: UNSPEC with a value")
        return name, None
    if msg_type in _INT_FORMATS:
        fmt, _ = _INT_FORMATS[msg_type]
        if len(data) != fmt.size:
            raise BlobError(f"{name!r}: integer of {len(data)} bytes for type {msg_type}")
        number = fmt.unpack(data)[0]
        if msg_type == BLOBMSG_TYPE_INT8 and number in (0, 1):
            return name, bool(number)
        return name, _CLASS_OF_TYPE[msg_type](number)
    if msg_type == BLOBMSG_TYPE_DOUBLE:
        if len(data) != 8:  # libubox accepts longer; nothing it writes is
            raise BlobError(f"{name!r}: DOUBLE of {len(data)} bytes")
        return name, _DOUBLE.unpack(data)[0]
    if msg_type == BLOBMSG_TYPE_STRING:
        if not data or data[-1] != 0 or 0 in data[:-1]:
            raise BlobError(f"{name!r}: STRING not ending in its only NUL")
        return name, data[:-1].decode("utf-8", "surrogateescape")
    if msg_type == BLOBMSG_TYPE_TABLE:
        return name, decode_members(data, table=True)
    if msg_type == BLOBMSG_TYPE_ARRAY:
        return name, decode_members(data, table=False)
    raise BlobError(f"{name!r}: unknown blobmsg type {msg_type}")


def decode_members(buf: bytes | memoryview, table: bool = True) -> dict | list:
    """A TABLE's members as a dict (later duplicates win, as in libubox's parser) or an
    ARRAY's as a list."""
    items = []
    for msg_type, extended, payload in iter_attrs(buf):
        if not extended:
            raise BlobError("blobmsg member without the extended bit")
        name, value = _decode_one(msg_type, payload)
        if table and not name:
            raise BlobError("table member without a name")
        items.append((name, value))
    if table:
        return dict(items)
    return [value for _, value in items]

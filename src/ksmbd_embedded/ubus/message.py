"""ubus messages: the 8-byte header, message types, top-level attributes, status codes
(docs/notes/ubus-uci-opkg.md A2, A5-A7; "notes" below).

A message is ``version(1) type(1) seq(2, BE) peer(4, BE)`` followed by exactly one blob
attribute (id 0) holding the top-level attributes. `Message.decode` keeps the attributes in
wire order with typed values, so ``Message.decode(b).encode() == b`` for what ubusd and
libubus write; `Message.get` answers like libubus's parser (the last valid one wins).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .blob import BlobError, BlobTooLong, attr, decode_members, encode_members, iter_attrs

__all__ = ["Message", "MessageError", "MessageTooLarge", "RawAttr", "message_length"]

# Message types (A5)
UBUS_MSG_HELLO = 0
UBUS_MSG_STATUS = 1
UBUS_MSG_DATA = 2
UBUS_MSG_PING = 3
UBUS_MSG_LOOKUP = 4
UBUS_MSG_INVOKE = 5
UBUS_MSG_ADD_OBJECT = 6
UBUS_MSG_REMOVE_OBJECT = 7
UBUS_MSG_SUBSCRIBE = 8
UBUS_MSG_UNSUBSCRIBE = 9
UBUS_MSG_NOTIFY = 10
UBUS_MSG_MONITOR = 11

MSG_NAMES = {
    0: "HELLO", 1: "STATUS", 2: "DATA", 3: "PING", 4: "LOOKUP", 5: "INVOKE", 6: "ADD_OBJECT",
    7: "REMOVE_OBJECT", 8: "SUBSCRIBE", 9: "UNSUBSCRIBE", 10: "NOTIFY", 11: "MONITOR",
}

# Top-level attribute ids (A6)
UBUS_ATTR_UNSPEC = 0
UBUS_ATTR_STATUS = 1
UBUS_ATTR_OBJPATH = 2
UBUS_ATTR_OBJID = 3
UBUS_ATTR_METHOD = 4
UBUS_ATTR_OBJTYPE = 5
UBUS_ATTR_SIGNATURE = 6
UBUS_ATTR_DATA = 7
UBUS_ATTR_TARGET = 8
UBUS_ATTR_ACTIVE = 9
UBUS_ATTR_NO_REPLY = 10
UBUS_ATTR_SUBSCRIBERS = 11
UBUS_ATTR_USER = 12
UBUS_ATTR_GROUP = 13

# Status codes (A7)
UBUS_STATUS_OK = 0
UBUS_STATUS_INVALID_COMMAND = 1
UBUS_STATUS_INVALID_ARGUMENT = 2
UBUS_STATUS_METHOD_NOT_FOUND = 3
UBUS_STATUS_NOT_FOUND = 4
UBUS_STATUS_NO_DATA = 5
UBUS_STATUS_PERMISSION_DENIED = 6
UBUS_STATUS_TIMEOUT = 7
UBUS_STATUS_NOT_SUPPORTED = 8
UBUS_STATUS_UNKNOWN_ERROR = 9
UBUS_STATUS_CONNECTION_FAILED = 10
UBUS_STATUS_NO_MEMORY = 11
UBUS_STATUS_PARSE_ERROR = 12
UBUS_STATUS_SYSTEM_ERROR = 13

HEADER = struct.Struct(">BBHI")
HEADER_SIZE = HEADER.size  # 8
MAX_BLOB_LEN = 1024 * 1024  # UBUS_MAX_MSGLEN, compared with the padded blob length

_INT32 = (UBUS_ATTR_STATUS, UBUS_ATTR_OBJID, UBUS_ATTR_OBJTYPE, UBUS_ATTR_TARGET)
_INT8 = (UBUS_ATTR_ACTIVE, UBUS_ATTR_NO_REPLY)
_STRING = (UBUS_ATTR_OBJPATH, UBUS_ATTR_METHOD, UBUS_ATTR_USER, UBUS_ATTR_GROUP)
_TABLES = (UBUS_ATTR_SIGNATURE, UBUS_ATTR_DATA)
_U32 = struct.Struct(">I")


class MessageError(ValueError):
    """Bytes that are not a ubus message."""


class MessageTooLarge(MessageError):
    """A message whose blob would exceed UBUS_MAX_MSGLEN: ubusd disconnects a client that
    sends one (notes A1), so `Message.encode` refuses to build it."""

    def __init__(self, blob_len: int) -> None:
        super().__init__(f"a {blob_len}-byte message is over ubus's limit of {MAX_BLOB_LEN}")
        self.blob_len = blob_len


@dataclass(frozen=True)
class RawAttr:
    """A top-level attribute kept as its payload bytes: an unknown id, or one failing the
    check libubus applies (it then counts as absent)."""

    payload: bytes
    extended: bool = False


def message_length(head: bytes | memoryview) -> int:
    """Total message length from its first 12 bytes (header + blob header), as ubusd reads."""
    if len(head) < HEADER_SIZE + 4:
        raise MessageError("need 12 bytes")
    blob_len = _U32.unpack_from(head, HEADER_SIZE)[0] & 0x00FFFFFF
    if blob_len < 4 or blob_len > MAX_BLOB_LEN:
        raise MessageError(f"blob length {blob_len} out of range")
    return HEADER_SIZE + blob_len


def _decode_attr(attr_id: int, extended: bool, payload: bytes):
    if extended:
        return RawAttr(payload, True)
    try:
        if attr_id in _INT32:
            if len(payload) == 4:
                return _U32.unpack(payload)[0]
        elif attr_id in _INT8:
            if len(payload) == 1:
                return payload[0]
        elif attr_id in _STRING:
            if payload and payload[-1] == 0 and 0 not in payload[:-1]:
                return payload[:-1].decode("utf-8", "surrogateescape")
        elif attr_id in _TABLES:
            return decode_members(payload, table=True)
        elif attr_id == UBUS_ATTR_SUBSCRIBERS:
            ids = []
            for sub_id, sub_ext, sub in iter_attrs(payload):
                if sub_id or sub_ext or len(sub) != 4:
                    raise BlobError("bad subscriber entry")
                ids.append(_U32.unpack(sub)[0])
            return ids
    except BlobError:
        pass
    return RawAttr(payload)


def _encode_attr(attr_id: int, value) -> bytes:
    if isinstance(value, RawAttr):
        return attr(attr_id, value.payload, value.extended)
    if attr_id in _INT32:
        return attr(attr_id, _U32.pack(value & 0xFFFFFFFF))
    if attr_id in _INT8:
        return attr(attr_id, bytes((int(value) & 0xFF,)))
    if attr_id in _STRING:
        return attr(attr_id, value.encode("utf-8", "surrogateescape") + b"\0")
    if attr_id in _TABLES:
        return attr(attr_id, encode_members(value))
    if attr_id == UBUS_ATTR_SUBSCRIBERS:
        return attr(attr_id, b"".join(attr(0, _U32.pack(i)) for i in value))
    raise MessageError(f"no encoding for attribute id {attr_id}")


@dataclass
class Message:
    """One ubus message. `attrs` is a list of (attribute id, value) in wire order: ints for
    STATUS/OBJID/OBJTYPE/TARGET/ACTIVE/NO_REPLY, str for OBJPATH/METHOD/USER/GROUP, dicts for
    DATA and SIGNATURE, a list of ids for SUBSCRIBERS, RawAttr otherwise."""

    type: int
    seq: int = 0
    peer: int = 0
    attrs: list = field(default_factory=list)
    version: int = 0

    def get(self, attr_id: int, default=None):
        """The value of the last valid attribute with this id (libubus's blob_parse)."""
        found = default
        for aid, value in self.attrs:
            if aid == attr_id and not isinstance(value, RawAttr):
                found = value
        return found

    def encode(self) -> bytes:
        """The wire bytes; MessageTooLarge when ubusd would not take them (blob > 1 MiB)."""
        try:
            body = b"".join(_encode_attr(aid, value) for aid, value in self.attrs)
        except BlobTooLong as exc:
            raise MessageTooLarge(4 + exc.length) from None
        if 4 + len(body) > MAX_BLOB_LEN:  # body is a list of padded attributes: 4-aligned
            raise MessageTooLarge(4 + len(body))
        return HEADER.pack(self.version, self.type, self.seq & 0xFFFF,
                           self.peer & 0xFFFFFFFF) + attr(0, body)

    @classmethod
    def decode(cls, data: bytes | memoryview) -> Message:
        data = bytes(data)
        if len(data) < HEADER_SIZE + 4:
            raise MessageError("message shorter than 12 bytes")
        version, msg_type, seq, peer = HEADER.unpack_from(data, 0)
        head = _U32.unpack_from(data, HEADER_SIZE)[0]
        blob_len = head & 0x00FFFFFF
        if head & 0xFF000000:
            raise MessageError("message blob must have id 0 and no extended bit")
        if blob_len < 4 or HEADER_SIZE + blob_len != len(data):
            raise MessageError(f"blob length {blob_len} does not match {len(data)} bytes")
        try:
            attrs = [(aid, _decode_attr(aid, ext, payload))
                     for aid, ext, payload in iter_attrs(data[HEADER_SIZE + 4:])]
        except BlobError as exc:
            raise MessageError(str(exc)) from None
        return cls(msg_type, seq, peer, attrs, version)

    def __repr__(self) -> str:
        kind = MSG_NAMES.get(self.type, str(self.type))
        return f"<ubus {kind} seq={self.seq} peer=0x{self.peer:08x} {self.attrs!r}>"

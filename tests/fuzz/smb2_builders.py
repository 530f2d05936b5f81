"""SMB2 request builders for the fuzzer, written from the specifications.

Field names are the ones MS-SMB2 2.2, MS-FSCC, MS-DTYP, MS-NLMP, RFC 4178, C706/MS-RPCE and
MS-SRVS give them. Every builder returns a `Buf`: the bytes plus the position, size and kind of
each field, so the mutator can aim at offsets, lengths and counts instead of random bytes.
Offsets inside an SMB2 body count from the start of the SMB2 header (MS-SMB2 2.2), so a body is
built as if it started at byte 64.

Nothing here talks to a socket; nothing is copied from another SMB implementation.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import uuid
from dataclasses import dataclass, field

HEADER_SIZE = 64

# Field kinds, by how interesting they are to a mutator.
OFFSET, LENGTH, COUNT, SIZE, FLAGS, ENUM, ID, VALUE, DATA = (
    "offset", "length", "count", "size", "flags", "enum", "id", "value", "data")

# MS-SMB2 2.2.1.2 commands
NEGOTIATE, SESSION_SETUP, LOGOFF, TREE_CONNECT, TREE_DISCONNECT, CREATE, CLOSE, FLUSH, READ, \
    WRITE, LOCK, IOCTL, CANCEL, ECHO, QUERY_DIRECTORY, CHANGE_NOTIFY, QUERY_INFO, SET_INFO, \
    OPLOCK_BREAK = range(19)
COMMAND_NAMES = (
    "NEGOTIATE", "SESSION_SETUP", "LOGOFF", "TREE_CONNECT", "TREE_DISCONNECT", "CREATE",
    "CLOSE", "FLUSH", "READ", "WRITE", "LOCK", "IOCTL", "CANCEL", "ECHO", "QUERY_DIRECTORY",
    "CHANGE_NOTIFY", "QUERY_INFO", "SET_INFO", "OPLOCK_BREAK")

# MS-SMB2 2.2.1 Flags
SMB2_FLAGS_SERVER_TO_REDIR = 0x1
SMB2_FLAGS_ASYNC_COMMAND = 0x2
SMB2_FLAGS_RELATED_OPERATIONS = 0x4
SMB2_FLAGS_SIGNED = 0x8

# MS-SMB2 2.2.3 dialects, security mode, capabilities
SMB2_02, SMB2_10, SMB3_00, SMB3_02, SMB3_11 = 0x0202, 0x0210, 0x0300, 0x0302, 0x0311
ALL_DIALECTS = (SMB2_02, SMB2_10, SMB3_00, SMB3_02, SMB3_11)
SMB2_NEGOTIATE_SIGNING_ENABLED = 0x1
SMB2_GLOBAL_CAP_DFS, SMB2_GLOBAL_CAP_LEASING, SMB2_GLOBAL_CAP_LARGE_MTU = 0x1, 0x2, 0x4
SMB2_GLOBAL_CAP_ENCRYPTION = 0x40

# MS-SMB2 2.2.3.1 negotiate context types
SMB2_PREAUTH_INTEGRITY_CAPABILITIES = 0x1
SMB2_ENCRYPTION_CAPABILITIES = 0x2
SMB2_COMPRESSION_CAPABILITIES = 0x3
SMB2_NETNAME_NEGOTIATE_CONTEXT_ID = 0x5
SMB2_TRANSPORT_CAPABILITIES = 0x6
SMB2_RDMA_TRANSFORM_CAPABILITIES = 0x7
SMB2_SIGNING_CAPABILITIES = 0x8

# Access masks (MS-SMB2 2.2.13.1), attributes, dispositions, options (2.2.13)
FILE_READ_DATA, FILE_WRITE_DATA, FILE_APPEND_DATA = 0x1, 0x2, 0x4
FILE_READ_EA, FILE_WRITE_EA, FILE_READ_ATTRIBUTES, FILE_WRITE_ATTRIBUTES = 0x8, 0x10, 0x80, 0x100
DELETE, READ_CONTROL, WRITE_DAC, WRITE_OWNER, SYNCHRONIZE = 0x10000, 0x20000, 0x40000, 0x80000, \
    0x100000
FILE_ALL_ACCESS = 0x001F01FF
MAXIMUM_ALLOWED = 0x02000000
GENERIC_READ = 0x80000000
FILE_ATTRIBUTE_NORMAL, FILE_ATTRIBUTE_DIRECTORY = 0x80, 0x10
FILE_SHARE_ALL = 0x7
FILE_SUPERSEDE, FILE_OPEN, FILE_CREATE, FILE_OPEN_IF, FILE_OVERWRITE, FILE_OVERWRITE_IF = range(6)
FILE_DIRECTORY_FILE, FILE_NON_DIRECTORY_FILE, FILE_DELETE_ON_CLOSE = 0x1, 0x40, 0x1000
FILE_OPEN_BY_FILE_ID, FILE_OPEN_REPARSE_POINT = 0x2000, 0x200000
IMPERSONATION = 2  # Impersonation

# MS-SMB2 2.2.37 InfoType
SMB2_0_INFO_FILE, SMB2_0_INFO_FILESYSTEM, SMB2_0_INFO_SECURITY, SMB2_0_INFO_QUOTA = 1, 2, 3, 4
OWNER_SECURITY_INFORMATION, GROUP_SECURITY_INFORMATION = 0x1, 0x2
DACL_SECURITY_INFORMATION, SACL_SECURITY_INFORMATION = 0x4, 0x8

# MS-SMB2 2.2.26.1 lock flags
SMB2_LOCKFLAG_SHARED_LOCK, SMB2_LOCKFLAG_EXCLUSIVE_LOCK = 0x1, 0x2
SMB2_LOCKFLAG_UNLOCK, SMB2_LOCKFLAG_FAIL_IMMEDIATELY = 0x4, 0x10

# MS-SMB2 2.2.31 IOCTL codes and flags
SMB2_0_IOCTL_IS_FSCTL = 0x1
FSCTL_DFS_GET_REFERRALS = 0x00060194
FSCTL_PIPE_TRANSCEIVE = 0x0011C017
FSCTL_SRV_COPYCHUNK = 0x001440F2
FSCTL_SRV_COPYCHUNK_WRITE = 0x001480F2
FSCTL_SRV_REQUEST_RESUME_KEY = 0x00140078
FSCTL_QUERY_NETWORK_INTERFACE_INFO = 0x001401FC
FSCTL_VALIDATE_NEGOTIATE_INFO = 0x00140204
FSCTL_SET_SPARSE = 0x000900C4
FSCTL_SET_ZERO_DATA = 0x000980C8
FSCTL_QUERY_ALLOCATED_RANGES = 0x000940CF
FSCTL_GET_COMPRESSION = 0x0009003C
FSCTL_SET_COMPRESSION = 0x0009C040
FSCTL_GET_REPARSE_POINT = 0x000900A8
FSCTL_CREATE_OR_GET_OBJECT_ID = 0x000900C0
FILE_ID_ANY = b"\xff" * 16  # a related compound's "the previous FileId" (3.3.5.2.7.2)


# -- fields and buffers ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Field:
    name: str
    pos: int
    size: int
    kind: str


@dataclass
class Buf:
    """Bytes under construction, with the fields a mutator may aim at."""

    data: bytearray = field(default_factory=bytearray)
    fields: list[Field] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.data)

    def _int(self, fmt: str, value: int, name: str | None, kind: str) -> Buf:
        if name is not None:
            self.fields.append(Field(name, len(self.data), struct.calcsize(fmt), kind))
        self.data += struct.pack(fmt, value)
        return self

    def u8(self, value: int, name: str | None = None, kind: str = VALUE) -> Buf:
        return self._int("<B", value, name, kind)

    def u16(self, value: int, name: str | None = None, kind: str = VALUE) -> Buf:
        return self._int("<H", value, name, kind)

    def u32(self, value: int, name: str | None = None, kind: str = VALUE) -> Buf:
        return self._int("<I", value, name, kind)

    def u64(self, value: int, name: str | None = None, kind: str = VALUE) -> Buf:
        return self._int("<Q", value, name, kind)

    def raw(self, data: bytes, name: str | None = None, kind: str = DATA) -> Buf:
        if name is not None and data:
            self.fields.append(Field(name, len(self.data), len(data), kind))
        self.data += data
        return self

    def file_id(self, fid: bytes, name: str = "FileId") -> Buf:
        self.raw(fid[:8], name + ".Persistent", ID)
        return self.raw(fid[8:16], name + ".Volatile", ID)

    def add(self, other: Buf | bytes, prefix: str = "") -> Buf:
        """Append `other` (its fields shifted to where it lands)."""
        if isinstance(other, Buf):
            base = len(self.data)
            self.fields += [Field(prefix + f.name, f.pos + base, f.size, f.kind)
                            for f in other.fields]
            self.data += other.data
        else:
            self.data += other
        return self

    def align(self, n: int, start: int = 0) -> Buf:
        """Zero padding up to a multiple of `n`, counting `start` bytes before this buffer."""
        self.data += bytes(-(len(self.data) + start) % n)
        return self

    def patch(self, fmt: str, pos: int, value: int) -> None:
        struct.pack_into(fmt, self.data, pos, value)


def utf16(text: str) -> bytes:
    """UTF-16LE; lone surrogates pass (a fuzzer wants to send them)."""
    return text.encode("utf-16-le", "surrogatepass")


# -- MS-SMB2 2.2.1 header, messages and compounds ------------------------------------------------

@dataclass
class Msg(Buf):
    """One transport frame's SMB2 payload: one request or a compound chain."""

    headers: list[int] = field(default_factory=list)  # where each SMB2 header starts


def header(command: int, *, msg_id: int, session_id: int = 0, tree_id: int = 0,
           flags: int = 0, credit_charge: int = 1, credit_request: int = 64,
           next_command: int = 0, async_id: int | None = None, process_id: int = 0xFEFF,
           status: int = 0) -> Buf:
    """MS-SMB2 2.2.1.2 SYNC header (2.2.1.1 ASYNC when `async_id` is given)."""
    b = Buf()
    b.raw(b"\xfeSMB", "ProtocolId", ENUM)
    b.u16(64, "StructureSize", SIZE)
    b.u16(credit_charge, "CreditCharge", VALUE)
    b.u32(status, "Status", VALUE)  # ChannelSequence/Reserved in requests
    b.u16(command, "Command", ENUM)
    b.u16(credit_request, "CreditRequest", VALUE)
    b.u32(flags | (SMB2_FLAGS_ASYNC_COMMAND if async_id is not None else 0), "Flags", FLAGS)
    b.u32(next_command, "NextCommand", OFFSET)
    b.u64(msg_id, "MessageId", ID)
    if async_id is None:
        b.u32(process_id, "ProcessId", VALUE)
        b.u32(tree_id, "TreeId", ID)
    else:
        b.u64(async_id, "AsyncId", ID)
    b.u64(session_id, "SessionId", ID)
    b.raw(bytes(16), "Signature", DATA)
    return b


def request(command: int, body: Buf, **hdr) -> Msg:
    """A whole SMB2 request: header (keyword arguments of `header`) + body."""
    m = Msg()
    m.headers.append(0)
    m.add(header(command, **hdr), "hdr.")
    m.add(body, COMMAND_NAMES[command] + ".")
    return m


def compound(msgs: list[Msg], related: list[bool] | None = None) -> Msg:
    """MS-SMB2 3.2.4.1.4: each request 8-byte aligned, NextCommand to the next one, the
    related ones flagged SMB2_FLAGS_RELATED_OPERATIONS."""
    related = related or [False] * len(msgs)
    out = Msg()
    for i, m in enumerate(msgs):
        part = Msg(bytearray(m.data), list(m.fields), [])
        if i + 1 < len(msgs):
            part.align(8)
            part.patch("<I", 20, len(part))
        if related[i]:
            part.patch("<I", 16, struct.unpack_from("<I", part.data, 16)[0]
                       | SMB2_FLAGS_RELATED_OPERATIONS)
        out.headers += [len(out) + h for h in m.headers]
        out.add(part, f"[{i}].")
    return out


# -- 2.2.3 NEGOTIATE and its contexts (2.2.3.1) ---------------------------------------------------

def preauth_context(salt: bytes = b"\x5a" * 32, algorithms=(0x0001,)) -> Buf:
    b = Buf().u16(len(algorithms), "HashAlgorithmCount", COUNT)
    b.u16(len(salt), "SaltLength", LENGTH)
    for a in algorithms:
        b.u16(a, "HashAlgorithms", ENUM)
    return b.raw(salt, "Salt")


def encryption_context(ciphers=(0x0002, 0x0001, 0x0004, 0x0003)) -> Buf:
    b = Buf().u16(len(ciphers), "CipherCount", COUNT)
    for c in ciphers:
        b.u16(c, "Ciphers", ENUM)
    return b


def compression_context(algorithms=(0x0001, 0x0002, 0x0003)) -> Buf:
    b = Buf().u16(len(algorithms), "CompressionAlgorithmCount", COUNT)
    b.u16(0, "Padding").u32(0, "Flags", FLAGS)
    for a in algorithms:
        b.u16(a, "CompressionAlgorithms", ENUM)
    return b


def netname_context(name: str = "127.0.0.1") -> Buf:
    return Buf().raw(utf16(name), "NetName")


def transport_context(flags: int = 0) -> Buf:
    return Buf().u32(flags, "Flags", FLAGS)


def rdma_transform_context(ids=(0x0001,)) -> Buf:
    b = Buf().u16(len(ids), "TransformCount", COUNT).u16(0, "Reserved1").u32(0, "Reserved2")
    for i in ids:
        b.u16(i, "RDMATransformIds", ENUM)
    return b


def signing_context(algorithms=(0x0002, 0x0001, 0x0000)) -> Buf:
    b = Buf().u16(len(algorithms), "SigningAlgorithmCount", COUNT)
    for a in algorithms:
        b.u16(a, "SigningAlgorithms", ENUM)
    return b


def all_negotiate_contexts() -> list[tuple[int, Buf]]:
    return [(SMB2_PREAUTH_INTEGRITY_CAPABILITIES, preauth_context()),
            (SMB2_ENCRYPTION_CAPABILITIES, encryption_context()),
            (SMB2_COMPRESSION_CAPABILITIES, compression_context()),
            (SMB2_NETNAME_NEGOTIATE_CONTEXT_ID, netname_context()),
            (SMB2_TRANSPORT_CAPABILITIES, transport_context()),
            (SMB2_RDMA_TRANSFORM_CAPABILITIES, rdma_transform_context()),
            (SMB2_SIGNING_CAPABILITIES, signing_context())]


def negotiate_body(dialects=ALL_DIALECTS, *, security_mode: int = SMB2_NEGOTIATE_SIGNING_ENABLED,
                   capabilities: int = SMB2_GLOBAL_CAP_LARGE_MTU | SMB2_GLOBAL_CAP_ENCRYPTION,
                   client_guid: bytes = b"ksmbd-fuzz-guid!",
                   contexts: list[tuple[int, Buf]] | None = None) -> Buf:
    """2.2.3 NEGOTIATE request; contexts only when SMB 3.1.1 is offered."""
    contexts = contexts or []
    fixed_end = HEADER_SIZE + 36 + 2 * len(dialects)
    ctx_off = fixed_end + (-fixed_end % 8) if contexts else 0
    b = Buf()
    b.u16(36, "StructureSize", SIZE)
    b.u16(len(dialects), "DialectCount", COUNT)
    b.u16(security_mode, "SecurityMode", FLAGS)
    b.u16(0, "Reserved")
    b.u32(capabilities, "Capabilities", FLAGS)
    b.raw(client_guid, "ClientGuid", ID)
    b.u32(ctx_off, "NegotiateContextOffset", OFFSET)
    b.u16(len(contexts), "NegotiateContextCount", COUNT)
    b.u16(0, "Reserved2")
    for d in dialects:
        b.u16(d, "Dialects", ENUM)
    for i, (ctype, data) in enumerate(contexts):
        b.align(8)
        c = Buf().u16(ctype, "ContextType", ENUM).u16(len(data), "DataLength", LENGTH)
        c.u32(0, "Reserved").add(data)
        b.add(c, f"ctx{i}.")
    return b


def smb1_negotiate(dialect_names=(b"NT LM 0.12", b"SMB 2.002", b"SMB 2.???")) -> Msg:
    """MS-SMB 2.2.4.5.1 / MS-CIFS 2.2.4.52.1 SMB_COM_NEGOTIATE, the multi-protocol upgrade of
    MS-SMB2 3.3.5.3.1."""
    b = Msg()
    b.raw(b"\xffSMB", "Protocol", ENUM)
    b.u8(0x72, "Command", ENUM)
    b.u32(0, "Status")
    b.u8(0x18, "Flags", FLAGS)
    b.u16(0xC853, "Flags2", FLAGS)
    b.u16(0, "PIDHigh").raw(bytes(8), "SecurityFeatures").u16(0, "Reserved")
    b.u16(0xFFFF, "TID", ID).u16(0xFEFF, "PIDLow").u16(0, "UID", ID).u16(0, "MID", ID)
    b.u8(0, "WordCount", COUNT)
    names = b"".join(b"\x02" + n + b"\x00" for n in dialect_names)
    b.u16(len(names), "ByteCount", LENGTH)
    b.raw(names, "Dialects")
    return b


# -- 2.2.5 SESSION_SETUP, 2.2.7 LOGOFF, 2.2.9 TREE_CONNECT, 2.2.11 TREE_DISCONNECT ---------------

def session_setup_body(token: Buf | bytes, *, flags: int = 0,
                       security_mode: int = SMB2_NEGOTIATE_SIGNING_ENABLED,
                       capabilities: int = 0, previous_session_id: int = 0) -> Buf:
    b = Buf()
    b.u16(25, "StructureSize", SIZE)
    b.u8(flags, "Flags", FLAGS)
    b.u8(security_mode, "SecurityMode", FLAGS)
    b.u32(capabilities, "Capabilities", FLAGS)
    b.u32(0, "Channel")
    b.u16(HEADER_SIZE + 24, "SecurityBufferOffset", OFFSET)
    b.u16(len(token), "SecurityBufferLength", LENGTH)
    b.u64(previous_session_id, "PreviousSessionId", ID)
    return b.add(token, "token.")


def four_byte_body() -> Buf:
    """LOGOFF, TREE_DISCONNECT, ECHO and CANCEL: StructureSize 4 and Reserved."""
    return Buf().u16(4, "StructureSize", SIZE).u16(0, "Reserved")


def tree_connect_body(path: str, flags: int = 0) -> Buf:
    p = utf16(path)
    b = Buf().u16(9, "StructureSize", SIZE).u16(flags, "Flags", FLAGS)
    b.u16(HEADER_SIZE + 8, "PathOffset", OFFSET).u16(len(p), "PathLength", LENGTH)
    return b.raw(p, "Buffer")


# -- 2.2.13 CREATE and its contexts (2.2.13.2) ----------------------------------------------------

def create_context(name: bytes, data: Buf | bytes) -> Buf:
    """One SMB2_CREATE_CONTEXT; Next is set by `create_contexts`."""
    data_off = 16 + len(name) + (-(16 + len(name)) % 8) if len(data) else 0
    b = Buf().u32(0, "Next", OFFSET)
    b.u16(16, "NameOffset", OFFSET).u16(len(name), "NameLength", LENGTH)
    b.u16(0, "Reserved").u16(data_off, "DataOffset", OFFSET).u32(len(data), "DataLength", LENGTH)
    b.raw(name, "Name")
    if len(data):
        b.align(8)
        b.add(data, "Data.")
    return b


def create_contexts(items: list[Buf]) -> Buf:
    out = Buf()
    for i, c in enumerate(items):
        c = Buf(bytearray(c.data), list(c.fields))
        if i + 1 < len(items):
            c.align(8)
            c.patch("<I", 0, len(c))
        out.add(c, f"cc{i}.")
    return out


def create_body(name: str, *, desired_access: int = FILE_ALL_ACCESS,
                file_attributes: int = FILE_ATTRIBUTE_NORMAL, share_access: int = FILE_SHARE_ALL,
                disposition: int = FILE_OPEN_IF, options: int = 0, oplock: int = 0,
                contexts: list[Buf] | None = None, raw_name: bytes | None = None) -> Buf:
    n = utf16(name) if raw_name is None else raw_name
    name_off = HEADER_SIZE + 56
    buffer = n or b"\x00"  # an empty name still has a Buffer byte
    ctx = create_contexts(contexts) if contexts else Buf()
    ctx_off = name_off + len(buffer) + (-(name_off + len(buffer)) % 8) if contexts else 0
    b = Buf()
    b.u16(57, "StructureSize", SIZE)
    b.u8(0, "SecurityFlags", FLAGS)
    b.u8(oplock, "RequestedOplockLevel", ENUM)
    b.u32(IMPERSONATION, "ImpersonationLevel", ENUM)
    b.u64(0, "SmbCreateFlags", FLAGS)
    b.u64(0, "Reserved")
    b.u32(desired_access, "DesiredAccess", FLAGS)
    b.u32(file_attributes, "FileAttributes", FLAGS)
    b.u32(share_access, "ShareAccess", FLAGS)
    b.u32(disposition, "CreateDisposition", ENUM)
    b.u32(options, "CreateOptions", FLAGS)
    b.u16(name_off, "NameOffset", OFFSET)
    b.u16(len(n), "NameLength", LENGTH)
    b.u32(ctx_off, "CreateContextsOffset", OFFSET)
    b.u32(len(ctx), "CreateContextsLength", LENGTH)
    b.raw(buffer, "Buffer")
    if contexts:
        b.align(8, HEADER_SIZE)
        b.add(ctx, "ctx.")
    return b


def full_ea_list(eas: list[tuple[bytes, bytes, int]]) -> Buf:
    """MS-FSCC 2.4.15 FILE_FULL_EA_INFORMATION entries (name, value, flags), 4-aligned."""
    out = Buf()
    for i, (name, value, flags) in enumerate(eas):
        e = Buf().u32(0, "NextEntryOffset", OFFSET).u8(flags, "Flags", FLAGS)
        e.u8(len(name), "EaNameLength", LENGTH).u16(len(value), "EaValueLength", LENGTH)
        e.raw(name + b"\x00", "EaName").raw(value, "EaValue")
        if i + 1 < len(eas):
            e.align(4)
            e.patch("<I", 0, len(e))
        out.add(e, f"ea{i}.")
    return out


def get_ea_list(names: list[bytes]) -> Buf:
    """MS-FSCC 2.4.15.1 FILE_GET_EA_INFORMATION entries, 4-aligned."""
    out = Buf()
    for i, name in enumerate(names):
        e = Buf().u32(0, "NextEntryOffset", OFFSET).u8(len(name), "EaNameLength", LENGTH)
        e.raw(name + b"\x00", "EaName")
        if i + 1 < len(names):
            e.align(4)
            e.patch("<I", 0, len(e))
        out.add(e, f"gea{i}.")
    return out


def sid(text: str) -> Buf:
    """MS-DTYP 2.4.2.2 SID from its string form S-1-<authority>-<sub>..."""
    parts = text.split("-")
    subs = [int(p) for p in parts[3:]]
    b = Buf().u8(int(parts[1]), "Revision", ENUM).u8(len(subs), "SubAuthorityCount", COUNT)
    b.raw(int(parts[2]).to_bytes(6, "big"), "IdentifierAuthority")
    for s in subs:
        b.u32(s, "SubAuthority")
    return b


def acl(aces: list[tuple[int, int, int, str]]) -> Buf:
    """MS-DTYP 2.4.5 ACL of ACCESS_ALLOWED/DENIED ACEs (type, flags, mask, SID)."""
    body = Buf()
    for i, (ace_type, ace_flags, mask, who) in enumerate(aces):
        s = sid(who)
        a = Buf().u8(ace_type, "AceType", ENUM).u8(ace_flags, "AceFlags", FLAGS)
        a.u16(8 + len(s), "AceSize", LENGTH).u32(mask, "Mask", FLAGS).add(s, "Sid.")
        body.add(a, f"ace{i}.")
    b = Buf().u8(2, "AclRevision", ENUM).u8(0, "Sbz1")
    b.u16(8 + len(body), "AclSize", LENGTH).u16(len(aces), "AceCount", COUNT).u16(0, "Sbz2")
    return b.add(body)


EVERYONE, ADMINISTRATORS, USERS = "S-1-1-0", "S-1-5-32-544", "S-1-5-32-545"


def security_descriptor(owner: str | None = ADMINISTRATORS, group: str | None = USERS,
                        dacl_aces=((0, 0x3, FILE_ALL_ACCESS, EVERYONE),)) -> Buf:
    """MS-DTYP 2.4.6 self-relative SECURITY_DESCRIPTOR (SE_SELF_RELATIVE | SE_DACL_PRESENT)."""
    parts = []
    pos = 20
    offsets = {}
    for key, part in (("owner", sid(owner) if owner else None),
                      ("group", sid(group) if group else None),
                      ("dacl", acl(list(dacl_aces)) if dacl_aces is not None else None)):
        offsets[key] = pos if part is not None else 0
        if part is not None:
            parts.append((key, part))
            pos += len(part)
    control = 0x8000 | (0x0004 if dacl_aces is not None else 0)
    b = Buf().u8(1, "Revision", ENUM).u8(0, "Sbz1").u16(control, "Control", FLAGS)
    b.u32(offsets["owner"], "OffsetOwner", OFFSET).u32(offsets["group"], "OffsetGroup", OFFSET)
    b.u32(0, "OffsetSacl", OFFSET).u32(offsets["dacl"], "OffsetDacl", OFFSET)
    for key, part in parts:
        b.add(part, key + ".")
    return b


def lease_request(key: bytes = b"fuzz-lease-key!!", state: int = 0x7) -> Buf:
    """2.2.13.2.8 SMB2_CREATE_REQUEST_LEASE."""
    return Buf().raw(key, "LeaseKey", ID).u32(state, "LeaseState", FLAGS).u32(0, "LeaseFlags") \
        .u64(0, "LeaseDuration")


def durable_request_v2(create_guid: bytes = b"fuzz-create-guid", timeout: int = 0,
                       flags: int = 0) -> Buf:
    """2.2.13.2.11 SMB2_CREATE_DURABLE_HANDLE_REQUEST_V2."""
    return Buf().u32(timeout, "Timeout", VALUE).u32(flags, "Flags", FLAGS) \
        .raw(bytes(8), "Reserved").raw(create_guid, "CreateGuid", ID)


def durable_reconnect_v2(fid: bytes, create_guid: bytes = b"fuzz-create-guid") -> Buf:
    """2.2.13.2.12 SMB2_CREATE_DURABLE_HANDLE_RECONNECT_V2."""
    return Buf().file_id(fid).raw(create_guid, "CreateGuid", ID).u32(0, "Flags", FLAGS)


def lease_request_v2(key: bytes = b"fuzz-lease-key!!", state: int = 0x7) -> Buf:
    """2.2.13.2.10 SMB2_CREATE_REQUEST_LEASE_V2."""
    return lease_request(key, state).raw(bytes(16), "ParentLeaseKey", ID) \
        .u16(0, "Epoch", VALUE).u16(0, "Reserved")


APP_INSTANCE_ID = bytes.fromhex("45BCA66AEFA7F74A9008FA462E144D74")


def app_instance_id(instance: bytes = b"fuzz-app-instanc") -> Buf:
    """2.2.13.2.13 SMB2_CREATE_APP_INSTANCE_ID."""
    return Buf().u16(20, "StructureSize", SIZE).u16(0, "Reserved").raw(instance, "AppInstanceId",
                                                                       ID)


def symlink_reparse_buffer(target: str = "f.bin", relative: bool = True) -> Buf:
    """MS-FSCC 2.1.2.4 symbolic link reparse data buffer (IO_REPARSE_TAG_SYMLINK)."""
    sub = utf16(target)
    data = Buf().u16(0, "SubstituteNameOffset", OFFSET).u16(len(sub), "SubstituteNameLength",
                                                            LENGTH)
    data.u16(len(sub), "PrintNameOffset", OFFSET).u16(len(sub), "PrintNameLength", LENGTH)
    data.u32(1 if relative else 0, "Flags", FLAGS).raw(sub + sub, "PathBuffer")
    return Buf().u32(0xA000000C, "ReparseTag", ENUM).u16(len(data), "ReparseDataLength", LENGTH) \
        .u16(0, "Reserved").add(data)


def tree_connect_extension_body(path: str) -> Buf:
    """2.2.9 with SMB2_TREE_CONNECT_FLAG_EXTENSION_PRESENT and 2.2.9.1 the request extension
    (no tree connect contexts): PathOffset names the extension."""
    p = utf16(path)
    ext = Buf().u32(0, "TreeConnectContextOffset", OFFSET).u16(0, "TreeConnectContextCount",
                                                                 COUNT)
    ext.raw(bytes(10), "Reserved").raw(p, "PathName")
    b = Buf().u16(9, "StructureSize", SIZE).u16(0x0004, "Flags", FLAGS)
    b.u16(HEADER_SIZE + 8, "PathOffset", OFFSET).u16(len(ext), "PathLength", LENGTH)
    return b.add(ext, "ext.")


# -- 2.2.15 CLOSE, 2.2.17 FLUSH, 2.2.19 READ, 2.2.21 WRITE, 2.2.26 LOCK ---------------------------

def close_body(fid: bytes, flags: int = 1) -> Buf:
    return Buf().u16(24, "StructureSize", SIZE).u16(flags, "Flags", FLAGS).u32(0, "Reserved") \
        .file_id(fid)


def flush_body(fid: bytes) -> Buf:
    return Buf().u16(24, "StructureSize", SIZE).u16(0, "Reserved1").u32(0, "Reserved2") \
        .file_id(fid)


def read_body(fid: bytes, length: int = 4096, offset: int = 0, minimum: int = 0) -> Buf:
    b = Buf().u16(49, "StructureSize", SIZE).u8(0x50, "Padding", OFFSET).u8(0, "Flags", FLAGS)
    b.u32(length, "Length", LENGTH).u64(offset, "Offset", OFFSET).file_id(fid)
    b.u32(minimum, "MinimumCount", LENGTH).u32(0, "Channel", ENUM)
    b.u32(0, "RemainingBytes", LENGTH)
    b.u16(0, "ReadChannelInfoOffset", OFFSET).u16(0, "ReadChannelInfoLength", LENGTH)
    return b.raw(b"\x00", "Buffer")


def write_body(fid: bytes, data: bytes, offset: int = 0, flags: int = 0) -> Buf:
    b = Buf().u16(49, "StructureSize", SIZE).u16(HEADER_SIZE + 48, "DataOffset", OFFSET)
    b.u32(len(data), "Length", LENGTH).u64(offset, "Offset", OFFSET).file_id(fid)
    b.u32(0, "Channel", ENUM).u32(0, "RemainingBytes", LENGTH)
    b.u16(0, "WriteChannelInfoOffset", OFFSET).u16(0, "WriteChannelInfoLength", LENGTH)
    b.u32(flags, "Flags", FLAGS)
    return b.raw(data, "Buffer")


def lock_body(fid: bytes, locks: list[tuple[int, int, int]], sequence: int = 0) -> Buf:
    b = Buf().u16(48, "StructureSize", SIZE).u16(len(locks), "LockCount", COUNT)
    b.u32(sequence, "LockSequence", VALUE).file_id(fid)
    for i, (offset, length, flags) in enumerate(locks):
        e = Buf().u64(offset, "Offset", OFFSET).u64(length, "Length", LENGTH)
        e.u32(flags, "Flags", FLAGS).u32(0, "Reserved")
        b.add(e, f"lock{i}.")
    return b


# -- 2.2.31 IOCTL and FSCTL inputs ---------------------------------------------------------------

def ioctl_body(fid: bytes, ctl_code: int, data: Buf | bytes = b"", *, max_output: int = 4096,
               max_input: int = 0, flags: int = SMB2_0_IOCTL_IS_FSCTL) -> Buf:
    b = Buf().u16(57, "StructureSize", SIZE).u16(0, "Reserved").u32(ctl_code, "CtlCode", ENUM)
    b.file_id(fid)
    b.u32(HEADER_SIZE + 56, "InputOffset", OFFSET).u32(len(data), "InputCount", LENGTH)
    b.u32(max_input, "MaxInputResponse", LENGTH)
    b.u32(0, "OutputOffset", OFFSET).u32(0, "OutputCount", LENGTH)
    b.u32(max_output, "MaxOutputResponse", LENGTH)
    b.u32(flags, "Flags", FLAGS).u32(0, "Reserved2")
    return b.add(data, "Input.")


def copychunk_input(source_key: bytes, chunks: list[tuple[int, int, int]]) -> Buf:
    """2.2.31.1 SRV_COPYCHUNK_COPY with 2.2.31.1.1 SRV_COPYCHUNK entries."""
    b = Buf().raw(source_key, "SourceKey", ID).u32(len(chunks), "ChunkCount", COUNT)
    b.u32(0, "Reserved")
    for i, (src, dst, length) in enumerate(chunks):
        c = Buf().u64(src, "SourceOffset", OFFSET).u64(dst, "TargetOffset", OFFSET)
        c.u32(length, "Length", LENGTH).u32(0, "Reserved")
        b.add(c, f"chunk{i}.")
    return b


def validate_negotiate_input(dialects, *, capabilities: int, guid: bytes,
                             security_mode: int) -> Buf:
    """2.2.31.4 VALIDATE_NEGOTIATE_INFO Request."""
    b = Buf().u32(capabilities, "Capabilities", FLAGS).raw(guid, "Guid", ID)
    b.u16(security_mode, "SecurityMode", FLAGS).u16(len(dialects), "DialectCount", COUNT)
    for d in dialects:
        b.u16(d, "Dialects", ENUM)
    return b


def dfs_referral_input(path: str, max_level: int = 4) -> Buf:
    """MS-DFSC 2.2.2 REQ_GET_DFS_REFERRAL."""
    return Buf().u16(max_level, "MaxReferralLevel", ENUM).raw(utf16(path) + b"\0\0",
                                                              "RequestFileName")


# -- 2.2.33 QUERY_DIRECTORY, 2.2.35 CHANGE_NOTIFY, 2.2.37 QUERY_INFO, 2.2.39 SET_INFO ----------

def query_directory_body(fid: bytes, pattern: str = "*", info_class: int = 37, flags: int = 0,
                         output_length: int = 8192, file_index: int = 0) -> Buf:
    p = utf16(pattern)
    b = Buf().u16(33, "StructureSize", SIZE).u8(info_class, "FileInformationClass", ENUM)
    b.u8(flags, "Flags", FLAGS).u32(file_index, "FileIndex", OFFSET).file_id(fid)
    b.u16(HEADER_SIZE + 32 if p else 0, "FileNameOffset", OFFSET)
    b.u16(len(p), "FileNameLength", LENGTH).u32(output_length, "OutputBufferLength", LENGTH)
    return b.raw(p or b"\x00", "Buffer")


def change_notify_body(fid: bytes, filter_: int = 0x17, flags: int = 0) -> Buf:
    b = Buf().u16(32, "StructureSize", SIZE).u16(flags, "Flags", FLAGS)
    b.u32(4096, "OutputBufferLength", LENGTH).file_id(fid)
    return b.u32(filter_, "CompletionFilter", FLAGS).u32(0, "Reserved")


def query_info_body(fid: bytes, info_type: int, info_class: int, *, output_length: int = 4096,
                    additional: int = 0, flags: int = 0, data: Buf | bytes = b"") -> Buf:
    b = Buf().u16(41, "StructureSize", SIZE).u8(info_type, "InfoType", ENUM)
    b.u8(info_class, "FileInfoClass", ENUM).u32(output_length, "OutputBufferLength", LENGTH)
    b.u16(HEADER_SIZE + 40 if len(data) else 0, "InputBufferOffset", OFFSET).u16(0, "Reserved")
    b.u32(len(data), "InputBufferLength", LENGTH)
    b.u32(additional, "AdditionalInformation", FLAGS).u32(flags, "Flags", FLAGS)
    b.file_id(fid)
    return b.add(data if len(data) else b"\x00", "Input.")


def quota_query_input(sids: list[str] = (), return_single: int = 0) -> Buf:
    """2.2.37.1 SMB2_QUERY_QUOTA_INFO with MS-FSCC 2.4.41.1 FILE_GET_QUOTA_INFORMATION."""
    sid_list = Buf()
    for i, s in enumerate(sids):
        one = sid(s)
        e = Buf().u32(0, "NextEntryOffset", OFFSET).u32(len(one), "SidLength", LENGTH)
        e.add(one, "Sid.")
        sid_list.add(e, f"sid{i}.")
    b = Buf().u8(return_single, "ReturnSingle", FLAGS).u8(1, "RestartScan", FLAGS)
    b.u16(0, "Reserved").u32(len(sid_list), "SidListLength", LENGTH)
    b.u32(0, "StartSidLength", LENGTH).u32(0, "StartSidOffset", OFFSET)
    return b.add(sid_list)


def set_info_body(fid: bytes, info_type: int, info_class: int, data: Buf | bytes, *,
                  additional: int = 0) -> Buf:
    b = Buf().u16(33, "StructureSize", SIZE).u8(info_type, "InfoType", ENUM)
    b.u8(info_class, "FileInfoClass", ENUM).u32(len(data), "BufferLength", LENGTH)
    b.u16(HEADER_SIZE + 32, "BufferOffset", OFFSET).u16(0, "Reserved")
    b.u32(additional, "AdditionalInformation", FLAGS).file_id(fid)
    return b.add(data, "Buffer.")


def oplock_break_ack_body(fid: bytes, level: int = 0) -> Buf:
    return Buf().u16(24, "StructureSize", SIZE).u8(level, "OplockLevel", ENUM) \
        .u8(0, "Reserved").u32(0, "Reserved2").file_id(fid)


def basic_information(attributes: int = FILE_ATTRIBUTE_NORMAL, write_time: int = 0) -> Buf:
    """MS-FSCC 2.4.7 FileBasicInformation (0 = leave a time unchanged)."""
    return Buf().u64(0, "CreationTime").u64(0, "LastAccessTime").u64(write_time, "LastWriteTime") \
        .u64(0, "ChangeTime").u32(attributes, "FileAttributes", FLAGS).u32(0, "Reserved")


def rename_information(new_name: str, replace: int = 1) -> Buf:
    """MS-FSCC 2.4.42.2 FILE_RENAME_INFORMATION_TYPE_2 (the SMB2 form)."""
    n = utf16(new_name)
    return Buf().u8(replace, "ReplaceIfExists", FLAGS).raw(bytes(7), "Reserved") \
        .u64(0, "RootDirectory", ID).u32(len(n), "FileNameLength", LENGTH).raw(n, "FileName")


# -- MS-NLMP NTLM messages (2.2.1.1 NEGOTIATE, 2.2.1.3 AUTHENTICATE) and NTLMv2 (3.3.2) -----------

NTLMSSP_NEGOTIATE_UNICODE = 0x00000001
NTLMSSP_REQUEST_TARGET = 0x00000004
NTLMSSP_NEGOTIATE_SIGN = 0x00000010
NTLMSSP_NEGOTIATE_NTLM = 0x00000200
NTLMSSP_NEGOTIATE_ALWAYS_SIGN = 0x00008000
NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY = 0x00080000
NTLMSSP_NEGOTIATE_TARGET_INFO = 0x00800000
NTLMSSP_NEGOTIATE_VERSION = 0x02000000
NTLMSSP_NEGOTIATE_128 = 0x20000000
NTLM_CLIENT_FLAGS = (NTLMSSP_NEGOTIATE_UNICODE | NTLMSSP_REQUEST_TARGET | NTLMSSP_NEGOTIATE_SIGN
                     | NTLMSSP_NEGOTIATE_NTLM | NTLMSSP_NEGOTIATE_ALWAYS_SIGN
                     | NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY | NTLMSSP_NEGOTIATE_TARGET_INFO
                     | NTLMSSP_NEGOTIATE_VERSION | NTLMSSP_NEGOTIATE_128)
MSV_AV_EOL, MSV_AV_FLAGS, MSV_AV_TIMESTAMP = 0, 6, 7
NTLM_VERSION = bytes([10, 0]) + struct.pack("<H", 19041) + bytes([0, 0, 0, 15])


def ntlm_negotiate(flags: int = NTLM_CLIENT_FLAGS) -> Buf:
    b = Buf().raw(b"NTLMSSP\x00", "Signature", ENUM).u32(1, "MessageType", ENUM)
    b.u32(flags, "NegotiateFlags", FLAGS)
    for name in ("DomainName", "Workstation"):
        b.u16(0, name + "Len", LENGTH).u16(0, name + "MaxLen", LENGTH)
        b.u32(40, name + "BufferOffset", OFFSET)
    return b.raw(NTLM_VERSION, "Version")


@dataclass
class Challenge:
    """What the client needs from a CHALLENGE_MESSAGE (MS-NLMP 2.2.1.2)."""

    raw: bytes
    flags: int
    server_challenge: bytes
    target_info: bytes


def parse_challenge(msg: bytes) -> Challenge:
    if msg[:8] != b"NTLMSSP\x00" or struct.unpack_from("<I", msg, 8)[0] != 2:
        raise ValueError("not an NTLM CHALLENGE_MESSAGE")
    flags = struct.unpack_from("<I", msg, 20)[0]
    ti_len, _, ti_off = struct.unpack_from("<HHI", msg, 40)
    return Challenge(bytes(msg), flags, bytes(msg[24:32]), bytes(msg[ti_off:ti_off + ti_len]))


def av_pairs(data: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 0
    while pos + 4 <= len(data):
        av_id, av_len = struct.unpack_from("<HH", data, pos)
        if av_id == MSV_AV_EOL:
            break
        out.append((av_id, data[pos + 4:pos + 4 + av_len]))
        pos += 4 + av_len
    return out


def _hmac_md5(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.md5).digest()


def ntowf_v2(nt_hash: bytes, user: str, domain: str) -> bytes:
    """MS-NLMP 3.3.2 NTOWFv2 = HMAC_MD5(MD4(password), UNICODE(Uppercase(User) + UserDom))."""
    return _hmac_md5(nt_hash, utf16(user.upper() + domain))


def ntlm_authenticate(challenge: Challenge, negotiate: bytes, *, user: str, domain: str,
                      nt_hash: bytes | None, workstation: str = "FUZZER",
                      client_challenge: bytes = b"fuzzcc!!", with_mic: bool = True,
                      timestamp: int = 0) -> Buf:
    """AUTHENTICATE_MESSAGE with an NTLMv2 response (MS-NLMP 3.3.2); `nt_hash` None is an
    anonymous AUTHENTICATE (empty user and responses, 3.2.5.1.2). With `with_mic`, MsvAvFlags
    says a MIC is present and the MIC is HMAC_MD5(ExportedSessionKey, NEGOTIATE + CHALLENGE
    + AUTHENTICATE) with the MIC field zero (3.1.5.1.2); without KEY_EXCH the
    ExportedSessionKey is the KeyExchangeKey, which for NTLMv2 is the SessionBaseKey (3.4.5.1)."""
    flags = challenge.flags & NTLM_CLIENT_FLAGS | NTLMSSP_NEGOTIATE_UNICODE
    exported = b""
    if nt_hash is None:
        lm, nt, user, domain = b"", b"", "", ""
        with_mic = False
    else:
        pairs = av_pairs(challenge.target_info)
        stamp = next((v for k, v in pairs if k == MSV_AV_TIMESTAMP), None)
        if stamp is None:
            stamp = struct.pack("<Q", timestamp)
        if with_mic:
            pairs = [(k, v) for k, v in pairs if k != MSV_AV_FLAGS] + \
                [(MSV_AV_FLAGS, struct.pack("<I", 0x2))]
        ti = b"".join(struct.pack("<HH", k, len(v)) + v for k, v in pairs) + bytes(4)
        temp = b"\x01\x01" + bytes(6) + stamp + client_challenge + bytes(4) + ti + bytes(4)
        key = ntowf_v2(nt_hash, user, domain)
        proof = _hmac_md5(key, challenge.server_challenge + temp)
        nt = proof + temp
        lm = bytes(24)  # MsvAvTimestamp present: LmChallengeResponse is Z(24) (3.3.2)
        exported = _hmac_md5(key, proof)  # SessionBaseKey
    payload = [("LmChallengeResponse", lm), ("NtChallengeResponse", nt),
               ("DomainName", utf16(domain)), ("UserName", utf16(user)),
               ("Workstation", utf16(workstation)), ("EncryptedRandomSessionKey", b"")]
    pos = 88
    b = Buf().raw(b"NTLMSSP\x00", "Signature", ENUM).u32(3, "MessageType", ENUM)
    for name, value in payload:
        b.u16(len(value), name + "Len", LENGTH).u16(len(value), name + "MaxLen", LENGTH)
        b.u32(pos, name + "BufferOffset", OFFSET)
        pos += len(value)
    b.u32(flags, "NegotiateFlags", FLAGS).raw(NTLM_VERSION, "Version")
    b.raw(bytes(16), "MIC", DATA)
    for name, value in payload:
        b.raw(value, name)
    if with_mic:
        mic = _hmac_md5(exported, negotiate + challenge.raw + bytes(b.data))
        b.data[72:88] = mic
    b.exported_session_key = exported  # the GSS session key SMB derives its keys from
    return b


# -- RFC 4178 SPNEGO (DER, X.690) ------------------------------------------------------------------

SPNEGO_OID = "1.3.6.1.5.5.2"
NTLMSSP_OID = "1.3.6.1.4.1.311.2.2.10"


def der(tag: int, content: Buf | bytes, name: str = "der") -> Buf:
    n = len(content)
    b = Buf().u8(tag, name + ".tag", ENUM)
    if n < 0x80:
        b.u8(n, name + ".len", LENGTH)
    else:
        size = (n.bit_length() + 7) // 8
        b.u8(0x80 | size, name + ".lenlen", LENGTH)
        b.raw(n.to_bytes(size, "big"), name + ".len", LENGTH)
    return b.add(content, name + ".")


def der_oid(dotted: str) -> Buf:
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray([arcs[0] * 40 + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out += bytes(reversed(chunk))
    return der(0x06, bytes(out), "oid")


def spnego_init(mech_token: Buf | bytes, mechs=(NTLMSSP_OID,)) -> Buf:
    """GSS InitialContextToken [APPLICATION 0] { spnego OID, [0] NegTokenInit }."""
    mech_list = der(0x30, Buf().add(b"".join(bytes(der_oid(m).data) for m in mechs)),
                    "mechTypes")
    init = Buf().add(der(0xA0, mech_list, "a0"))
    init.add(der(0xA2, der(0x04, mech_token, "mechToken"), "a2"))
    token = Buf().add(der_oid(SPNEGO_OID)).add(der(0xA0, der(0x30, init, "NegTokenInit"), "ctx0"))
    return der(0x60, token, "app0")


def spnego_resp(response_token: Buf | bytes) -> Buf:
    """NegTokenResp [1] { [2] responseToken }."""
    body = der(0xA2, der(0x04, response_token, "responseToken"), "a2")
    return der(0xA1, der(0x30, body, "NegTokenResp"), "ctx1")


def _der_items(data: bytes):
    pos = 0
    while pos + 2 <= len(data):
        tag, n = data[pos], data[pos + 1]
        pos += 2
        if n & 0x80:
            size = n & 0x7F
            n = int.from_bytes(data[pos:pos + size], "big")
            pos += size
        yield tag, data[pos:pos + n]
        pos += n


def spnego_response_token(token: bytes) -> bytes:
    """The NTLM message inside a server's NegTokenResp (or a raw NTLMSSP token as is)."""
    if token.startswith(b"NTLMSSP\x00"):
        return token
    for tag, content in _der_items(token):
        if tag == 0xA1:
            for tag2, seq in _der_items(content):
                if tag2 == 0x30:
                    for tag3, item in _der_items(seq):
                        if tag3 == 0xA2:
                            return next(_der_items(item))[1]
    raise ValueError("no responseToken in the SPNEGO token")


# -- C706 / MS-RPCE connection-oriented PDUs, NDR stubs of MS-SRVS -------------------------------

NDR_SYNTAX = (uuid.UUID("8a885d04-1ceb-11c9-9fe8-08002b104860").bytes_le, 2, 0)
SRVSVC_SYNTAX = (uuid.UUID("4b324fc8-1670-01d3-1278-5a47bf6ee188").bytes_le, 3, 0)
WKSSVC_SYNTAX = (uuid.UUID("6bffd098-a112-3610-9833-46c3f87e345a").bytes_le, 1, 0)
NDR64_SYNTAX = (uuid.UUID("71710533-beba-4937-8319-b5dbef9ccc36").bytes_le, 1, 0)
# MS-RPCE 3.3.1.5.3 bind time feature negotiation: the UUID carries the feature bits
BIND_TIME_FEATURES = (uuid.UUID("6cb71c2c-9812-4540-0300-000000000000").bytes_le, 1, 0)
RPC_REQUEST, RPC_BIND, RPC_ALTER_CONTEXT = 0, 11, 14
PFC_FIRST_FRAG, PFC_LAST_FRAG = 0x1, 0x2


def _rpc_header(ptype: int, body: Buf, call_id: int, flags: int) -> Buf:
    b = Buf().u8(5, "rpc_vers", ENUM).u8(0, "rpc_vers_minor", ENUM).u8(ptype, "PTYPE", ENUM)
    b.u8(flags, "pfc_flags", FLAGS).raw(b"\x10\x00\x00\x00", "packed_drep", FLAGS)
    b.u16(16 + len(body), "frag_length", LENGTH).u16(0, "auth_length", LENGTH)
    b.u32(call_id, "call_id", ID)
    return b.add(body)


def rpc_bind(call_id: int = 1, abstract=SRVSVC_SYNTAX, transfer=(NDR_SYNTAX,),
             max_frag: int = 4280, ptype: int = 11, extra_contexts=()) -> Buf:
    """C706 12.6.4.3 bind (ptype 14: alter_context, same layout) with presentation contexts
    (p_cont_elem_t): `abstract` over `transfer`, then `extra_contexts` (abstract, transfers)."""
    contexts = [(abstract, transfer)] + list(extra_contexts)
    body = Buf().u16(max_frag, "max_xmit_frag", LENGTH).u16(max_frag, "max_recv_frag", LENGTH)
    body.u32(0, "assoc_group_id", ID).u8(len(contexts), "n_context_elem", COUNT)
    body.u8(0, "reserved").u16(0, "reserved2")
    for i, (abstract_syntax, transfers) in enumerate(contexts):
        ctx = Buf().u16(i, "p_cont_id", ID).u8(len(transfers), "n_transfer_syn", COUNT)
        ctx.u8(0, "reserved").raw(abstract_syntax[0], "abstract_syntax.if_uuid", ID)
        ctx.u16(abstract_syntax[1], "abstract_syntax.vers_major", ENUM)
        ctx.u16(abstract_syntax[2], "abstract_syntax.vers_minor", ENUM)
        for t in transfers:
            ctx.raw(t[0], "transfer_syntax.if_uuid", ID).u16(t[1], "vers_major", ENUM)
            ctx.u16(t[2], "vers_minor", ENUM)
        body.add(ctx, f"ctx{i}.")
    return _rpc_header(ptype, body, call_id, PFC_FIRST_FRAG | PFC_LAST_FRAG)


def rpc_request(opnum: int, stub: Buf, call_id: int = 2, context_id: int = 0,
                flags: int = PFC_FIRST_FRAG | PFC_LAST_FRAG, alloc_hint: int | None = None
                ) -> Buf:
    """C706 12.6.4.9 request (one fragment of a call: `flags` say which)."""
    body = Buf().u32(len(stub) if alloc_hint is None else alloc_hint, "alloc_hint", LENGTH)
    body.u16(context_id, "p_cont_id", ID).u16(opnum, "opnum", ENUM).add(stub, "stub.")
    return _rpc_header(RPC_REQUEST, body, call_id, flags)


def ndr_wstring(text: str, referent: int | None = None) -> Buf:
    """A [string] wchar_t* (conformant varying, NUL included), 4-aligned after; `referent`
    for a unique pointer."""
    chars = utf16(text) + b"\0\0"
    b = Buf()
    if referent is not None:
        b.u32(referent, "referent", ID)
    n = len(chars) // 2
    b.u32(n, "MaximumCount", COUNT).u32(0, "Offset", OFFSET).u32(n, "ActualCount", COUNT)
    return b.raw(chars, "chars").align(4)


def netr_share_enum_stub(level: int = 1, server: str = "\\\\127.0.0.1") -> Buf:
    """MS-SRVS 3.1.4.8 NetrShareEnum (opnum 15): ServerName, InfoStruct (Level, the
    switch_is(Level) union arm: a unique pointer to an empty container), PreferedMaximumLength,
    ResumeHandle."""
    b = Buf().add(ndr_wstring(server, 0x00020000), "ServerName.")
    b.u32(level, "Level", ENUM).u32(level, "ShareInfo.switch", ENUM)
    b.u32(0x00020004, "ShareInfo.referent", ID)
    b.u32(0, "EntriesRead", COUNT).u32(0, "Buffer.referent", ID)
    b.u32(0xFFFFFFFF, "PreferedMaximumLength", LENGTH)
    b.u32(0x00020008, "ResumeHandle.referent", ID).u32(0, "ResumeHandle")
    return b


def netr_share_get_info_stub(share: str = "fuzz", level: int = 1) -> Buf:
    """MS-SRVS 3.1.4.10 NetrShareGetInfo (opnum 16)."""
    b = Buf().add(ndr_wstring("\\\\127.0.0.1", 0x00020000), "ServerName.")
    b.add(ndr_wstring(share), "NetName.")
    return b.u32(level, "Level", ENUM)


def netr_wksta_get_info_stub(level: int = 100) -> Buf:
    """MS-WKST 3.2.4.1 NetrWkstaGetInfo (opnum 0)."""
    return Buf().add(ndr_wstring("\\\\127.0.0.1", 0x00020000), "ServerName.") \
        .u32(level, "Level", ENUM)


def netr_server_get_info_stub(level: int = 101) -> Buf:
    """MS-SRVS 3.1.4.17 NetrServerGetInfo (opnum 21)."""
    return Buf().add(ndr_wstring("\\\\127.0.0.1", 0x00020000), "ServerName.") \
        .u32(level, "Level", ENUM)

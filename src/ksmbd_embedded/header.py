"""The SMB2 packet header (MS-SMB2 2.2.1) and the protocol's numeric constants."""

import struct

SMB2_MAGIC = 0x424D53FE  # b"\xfeSMB" read as little-endian u32
SMB1_MAGIC = 0x424D53FF  # b"\xffSMB"
TRANSFORM_MAGIC = 0x424D53FD  # b"\xfdSMB"
COMPRESSION_MAGIC = 0x424D53FC  # b"\xfcSMB"
HEADER_SIZE = 64

# ProtocolId, StructureSize, CreditCharge, Status, Command, CreditRequest/Response,
# Flags, NextCommand, MessageId, (Reserved, TreeId) or AsyncId, SessionId.
# The Signature (offset 48, 16 bytes) stays in the buffer until signing needs it.
HEADER = struct.Struct("<IHHIHHIIQQQ")
SIGNATURE_OFFSET = 48
FLAGS_OFFSET = 16
NEXT_COMMAND_OFFSET = 20

# Commands (MS-SMB2 2.2.1.2)
NEGOTIATE = 0x00
SESSION_SETUP = 0x01
LOGOFF = 0x02
TREE_CONNECT = 0x03
TREE_DISCONNECT = 0x04
CREATE = 0x05
CLOSE = 0x06
FLUSH = 0x07
READ = 0x08
WRITE = 0x09
LOCK = 0x0A
IOCTL = 0x0B
CANCEL = 0x0C
ECHO = 0x0D
QUERY_DIRECTORY = 0x0E
CHANGE_NOTIFY = 0x0F
QUERY_INFO = 0x10
SET_INFO = 0x11
OPLOCK_BREAK = 0x12
COMMAND_NAMES = (
    "NEGOTIATE", "SESSION_SETUP", "LOGOFF", "TREE_CONNECT", "TREE_DISCONNECT", "CREATE",
    "CLOSE", "FLUSH", "READ", "WRITE", "LOCK", "IOCTL", "CANCEL", "ECHO", "QUERY_DIRECTORY",
    "CHANGE_NOTIFY", "QUERY_INFO", "SET_INFO", "OPLOCK_BREAK",
)

# Header flags
FLAGS_SERVER_TO_REDIR = 0x00000001
FLAGS_ASYNC_COMMAND = 0x00000002
FLAGS_RELATED_OPERATIONS = 0x00000004
FLAGS_SIGNED = 0x00000008
FLAGS_PRIORITY_MASK = 0x00000070
FLAGS_DFS_OPERATIONS = 0x10000000
FLAGS_REPLAY_OPERATION = 0x20000000

# Dialects (MS-SMB2 2.2.3)
SMB2_02 = 0x0202
SMB2_10 = 0x0210
SMB3_00 = 0x0300
SMB3_02 = 0x0302
SMB3_11 = 0x0311
SMB2_WILDCARD = 0x02FF
DIALECT_BY_NAME = {
    "SMB2_02": SMB2_02, "SMB2_10": SMB2_10, "SMB3_00": SMB3_00,
    "SMB3_02": SMB3_02, "SMB3_11": SMB3_11,
}
DIALECT_NAMES = {v: k for k, v in DIALECT_BY_NAME.items()}

# Capabilities (MS-SMB2 2.2.3)
CAP_DFS = 0x01
CAP_LEASING = 0x02
CAP_LARGE_MTU = 0x04
CAP_MULTI_CHANNEL = 0x08
CAP_PERSISTENT_HANDLES = 0x10
CAP_DIRECTORY_LEASING = 0x20
CAP_ENCRYPTION = 0x40

# Security mode
NEGOTIATE_SIGNING_ENABLED = 0x0001
NEGOTIATE_SIGNING_REQUIRED = 0x0002

# The all-ones FileId of a related compound request (MS-SMB2 3.3.5.2.7.2)
FILE_ID_ANY = 0xFFFFFFFFFFFFFFFF


def pack_response_header(buf: bytearray, off: int, command: int, status: int, credits: int,
                         flags: int, msg_id: int, tree_or_async: int, session_id: int,
                         credit_charge: int = 1) -> None:
    """Write a response header at buf[off:off+64] with a zero signature and NextCommand 0."""
    HEADER.pack_into(buf, off, SMB2_MAGIC, 64, credit_charge, status, command, credits,
                     flags | FLAGS_SERVER_TO_REDIR, 0, msg_id, tree_or_async, session_id)
    buf[off + SIGNATURE_OFFSET:off + 64] = bytes(16)


# MS-SMB2 2.2.2 SMB2 ERROR Response body with no error data (StructureSize 9, one byte of
# ErrorData): what every failed request answers, whoever completes it.
ERROR_BODY = b"\x09\x00\x00\x00\x00\x00\x00\x00\x00"

"""The command table: handler, StructureSize, and what each command needs (MS-SMB2 2.2, 3.3.5.2).

Index = command code. Entry = (handler, request StructureSize, needs a valid session,
needs a tree connect). A handler takes a `Request` and returns (status, body) where body is a
bytes-like object or a list of them (payloads stay separate buffers), or raises SmbError.
`None` as handler answers STATUS_NOT_IMPLEMENTED (a command a later issue brings).
"""

from .handlers import (
    close, create, echo, lock, negotiate, oplock_break, query_directory, query_info, read_write,
    session_setup, set_info, tree_connect,
)
from .handlers import ioctl as ioctl_handler

# MS-SMB2 2.2.2 ERROR response: StructureSize 9, ErrorContextCount 0, ByteCount 0, 1 byte.
from .header import ERROR_BODY  # noqa: F401  (the handlers' name for it)

COMMANDS = (
    (negotiate.handle_negotiate, 36, False, False),             # 0x00 NEGOTIATE
    (session_setup.handle_session_setup, 25, False, False),     # 0x01 SESSION_SETUP
    (session_setup.handle_logoff, 4, True, False),              # 0x02 LOGOFF
    (tree_connect.handle_tree_connect, 9, True, False),         # 0x03 TREE_CONNECT
    (tree_connect.handle_tree_disconnect, 4, True, True),       # 0x04 TREE_DISCONNECT
    (create.handle_create, 57, True, True),                     # 0x05 CREATE
    (close.handle_close, 24, True, True),                       # 0x06 CLOSE
    (read_write.handle_flush, 24, True, True),                  # 0x07 FLUSH
    (read_write.handle_read, 49, True, True),                   # 0x08 READ
    (read_write.handle_write, 49, True, True),                  # 0x09 WRITE
    (lock.handle_lock, 48, True, True),                         # 0x0A LOCK
    (ioctl_handler.handle_ioctl, 57, True, True),               # 0x0B IOCTL
    (None, 4, True, False),                                     # 0x0C CANCEL (connection.py)
    (echo.handle_echo, 4, False, False),                        # 0x0D ECHO
    (query_directory.handle_query_directory, 33, True, True),   # 0x0E QUERY_DIRECTORY
    (None, 32, True, True),                                     # 0x0F CHANGE_NOTIFY
    (query_info.handle_query_info, 41, True, True),             # 0x10 QUERY_INFO
    (set_info.handle_set_info, 33, True, True),                 # 0x11 SET_INFO
    (oplock_break.handle_oplock_break, 24, True, True),         # 0x12 OPLOCK_BREAK
)

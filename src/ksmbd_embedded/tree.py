"""Tree connect state (MS-SMB2 3.3.1.10 Per Tree Connect)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import ShareConfig
    from .session import Session

# Access masks (MS-SMB2 2.2.13.1.1 / MS-DTYP 2.4.3)
FILE_READ_DATA = 0x00000001
FILE_WRITE_DATA = 0x00000002
FILE_APPEND_DATA = 0x00000004
FILE_READ_EA = 0x00000008
FILE_WRITE_EA = 0x00000010
FILE_EXECUTE = 0x00000020
FILE_DELETE_CHILD = 0x00000040
FILE_READ_ATTRIBUTES = 0x00000080
FILE_WRITE_ATTRIBUTES = 0x00000100
DELETE = 0x00010000
READ_CONTROL = 0x00020000
WRITE_DAC = 0x00040000
WRITE_OWNER = 0x00080000
SYNCHRONIZE = 0x00100000
ACCESS_SYSTEM_SECURITY = 0x01000000
MAXIMUM_ALLOWED = 0x02000000
GENERIC_ALL = 0x10000000
GENERIC_EXECUTE = 0x20000000
GENERIC_WRITE = 0x40000000
GENERIC_READ = 0x80000000

FILE_ALL_ACCESS = 0x001F01FF
# What a read-only share grants: read data/EA/attributes, execute, read control, synchronize.
FILE_READ_ONLY_ACCESS = (FILE_READ_DATA | FILE_READ_EA | FILE_EXECUTE | FILE_READ_ATTRIBUTES
                         | READ_CONTROL | SYNCHRONIZE)
WRITE_ACCESS_BITS = (FILE_WRITE_DATA | FILE_APPEND_DATA | FILE_WRITE_EA | FILE_WRITE_ATTRIBUTES
                     | FILE_DELETE_CHILD | DELETE | WRITE_DAC | WRITE_OWNER)

# Share types and flags (MS-SMB2 2.2.10)
SHARE_TYPE_DISK = 0x01
SHARE_TYPE_PIPE = 0x02
SHAREFLAG_NO_CACHING = 0x00000030
SHAREFLAG_ENCRYPT_DATA = 0x00008000


class TreeConnect:
    """A session's connection to one share (or IPC$, where share is None)."""

    __slots__ = ("tree_id", "session", "share", "is_ipc", "writable", "maximal_access",
                 "encrypt_data", "root", "open_count", "closed")

    def __init__(self, tree_id: int, session: Session, share: ShareConfig | None,
                 writable: bool, encrypt_data: bool, root: str) -> None:
        self.tree_id = tree_id
        self.session = session
        self.share = share
        self.is_ipc = share is None
        self.writable = writable
        self.maximal_access = FILE_ALL_ACCESS if writable else FILE_READ_ONLY_ACCESS
        self.encrypt_data = encrypt_data
        self.root = root  # realpath of the share's directory ("" for IPC$)
        self.open_count = 0
        # Set by TREE_DISCONNECT/LOGOFF/disconnect (tree_connect.close_tree): a request still
        # holding this object (the next one of a compound) must not add an Open to it.
        self.closed = False

    @property
    def share_name(self) -> str:
        return "IPC$" if self.share is None else self.share.name

    def __repr__(self) -> str:
        return f"<TreeConnect {self.tree_id} {self.share_name}>"

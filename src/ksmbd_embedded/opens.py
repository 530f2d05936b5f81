"""Open files and the server's open table (MS-SMB2 3.3.1.10 Per Open, 3.3.1.1 GlobalOpenTable)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .session import Session
    from .tree import TreeConnect


class Open:
    """One CREATE's handle. `fd` is an OS descriptor (O_RDONLY for directories), or -1 for pipes."""

    __slots__ = (
        "persistent_id", "volatile_id", "session", "tree", "fd", "path", "name", "is_dir",
        "granted_access", "share_access", "create_options", "delete_on_close", "file_key",
        "position", "mode", "dir_state", "pipe", "create_action", "durable", "oplock_level",
        "oplock_state", "oplock_key", "extra",
    )

    def __init__(self, session: Session, tree: TreeConnect, fd: int, path: str, name: str,
                 is_dir: bool, granted_access: int, share_access: int,
                 create_options: int) -> None:
        self.persistent_id = 0
        self.volatile_id = 0
        self.session = session
        self.tree = tree
        self.fd = fd
        self.path = path  # absolute path on disk (inside tree.root)
        self.name = name  # share-relative name as the client sees it ("" for the root)
        self.is_dir = is_dir
        self.granted_access = granted_access
        self.share_access = share_access
        self.create_options = create_options
        self.delete_on_close = False
        self.file_key: tuple[int, int] | None = None  # (st_dev, st_ino)
        self.position = 0  # FilePositionInformation
        self.mode = 0  # FileModeInformation
        self.dir_state: Any = None  # QUERY_DIRECTORY enumeration state
        self.pipe: Any = None  # named-pipe endpoint on IPC$
        self.create_action = 0
        self.durable = False
        self.oplock_level = 0  # MS-SMB2 Open.OplockLevel (caching/, handlers/oplock_break.py)
        self.oplock_state = 0  # Open.OplockState: 0 None, 1 Held, 2 Breaking (caching/breaks.py)
        self.oplock_key = None  # MS-FSA Open.TargetOplockKey (leases: ClientGuid + LeaseKey)
        self.extra: Any = None

    def __repr__(self) -> str:
        return f"<Open {self.volatile_id:x} {self.name!r}>"


class OpenTable:
    """All opens of the server, by volatile id, and by file (st_dev, st_ino) for share modes."""

    __slots__ = ("by_id", "by_file", "_next_id")

    def __init__(self) -> None:
        self.by_id: dict[int, Open] = {}
        self.by_file: dict[tuple[int, int], list[Open]] = {}
        self._next_id = 1

    def add(self, op: Open) -> None:
        vid = self._next_id
        self._next_id += 1
        op.volatile_id = vid
        op.persistent_id = vid
        self.by_id[vid] = op
        if op.file_key is not None:
            self.by_file.setdefault(op.file_key, []).append(op)
        op.tree.open_count += 1

    def get(self, volatile_id: int) -> Open | None:
        return self.by_id.get(volatile_id)

    def others(self, file_key: tuple[int, int]) -> list[Open]:
        return self.by_file.get(file_key, [])

    def remove(self, op: Open) -> None:
        """Forget an open and close its descriptor; the caller handles delete-on-close."""
        if self.by_id.pop(op.volatile_id, None) is None:
            return
        if op.file_key is not None:
            unindex(self.by_file, op.file_key, op)
        op.tree.open_count -= 1
        if op.fd >= 0:
            try:
                os.close(op.fd)
            except OSError:
                pass
            op.fd = -1

    def rekey(self, op: Open, new_key: tuple) -> None:
        """File `op` under another key (a named stream renamed, fs/streams.py)."""
        if op.file_key is not None:
            unindex(self.by_file, op.file_key, op)
        op.file_key = new_key
        self.by_file.setdefault(new_key, []).append(op)

    def for_tree(self, tree: TreeConnect) -> list[Open]:
        return [op for op in self.by_id.values() if op.tree is tree]

    def for_session(self, session: Session) -> list[Open]:
        return [op for op in self.by_id.values() if op.session is session]

    def __len__(self) -> int:
        return len(self.by_id)


def unindex(index: dict, key, op: Open) -> None:
    """Take `op` out of the list `index[key]`, and the key out when nothing is left."""
    peers = index.get(key)
    if peers is None:
        return
    try:
        peers.remove(op)
    except ValueError:
        pass
    if not peers:
        del index[key]

r"""File id -> name, for CREATE with FILE_OPEN_BY_FILE_ID (MS-SMB2 2.2.13, MS-FSA 2.1.5.1).

Our 64-bit file ids are st_ino (FileInternalInformation, the Id* directory classes, QFid).
Linux opens nothing by inode number without a file handle (open_by_handle_at needs
CAP_DAC_READ_SEARCH and would bypass the share's confinement), so ids are opened "where
possible": each CREATE that returns a file or directory remembers its id and its path
below the share root, one dict store; QUERY_DIRECTORY does not fill the map.

Decisions
---------
* One bounded LRU per server (fs/server_tables.py), keyed by (share root, st_ino) and
  holding (st_dev, absolute path; `lookup` makes it the name below the root): MAX_ENTRIES
  entries in all, whatever the number of shares, so memory stays bounded (about 5 MiB with
  40-character names).
  An id known on one share root is not known on another.
* `lookup` only gives a name. The caller opens that name exactly as a CREATE by name would
  (fs/share_paths.py confinement, veto files, every access check), then insists that the
  object opened still has the id's (st_dev, st_ino); otherwise the id names nothing (the
  file was deleted, renamed by someone else, or the id was never seen) and the entry goes.
  So an id can never open something outside the share, nor anything the same request by
  name would be refused.
* Anyone who can open a file by name can open it by id, and vice versa: the map is shared
  by all sessions on the share, as the file system's ids are.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any
from .server_tables import PerServer

MAX_ENTRIES = 16384

_maps = PerServer("file_ids")  # server -> OrderedDict


def relative_name(root: str, path: str) -> str | None:
    """The backslash-separated name of `path` (symlink-free, inside `root`) below `root`;
    "" for the root itself, None when `path` is not below `root`."""
    if path == root:
        return ""
    prefix = root if root.endswith("/") else root + "/"
    if not path.startswith(prefix):
        return None
    return path[len(prefix):].replace("/", "\\")


def remember(server: Any, root: str, path: str, dev: int, ino: int) -> None:
    """CREATE returned the object at `path` (inside `root`) with id `ino` on device `dev`.
    One store on every CREATE: the name below the root is worked out by `lookup`."""
    m = _maps.get(server)
    if m is None:
        m = _maps[server] = OrderedDict()
    key = (root, ino)
    if key in m:
        m.move_to_end(key)
    elif len(m) >= MAX_ENTRIES:
        m.popitem(last=False)
    m[key] = (dev, path)


def lookup(server: Any, root: str, ino: int) -> tuple[int, str] | None:
    """(st_dev, name below the root) last remembered for id `ino` on `root`, or None."""
    m = _maps.get(server)
    if not m:
        return None
    key = (root, ino)
    entry = m.get(key)
    if entry is None:
        return None
    name = relative_name(root, entry[1])
    if name is None or "\\\\" in name:
        del m[key]
        return None
    m.move_to_end(key)
    return entry[0], name


def forget(server: Any, root: str, ino: int) -> None:
    """Drop an id that no longer names what was remembered."""
    m = _maps.get(server)
    if m:
        m.pop((root, ino), None)


def size(server: Any) -> int:
    m = _maps.get(server)
    return len(m) if m else 0


__all__ = ["MAX_ENTRIES", "forget", "lookup", "relative_name", "remember", "size"]

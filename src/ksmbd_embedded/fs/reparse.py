r"""POSIX symlinks as reparse points (MS-FSCC 2.1.2.4, MS-FSA 2.1.5.1, 2.1.5.10.14).

Only an Open made with FILE_OPEN_REPARSE_POINT whose final component is a symlink is a
reparse point here (handlers/create.py): it is the link itself, opened O_PATH | O_NOFOLLOW,
with `Open.extra` a `LinkOpen`. Everything else keeps today's behaviour.

Why links are not shown as reparse points anywhere else
--------------------------------------------------------
CREATE without FILE_OPEN_REPARSE_POINT follows symlinks that stay inside the share on the
server (fs/share_paths.py, Samba's default), and QUERY_DIRECTORY reports what they point to.
Reporting FILE_ATTRIBUTE_REPARSE_POINT there (or answering STATUS_STOPPED_ON_SYMLINK) would
make Windows clients evaluate the links themselves, and Windows disables remote-to-remote
symlink evaluation by default (`fsutil behavior set SymlinkEvaluation R2R:0`): every link on
the share would stop working for them. So the attribute and the tag appear only on an Open of
the link itself, which only a client that asked for FILE_OPEN_REPARSE_POINT gets.

Decisions
---------
* The link Open is never a directory Open (`Open.is_dir` False: no QUERY_DIRECTORY, and
  deleting it never looks behind it). When the link points to a directory inside the share,
  its attributes say FILE_ATTRIBUTE_DIRECTORY as a Windows directory symlink's do, and CREATE
  takes FILE_DIRECTORY_FILE for it (refusing FILE_NON_DIRECTORY_FILE), so RemoveDirectory of
  a directory link works. A link leading out of the share, or dangling, is a file link:
  nothing outside is ever stat'ed to find out what it is.
* A POSIX symlink has no data stream and takes no user xattrs (so no EAs, DOS attributes or
  stored descriptor): an Open of one is granted only LINK_RIGHTS of what it asked (read
  attributes/EAs/control, write attributes, DELETE, SYNCHRONIZE). READ and WRITE on it are
  therefore STATUS_ACCESS_DENIED; EndOfFile and AllocationSize are reported 0 (a Windows
  symlink's unnamed stream is empty too). FILE_WRITE_ATTRIBUTES is granted as Windows grants
  it (smbclient's remove() asks for it), but SET_INFO FileBasicInformation acts on the Open's
  descriptor, which is O_PATH here, and fails (STATUS_INVALID_HANDLE) until set_info.py
  learns about link Opens. Security descriptors are never read or written through the
  link's path (that would follow it): a link shows the descriptor synthesized from its own
  mode and owner, and WRITE_DAC / WRITE_OWNER are never granted.
* FSCTL_GET_REPARSE_POINT returns a symbolic link reparse data buffer, IO_REPARSE_TAG_SYMLINK,
  with SubstituteName = PrintName and always SYMLINK_FLAG_RELATIVE:
  - a relative target is returned with backslashes (empty and "." components dropped) when,
    resolved lexically from the link's directory (as Windows resolves a relative link), it
    stays inside the share;
  - an absolute target is expressed relative to the link's directory when it points inside
    the share, lexically or after os.path.realpath (a client cannot use a server-local
    absolute path, and the UNC name it connected with is not ours to guess);
  - anything else (a target leading out of the share, a component holding a character no
    SMB name may hold, or bytes that are not UTF-8) is STATUS_ACCESS_DENIED, so no path
    outside the share is ever revealed.
"""

from __future__ import annotations

import os
import re
import stat as _stat
import struct
from typing import Any

from ..status import STATUS_ACCESS_DENIED, SmbError
from .dos_attrs import (
    FILE_ATTRIBUTE_DIRECTORY, FILE_ATTRIBUTE_HIDDEN, FILE_ATTRIBUTE_REPARSE_POINT, FileMeta,
)

IO_REPARSE_TAG_SYMLINK = 0xA000000C
SYMLINK_FLAG_RELATIVE = 0x00000001
# MS-FSCC 2.1.2.2: ReparseTag, ReparseDataLength, Reserved (REPARSE_DATA_BUFFER's header, the
# whole of the structure's fixed part: what MS-FSA 2.1.5.10.14 calls its sizeof)
REPARSE_HEADER = struct.Struct("<IHH")
# MS-FSCC 2.1.2.4: SubstituteNameOffset, SubstituteNameLength, PrintNameOffset,
# PrintNameLength, Flags
_SYMLINK_FIXED = struct.Struct("<HHHHI")

# Access rights an Open of a symlink can have (see the module docstring).
_READ_ATTRIBUTES = 0x00000080
_WRITE_ATTRIBUTES = 0x00000100
_READ_EA = 0x00000008
_DELETE = 0x00010000
_READ_CONTROL = 0x00020000
_SYNCHRONIZE = 0x00100000
LINK_RIGHTS = _READ_ATTRIBUTES | _WRITE_ATTRIBUTES | _READ_EA | _DELETE | _READ_CONTROL \
    | _SYNCHRONIZE

# MS-FSCC 2.1.5.2 characters no name component may hold, plus the backslash (a separator for
# the client): a target holding one cannot be expressed.
_BAD_CHARS = re.compile(r'[\x00-\x1f<>:"|?*\\]')


class LinkOpen:
    """What an Open of a symlink itself carries in `Open.extra`."""

    __slots__ = ("points_to_dir",)

    def __init__(self, points_to_dir: bool) -> None:
        self.points_to_dir = points_to_dir  # an existing directory inside the share

    def __repr__(self) -> str:
        return f"<LinkOpen dir={self.points_to_dir}>"


def link_of(op: Any) -> LinkOpen | None:
    """The LinkOpen of an Open of a symlink, else None."""
    extra = op.extra
    return extra if type(extra) is LinkOpen else None


def points_to_dir(root: str, link_path: str) -> bool:
    """Whether the symlink at `link_path` leads to an existing directory inside `root`
    (nothing outside the share is stat'ed)."""
    from .share_paths import is_inside
    real = os.path.realpath(link_path)
    if not is_inside(root, real):
        return False
    try:
        return _stat.S_ISDIR(os.stat(real).st_mode)
    except OSError:
        return False


def adjust_meta(meta: FileMeta, link: LinkOpen) -> FileMeta:
    """A symlink's FileMeta (read_meta of its O_PATH descriptor) as a reparse point."""
    attrs = FILE_ATTRIBUTE_REPARSE_POINT | (meta.attributes & FILE_ATTRIBUTE_HIDDEN)
    if link.points_to_dir:
        attrs |= FILE_ATTRIBUTE_DIRECTORY
    meta.attributes = attrs
    meta.end_of_file = 0
    meta.allocation_size = 0
    meta.is_dir = link.points_to_dir
    return meta


def tag_of(op: Any) -> int:
    """The reparse tag FileAttributeTagInformation reports for an Open (0: none)."""
    return IO_REPARSE_TAG_SYMLINK if link_of(op) is not None else 0


# -- the reparse data buffer ------------------------------------------------------------------

def _components(root: str, path: str) -> list[str]:
    """The components of `path` (a normalised absolute path inside `root`) below `root`."""
    rest = path[len(root):] if root != "/" else path
    return [c for c in rest.split("/") if c]


def client_target(root: str, link_path: str, target: str) -> str:
    """The backslash-separated relative target a client is given for the symlink at
    `link_path` (inside `root`, its directory free of symlinks) pointing to `target`.
    Raises SmbError(STATUS_ACCESS_DENIED) for targets leading out of the share or that
    cannot be expressed (see the module docstring)."""
    from .share_paths import is_inside
    link_dir = _components(root, os.path.dirname(link_path))
    if target.startswith("/"):
        dest = os.path.normpath(target)
        if dest.startswith("//"):
            dest = dest[1:]  # POSIX keeps a leading "//"
        if not is_inside(root, dest):
            dest = os.path.realpath(target)
            if not is_inside(root, dest):
                raise SmbError(STATUS_ACCESS_DENIED)
        parts = _components(root, dest)
        common = 0
        while common < min(len(link_dir), len(parts)) and link_dir[common] == parts[common]:
            common += 1
        out = [".."] * (len(link_dir) - common) + parts[common:]
    else:
        out = [c for c in target.split("/") if c and c != "."]
        depth = len(link_dir)
        for c in out:  # lexically, from the link's directory, as the client resolves it
            depth = depth - 1 if c == ".." else depth + 1
            if depth < 0:
                raise SmbError(STATUS_ACCESS_DENIED)
    for c in out:
        if _BAD_CHARS.search(c) is not None:
            raise SmbError(STATUS_ACCESS_DENIED)
    return "\\".join(out) if out else "."


def symlink_reparse_buffer(name: str) -> bytes:
    """REPARSE_DATA_BUFFER with a symbolic link reparse buffer (MS-FSCC 2.1.2.2, 2.1.2.4):
    SubstituteName and PrintName both `name`, SYMLINK_FLAG_RELATIVE, no terminators."""
    try:
        encoded = name.encode("utf-16-le")
    except UnicodeEncodeError:  # a lone surrogate: not UTF-8 on disk
        raise SmbError(STATUS_ACCESS_DENIED) from None
    n = len(encoded)
    data = _SYMLINK_FIXED.pack(0, n, n, n, SYMLINK_FLAG_RELATIVE) + encoded + encoded
    return REPARSE_HEADER.pack(IO_REPARSE_TAG_SYMLINK, len(data), 0) + data


def read_reparse_buffer(op: Any) -> bytes:
    """The reparse data buffer of an Open of a symlink (the link read through the Open's own
    descriptor, so a link replaced since CREATE is never read)."""
    try:
        target = os.readlink("", dir_fd=op.fd)
    except OSError as exc:
        from .errno_status import oserror_to_status
        raise SmbError(oserror_to_status(exc, "readlink")) from None
    return symlink_reparse_buffer(client_target(op.tree.root, op.path, target))


__all__ = ["IO_REPARSE_TAG_SYMLINK", "LINK_RIGHTS", "LinkOpen", "REPARSE_HEADER",
           "SYMLINK_FLAG_RELATIVE", "adjust_meta", "client_target", "link_of", "points_to_dir",
           "read_reparse_buffer", "symlink_reparse_buffer", "tag_of"]

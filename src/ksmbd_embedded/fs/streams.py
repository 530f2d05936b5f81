r"""Named data streams ("file:stream:$DATA") kept in extended attributes (MS-FSCC 2.1.5.3).

Storage
-------
One user xattr per named stream of a file or directory, named
``user.DosStream.<stream name>:$DATA`` (the name as the client first spelled it, UTF-8), whose
value is the stream's bytes followed by one NUL byte. That is the layout Samba's
streams_xattr module uses, so a disk moved between the two servers keeps its streams. The
xattrs belong to the inode: a rename keeps them, deleting the file deletes them, and a hard
link shares them. The default stream ("::$DATA") is the file's ordinary data.

Limits: Linux caps one xattr value at 64 KiB (XATTR_SIZE_MAX) and ext4 keeps all of a file's
xattrs in one block (about 4 KiB with the DOS attributes). A WRITE or end-of-file change that
would not fit fails with STATUS_DISK_FULL and leaves the stream as it was: every change is a
whole-value setxattr, which the kernel applies entirely or not at all.

Names (MS-FSCC 2.1.5.3): any character but NUL, "\", "/" and ":"; at most 255 UTF-16 code
units; compared case-insensitively (str.casefold), the stored spelling kept. The only stream
type is $DATA (any case). A stream name never becomes a path: it only ever reaches the
`*xattr` calls on a descriptor of a file already resolved inside the share.

Opens of a stream
-----------------
An open of a named stream is an ordinary `Open` whose descriptor is the *base file's* (read
only is enough for xattrs) and whose `extra` is a `StreamOpen`. Its `file_key` is
(st_dev, st_ino, casefolded stream name), so share modes, delete-pending state and byte-range
locks are per stream (MS-FSA 2.1.5.1.2: share access is checked against the opens of the same
stream). The base file and its streams meet in three places, through `stream_opens()`:
an open of the base file asking DELETE conflicts with stream opens that do not share delete
(`check_base_delete`), the base file cannot be renamed while a stream is open, and a
delete-pending base file is removed only once its stream opens are closed too.

Where the share's file system takes no user xattrs (`supported()` False: vfat, exFAT...),
stream names are STATUS_OBJECT_NAME_INVALID, what a FAT volume answers.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Any

from ..status import (
    STATUS_DISK_FULL, STATUS_OBJECT_NAME_INVALID, STATUS_SHARING_VIOLATION, SmbError,
)
from ..opens import unindex
from ..tree import DELETE
from .errno_status import oserror_to_status
from .server_tables import PerServer

if TYPE_CHECKING:
    from ..opens import Open

XATTR_PREFIX = "user.DosStream."
XATTR_SUFFIX = ":$DATA"
_XATTR_NAME_MAX = 255  # bytes, "user." included (Linux XATTR_NAME_MAX)
MAX_NAME_UNITS = 255  # UTF-16 code units of a stream name (MS-FSCC 2.1.5.3)
# Largest stream content: one xattr value is at most 64 KiB, less our trailing NUL.
MAX_STREAM_SIZE = 65536 - 1
_FILE_SHARE_DELETE = 0x00000004  # share_modes.FILE_SHARE_DELETE (which imports this module)

_HAVE_XATTR = hasattr(os, "listxattr")
_UNSUPPORTED = frozenset(e for e in (getattr(errno, "ENOTSUP", None), errno.EOPNOTSUPP,
                                     errno.ENOSYS) if e is not None)


class StreamOpen:
    """What an Open of a named stream carries in `Open.extra`."""

    __slots__ = ("name", "base_key")

    def __init__(self, name: str, base_key: tuple[int, int]) -> None:
        self.name = name  # the stream's stored spelling
        self.base_key = base_key  # (st_dev, st_ino) of the file holding it

    def __repr__(self) -> str:
        return f"<StreamOpen {self.name!r}>"


def stream_of(op: Any) -> StreamOpen | None:
    """The StreamOpen of an Open of a named stream, else None."""
    extra = op.extra
    return extra if type(extra) is StreamOpen else None


def stream_key(base_key: tuple[int, int], name: str) -> tuple[int, int, str]:
    """The `Open.file_key` of a stream: share modes and delete-pending state are per stream."""
    return (base_key[0], base_key[1], name.casefold())


# -- names ----------------------------------------------------------------------------------------

def split_stream(name: str) -> tuple[str, str | None]:
    """Split a client name at its first ':' into (file part, stream name).

    The stream part is "stream", "stream:$DATA" or ":$DATA" (the default stream, returned as
    ""); None when there is no ':' at all. Raises SmbError(STATUS_OBJECT_NAME_INVALID) for an
    empty or unknown stream type ("f:s:", "f:s:$FOO"), an empty name without a type ("f:"), a
    name holding "\\", "/" or ":" (so also any colon before a backslash), or a name too long.
    """
    i = name.find(":")
    if i < 0:
        return name, None
    path, rest = name[:i], name[i + 1:]
    sname, sep, stype = rest.partition(":")
    if sep and stype.upper() != "$DATA":  # also "f:s:" and "f:s:$DATA:x"
        raise SmbError(STATUS_OBJECT_NAME_INVALID)
    if not sname:
        if not sep:
            raise SmbError(STATUS_OBJECT_NAME_INVALID)  # "f:"
        return path, ""  # "f::$DATA"
    check_stream_name(sname)
    return path, sname


def check_stream_name(sname: str) -> None:
    """MS-FSCC 2.1.5.3 plus what one xattr name can hold; raises OBJECT_NAME_INVALID."""
    if "\\" in sname or "/" in sname or ":" in sname or "\x00" in sname:
        raise SmbError(STATUS_OBJECT_NAME_INVALID)
    if len(sname) > MAX_NAME_UNITS // 2 and (
            len(sname) + sum(1 for ch in sname if ord(ch) > 0xFFFF) > MAX_NAME_UNITS):
        raise SmbError(STATUS_OBJECT_NAME_INVALID)
    try:
        encoded = sname.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        raise SmbError(STATUS_OBJECT_NAME_INVALID) from None
    if len(encoded) + len(XATTR_PREFIX) + len(XATTR_SUFFIX) > _XATTR_NAME_MAX:
        raise SmbError(STATUS_OBJECT_NAME_INVALID)  # longer than an xattr name can be


def xattr_name(sname: str) -> str:
    return XATTR_PREFIX + sname + XATTR_SUFFIX


def is_stream_xattr(xname: str) -> bool:
    return xname.startswith(XATTR_PREFIX) and xname.endswith(XATTR_SUFFIX) \
        and len(xname) > len(XATTR_PREFIX) + len(XATTR_SUFFIX)


def _stream_name(xname: str) -> str:
    return xname[len(XATTR_PREFIX):-len(XATTR_SUFFIX)]


# -- file system support --------------------------------------------------------------------------

_supported: dict[str, bool] = {}


def supported(root: str) -> bool:
    """Whether the file system under a share root takes user xattrs (probed once, by reading
    an xattr that does not exist: ENODATA means yes, ENOTSUP means no)."""
    ok = _supported.get(root)
    if ok is None:
        ok = False
        if _HAVE_XATTR:
            try:
                os.getxattr(root, "user.ksmbd-probe")
                ok = True
            except OSError as exc:
                ok = exc.errno not in _UNSUPPORTED and exc.errno != errno.EPERM
        _supported[root] = ok
    return ok


def forget() -> None:
    """Drop the probe cache (config reload, tests)."""
    _supported.clear()


# -- stream content -------------------------------------------------------------------------------

def _fail(exc: OSError, what: str) -> SmbError:
    if exc.errno == errno.E2BIG or exc.errno == errno.ERANGE:
        return SmbError(STATUS_DISK_FULL)  # larger than an xattr value may be
    return SmbError(oserror_to_status(exc, what))


def list_streams(fd: int) -> list[tuple[str, int]]:
    """(stored name, size) of every named stream of the file open as `fd`, in xattr order."""
    if not _HAVE_XATTR:
        return []
    try:
        names = os.listxattr(fd)
    except OSError as exc:
        if exc.errno in _UNSUPPORTED or exc.errno == errno.EBADF:
            return []  # no xattrs here, or an O_PATH descriptor
        raise _fail(exc, "list streams") from None
    out = []
    for xname in names:
        if is_stream_xattr(xname):
            try:
                size = _size_of(os.getxattr(fd, xname))
            except OSError:
                continue  # removed meanwhile
            out.append((_stream_name(xname), size))
    return out


def _size_of(value: bytes) -> int:
    return len(value) - 1 if value.endswith(b"\x00") else len(value)


def find_stream(fd: int, sname: str) -> str | None:
    """The stored spelling of the stream named `sname` (ignoring case), or None."""
    if not _HAVE_XATTR:
        return None
    try:
        os.getxattr(fd, xattr_name(sname))
        return sname  # the exact spelling: the common case, one syscall
    except OSError as exc:
        if exc.errno != errno.ENODATA:
            if exc.errno in _UNSUPPORTED or exc.errno == errno.EBADF:
                return None
            raise _fail(exc, "find stream") from None
    want = sname.casefold()
    for stored, _ in list_streams(fd):
        if stored.casefold() == want:
            return stored
    return None


def read_stream(fd: int, sname: str) -> bytes:
    """The content of an existing stream (b"" if it vanished)."""
    try:
        value = os.getxattr(fd, xattr_name(sname))
    except OSError as exc:
        if exc.errno == errno.ENODATA:
            return b""
        raise _fail(exc, "read stream") from None
    return value[:-1] if value.endswith(b"\x00") else value


def stream_size(fd: int, sname: str) -> int:
    return len(read_stream(fd, sname))


def write_stream(fd: int, sname: str, data: bytes, create: bool = False) -> None:
    """Replace the whole content of a stream; `create` fails with EEXIST-collision if it
    exists already. Content above MAX_STREAM_SIZE, or what the file system cannot hold, is
    STATUS_DISK_FULL with nothing changed."""
    if len(data) > MAX_STREAM_SIZE:
        raise SmbError(STATUS_DISK_FULL)
    flags = os.XATTR_CREATE if create else 0
    try:
        os.setxattr(fd, xattr_name(sname), bytes(data) + b"\x00", flags)
    except OSError as exc:
        raise _fail(exc, "write stream") from None


def write_at(fd: int, sname: str, offset: int, data: Any) -> int:
    """Write `data` at `offset` into a stream (zeros fill a gap); returns the new size."""
    end = offset + len(data)
    if end > MAX_STREAM_SIZE:
        raise SmbError(STATUS_DISK_FULL)
    content = bytearray(read_stream(fd, sname))
    if offset > len(content):
        content += bytes(offset - len(content))
    content[offset:end] = data
    write_stream(fd, sname, content)
    return len(content)


def set_size(fd: int, sname: str, size: int) -> None:
    """FileEndOfFileInformation on a stream: truncate or zero-extend."""
    if size > MAX_STREAM_SIZE:
        raise SmbError(STATUS_DISK_FULL)
    content = read_stream(fd, sname)
    if size == len(content):
        return
    content = content[:size] if size < len(content) else content + bytes(size - len(content))
    write_stream(fd, sname, content)


def remove_stream(fd_or_path: Any, sname: str) -> None:
    """Delete a stream; a missing one is not an error."""
    try:
        os.removexattr(fd_or_path, xattr_name(sname))
    except OSError as exc:
        if exc.errno != errno.ENODATA:
            raise _fail(exc, "delete stream") from None


def remove_all_streams(fd: int) -> None:
    """Every named stream goes (an overwrite of the file, MS-FSA 2.1.5.1.2.1)."""
    for sname, _ in list_streams(fd):
        remove_stream(fd, sname)


def rename_stream(fd: int, old: str, new: str) -> None:
    """Give a stream a new name (the caller checked the target): copy, then remove."""
    data = read_stream(fd, old)
    write_stream(fd, new, data)
    if old != new:
        remove_stream(fd, old)


def allocation(size: int) -> int:
    """AllocationSize reported for a stream of `size` bytes (whole 4 KiB units)."""
    return (size + 4095) & ~4095


# -- opens of streams, by base file ---------------------------------------------------------------

# server -> {base file key: [stream Opens]}
_by_base = PerServer("stream_opens")  # server -> dict[tuple[int, int], list[Open]]


def register(server: Any, op: Open) -> None:
    """Remember a new stream open under its base file (call once the Open is in the table)."""
    info = stream_of(op)
    if info is not None:
        _by_base.setdefault(server, {}).setdefault(info.base_key, []).append(op)


def unregister(server: Any, op: Open) -> None:
    """Forget a stream open (close_open)."""
    info = stream_of(op)
    table = _by_base.get(server)
    if info is None or not table:
        return
    unindex(table, info.base_key, op)


def stream_opens(server: Any, base_key: tuple[int, int] | None) -> list[Open]:
    """The open streams of a file."""
    table = _by_base.get(server)
    if not table or base_key is None:
        return []
    return table.get(base_key, [])


def check_base_delete(server: Any, base_key: tuple[int, int], access: int) -> None:
    """An open of the file asking DELETE conflicts with a stream open that does not share
    delete: STATUS_SHARING_VIOLATION (the file's deletion would take the stream with it)."""
    if not access & DELETE:
        return
    for other in stream_opens(server, base_key):
        if not other.share_access & _FILE_SHARE_DELETE:
            raise SmbError(STATUS_SHARING_VIOLATION)


def rekey(server: Any, op: Open, new_key: tuple) -> None:
    """Move an open to another file key in the open table (a stream renamed, or renamed to
    the default stream)."""
    server.opens.rekey(op, new_key)

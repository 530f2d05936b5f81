"""DOS attributes and creation time on top of POSIX stat (MS-FSCC 2.6, 2.1.1).

POSIX file systems have neither Windows file attributes nor a creation time
that user space can set, so both are kept in one extended attribute,
``user.DOSATTRIB``, in a small format of our own:

    offset  size  field
    0       1     format version, 1 (readers accept any version >= 1 and
                  read only these fields; later versions may only append)
    1       1     flags: 0x01 attributes valid, 0x02 creation time valid,
                  0x04 the file is sparse (FSCTL_SET_SPARSE; readers that
                  do not know the bit ignore it)
    2       4     attributes, u32 little-endian (only STORED_ATTRIBUTES_MASK bits)
    6       8     creation time, u64 little-endian FILETIME

14 bytes in all.  A blob that is shorter, or starts with a version byte of 0
or with ASCII ``0`` (which is how Samba's NDR blobs under the same name
begin), is treated as absent, and the next write replaces it.

Bits that describe the object rather than a user's choice are never stored:
DIRECTORY comes from the file type, NORMAL is reported only when no other bit
is set.  SPARSE_FILE is not one of the stored attributes either: CREATE and
SET_INFO FileBasicInformation cannot set or clear it (Windows ignores it there
too, smbtorture smb2.ioctl.sparse_file_attr); only FSCTL_SET_SPARSE does, through
`set_sparse`, which keeps it in its own flag bit.  `write_dos_attrs` never
touches that bit, and `read_meta` reports SPARSE_FILE for files that have it.
READONLY is kept in the xattr only; it does not touch the mode bits (and the
mode's owner write bit is only consulted when no xattr exists).

When the xattr is missing, or the file system has no user xattrs, the values
are derived from ``os.stat``: creation time is the birth time where the
platform reports one, else ``min(st_mtime, st_ctime)``; attributes are
READONLY when the owner write bit (S_IWUSR) is clear.  Nothing in this module
raises because xattrs are unsupported (ENOTSUP, EOPNOTSUPP, EPERM, ENODATA...).
"""

from __future__ import annotations

import errno
import os
import stat as _stat
import struct

from . import change_time, xattr_cache

# File attributes (MS-FSCC 2.6)
FILE_ATTRIBUTE_READONLY = 0x00000001
FILE_ATTRIBUTE_HIDDEN = 0x00000002
FILE_ATTRIBUTE_SYSTEM = 0x00000004
FILE_ATTRIBUTE_DIRECTORY = 0x00000010
FILE_ATTRIBUTE_ARCHIVE = 0x00000020
FILE_ATTRIBUTE_NORMAL = 0x00000080
FILE_ATTRIBUTE_TEMPORARY = 0x00000100
FILE_ATTRIBUTE_SPARSE_FILE = 0x00000200
FILE_ATTRIBUTE_REPARSE_POINT = 0x00000400
FILE_ATTRIBUTE_COMPRESSED = 0x00000800
FILE_ATTRIBUTE_OFFLINE = 0x00001000
FILE_ATTRIBUTE_NOT_CONTENT_INDEXED = 0x00002000
FILE_ATTRIBUTE_ENCRYPTED = 0x00004000
FILE_ATTRIBUTE_INTEGRITY_STREAM = 0x00008000
FILE_ATTRIBUTE_NO_SCRUB_DATA = 0x00020000
FILE_ATTRIBUTE_RECALL_ON_OPEN = 0x00040000
FILE_ATTRIBUTE_PINNED = 0x00080000
FILE_ATTRIBUTE_UNPINNED = 0x00100000
FILE_ATTRIBUTE_RECALL_ON_DATA_ACCESS = 0x00400000

# What a client may change through SET_INFO FileBasicInformation; the caller
# masks the client's value with this before calling write_dos_attrs().
BASIC_SETTABLE_ATTRIBUTES = (
    FILE_ATTRIBUTE_READONLY | FILE_ATTRIBUTE_HIDDEN | FILE_ATTRIBUTE_SYSTEM
    | FILE_ATTRIBUTE_ARCHIVE | FILE_ATTRIBUTE_TEMPORARY | FILE_ATTRIBUTE_OFFLINE
    | FILE_ATTRIBUTE_NOT_CONTENT_INDEXED
)
# What the xattr keeps as attributes: the settable bits.  Anything else is
# dropped on write (SPARSE_FILE has its own flag bit, see `set_sparse`).
STORED_ATTRIBUTES_MASK = BASIC_SETTABLE_ATTRIBUTES

XATTR_NAME = "user.DOSATTRIB"
_XATTR_VERSION = 1
_HAS_ATTRS = 0x01
_HAS_CTIME = 0x02
_IS_SPARSE = 0x04
# version, flags, attributes, creation time
_BLOB = struct.Struct("<BBIQ")

# FILETIME of the Unix epoch: 100 ns intervals from 1601-01-01 to 1970-01-01.
FILETIME_UNIX_EPOCH = 116444736000000000
_U64_MAX = 0xFFFFFFFFFFFFFFFF

# setxattr errors that mean "this file system / object takes no user xattrs".
_UNSUPPORTED_ERRNOS = frozenset(
    e for e in (
        getattr(errno, "ENOTSUP", None), getattr(errno, "EOPNOTSUPP", None), errno.EPERM,
        errno.ENOSYS,
    ) if e is not None
)

_HAVE_XATTR = hasattr(os, "getxattr") and hasattr(os, "setxattr")


def unix_to_filetime(ns: int) -> int:
    """Nanoseconds since 1970 to FILETIME (100 ns since 1601), clamped at 0."""
    ft = ns // 100 + FILETIME_UNIX_EPOCH
    return ft if ft > 0 else 0


def filetime_now() -> int:
    """The current time as FILETIME (NEGOTIATE's SystemTime, the server's start time)."""
    import time
    return unix_to_filetime(time.time_ns())


def filetime_to_unix_ns(ft: int) -> int:
    """FILETIME (100 ns since 1601) to nanoseconds since 1970 (may be negative)."""
    return (ft - FILETIME_UNIX_EPOCH) * 100


class FileMeta:
    """What SMB reports about one file or directory.  Times are FILETIME ints."""

    __slots__ = (
        "attributes", "creation_time", "last_access_time", "last_write_time",
        "change_time", "end_of_file", "allocation_size", "nlink", "file_id",
        "is_dir", "delete_pending",
    )

    def __init__(
        self,
        attributes: int = FILE_ATTRIBUTE_NORMAL,
        creation_time: int = 0,
        last_access_time: int = 0,
        last_write_time: int = 0,
        change_time: int = 0,
        end_of_file: int = 0,
        allocation_size: int = 0,
        nlink: int = 1,
        file_id: int = 0,
        is_dir: bool = False,
        delete_pending: bool = False,
    ) -> None:
        self.attributes = attributes
        self.creation_time = creation_time
        self.last_access_time = last_access_time
        self.last_write_time = last_write_time
        self.change_time = change_time
        self.end_of_file = end_of_file
        self.allocation_size = allocation_size
        self.nlink = nlink
        self.file_id = file_id
        self.is_dir = is_dir
        self.delete_pending = delete_pending

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__)
        return f"FileMeta({fields})"


def _parse_blob(blob: bytes) -> tuple[int, int, int] | None:
    """(flags, attributes, creation_time) from our xattr value, or None."""
    if len(blob) < _BLOB.size or blob[0] == 0 or blob[0] == 0x30:  # 0x30: b"0", Samba's
        return None
    _version, flags, attrs, ctime = _BLOB.unpack_from(blob)
    return flags, attrs, ctime


def _get_blob(target) -> tuple[int, int, int] | None:
    if not _HAVE_XATTR:
        return None
    try:
        return _parse_blob(os.getxattr(target, XATTR_NAME))
    except OSError:
        # ENODATA, ENOTSUP, EPERM, or a race with unlink: all mean "no xattr".
        return None


def read_meta(
    path_or_fd,
    st: os.stat_result | None = None,
    hide_dot: bool = False,
    name: str | None = None,
    *,
    follow_symlinks: bool = True,
) -> FileMeta:
    """Build the FileMeta of a path or an open fd.

    ``st``: a stat result the caller already has (e.g. from os.scandir), to
    save a syscall.  Only the stat raises (FileNotFoundError, ...); xattr
    problems fall back to stat-derived values.  ``hide_dot`` adds HIDDEN when
    the name (``name``, else the path's last component) starts with '.'
    (but not for "." and "..").  ``delete_pending`` is always False here.
    """
    if st is None:
        if isinstance(path_or_fd, int):
            st = os.fstat(path_or_fd)
        else:
            st = os.stat(path_or_fd, follow_symlinks=follow_symlinks)

    is_dir = _stat.S_ISDIR(st.st_mode)
    mtime_ns = st.st_mtime_ns
    ctime_ns = st.st_ctime_ns

    stored = None
    if _HAVE_XATTR:
        try:
            blob = xattr_cache.getxattr(path_or_fd, st, XATTR_NAME,
                                        isinstance(path_or_fd, int) or follow_symlinks)
            if blob is not None:
                stored = _parse_blob(blob)
        except OSError:
            stored = None  # ENOTSUP, EPERM, or a race with unlink: all mean "no xattr"

    if stored is not None and stored[0] & _HAS_ATTRS:
        attrs = stored[1] & STORED_ATTRIBUTES_MASK
    else:
        attrs = 0 if st.st_mode & _stat.S_IWUSR else FILE_ATTRIBUTE_READONLY

    if stored is not None and stored[0] & _HAS_CTIME:
        creation = stored[2]
    else:
        birth_ns = getattr(st, "st_birthtime_ns", None)
        if birth_ns is None:
            birth = getattr(st, "st_birthtime", None)
            if birth is not None:
                birth_ns = int(birth * 1_000_000_000)
        if birth_ns is None or birth_ns <= 0:
            birth_ns = mtime_ns if mtime_ns < ctime_ns else ctime_ns
        creation = unix_to_filetime(birth_ns)

    if hide_dot:
        if name is None and not isinstance(path_or_fd, int):
            name = os.path.basename(os.fsdecode(path_or_fd).rstrip("/"))
        if name and name[0] == "." and name != "." and name != "..":
            attrs |= FILE_ATTRIBUTE_HIDDEN

    if is_dir:
        attrs |= FILE_ATTRIBUTE_DIRECTORY
        eof = 0
        alloc = 0
    else:
        eof = st.st_size
        alloc = st.st_blocks * 512 if hasattr(st, "st_blocks") else (eof + 4095) & ~4095
        if stored is not None and stored[0] & _IS_SPARSE:
            attrs |= FILE_ATTRIBUTE_SPARSE_FILE
    if not attrs:
        attrs = FILE_ATTRIBUTE_NORMAL

    meta = FileMeta.__new__(FileMeta)
    meta.attributes = attrs
    meta.creation_time = creation
    meta.last_access_time = unix_to_filetime(st.st_atime_ns)
    meta.last_write_time = unix_to_filetime(mtime_ns)
    meta.change_time = change_time.reported(st, unix_to_filetime(ctime_ns))
    meta.end_of_file = eof
    meta.allocation_size = alloc
    meta.nlink = st.st_nlink
    meta.file_id = st.st_ino & _U64_MAX
    meta.is_dir = is_dir
    meta.delete_pending = False
    return meta


def write_dos_attrs(
    path_or_fd,
    attributes: int | None = None,
    creation_time: int | None = None,
) -> bool:
    """Store attributes and/or creation time in the xattr.

    None leaves that value as already stored (or unset, so read_meta keeps
    deriving it from stat).  Attributes are masked with
    STORED_ATTRIBUTES_MASK (DIRECTORY and NORMAL are never stored).
    Returns False, writing nothing, when the file system or the object (e.g.
    a symlink or device node) does not take user xattrs; raises OSError for
    real failures (EACCES, EROFS, ENOSPC, EDQUOT, ENOENT...) so the caller
    can map them to an NTSTATUS.  The file's mode bits are never changed.
    """
    if attributes is None and creation_time is None:
        return True
    if creation_time is not None and not 0 <= creation_time <= _U64_MAX:
        raise ValueError(f"creation_time out of range: {creation_time}")
    if not _HAVE_XATTR:
        return False
    flags = 0
    attrs = 0
    ctime = 0
    # The old value is read even when both are given: its sparse bit is kept.
    old = _get_blob(path_or_fd)
    if old is not None:
        flags, attrs, ctime = old
        flags &= _HAS_ATTRS | _HAS_CTIME | _IS_SPARSE
        attrs &= STORED_ATTRIBUTES_MASK
    if attributes is not None:
        flags |= _HAS_ATTRS
        attrs = attributes & STORED_ATTRIBUTES_MASK
    if creation_time is not None:
        flags |= _HAS_CTIME
        ctime = creation_time
    xattr_cache.written()
    try:
        os.setxattr(path_or_fd, XATTR_NAME, _BLOB.pack(_XATTR_VERSION, flags, attrs, ctime))
    except OSError as e:
        if e.errno in _UNSUPPORTED_ERRNOS:
            return False
        raise
    return True


def is_sparse(path_or_fd) -> bool:
    """Whether FSCTL_SET_SPARSE marked the file sparse (the xattr's sparse bit)."""
    stored = _get_blob(path_or_fd)
    return stored is not None and bool(stored[0] & _IS_SPARSE)


def set_sparse(path_or_fd, sparse: bool) -> bool:
    """Set or clear the sparse bit, keeping the stored attributes and creation time.

    Returns False, writing nothing, when the object takes no user xattrs;
    raises OSError for real failures, like `write_dos_attrs`.
    """
    if not _HAVE_XATTR:
        return False
    old = _get_blob(path_or_fd)
    flags, attrs, ctime = old if old is not None else (0, 0, 0)
    flags &= _HAS_ATTRS | _HAS_CTIME | _IS_SPARSE
    new_flags = flags | _IS_SPARSE if sparse else flags & ~_IS_SPARSE
    if old is not None and new_flags == flags:
        return True
    if old is None and not sparse:
        return True  # nothing stored, nothing to clear
    xattr_cache.written()
    try:
        os.setxattr(path_or_fd, XATTR_NAME, _BLOB.pack(
            _XATTR_VERSION, new_flags, attrs & STORED_ATTRIBUTES_MASK, ctime))
    except OSError as e:
        if e.errno in _UNSUPPORTED_ERRNOS:
            return False
        raise
    return True

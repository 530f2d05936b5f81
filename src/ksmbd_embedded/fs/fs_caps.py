"""What the file system under a share can really do, probed once per share root.

Python has no ``os.statfs``: the file system type comes from libc ``statfs()`` through ctypes
(``f_type`` is the first field of ``struct statfs`` on every Linux ABI, glibc and musl alike,
a native ``long``), and ``/proc/self/mountinfo`` names it when ctypes is unavailable or the
magic is FUSE (whose driver only mountinfo tells: ``fuseblk`` with ntfs-3g as source/subtype).

`FsCaps.sparse` is True only where truncating upwards makes a hole rather than writing zeros
(ext2/3/4, btrfs, xfs, f2fs, tmpfs, ntfs3, ntfs-3g); FILE_SUPPORTS_SPARSE_FILES is reported
from it (query_info.fs_attributes) and the sparse FSCTLs follow it (handlers/ioctl.py).
`FsCaps.zero_fill_extend` marks FAT-like file systems where extending the end of file writes
zeros on the caller's time (vfat, exFAT before Linux 6.8, any FUSE driver but ntfs-3g:
exfat-fuse shows as plain fuseblk): there SET_INFO defers extensions (fs/deferred_size.py);
`FsCaps.hard_links` is False on FAT-like file systems (FileLinkInformation and
FILE_SUPPORTS_HARD_LINKS look at it).

Results are cached per root path; `forget()` drops the cache (config reload, tests).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# statfs f_type magic numbers (linux/magic.h)
EXT_SUPER_MAGIC = 0xEF53
BTRFS_SUPER_MAGIC = 0x9123683E
XFS_SUPER_MAGIC = 0x58465342
F2FS_SUPER_MAGIC = 0xF2F52010
TMPFS_MAGIC = 0x01021994
RAMFS_MAGIC = 0x858458F6
MSDOS_SUPER_MAGIC = 0x4D44
EXFAT_SUPER_MAGIC = 0x2011BAB0
NTFS3_SUPER_MAGIC = 0x7366746E
NTFS_SB_MAGIC = 0x5346544E
FUSE_SUPER_MAGIC = 0x65735546
OVERLAYFS_SUPER_MAGIC = 0x794C7630
SQUASHFS_MAGIC = 0x73717368
UBIFS_SUPER_MAGIC = 0x24051905
JFFS2_SUPER_MAGIC = 0x72B6
NFS_SUPER_MAGIC = 0x6969
CIFS_SUPER_MAGIC = 0xFF534D42
SMB2_SUPER_MAGIC = 0xFE534D42

_MAGIC_NAMES = {
    EXT_SUPER_MAGIC: "ext4", BTRFS_SUPER_MAGIC: "btrfs", XFS_SUPER_MAGIC: "xfs",
    F2FS_SUPER_MAGIC: "f2fs", TMPFS_MAGIC: "tmpfs", RAMFS_MAGIC: "ramfs",
    MSDOS_SUPER_MAGIC: "vfat", EXFAT_SUPER_MAGIC: "exfat", NTFS3_SUPER_MAGIC: "ntfs3",
    NTFS_SB_MAGIC: "ntfs", FUSE_SUPER_MAGIC: "fuse", OVERLAYFS_SUPER_MAGIC: "overlay",
    SQUASHFS_MAGIC: "squashfs", UBIFS_SUPER_MAGIC: "ubifs", JFFS2_SUPER_MAGIC: "jffs2",
    NFS_SUPER_MAGIC: "nfs", CIFS_SUPER_MAGIC: "cifs", SMB2_SUPER_MAGIC: "smb3",
}

# mountinfo type names of the file systems where ftruncate upwards leaves a hole.
_SPARSE_TYPES = frozenset(("ext2", "ext3", "ext4", "btrfs", "xfs", "f2fs", "tmpfs", "ntfs3",
                           "ntfs-3g"))
_FAT_TYPES = frozenset(("vfat", "msdos", "fat"))


@dataclass(frozen=True, slots=True)
class FsCaps:
    """What one share's file system offers. `fs_type` is a mountinfo-style name or "unknown"."""

    fs_type: str
    sparse: bool
    zero_fill_extend: bool
    hard_links: bool
    read_only: bool


_cache: dict[str, FsCaps] = {}


def caps_for(root: str) -> FsCaps:
    """The capabilities of the file system holding `root`, probed once and cached."""
    caps = _cache.get(root)
    if caps is None:
        caps = probe(root)
        _cache[root] = caps
    return caps


def forget() -> None:
    _cache.clear()


def probe(path: str) -> FsCaps:
    return classify(statfs_type(path), mount_for(path), os.uname().release)


def classify(magic: int | None, mount: tuple[str, str, frozenset[str]] | None,
             kernel_release: str) -> FsCaps:
    """FsCaps from a statfs magic, a `mount_for` result and the kernel release (uname -r)."""
    fs_type = _MAGIC_NAMES.get(magic, "unknown") if magic is not None else "unknown"
    read_only = False
    if mount is not None:
        mtype, source, options = mount
        read_only = "ro" in options
        # mountinfo names what a magic cannot: ext2/3/4 apart, FUSE drivers, unknown magics
        if fs_type in ("unknown", "fuse", "ext4"):
            fs_type = _fuse_driver(mtype, source) if mtype.startswith("fuse") else mtype
    sparse = fs_type in _SPARSE_TYPES
    # exFAT keeps a valid data length since Linux 6.8; an unreadable release counts as older.
    # Any other FUSE driver (exfat-fuse shows as plain fuseblk) may zero-fill: assume it does.
    zero_fill = (fs_type in _FAT_TYPES
                 or (fs_type == "exfat" and _release_at_least(kernel_release, 6, 8) is not True)
                 or fs_type.startswith("fuse"))
    hard_links = not (fs_type in _FAT_TYPES or fs_type == "exfat" or fs_type.startswith("fuse"))
    return FsCaps(fs_type, sparse, zero_fill, hard_links, read_only)


def _fuse_driver(mtype: str, source: str) -> str:
    """ntfs-3g shows as fuseblk (source or subtype naming ntfs); others stay "fuse..."."""
    if "ntfs" in mtype or "ntfs" in source.lower():
        return "ntfs-3g"
    return mtype


def _release_at_least(release: str, major: int, minor: int) -> bool | None:
    try:
        parts = release.split(".")
        digits = ""
        for c in parts[1]:
            if not c.isdigit():
                break
            digits += c
        return (int(parts[0]), int(digits or 0)) >= (major, minor)
    except (ValueError, IndexError):
        return None


# -- statfs through ctypes ------------------------------------------------------------------------

_libc = None
_libc_loaded = False


def _load_libc():
    global _libc, _libc_loaded
    if not _libc_loaded:
        _libc_loaded = True
        import ctypes  # only when a share is first probed
        try:
            # The process's own symbols include libc's statfs (glibc and musl alike); no
            # find_library, which may run ldconfig or a compiler.
            lib = ctypes.CDLL(None, use_errno=True)
            lib.statfs.argtypes = (ctypes.c_char_p, ctypes.c_void_p)
            lib.statfs.restype = ctypes.c_int
            _libc = lib
        except (OSError, AttributeError):
            _libc = None
    return _libc


def statfs_type(path: str) -> int | None:
    """statfs(2) f_type of `path` as an unsigned 32-bit magic, or None when unavailable."""
    libc = _load_libc()
    if libc is None:
        return None
    import ctypes
    buf = ctypes.create_string_buffer(512)  # larger than struct statfs(64) on any ABI
    if libc.statfs(os.fsencode(path), buf) != 0:
        return None
    return ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF


# -- /proc/self/mountinfo -------------------------------------------------------------------------

def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal
    if "\\" not in field:
        return field
    out = []
    i = 0
    while i < len(field):
        code = field[i + 1:i + 4]
        if field[i] == "\\" and len(code) == 3 and code.isdigit():
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mount_for(path: str, mountinfo: str = "/proc/self/mountinfo"
              ) -> tuple[str, str, frozenset[str]] | None:
    """(fstype, source, mount options) of the mount holding `path` (longest mount point)."""
    try:
        real = os.path.realpath(path)
        with open(mountinfo, encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    best: tuple[int, tuple[str, str, frozenset[str]]] | None = None
    for line in lines:
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split()
        tail = right.split()
        if len(fields) < 6 or len(tail) < 2:
            continue
        point = _unescape(fields[4])
        if not (real == point or point == "/" or real.startswith(point.rstrip("/") + "/")):
            continue
        options = frozenset(fields[5].split(","))
        entry = (tail[0], _unescape(tail[1]), options)
        # later lines over-mount earlier ones at the same point: >= keeps the last
        if best is None or len(point) >= best[0]:
            best = (len(point), entry)
    return best[1] if best is not None else None

r"""Extended attributes (EAs) of files and directories, kept in user xattrs (MS-FSCC 2.4.15).

Storage: the EA named NAME is the xattr ``user.NAME``, its value the EA's bytes, which is how
Samba keeps them (a disk moved between the two servers keeps its EAs). Names are ASCII,
upper-cased when set (what NTFS does; lookups ignore case, so a lower-case name written by
another program is still found and replaced). The FILE_NEED_EA flag of the EAs that carry it
is kept as a list of their names in ``user.ksmbd.NeedEA`` (MS-FSA 2.1.5.1.2: an open with
FILE_NO_EA_KNOWLEDGE of such a file is refused).

Our own xattrs and Samba's are never EAs: a name that is one of `RESERVED_NAMES` or starts
with one of `RESERVED_PREFIXES` (ignoring case) is not listed, and setting it is
STATUS_ACCESS_DENIED, so no client can overwrite DOS attributes (user.DOSATTRIB), named
streams (user.DosStream.*), stored ACLs or our bookkeeping (user.ksmbd.*). Internal xattrs
added later must use the ``user.ksmbd.`` prefix or be listed here.

Limits: an EA name is 1-255 bytes without the characters MS-FSCC 2.4.15 forbids
(STATUS_INVALID_EA_NAME); a value at most 65535 bytes (the EaValueLength field); the file
system's own limit (ext4: one block for all of a file's xattrs) answers STATUS_EA_TOO_LARGE.
"""

from __future__ import annotations

import errno
import os
import struct
from typing import Any

from ..status import STATUS_ACCESS_DENIED, STATUS_EAS_NOT_SUPPORTED, SmbError
from .errno_status import oserror_to_status

STATUS_INVALID_EA_NAME = 0x80000013
STATUS_EA_LIST_INCONSISTENT = 0x80000014
STATUS_EA_TOO_LARGE = 0xC0000050

FILE_NEED_EA = 0x00000080  # FILE_FULL_EA_INFORMATION.Flags (MS-FSCC 2.4.15)

PREFIX = "user."
NEED_EA_XATTR = "user.ksmbd.NeedEA"
RESERVED_NAMES = frozenset(("DOSATTRIB", "NTACL", "SAMBA_PAI", "DOSATTRIB.BAK"))
RESERVED_PREFIXES = ("DOSSTREAM.", "KSMBD.", "SAMBA.", "NTACL.")
MAX_NAME = 255
MAX_VALUE = 0xFFFF

# NextEntryOffset, Flags, EaNameLength, EaValueLength (MS-FSCC 2.4.15)
_ENTRY = struct.Struct("<IBBH")
# NextEntryOffset, EaNameLength (MS-FSCC 2.4.15.1 FILE_GET_EA_INFORMATION)
_GET_ENTRY = struct.Struct("<IB")
_BAD_CHARS = frozenset(b'"*+,/:;<=>?[\\]|') | frozenset(range(0x20)) | frozenset(range(0x7F, 0x100))

_HAVE_XATTR = hasattr(os, "listxattr")
_UNSUPPORTED = frozenset(e for e in (getattr(errno, "ENOTSUP", None), errno.EOPNOTSUPP,
                                     errno.ENOSYS) if e is not None)


class Ea:
    __slots__ = ("name", "value", "flags")

    def __init__(self, name: str, value: bytes, flags: int = 0) -> None:
        self.name = name
        self.value = value
        self.flags = flags

    def __repr__(self) -> str:
        return f"Ea({self.name!r}, {self.value!r}, 0x{self.flags:x})"


def is_reserved(name: str) -> bool:
    """Whether an EA name would address one of our (or Samba's) internal xattrs."""
    up = name.upper()
    return up in RESERVED_NAMES or up.startswith(RESERVED_PREFIXES)


def valid_name(raw: bytes) -> bool:
    return 0 < len(raw) <= MAX_NAME and not any(b in _BAD_CHARS for b in raw)


# -- wire format ----------------------------------------------------------------------------------

def parse_full_ea_list(buf: Any) -> list[Ea]:
    """A FILE_FULL_EA_INFORMATION chain (SET_INFO, the ExtA create context).

    Raises SmbError: STATUS_EA_LIST_INCONSISTENT for a malformed chain (an entry past the
    buffer, a misaligned or short NextEntryOffset, a name without its NUL),
    STATUS_INVALID_EA_NAME for a name MS-FSCC forbids. Names come back upper-cased."""
    view = memoryview(buf)
    end = len(view)
    out: list[Ea] = []
    pos = 0
    while True:
        if end - pos < _ENTRY.size:
            raise SmbError(STATUS_EA_LIST_INCONSISTENT)
        nxt, flags, name_len, value_len = _ENTRY.unpack_from(view, pos)
        need = _ENTRY.size + name_len + 1 + value_len
        if pos + need > end or (nxt and (nxt < need or nxt & 3 or pos + nxt >= end)):
            raise SmbError(STATUS_EA_LIST_INCONSISTENT)
        name_start = pos + _ENTRY.size
        raw = bytes(view[name_start:name_start + name_len])
        if view[name_start + name_len] != 0:
            raise SmbError(STATUS_EA_LIST_INCONSISTENT)
        if not valid_name(raw):
            raise SmbError(STATUS_INVALID_EA_NAME)
        value_start = name_start + name_len + 1
        out.append(Ea(raw.decode("ascii").upper(),
                      bytes(view[value_start:value_start + value_len]), flags & FILE_NEED_EA))
        if not nxt:
            return out
        pos += nxt


def parse_get_ea_list(buf: Any) -> list[str]:
    """A FILE_GET_EA_INFORMATION chain (the QUERY_INFO input buffer): the names asked for."""
    view = memoryview(buf)
    end = len(view)
    names: list[str] = []
    pos = 0
    while True:
        if end - pos < _GET_ENTRY.size:
            raise SmbError(STATUS_EA_LIST_INCONSISTENT)
        nxt, name_len = _GET_ENTRY.unpack_from(view, pos)
        start = pos + _GET_ENTRY.size
        if start + name_len + 1 > end or (nxt and (nxt & 3 or pos + nxt >= end
                                                   or nxt < _GET_ENTRY.size + name_len + 1)):
            raise SmbError(STATUS_EA_LIST_INCONSISTENT)
        raw = bytes(view[start:start + name_len])
        if not valid_name(raw):
            raise SmbError(STATUS_INVALID_EA_NAME)
        names.append(raw.decode("ascii").upper())
        if not nxt:
            return names
        pos += nxt


def encode_entry(ea: Ea, last: bool) -> bytes:
    """One FILE_FULL_EA_INFORMATION entry, padded to 4 bytes unless it is the last."""
    name = ea.name.encode("ascii")
    size = _ENTRY.size + len(name) + 1 + len(ea.value)
    padded = size if last else (size + 3) & ~3
    return (_ENTRY.pack(0 if last else padded, ea.flags, len(name), len(ea.value))
            + name + b"\x00" + ea.value + bytes(padded - size))


def encode_full_ea_list(eas: list[Ea], max_len: int) -> tuple[bytes, int]:
    """As many whole entries as fit in `max_len`: (bytes, entries encoded)."""
    count = 0
    total = 0
    for ea in eas:
        start = (total + 3) & ~3
        end = start + _ENTRY.size + len(ea.name) + 1 + len(ea.value)
        if end > max_len:
            break
        total = end
        count += 1
    last = count - 1
    return b"".join(encode_entry(ea, i == last) for i, ea in enumerate(eas[:count])), count


def ea_size(eas: list[Ea]) -> int:
    """FileEaInformation.EaSize: the bytes FILE_FULL_EA_INFORMATION needs for all the EAs
    (MS-FSCC 2.4.13); 0 without EAs."""
    total = 0
    for ea in eas:
        total = (total + 3) & ~3
        total += _ENTRY.size + len(ea.name) + 1 + len(ea.value)
    return total


# -- the xattrs -----------------------------------------------------------------------------------

def _ea_name(xname: str) -> str | None:
    if not xname.startswith(PREFIX):
        return None
    name = xname[len(PREFIX):]
    try:
        raw = name.encode("ascii")
    except UnicodeEncodeError:
        return None
    if not valid_name(raw) or is_reserved(name):
        return None
    return name


def list_eas(fd: int) -> list[Ea]:
    """Every EA of the file open as `fd` (none where the file system has no user xattrs)."""
    if not _HAVE_XATTR:
        return []
    try:
        xnames = os.listxattr(fd)
    except OSError as exc:
        if exc.errno in _UNSUPPORTED or exc.errno == errno.EBADF:
            return []
        raise SmbError(oserror_to_status(exc, "list EAs")) from None
    need = _need_ea_names(fd) if NEED_EA_XATTR in xnames else frozenset()
    out = []
    for xname in xnames:
        name = _ea_name(xname)
        if name is None:
            continue
        try:
            value = os.getxattr(fd, xname)
        except OSError:
            continue
        out.append(Ea(name, value, FILE_NEED_EA if name.upper() in need else 0))
    return out


def _need_ea_names(fd: int) -> frozenset[str]:
    try:
        raw = os.getxattr(fd, NEED_EA_XATTR)
    except OSError:
        return frozenset()
    return frozenset(n for n in raw.decode("ascii", "replace").split("\n") if n)


def has_need_ea(fd: int) -> bool:
    """Whether an EA of the file carries FILE_NEED_EA (CREATE with FILE_NO_EA_KNOWLEDGE)."""
    if not _HAVE_XATTR:
        return False
    existing = {ea.name.upper() for ea in list_eas(fd)}
    return bool(_need_ea_names(fd) & existing)


def total_size(fd: int) -> int:
    return ea_size(list_eas(fd))


def check_settable(eas: list[Ea]) -> None:
    """Refuse names of internal xattrs and oversized values before anything is written."""
    for ea in eas:
        if is_reserved(ea.name):
            raise SmbError(STATUS_ACCESS_DENIED)
        if len(ea.value) > MAX_VALUE:
            raise SmbError(STATUS_EA_TOO_LARGE)


def apply(fd: int, eas: list[Ea]) -> None:
    """MS-FSA 2.1.5.15.4: set each EA in order; an empty value deletes it (a missing one is
    not an error). Where the file system has no user xattrs: STATUS_EAS_NOT_SUPPORTED."""
    check_settable(eas)
    if not _HAVE_XATTR:
        raise SmbError(STATUS_EAS_NOT_SUPPORTED)
    try:
        existing = {n.upper(): n for n in (_ea_name(x) for x in os.listxattr(fd)) if n}
        need = set(_need_ea_names(fd))
        need_before = set(need)
        for ea in eas:
            old = existing.pop(ea.name.upper(), None)
            if old is not None and old != ea.name:
                os.removexattr(fd, PREFIX + old)  # another spelling of the same name
            if ea.value:
                os.setxattr(fd, PREFIX + ea.name, ea.value)
                existing[ea.name.upper()] = ea.name
            elif old is not None and old == ea.name:
                os.removexattr(fd, PREFIX + ea.name)
            if ea.value and ea.flags & FILE_NEED_EA:
                need.add(ea.name.upper())
            else:
                need.discard(ea.name.upper())
        if need != need_before:
            if need:
                os.setxattr(fd, NEED_EA_XATTR, "\n".join(sorted(need)).encode("ascii"))
            else:
                os.removexattr(fd, NEED_EA_XATTR)
    except OSError as exc:
        if exc.errno in _UNSUPPORTED:
            raise SmbError(STATUS_EAS_NOT_SUPPORTED) from None
        if exc.errno in (errno.ENOSPC, errno.E2BIG, errno.ERANGE):
            raise SmbError(STATUS_EA_TOO_LARGE) from None
        if exc.errno == errno.ENODATA:
            return
        raise SmbError(oserror_to_status(exc, "set EAs")) from None


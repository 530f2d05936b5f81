"""Security descriptors as data: parse, validate, pack, inherit, store (MS-DTYP 2.4.4-2.4.6,
2.5.3.4).

Wire and disk format are the same: a self-relative SECURITY_DESCRIPTOR (2.4.6). We pack the
parts in the order owner, group, SACL, DACL; clients locate them by offset.

Storage: one extended attribute per file, ``user.ksmbd.NTSD`` (``XATTR_NAME``), holding the
self-relative descriptor exactly as we pack it (its Revision byte, 1, doubles as the format
version). ``security.NTACL`` (Samba's) needs CAP_SYS_ADMIN, and ``user.NTACL`` may hold a Samba
NDR blob on a disk Samba served before, so the name is ours alone. A value that does not parse
is logged and treated as absent (the file falls back to the descriptor synthesized from its
mode, fs/security.py).

Inheritance (``inherit``) follows CreateSecurityDescriptor / ComputeACL (2.5.3.4.1-2.5.3.4.5):
an ACE of the parent with OBJECT_INHERIT reaches files, with CONTAINER_INHERIT directories;
NO_PROPAGATE_INHERIT stops it after one level; INHERIT_ONLY on the parent does not matter to
the child; CREATOR OWNER / CREATOR GROUP and generic rights become an effective ACE for the
new owner / group with mapped rights, plus an inherit-only copy where the ACE goes on being
inherited. Children get INHERITED_ACE and SE_DACL_AUTO_INHERITED only when the parent's DACL
is auto-inherited itself (as Windows does). With neither a DACL from the creator nor an
inheritable ACE, the DACL is the default one (owner and SYSTEM full control).
"""

from __future__ import annotations

import errno
import logging
import os
import struct
from dataclasses import dataclass, field, replace

from . import sid as sids
from . import xattr_cache
from .sid import SidError, read_sid, sid_length

log = logging.getLogger("ksmbd.acl")

# SECURITY_DESCRIPTOR Control (2.4.6)
SE_OWNER_DEFAULTED = 0x0001
SE_GROUP_DEFAULTED = 0x0002
SE_DACL_PRESENT = 0x0004
SE_DACL_DEFAULTED = 0x0008
SE_SACL_PRESENT = 0x0010
SE_SACL_DEFAULTED = 0x0020
SE_DACL_AUTO_INHERIT_REQ = 0x0100
SE_SACL_AUTO_INHERIT_REQ = 0x0200
SE_DACL_AUTO_INHERITED = 0x0400
SE_SACL_AUTO_INHERITED = 0x0800
SE_DACL_PROTECTED = 0x1000
SE_SACL_PROTECTED = 0x2000
SE_SELF_RELATIVE = 0x8000
DACL_CONTROL = (SE_DACL_PRESENT | SE_DACL_DEFAULTED | SE_DACL_AUTO_INHERIT_REQ
                | SE_DACL_AUTO_INHERITED | SE_DACL_PROTECTED)
SACL_CONTROL = (SE_SACL_PRESENT | SE_SACL_DEFAULTED | SE_SACL_AUTO_INHERIT_REQ
                | SE_SACL_AUTO_INHERITED | SE_SACL_PROTECTED)

# SECURITY_INFORMATION (2.4.7)
OWNER_SECURITY_INFORMATION = 0x00000001
GROUP_SECURITY_INFORMATION = 0x00000002
DACL_SECURITY_INFORMATION = 0x00000004
SACL_SECURITY_INFORMATION = 0x00000008
ALL_PARTS = (OWNER_SECURITY_INFORMATION | GROUP_SECURITY_INFORMATION
             | DACL_SECURITY_INFORMATION | SACL_SECURITY_INFORMATION)

# ACE types (2.4.4.1)
ACCESS_ALLOWED_ACE_TYPE = 0x00
ACCESS_DENIED_ACE_TYPE = 0x01
SYSTEM_AUDIT_ACE_TYPE = 0x02
_OBJECT_ACE_TYPES = frozenset((0x05, 0x06, 0x07, 0x08, 0x0B, 0x0C, 0x0F, 0x10))
_MAX_ACE_TYPE = 0x13
ACE_OBJECT_TYPE_PRESENT = 0x1
ACE_INHERITED_OBJECT_TYPE_PRESENT = 0x2

# ACE flags (2.4.4.1)
OBJECT_INHERIT_ACE = 0x01
CONTAINER_INHERIT_ACE = 0x02
NO_PROPAGATE_INHERIT_ACE = 0x04
INHERIT_ONLY_ACE = 0x08
INHERITED_ACE = 0x10
_INHERIT_FLAGS = OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE | NO_PROPAGATE_INHERIT_ACE \
    | INHERIT_ONLY_ACE

ACL_REVISION = 2
ACL_REVISION_DS = 4
SD_REVISION = 1

# Access masks (2.4.3) and the generic mapping of files and directories
FILE_ALL_ACCESS = 0x001F01FF
FILE_GENERIC_READ = 0x00120089
FILE_GENERIC_WRITE = 0x00120116
FILE_GENERIC_EXECUTE = 0x001200A0
GENERIC_ALL = 0x10000000
GENERIC_EXECUTE = 0x20000000
GENERIC_WRITE = 0x40000000
GENERIC_READ = 0x80000000
_GENERIC = GENERIC_ALL | GENERIC_EXECUTE | GENERIC_WRITE | GENERIC_READ

_SD_HEADER = struct.Struct("<BBHIIII")  # Revision, Sbz1, Control, Owner, Group, Sacl, Dacl
_ACL_HEADER = struct.Struct("<BBHHH")   # AclRevision, Sbz1, AclSize, AceCount, Sbz2
_ACE_HEADER = struct.Struct("<BBHI")    # AceType, AceFlags, AceSize, Mask
MAX_SD_SIZE = 65536  # an ACL's size is 16 bits; a descriptor holds two and two SIDs

XATTR_NAME = "user.ksmbd.NTSD"


class InvalidDescriptor(ValueError):
    """The bytes are not a valid self-relative security descriptor (or ACL, ACE, SID)."""


def map_generic(mask: int) -> int:
    """GENERIC_* replaced by the file rights they stand for (MS-DTYP 2.4.3; files and
    directories map alike)."""
    if mask & _GENERIC:
        if mask & GENERIC_ALL:
            mask |= FILE_ALL_ACCESS
        if mask & GENERIC_READ:
            mask |= FILE_GENERIC_READ
        if mask & GENERIC_WRITE:
            mask |= FILE_GENERIC_WRITE
        if mask & GENERIC_EXECUTE:
            mask |= FILE_GENERIC_EXECUTE
        mask &= ~_GENERIC
    return mask


@dataclass
class Ace:
    type: int
    flags: int
    mask: int
    sid: bytes
    obj: bytes = b""   # object ACEs: Flags and the GUIDs between Mask and Sid
    tail: bytes = b""  # application data after the Sid (callback, resource attribute ACEs)

    def pack(self) -> bytes:
        body = self.obj + self.sid + self.tail
        size = _ACE_HEADER.size + len(body)
        pad = -size % 4
        return _ACE_HEADER.pack(self.type, self.flags, size + pad, self.mask) + body \
            + bytes(pad)


@dataclass
class Acl:
    aces: list[Ace] = field(default_factory=list)
    revision: int = ACL_REVISION

    def pack(self) -> bytes:
        body = b"".join(a.pack() for a in self.aces)
        size = _ACL_HEADER.size + len(body)
        if size > 0xFFFF:
            raise InvalidDescriptor("ACL larger than 64 KiB")
        return _ACL_HEADER.pack(self.revision, 0, size, len(self.aces), 0) + body


@dataclass
class SecurityDescriptor:
    """Parts are None when absent; with SE_DACL_PRESENT in control, dacl None is a NULL DACL
    (everyone gets everything) and an Acl with no ACEs grants nothing."""

    control: int = SE_SELF_RELATIVE
    owner: bytes | None = None
    group: bytes | None = None
    sacl: Acl | None = None
    dacl: Acl | None = None

    @property
    def dacl_present(self) -> bool:
        return bool(self.control & SE_DACL_PRESENT)

    def pack(self, parts: int = ALL_PARTS) -> bytes:
        """Self-relative bytes with only the parts in `parts` (SECURITY_INFORMATION bits)."""
        control = self.control | SE_SELF_RELATIVE
        if not parts & DACL_SECURITY_INFORMATION:
            control &= ~DACL_CONTROL
        if not parts & SACL_SECURITY_INFORMATION:
            control &= ~SACL_CONTROL
        if not parts & OWNER_SECURITY_INFORMATION:
            control &= ~SE_OWNER_DEFAULTED
        if not parts & GROUP_SECURITY_INFORMATION:
            control &= ~SE_GROUP_DEFAULTED
        out = bytearray(_SD_HEADER.size)
        offsets = [0, 0, 0, 0]
        items = (
            (OWNER_SECURITY_INFORMATION, self.owner),
            (GROUP_SECURITY_INFORMATION, self.group),
            (SACL_SECURITY_INFORMATION, self.sacl if control & SE_SACL_PRESENT else None),
            (DACL_SECURITY_INFORMATION, self.dacl if control & SE_DACL_PRESENT else None),
        )
        for i, (bit, part) in enumerate(items):
            if parts & bit and part is not None:
                offsets[i] = len(out)
                out += part if isinstance(part, bytes) else part.pack()
        _SD_HEADER.pack_into(out, 0, SD_REVISION, 0, control, *offsets)
        return bytes(out)


# -- parsing ----------------------------------------------------------------------------------

def parse_acl(buf, offset: int) -> Acl:
    if len(buf) - offset < _ACL_HEADER.size:
        raise InvalidDescriptor("ACL truncated")
    revision, _, size, count, _ = _ACL_HEADER.unpack_from(buf, offset)
    if revision not in (ACL_REVISION, ACL_REVISION_DS):
        raise InvalidDescriptor("bad ACL revision")
    if size < _ACL_HEADER.size or offset + size > len(buf):
        raise InvalidDescriptor("bad ACL size")
    end = offset + size
    pos = offset + _ACL_HEADER.size
    aces = []
    for _ in range(count):
        if end - pos < _ACE_HEADER.size:
            raise InvalidDescriptor("ACE truncated")
        ace_type, flags, ace_size, mask = _ACE_HEADER.unpack_from(buf, pos)
        if ace_type > _MAX_ACE_TYPE or ace_size < _ACE_HEADER.size + 8 or ace_size % 4 \
                or pos + ace_size > end:
            raise InvalidDescriptor("bad ACE")
        ace_end = pos + ace_size
        body = bytes(buf[pos + _ACE_HEADER.size:ace_end])
        obj = b""
        if ace_type in _OBJECT_ACE_TYPES:
            if len(body) < 4:
                raise InvalidDescriptor("object ACE truncated")
            oflags = struct.unpack_from("<I", body)[0]
            olen = 4 + 16 * bool(oflags & ACE_OBJECT_TYPE_PRESENT) \
                + 16 * bool(oflags & ACE_INHERITED_OBJECT_TYPE_PRESENT)
            obj, body = body[:olen], body[olen:]
        try:
            sid = read_sid(body)
        except SidError as exc:
            raise InvalidDescriptor(str(exc)) from None
        tail = body[len(sid):]
        if not tail.strip(b"\0"):
            tail = b""  # padding only
        aces.append(Ace(ace_type, flags, mask, sid, obj, tail))
        pos = ace_end
    return Acl(aces, revision)


def parse_sd(buf) -> SecurityDescriptor:
    """A self-relative SECURITY_DESCRIPTOR, every offset and length checked."""
    if len(buf) < _SD_HEADER.size or len(buf) > MAX_SD_SIZE:
        raise InvalidDescriptor("descriptor size")
    revision, _, control, off_owner, off_group, off_sacl, off_dacl = \
        _SD_HEADER.unpack_from(buf, 0)
    if revision != SD_REVISION:
        raise InvalidDescriptor("bad descriptor revision")
    for off in (off_owner, off_group, off_sacl, off_dacl):
        if off and (off < _SD_HEADER.size or off >= len(buf)):
            raise InvalidDescriptor("offset outside the descriptor")
    try:
        owner = read_sid(buf, off_owner) if off_owner else None
        group = read_sid(buf, off_group) if off_group else None
    except SidError as exc:
        raise InvalidDescriptor(str(exc)) from None
    sacl = parse_acl(buf, off_sacl) if control & SE_SACL_PRESENT and off_sacl else None
    dacl = parse_acl(buf, off_dacl) if control & SE_DACL_PRESENT and off_dacl else None
    return SecurityDescriptor(control | SE_SELF_RELATIVE, owner, group, sacl, dacl)


def map_acl_generic(acl: Acl | None) -> Acl | None:
    """Generic rights of the ACEs that apply to the object mapped (inherit-only ACEs keep
    theirs: they are mapped when inherited)."""
    if acl is None:
        return None
    return Acl([a if a.flags & INHERIT_ONLY_ACE else replace(a, mask=map_generic(a.mask))
                for a in acl.aces], acl.revision)


# -- inheritance (2.5.3.4) --------------------------------------------------------------------

def default_dacl(owner: bytes) -> Acl:
    """The DACL of a new object that inherits none and was given none: full control for the
    owner and SYSTEM (Windows' default token DACL)."""
    return Acl([Ace(ACCESS_ALLOWED_ACE_TYPE, 0, FILE_ALL_ACCESS, owner),
                Ace(ACCESS_ALLOWED_ACE_TYPE, 0, FILE_ALL_ACCESS, sids.LOCAL_SYSTEM)])


def inherited_aces(parent: Acl, is_dir: bool, owner: bytes, group: bytes,
                   auto: bool) -> list[Ace]:
    """The ACEs a new file or directory receives from its parent's ACL."""
    mark = INHERITED_ACE if auto else 0
    out: list[Ace] = []
    for ace in parent.aces:
        f = ace.flags
        if is_dir:
            if not f & CONTAINER_INHERIT_ACE:
                if f & OBJECT_INHERIT_ACE and not f & NO_PROPAGATE_INHERIT_ACE:
                    # not for this directory, only carried on to the files below it
                    out.append(replace(ace, flags=OBJECT_INHERIT_ACE | INHERIT_ONLY_ACE | mark))
                continue
            propagate = not f & NO_PROPAGATE_INHERIT_ACE
        else:
            if not f & OBJECT_INHERIT_ACE:
                continue
            propagate = False
        creator = ace.sid in (sids.CREATOR_OWNER, sids.CREATOR_GROUP)
        effective = replace(ace, flags=mark, mask=map_generic(ace.mask),
                            sid=owner if ace.sid == sids.CREATOR_OWNER else
                            group if ace.sid == sids.CREATOR_GROUP else ace.sid)
        if not propagate:
            out.append(effective)
        elif creator or ace.mask & _GENERIC:
            out.append(effective)
            out.append(replace(ace, flags=(f & (OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE))
                               | INHERIT_ONLY_ACE | mark))
        else:
            out.append(replace(effective,
                               flags=(f & (OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE)) | mark))
    return out


def inherit(parent: SecurityDescriptor | None, creator: SecurityDescriptor | None,
            is_dir: bool, owner: bytes, group: bytes) -> SecurityDescriptor | None:
    """The descriptor of a new object (CreateSecurityDescriptor, 2.5.3.4.1), or None when
    there is nothing to store (no descriptor from the creator, nothing inherited).

    `owner`/`group` are the creator's token user and primary group, used where `creator`
    names none. SACLs are not inherited (none can be set: no token holds
    SeSecurityPrivilege)."""
    inherited: list[Ace] = []
    auto = False
    if parent is not None and parent.dacl is not None:
        auto = bool(parent.control & SE_DACL_AUTO_INHERITED)
    new_owner = creator.owner if creator is not None and creator.owner else owner
    new_group = creator.group if creator is not None and creator.group else group
    if parent is not None and parent.dacl is not None:
        inherited = inherited_aces(parent.dacl, is_dir, new_owner, new_group, auto)
    if creator is None and not inherited:
        return None
    control = SE_SELF_RELATIVE | SE_DACL_PRESENT
    if creator is not None and creator.dacl_present and not (
            creator.control & SE_DACL_DEFAULTED and inherited):
        dacl = map_acl_generic(creator.dacl)
        control |= creator.control & SE_DACL_PROTECTED
    elif inherited:
        dacl = Acl(inherited)
        if auto:
            control |= SE_DACL_AUTO_INHERITED
    else:
        dacl = default_dacl(new_owner)
    return SecurityDescriptor(control, new_owner, new_group, None, dacl)


def merge(base: SecurityDescriptor, new: SecurityDescriptor, parts: int) -> SecurityDescriptor:
    """`base` with the parts named in `parts` taken from `new` (SET_INFO, MS-FSA 2.1.5.16).
    A DACL set without SE_DACL_PRESENT is a NULL DACL, as on Windows."""
    out = replace(base)
    if parts & OWNER_SECURITY_INFORMATION:
        out.owner = new.owner
        out.control = (out.control & ~SE_OWNER_DEFAULTED) | (new.control & SE_OWNER_DEFAULTED)
    if parts & GROUP_SECURITY_INFORMATION:
        out.group = new.group
        out.control = (out.control & ~SE_GROUP_DEFAULTED) | (new.control & SE_GROUP_DEFAULTED)
    if parts & DACL_SECURITY_INFORMATION:
        out.dacl = map_acl_generic(new.dacl) if new.dacl_present else None
        # SE_DACL_AUTO_INHERITED is kept only when asked for with SE_DACL_AUTO_INHERIT_REQ
        # (2.4.6); the request bit itself is never stored.
        keep = new.control & (SE_DACL_DEFAULTED | SE_DACL_PROTECTED)
        if new.control & SE_DACL_AUTO_INHERIT_REQ:
            keep |= new.control & SE_DACL_AUTO_INHERITED
        out.control = (out.control & ~DACL_CONTROL) | keep | SE_DACL_PRESENT
    if parts & SACL_SECURITY_INFORMATION:
        out.sacl = new.sacl if new.control & SE_SACL_PRESENT else None
        out.control = (out.control & ~SACL_CONTROL) | (new.control & SACL_CONTROL)
    out.control |= SE_SELF_RELATIVE
    return out


# -- storage ----------------------------------------------------------------------------------

_ABSENT_ERRNOS = frozenset(e for e in (
    errno.ENODATA, getattr(errno, "ENOATTR", errno.ENODATA), getattr(errno, "ENOTSUP", None),
    getattr(errno, "EOPNOTSUPP", None), errno.EPERM, errno.ENOSYS, errno.E2BIG,
) if e is not None)
_HAVE_XATTR = hasattr(os, "getxattr")


def read_stored(target, path: str | None = None,
                st: os.stat_result | None = None) -> SecurityDescriptor | None:
    """The descriptor stored on a file (fd or path), or None (none stored, no xattrs here,
    or a value that does not parse; the last is logged). `path` is tried when the fd takes
    no xattr calls (an O_PATH descriptor: EBADF). `st`: the caller's fresh stat of the
    same object, which lets an unchanged file skip the read (fs/xattr_cache.py)."""
    if not _HAVE_XATTR:
        return None
    try:
        blob = xattr_cache.getxattr(target, st, XATTR_NAME)
    except OSError as exc:
        if exc.errno == errno.EBADF and path:
            return read_stored(path, st=st)
        if exc.errno not in _ABSENT_ERRNOS and exc.errno not in (errno.ENOENT, errno.ENOTDIR):
            log.warning("reading %s: %s", XATTR_NAME, exc)
        return None
    if blob is None:
        return None
    try:
        return parse_sd(blob)
    except InvalidDescriptor as exc:
        log.warning("ignoring a malformed %s (%s)", XATTR_NAME, exc)
        return None


def store(target, sd: SecurityDescriptor, path: str | None = None) -> None:
    """Write the descriptor (all parts). Raises OSError (ENOTSUP where no user xattrs);
    `path` as in `read_stored`."""
    xattr_cache.written()
    try:
        os.setxattr(target, XATTR_NAME, sd.pack())
    except OSError as exc:
        if exc.errno != errno.EBADF or not path:
            raise
        os.setxattr(path, XATTR_NAME, sd.pack())


def xattrs_unsupported(exc: OSError) -> bool:
    return exc.errno in (getattr(errno, "ENOTSUP", -1), getattr(errno, "EOPNOTSUPP", -1),
                         errno.EPERM, errno.ENOSYS)


__all__ = ["Ace", "Acl", "SecurityDescriptor", "InvalidDescriptor", "parse_sd", "inherit",
           "merge", "read_stored", "store", "map_generic", "sid_length", "XATTR_NAME"]

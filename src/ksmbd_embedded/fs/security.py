"""Security descriptors synthesized from POSIX owner, group and mode (MS-DTYP 2.4.2, 2.4.4-2.4.6).

There are no stored ACLs yet, so QUERY_INFO SMB2_0_INFO_SECURITY answers with a descriptor that
says what the mode bits say:

- Owner ``S-1-22-1-<uid>`` and group ``S-1-22-2-<gid>``: the "Unix User" and "Unix Group"
  SIDs Samba hands out for unmapped POSIX ids, so clients that already talk to Samba show them
  the same way.
- A DACL of up to three ACCESS_ALLOWED ACEs: owner (the ``rwx`` bits of ``S_IRWXU``), group
  (``S_IRWXG``) and Everyone ``S-1-1-0`` (``S_IRWXO``); a class with no bits gets no ACE.
  ``r`` grants FILE_GENERIC_READ, ``w`` FILE_GENERIC_WRITE plus DELETE (plus
  FILE_DELETE_CHILD on a directory), ``x`` FILE_GENERIC_EXECUTE. The owner always gets
  READ_CONTROL, WRITE_DAC, WRITE_OWNER and FILE_WRITE_ATTRIBUTES (chmod, chown and utime are
  the owner's on POSIX), so ``rwx`` for the owner is FILE_ALL_ACCESS.
- No SACL (nothing is audited); no deny ACEs; no inheritance flags.

The result is self-relative (``SE_SELF_RELATIVE``): header, owner SID, group SID, DACL, in that
order, each only when ``AdditionalInformation`` asks for it.
"""

from __future__ import annotations

import stat as _stat
import struct

# SECURITY_INFORMATION (MS-DTYP 2.4.7), the AdditionalInformation of QUERY_INFO / SET_INFO
OWNER_SECURITY_INFORMATION = 0x00000001
GROUP_SECURITY_INFORMATION = 0x00000002
DACL_SECURITY_INFORMATION = 0x00000004
SACL_SECURITY_INFORMATION = 0x00000008
LABEL_SECURITY_INFORMATION = 0x00000010
ATTRIBUTE_SECURITY_INFORMATION = 0x00000020
SCOPE_SECURITY_INFORMATION = 0x00000040
BACKUP_SECURITY_INFORMATION = 0x00010000

# SECURITY_DESCRIPTOR Control (MS-DTYP 2.4.6)
SE_OWNER_DEFAULTED = 0x0001
SE_GROUP_DEFAULTED = 0x0002
SE_DACL_PRESENT = 0x0004
SE_DACL_DEFAULTED = 0x0008
SE_SACL_PRESENT = 0x0010
SE_SACL_DEFAULTED = 0x0020
SE_DACL_AUTO_INHERITED = 0x0400
SE_SACL_AUTO_INHERITED = 0x0800
SE_DACL_PROTECTED = 0x1000
SE_SACL_PROTECTED = 0x2000
SE_SELF_RELATIVE = 0x8000

# ACE types and flags (MS-DTYP 2.4.4.1)
ACCESS_ALLOWED_ACE_TYPE = 0x00
ACCESS_DENIED_ACE_TYPE = 0x01
OBJECT_INHERIT_ACE = 0x01
CONTAINER_INHERIT_ACE = 0x02

ACL_REVISION = 2
SD_REVISION = 1

from ..tree import (  # noqa: E402  access masks (MS-DTYP 2.4.3, MS-SMB2 2.2.13.1.1)
    DELETE, FILE_ALL_ACCESS, FILE_APPEND_DATA, FILE_DELETE_CHILD, FILE_EXECUTE,
    FILE_READ_ATTRIBUTES, FILE_READ_DATA, FILE_READ_EA, FILE_WRITE_ATTRIBUTES, FILE_WRITE_DATA,
    FILE_WRITE_EA, READ_CONTROL, SYNCHRONIZE, WRITE_DAC, WRITE_OWNER,
)

FILE_GENERIC_READ = (READ_CONTROL | FILE_READ_DATA | FILE_READ_ATTRIBUTES | FILE_READ_EA
                     | SYNCHRONIZE)  # 0x00120089
FILE_GENERIC_WRITE = (READ_CONTROL | FILE_WRITE_DATA | FILE_WRITE_ATTRIBUTES | FILE_WRITE_EA
                      | FILE_APPEND_DATA | SYNCHRONIZE)  # 0x00120116
FILE_GENERIC_EXECUTE = (READ_CONTROL | FILE_READ_ATTRIBUTES | FILE_EXECUTE
                        | SYNCHRONIZE)  # 0x001200A0
_OWNER_ALWAYS = READ_CONTROL | WRITE_DAC | WRITE_OWNER | FILE_WRITE_ATTRIBUTES | SYNCHRONIZE

# Revision, Sbz1, Control, OffsetOwner, OffsetGroup, OffsetSacl, OffsetDacl
_SD_HEADER = struct.Struct("<BBHIIII")  # 20
# AclRevision, Sbz1, AclSize, AceCount, Sbz2
_ACL_HEADER = struct.Struct("<BBHHH")  # 8
# AceType, AceFlags, AceSize, Mask
_ACE_HEADER = struct.Struct("<BBHI")  # 8

# Identifier authorities (MS-DTYP 2.4.1.1)
WORLD_SID_AUTHORITY = 1
NT_AUTHORITY = 5
UNIX_SID_AUTHORITY = 22  # Samba's S-1-22-1 (users) and S-1-22-2 (groups)


def sid_bytes(authority: int, *sub_authorities: int) -> bytes:
    """A binary SID (MS-DTYP 2.4.2.2): Revision 1, count, 48-bit big-endian authority, RIDs."""
    if len(sub_authorities) > 15:
        raise ValueError("a SID has at most 15 sub-authorities")
    return (bytes((1, len(sub_authorities))) + authority.to_bytes(6, "big")
            + b"".join(struct.pack("<I", s & 0xFFFFFFFF) for s in sub_authorities))


def sid_to_str(sid: bytes) -> str:
    """The S-1-... form of a binary SID (for logs and tests)."""
    count = sid[1]
    authority = int.from_bytes(sid[2:8], "big")
    subs = struct.unpack_from(f"<{count}I", sid, 8)
    return "S-%d-%d%s" % (sid[0], authority, "".join(f"-{s}" for s in subs))


EVERYONE_SID = sid_bytes(WORLD_SID_AUTHORITY, 0)  # S-1-1-0


def unix_user_sid(uid: int) -> bytes:
    """S-1-22-1-<uid>."""
    return sid_bytes(UNIX_SID_AUTHORITY, 1, uid)


def unix_group_sid(gid: int) -> bytes:
    """S-1-22-2-<gid>."""
    return sid_bytes(UNIX_SID_AUTHORITY, 2, gid)


def rwx_to_mask(bits: int, is_dir: bool) -> int:
    """Access mask for three POSIX permission bits (4 = r, 2 = w, 1 = x)."""
    mask = 0
    if bits & 4:
        mask |= FILE_GENERIC_READ
    if bits & 2:
        mask |= FILE_GENERIC_WRITE | DELETE
        if is_dir:
            mask |= FILE_DELETE_CHILD
    if bits & 1:
        mask |= FILE_GENERIC_EXECUTE
    return mask


def _ace(mask: int, sid: bytes, flags: int = 0, ace_type: int = ACCESS_ALLOWED_ACE_TYPE) -> bytes:
    return _ACE_HEADER.pack(ace_type, flags, _ACE_HEADER.size + len(sid), mask) + sid


def _acl(aces: list[bytes]) -> bytes:
    body = b"".join(aces)
    return _ACL_HEADER.pack(ACL_REVISION, 0, _ACL_HEADER.size + len(body), len(aces), 0) + body


def dacl_from_mode(mode: int, uid: int, gid: int) -> bytes:
    """The DACL that states what `mode` grants to the owner, the group and everyone else."""
    is_dir = _stat.S_ISDIR(mode)
    owner_bits = (mode >> 6) & 7
    # rwx is full control, as Windows shows it (FILE_DELETE_CHILD included for files too)
    owner = FILE_ALL_ACCESS if owner_bits == 7 else rwx_to_mask(owner_bits, is_dir) | _OWNER_ALWAYS
    group = rwx_to_mask((mode >> 3) & 7, is_dir)
    other = rwx_to_mask(mode & 7, is_dir)
    aces = [_ace(owner, unix_user_sid(uid))]
    if group:
        aces.append(_ace(group, unix_group_sid(gid)))
    if other:
        aces.append(_ace(other, EVERYONE_SID))
    return _acl(aces)


def build_security_descriptor(mode: int, uid: int, gid: int, additional_information: int) -> bytes:
    """A self-relative SECURITY_DESCRIPTOR for a file with this owner, group and mode.

    Only the parts named in `additional_information` are included (owner, group, DACL; the
    SACL bit yields no SACL, there is none). The caller checks the access the parts need.
    """
    control = SE_SELF_RELATIVE
    parts: list[bytes] = []
    offset = _SD_HEADER.size
    off_owner = off_group = off_dacl = 0
    if additional_information & OWNER_SECURITY_INFORMATION:
        sid = unix_user_sid(uid)
        off_owner = offset
        parts.append(sid)
        offset += len(sid)
    if additional_information & GROUP_SECURITY_INFORMATION:
        sid = unix_group_sid(gid)
        off_group = offset
        parts.append(sid)
        offset += len(sid)
    if additional_information & DACL_SECURITY_INFORMATION:
        acl = dacl_from_mode(mode, uid, gid)
        control |= SE_DACL_PRESENT
        off_dacl = offset
        parts.append(acl)
        offset += len(acl)
    header = _SD_HEADER.pack(SD_REVISION, 0, control, off_owner, off_group, 0, off_dacl)
    return header + b"".join(parts)


def security_descriptor_from_stat(st, additional_information: int) -> bytes:
    """`build_security_descriptor` for an ``os.stat_result``."""
    return build_security_descriptor(st.st_mode, st.st_uid, st.st_gid, additional_information)

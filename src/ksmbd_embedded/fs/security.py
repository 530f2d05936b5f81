"""Security descriptors of files: the stored one (fs/acl.py) or one synthesized from POSIX owner,
group and mode (MS-DTYP 2.4.2, 2.4.4-2.4.6).

A file with no stored descriptor answers QUERY_INFO SMB2_0_INFO_SECURITY with a descriptor that
says what the mode bits say:

- Owner: a file owned by the server's own uid (every SMB user acts on disk as that uid, so
  each of them is the POSIX owner) shows the *asking* user's SID (fs/sid.py) as its owner;
  any other uid is ``S-1-22-1-<uid>``. Group ``S-1-22-2-<gid>`` -- the "Unix User" and "Unix
  Group" SIDs Samba hands out for unmapped POSIX ids. A DACL a user then sets on such a file
  is stored with that user as owner: the first user to set one owns it.
- A DACL of up to three ACCESS_ALLOWED ACEs: owner (the ``rwx`` bits of ``S_IRWXU``), group
  (``S_IRWXG``) and Everyone ``S-1-1-0`` (``S_IRWXO``); a class with no bits gets no ACE.
  ``r`` grants FILE_GENERIC_READ, ``w`` FILE_GENERIC_WRITE plus DELETE (plus
  FILE_DELETE_CHILD on a directory), ``x`` FILE_GENERIC_EXECUTE. The owner always gets
  READ_CONTROL, WRITE_DAC, WRITE_OWNER and FILE_WRITE_ATTRIBUTES (chmod, chown and utime are
  the owner's on POSIX), so ``rwx`` for the owner is FILE_ALL_ACCESS.
- No SACL (nothing is audited); no deny ACEs; no inheritance flags.

Opens of such files keep the POSIX checks (the mode as the server's uid); the synthesized
descriptor is what clients see, and the base a SET_INFO changes.
The result is self-relative (``SE_SELF_RELATIVE``): header, owner SID, group SID, DACL, in that
order, each only when ``AdditionalInformation`` asks for it.
"""

from __future__ import annotations

import os as _os
import stat as _stat

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

from .sid import (  # noqa: E402  (re-exported: callers and tests import them from here)
    EVERYONE as EVERYONE_SID, NT_AUTHORITY, UNIX_SID_AUTHORITY, WORLD_SID_AUTHORITY, Token,
    sid_bytes, sid_to_str, unix_group_sid, unix_user_sid,
)
from . import acl as _acl_mod  # noqa: E402
from .acl import Ace, Acl, SecurityDescriptor  # noqa: E402


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


def mode_acl(mode: int, owner: bytes, gid: int) -> Acl:
    """The DACL that states what `mode` grants to the owner, the group and everyone else."""
    is_dir = _stat.S_ISDIR(mode)
    owner_bits = (mode >> 6) & 7
    # rwx is full control, as Windows shows it (FILE_DELETE_CHILD included for files too)
    owner_mask = FILE_ALL_ACCESS if owner_bits == 7 \
        else rwx_to_mask(owner_bits, is_dir) | _OWNER_ALWAYS
    group = rwx_to_mask((mode >> 3) & 7, is_dir)
    other = rwx_to_mask(mode & 7, is_dir)
    aces = [Ace(ACCESS_ALLOWED_ACE_TYPE, 0, owner_mask, owner)]
    if group:
        aces.append(Ace(ACCESS_ALLOWED_ACE_TYPE, 0, group, unix_group_sid(gid)))
    if other:
        aces.append(Ace(ACCESS_ALLOWED_ACE_TYPE, 0, other, EVERYONE_SID))
    return Acl(aces)


def dacl_from_mode(mode: int, uid: int, gid: int) -> bytes:
    """`mode_acl` packed, owner ``S-1-22-1-<uid>``."""
    return mode_acl(mode, unix_user_sid(uid), gid).pack()


def synthesized(mode: int, uid: int, gid: int, owner_sid: bytes | None = None
                ) -> SecurityDescriptor:
    """The descriptor a file without a stored one shows (owner `owner_sid`, default
    ``S-1-22-1-<uid>``)."""
    owner = owner_sid if owner_sid is not None else unix_user_sid(uid)
    return SecurityDescriptor(SE_SELF_RELATIVE | SE_DACL_PRESENT, owner, unix_group_sid(gid),
                              None, mode_acl(mode, owner, gid))


def build_security_descriptor(mode: int, uid: int, gid: int, additional_information: int,
                              owner_sid: bytes | None = None) -> bytes:
    """A self-relative SECURITY_DESCRIPTOR for a file with this owner, group and mode.

    Only the parts named in `additional_information` are included (owner, group, DACL; the
    SACL bit yields no SACL, there is none). The caller checks the access the parts need.
    """
    return synthesized(mode, uid, gid, owner_sid).pack(additional_information)


def security_descriptor_from_stat(st, additional_information: int) -> bytes:
    """`build_security_descriptor` for an ``os.stat_result``."""
    return build_security_descriptor(st.st_mode, st.st_uid, st.st_gid, additional_information)


def owner_for(st, token: Token) -> bytes:
    """The owner SID a file without a stored descriptor shows to `token`."""
    if st.st_uid == _os.geteuid():
        return token.user
    return unix_user_sid(st.st_uid)


def descriptor_of(target, st, token: Token, path: str | None = None
                  ) -> tuple[SecurityDescriptor, bool]:
    """(the file's descriptor, True when it is stored) for fd or path `target` (`path`: see
    acl.read_stored)."""
    sd = _acl_mod.read_stored(target, path)
    if sd is not None:
        return sd, True
    return synthesized(st.st_mode, st.st_uid, st.st_gid, owner_for(st, token)), False

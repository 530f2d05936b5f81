"""The access check of a token against a security descriptor (MS-DTYP 2.5.3.2) and the file
rules around it (MS-FSA 2.1.5.1.1, 2.1.5.1.2.1).

``maximal_access`` computes the whole granted set at once (the MAXIMUM_ALLOWED form of the
algorithm); a request for specific rights is granted when they are a subset of it. The two
forms agree: a right is granted exactly when the first ACE that matches the token and names
it is an ACCESS_ALLOWED ACE.

- No DACL, or a NULL DACL: everything (FILE_ALL_ACCESS).
- The owner (a token holding the descriptor's owner SID) gets READ_CONTROL | WRITE_DAC before
  the ACEs are walked, unless the DACL has an ACE for OWNER RIGHTS (S-1-3-4), which then
  says what the owner gets.
- INHERIT_ONLY ACEs are skipped; ACCESS_ALLOWED grants what is not denied yet, ACCESS_DENIED
  denies what is not granted yet. Object, callback and audit ACEs are not access ACEs for a
  file system and are skipped. Generic rights in an ACE are mapped first.
"""

from __future__ import annotations

import os

from ..status import STATUS_ACCESS_DENIED, SmbError
from .acl import (
    ACCESS_ALLOWED_ACE_TYPE, ACCESS_DENIED_ACE_TYPE, FILE_ALL_ACCESS, INHERIT_ONLY_ACE,
    SecurityDescriptor, map_generic, read_stored,
)
from .sid import OWNER_RIGHTS, Token

READ_CONTROL = 0x00020000
WRITE_DAC = 0x00040000
DELETE = 0x00010000
FILE_READ_ATTRIBUTES = 0x00000080
FILE_LIST_DIRECTORY = 0x00000001
FILE_ADD_FILE = 0x00000002
FILE_ADD_SUBDIRECTORY = 0x00000004
FILE_DELETE_CHILD = 0x00000040
_OWNER_IMPLICIT = READ_CONTROL | WRITE_DAC


def maximal_access(sd: SecurityDescriptor, token: Token) -> int:
    """Every right in FILE_ALL_ACCESS that `token` is granted by `sd`."""
    if not sd.dacl_present or sd.dacl is None:
        return FILE_ALL_ACCESS
    is_owner = sd.owner is not None and token.has(sd.owner)
    aces = [a for a in sd.dacl.aces if not a.flags & INHERIT_ONLY_ACE
            and a.type in (ACCESS_ALLOWED_ACE_TYPE, ACCESS_DENIED_ACE_TYPE)]
    allowed = denied = 0
    if is_owner and not any(a.sid == OWNER_RIGHTS for a in aces):
        allowed = _OWNER_IMPLICIT
    for ace in aces:
        if ace.sid == OWNER_RIGHTS:
            if not is_owner:
                continue
        elif not token.has(ace.sid):
            continue
        mask = map_generic(ace.mask) & FILE_ALL_ACCESS
        if ace.type == ACCESS_ALLOWED_ACE_TYPE:
            allowed |= mask & ~denied
        else:
            denied |= mask & ~allowed
    return allowed


def check(sd: SecurityDescriptor, token: Token, desired: int) -> bool:
    """True when every right in `desired` (generic rights mapped already) is granted."""
    return not desired & ~maximal_access(sd, token)


def existing_file_access(sd: SecurityDescriptor, token: Token, parent_granted: int) -> int:
    """MS-FSA 2.1.5.1.2.1: what an open of an existing file can be granted, given what the
    parent directory grants the same token: DELETE also through the parent's
    FILE_DELETE_CHILD, FILE_READ_ATTRIBUTES also through its FILE_LIST_DIRECTORY."""
    granted = maximal_access(sd, token)
    if parent_granted & FILE_DELETE_CHILD:
        granted |= DELETE
    if parent_granted & FILE_LIST_DIRECTORY:
        granted |= FILE_READ_ATTRIBUTES
    return granted


def create_right(is_dir: bool) -> int:
    """The right on the parent that creating a file / directory needs (MS-FSA 2.1.5.1.1)."""
    return FILE_ADD_SUBDIRECTORY if is_dir else FILE_ADD_FILE


# -- CREATE (MS-FSA 2.1.5.1) ------------------------------------------------------------------
# Files with no stored descriptor keep the POSIX checks; these apply where one is stored.

def parent_of(path: str, root: str) -> str | None:
    """The parent directory of `path` inside the share, None for the share root."""
    if os.path.normpath(path) == os.path.normpath(root):
        return None
    return os.path.dirname(path)


def parent_rights(path: str, root: str, token: Token) -> int:
    """What the parent of `path` grants `token`: its stored descriptor, else the one
    synthesized from its mode (fs/security.py); 0 for the share root."""
    from .security import descriptor_of
    parent = parent_of(path, root)
    if parent is None:
        return 0
    try:
        st = os.stat(parent)
    except OSError:
        return 0
    return maximal_access(descriptor_of(parent, st, token)[0], token)


def check_existing(fd: int, path: str, root: str, token: Token, access: int, requested: int,
                   max_allowed: bool, cap: int, st: os.stat_result | None = None) -> int:
    """MS-FSA 2.1.5.1.2.1 for a file with a stored descriptor: the access to grant (all of
    `requested`, plus with MAXIMUM_ALLOWED everything granted within `cap`), or
    STATUS_ACCESS_DENIED. Without a stored descriptor `access` comes back unchanged.
    `st`: a fresh fstat of `fd` (see read_stored)."""
    sd = read_stored(fd, path, st)
    if sd is None:
        return access
    granted = existing_file_access(sd, token, parent_rights(path, root, token)) & cap
    if requested & ~granted:
        raise SmbError(STATUS_ACCESS_DENIED)
    return (granted & access) if max_allowed else requested


def check_create(path: str, root: str, token: Token, is_dir: bool) -> SecurityDescriptor | None:
    """MS-FSA 2.1.5.1.1: creating `path` needs FILE_ADD_FILE / FILE_ADD_SUBDIRECTORY on a
    parent with a stored descriptor (STATUS_ACCESS_DENIED). Returns that descriptor (what
    the new object inherits from), or None."""
    parent = parent_of(path, root)
    if parent is None:
        return None
    sd = read_stored(parent)
    if sd is not None and not check(sd, token, create_right(is_dir)):
        raise SmbError(STATUS_ACCESS_DENIED)
    return sd


def maximal_for_open(fd: int, path: str, root: str, token: Token, cap: int) -> int | None:
    """MxAc for a file with a stored descriptor (None: no descriptor stored)."""
    sd = read_stored(fd, path)
    if sd is None:
        return None
    return existing_file_access(sd, token, parent_rights(path, root, token)) & cap

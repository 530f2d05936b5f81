"""The access check (fs/access_check.py, MS-DTYP 2.5.3.2; MS-FSA 2.1.5.1.2.1)."""

import pytest

from ksmbd_embedded.fs import access_check as ac
from ksmbd_embedded.fs import sid
from ksmbd_embedded.fs.acl import (
    ACCESS_ALLOWED_ACE_TYPE as ALLOW, ACCESS_DENIED_ACE_TYPE as DENY, FILE_ALL_ACCESS,
    GENERIC_READ, INHERIT_ONLY_ACE, Ace, Acl, SecurityDescriptor,
)

ALICE = sid.user_sid("alice")
BOB = sid.user_sid("bob")
alice = sid.make_token(ALICE, sid.DOMAIN_USERS, sid.EVERYONE, sid.AUTHENTICATED_USERS)
bob = sid.make_token(BOB, sid.DOMAIN_USERS, sid.EVERYONE, sid.AUTHENTICATED_USERS)
READ_DATA, WRITE_DATA, READ_ATTRIBUTES = 0x1, 0x2, 0x80
RC_WD = ac.READ_CONTROL | ac.WRITE_DAC


def sd(*aces, owner=ALICE, present=True):
    return SecurityDescriptor(0x8004 if present else 0x8000, owner, None, None,
                              Acl(list(aces)))


def test_null_dacl_and_no_dacl_grant_everything():
    null = SecurityDescriptor(0x8004, ALICE, None, None, None)
    assert ac.maximal_access(null, bob) == FILE_ALL_ACCESS
    assert ac.maximal_access(sd(present=False), bob) == FILE_ALL_ACCESS


def test_empty_dacl_grants_only_owner_rights():
    empty = sd()
    assert ac.maximal_access(empty, alice) == RC_WD
    assert ac.maximal_access(empty, bob) == 0
    assert ac.check(empty, alice, ac.READ_CONTROL)
    assert not ac.check(empty, alice, READ_DATA)


def test_first_matching_ace_decides_each_right():
    deny_first = sd(Ace(DENY, 0, WRITE_DATA, sid.EVERYONE),
                    Ace(ALLOW, 0, READ_DATA | WRITE_DATA, ALICE))
    assert ac.maximal_access(deny_first, alice) == RC_WD | READ_DATA
    allow_first = sd(Ace(ALLOW, 0, READ_DATA | WRITE_DATA, ALICE),
                     Ace(DENY, 0, WRITE_DATA, sid.EVERYONE))
    assert ac.maximal_access(allow_first, alice) == RC_WD | READ_DATA | WRITE_DATA
    assert ac.maximal_access(allow_first, bob) == 0


def test_other_users_aces_and_inherit_only_do_not_apply():
    d = sd(Ace(ALLOW, 0, FILE_ALL_ACCESS, BOB),
           Ace(ALLOW, INHERIT_ONLY_ACE, FILE_ALL_ACCESS, ALICE))
    assert ac.maximal_access(d, alice) == RC_WD
    assert ac.maximal_access(d, bob) == FILE_ALL_ACCESS


def test_owner_rights_ace_replaces_implicit_owner_rights():
    d = sd(Ace(ALLOW, 0, READ_DATA, sid.OWNER_RIGHTS))
    assert ac.maximal_access(d, alice) == READ_DATA
    assert ac.maximal_access(d, bob) == 0


def test_generic_rights_in_aces_are_mapped():
    d = sd(Ace(ALLOW, 0, GENERIC_READ, sid.EVERYONE), owner=None)
    assert ac.maximal_access(d, bob) == 0x00120089


def test_parent_grants_delete_and_read_attributes():
    """MS-FSA 2.1.5.1.2.1: DELETE through FILE_DELETE_CHILD, FILE_READ_ATTRIBUTES through
    FILE_LIST_DIRECTORY of the parent."""
    d = sd(Ace(ALLOW, 0, WRITE_DATA, ALICE))
    assert ac.existing_file_access(d, alice, 0) == RC_WD | WRITE_DATA
    assert ac.existing_file_access(d, alice, FILE_ALL_ACCESS) == \
        RC_WD | WRITE_DATA | ac.DELETE | READ_ATTRIBUTES


@pytest.mark.parametrize("is_dir,right", [(False, 0x2), (True, 0x4)])
def test_create_rights(is_dir, right):
    assert ac.create_right(is_dir) == right

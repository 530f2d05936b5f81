"""Security descriptors: parse, pack, merge, inherit, store (fs/acl.py; MS-DTYP 2.4.4-2.4.6,
2.5.3.4)."""

import os
import struct

import pytest

from ksmbd_embedded.fs import acl, sid
from ksmbd_embedded.fs.acl import (
    CONTAINER_INHERIT_ACE as CI, INHERIT_ONLY_ACE as IO, INHERITED_ACE,
    NO_PROPAGATE_INHERIT_ACE as NP, OBJECT_INHERIT_ACE as OI, Ace, Acl, SecurityDescriptor,
)

ALICE = sid.user_sid("alice")
FILE_WRITE_DATA = 0x2


def _ace(ace_type, flags, mask, s):
    return struct.pack("<BBHI", ace_type, flags, 8 + len(s), mask) + s


def _acl(*aces):
    body = b"".join(aces)
    return struct.pack("<BBHHH", 2, 0, 8 + len(body), len(aces), 0) + body


def _spec_sd():
    """Owner Everyone, group BUILTIN\\Users, DACL: allow Everyone 0x1F01FF, deny alice
    WRITE_DATA (OI), built by hand: header, owner, group, DACL (MS-DTYP 2.4.6)."""
    owner, group = sid.EVERYONE, sid.BUILTIN_USERS
    dacl = _acl(_ace(0, 0, 0x1F01FF, sid.EVERYONE), _ace(1, OI, FILE_WRITE_DATA, ALICE))
    off_owner = 20
    off_group = off_owner + len(owner)
    off_dacl = off_group + len(group)
    header = struct.pack("<BBHIIII", 1, 0, 0x8004, off_owner, off_group, 0, off_dacl)
    return header + owner + group + dacl


def test_parse_spec_bytes_and_pack_back_identically():
    raw = _spec_sd()
    sd = acl.parse_sd(raw)
    assert sd.owner == sid.EVERYONE and sd.group == sid.BUILTIN_USERS
    assert sd.dacl_present and sd.sacl is None
    assert [(a.type, a.flags, a.mask, a.sid) for a in sd.dacl.aces] == [
        (0, 0, 0x1F01FF, sid.EVERYONE), (1, OI, FILE_WRITE_DATA, ALICE)]
    assert sd.pack() == raw


def test_cross_check_with_impacket():
    from impacket.ldap.ldaptypes import SR_SECURITY_DESCRIPTOR
    ours = acl.parse_sd(_spec_sd()).pack()
    theirs = SR_SECURITY_DESCRIPTOR(data=ours)
    assert theirs["OwnerSid"].formatCanonical() == "S-1-1-0"
    assert theirs["GroupSid"].formatCanonical() == "S-1-5-32-545"
    aces = theirs["Dacl"].aces
    assert [a["AceType"] for a in aces] == [0, 1]
    assert aces[1]["Ace"]["Sid"].formatCanonical() == sid.sid_to_str(ALICE)
    # and impacket's own packing parses the same here
    again = acl.parse_sd(theirs.getData())
    assert again.dacl.aces == acl.parse_sd(ours).dacl.aces


def test_pack_only_requested_parts():
    sd = acl.parse_sd(_spec_sd())
    only_dacl = acl.parse_sd(sd.pack(acl.DACL_SECURITY_INFORMATION))
    assert only_dacl.owner is None and only_dacl.group is None and only_dacl.dacl_present
    only_owner = acl.parse_sd(sd.pack(acl.OWNER_SECURITY_INFORMATION))
    assert only_owner.owner == sid.EVERYONE and not only_owner.dacl_present
    assert len(sd.pack(0)) == 20


def test_null_and_empty_dacl():
    null = struct.pack("<BBHIIII", 1, 0, 0x8004, 0, 0, 0, 0)
    sd = acl.parse_sd(null)
    assert sd.dacl_present and sd.dacl is None
    assert sd.pack() == null
    empty = struct.pack("<BBHIIII", 1, 0, 0x8004, 0, 0, 0, 20) + _acl()
    sd = acl.parse_sd(empty)
    assert sd.dacl is not None and sd.dacl.aces == []


@pytest.mark.parametrize("raw", [
    b"",
    bytes(20),                                                    # revision 0
    struct.pack("<BBHIIII", 1, 0, 0x8004, 0, 0, 0, 20),           # DACL offset at the end
    struct.pack("<BBHIIII", 1, 0, 0x8000, 20, 0, 0, 0) + b"\x01\x05",   # truncated owner
    struct.pack("<BBHIIII", 1, 0, 0x8000, 4, 0, 0, 0) + bytes(12),  # offset inside header
    struct.pack("<BBHIIII", 1, 0, 0x8004, 0, 0, 0, 20) + struct.pack("<BBHHH", 2, 0, 200, 0, 0),
    struct.pack("<BBHIIII", 1, 0, 0x8004, 0, 0, 0, 20) + struct.pack("<BBHHH", 9, 0, 8, 0, 0),
    struct.pack("<BBHIIII", 1, 0, 0x8004, 0, 0, 0, 20) + _acl()[:4] + struct.pack("<HH", 1, 0),
    struct.pack("<BBHIIII", 1, 0, 0x8004, 0, 0, 0, 20)
    + _acl(struct.pack("<BBHI", 0, 0, 10, 1) + b"\x01\x00"),     # ACE too small, unaligned
])
def test_malformed_descriptors(raw):
    with pytest.raises(acl.InvalidDescriptor):
        acl.parse_sd(raw)


def test_object_ace_round_trip():
    guid = bytes(range(16))
    body = struct.pack("<I", 1) + guid + sid.EVERYONE
    ace = struct.pack("<BBHI", 5, 0, 8 + len(body), 0x100) + body
    raw = struct.pack("<BBHIIII", 1, 0, 0x8004, 0, 0, 0, 20) + struct.pack(
        "<BBHHH", 4, 0, 8 + len(ace), 1, 0) + ace
    sd = acl.parse_sd(raw)
    assert sd.dacl.aces[0].obj == struct.pack("<I", 1) + guid
    assert sd.dacl.aces[0].sid == sid.EVERYONE
    assert sd.pack() == raw


def test_merge_maps_generic_and_auto_inherit_rules():
    base = SecurityDescriptor(0x8004, ALICE, sid.DOMAIN_USERS, None, Acl())
    new = SecurityDescriptor(0x8004 | acl.SE_DACL_AUTO_INHERITED, None, None, None,
                             Acl([Ace(0, 0, acl.GENERIC_READ, ALICE),
                                  Ace(0, OI | IO, acl.GENERIC_ALL, sid.CREATOR_OWNER)]))
    out = acl.merge(base, new, acl.DACL_SECURITY_INFORMATION)
    assert out.owner == ALICE and out.group == sid.DOMAIN_USERS
    assert out.dacl.aces[0].mask == acl.FILE_GENERIC_READ
    assert out.dacl.aces[1].mask == acl.GENERIC_ALL  # inherit-only: mapped when inherited
    assert not out.control & acl.SE_DACL_AUTO_INHERITED  # without AUTO_INHERIT_REQ
    new.control |= acl.SE_DACL_AUTO_INHERIT_REQ
    out = acl.merge(base, new, acl.DACL_SECURITY_INFORMATION)
    assert out.control & acl.SE_DACL_AUTO_INHERITED
    assert not out.control & acl.SE_DACL_AUTO_INHERIT_REQ
    # a DACL set without SE_DACL_PRESENT is a NULL DACL
    out = acl.merge(base, SecurityDescriptor(0x8000), acl.DACL_SECURITY_INFORMATION)
    assert out.dacl_present and out.dacl is None
    out = acl.merge(base, SecurityDescriptor(0x8000, sid.EVERYONE),
                    acl.OWNER_SECURITY_INFORMATION)
    assert out.owner == sid.EVERYONE and out.dacl == Acl()


def _parent(flags, auto=False):
    control = 0x8004 | (acl.SE_DACL_AUTO_INHERITED if auto else 0)
    return SecurityDescriptor(control, ALICE, None, None, Acl([
        Ace(0, flags, FILE_WRITE_DATA, sid.CREATOR_OWNER),
        Ace(0, 0, 0x1F01FF, sid.EVERYONE)]))


def _flags(sd):
    return [(a.sid, a.flags) for a in sd.dacl.aces] if sd is not None else None


CO = sid.CREATOR_OWNER


@pytest.mark.parametrize("flags,file_aces,dir_aces", [
    (0, None, None),
    (OI, [(ALICE, 0)], [(CO, OI | IO)]),
    (CI, None, [(ALICE, 0), (CO, CI | IO)]),
    (OI | CI, [(ALICE, 0)], [(ALICE, 0), (CO, OI | CI | IO)]),
    (NP | OI, [(ALICE, 0)], None),
    (NP | CI, None, [(ALICE, 0)]),
    (IO | OI, [(ALICE, 0)], [(CO, OI | IO)]),
    (IO | CI | OI, [(ALICE, 0)], [(ALICE, 0), (CO, CI | OI | IO)]),
    (IO | NP | CI, None, [(ALICE, 0)]),
])
def test_inheritance_flags(flags, file_aces, dir_aces):
    """MS-DTYP 2.5.3.4.2: what a file and a directory get from a CREATOR OWNER ACE."""
    parent = _parent(flags)
    child = acl.inherit(parent, None, False, ALICE, sid.DOMAIN_USERS)
    assert _flags(child) == file_aces
    child = acl.inherit(parent, None, True, ALICE, sid.DOMAIN_USERS)
    assert _flags(child) == dir_aces
    if child is not None:
        assert child.owner == ALICE and child.control == 0x8004


def test_auto_inherited_parent_marks_children():
    child = acl.inherit(_parent(OI, auto=True), None, False, ALICE, sid.DOMAIN_USERS)
    assert child.control & acl.SE_DACL_AUTO_INHERITED
    assert child.dacl.aces[0].flags == INHERITED_ACE


def test_inherited_generic_rights_are_mapped_and_split():
    parent = SecurityDescriptor(0x8004, ALICE, None, None,
                                Acl([Ace(0, OI | CI, acl.GENERIC_READ, sid.EVERYONE)]))
    child = acl.inherit(parent, None, True, ALICE, sid.DOMAIN_USERS)
    assert [(a.flags, a.mask) for a in child.dacl.aces] == [
        (0, acl.FILE_GENERIC_READ), (OI | CI | IO, acl.GENERIC_READ)]


def test_creator_descriptor_wins_and_defaults():
    given = SecurityDescriptor(0x8004, sid.EVERYONE, sid.BUILTIN_USERS, None,
                               Acl([Ace(0, 0, acl.GENERIC_ALL, sid.EVERYONE)]))
    sd = acl.inherit(_parent(OI), given, False, ALICE, sid.DOMAIN_USERS)
    assert sd.owner == sid.EVERYONE and sd.group == sid.BUILTIN_USERS
    assert [(a.sid, a.mask) for a in sd.dacl.aces] == [(sid.EVERYONE, 0x1F01FF)]
    # an empty descriptor from the creator: owner/group from the token, the default DACL
    sd = acl.inherit(None, SecurityDescriptor(), False, ALICE, sid.DOMAIN_USERS)
    assert sd.owner == ALICE and sd.group == sid.DOMAIN_USERS
    assert [(a.sid, a.mask) for a in sd.dacl.aces] == [
        (ALICE, 0x1F01FF), (sid.LOCAL_SYSTEM, 0x1F01FF)]
    assert acl.inherit(None, None, False, ALICE, sid.DOMAIN_USERS) is None


def test_store_and_read_back(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"")
    assert acl.read_stored(str(f)) is None
    sd = acl.parse_sd(_spec_sd())
    try:
        acl.store(str(f), sd)
    except OSError as exc:
        pytest.fail(f"user xattrs are needed here: {exc}")
    assert os.getxattr(str(f), acl.XATTR_NAME) == sd.pack()
    assert acl.read_stored(str(f)) == sd
    os.setxattr(str(f), acl.XATTR_NAME, b"\x01garbage")
    assert acl.read_stored(str(f)) is None  # malformed: ignored (and logged)

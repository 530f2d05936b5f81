"""SIDs and session tokens (fs/sid.py, MS-DTYP 2.4.2, 2.5.2)."""

import struct
from types import SimpleNamespace

import pytest

from ksmbd_embedded.fs import sid


def test_binary_layout_from_the_spec():
    # S-1-5-32-544: Revision 1, 2 sub-authorities, authority 5 (48-bit big-endian),
    # sub-authorities little-endian (MS-DTYP 2.4.2.2)
    raw = bytes([1, 2, 0, 0, 0, 0, 0, 5]) + struct.pack("<II", 32, 544)
    assert sid.BUILTIN_ADMINISTRATORS == raw
    assert sid.sid_to_str(raw) == "S-1-5-32-544"
    assert sid.sid_from_str("S-1-5-32-544") == raw
    assert sid.read_sid(raw + b"junk") == raw
    assert sid.sid_length(b"xx" + raw, 2) == 16


@pytest.mark.parametrize("bad", [b"", bytes(7), bytes([2, 0, 0, 0, 0, 0, 0, 1]),
                                 bytes([1, 16]) + bytes(6 + 64), bytes([1, 2]) + bytes(6 + 4)])
def test_malformed_sids_are_refused(bad):
    with pytest.raises(sid.SidError):
        sid.read_sid(bad)


@pytest.mark.parametrize("text", ["S-1", "S-2-5", "X-1-5", "S-1-5-" + "-".join(["1"] * 16),
                                  "S-1-5-4294967296"])
def test_bad_text_is_refused(text):
    with pytest.raises(sid.SidError):
        sid.sid_from_str(text)


def test_cross_check_with_impacket():
    from impacket.ldap.ldaptypes import LDAP_SID
    for s in (sid.EVERYONE, sid.CREATOR_OWNER, sid.user_sid("alice"), sid.unix_user_sid(1000)):
        assert LDAP_SID(data=s).formatCanonical() == sid.sid_to_str(s)


def test_user_sids_are_stable_distinct_and_case_insensitive():
    alice = sid.user_sid("alice")
    assert alice == sid.user_sid("ALICE")
    assert alice != sid.user_sid("bob")
    assert sid.sid_to_str(alice).startswith(sid.sid_to_str(sid.DOMAIN_SID) + "-")
    assert sid.user_rid("alice") >= 1000
    # fixed forever: stored ACLs name it
    assert sid.sid_to_str(sid.DOMAIN_SID) == "S-1-5-21-125047133-2838764740-150255973"


def test_tokens():
    user = sid.token_for(SimpleNamespace(user="alice", is_guest=False, is_anonymous=False))
    assert user.user == sid.user_sid("alice")
    assert user.primary_group == sid.DOMAIN_USERS
    for member in (sid.EVERYONE, sid.AUTHENTICATED_USERS, sid.BUILTIN_USERS, sid.NETWORK):
        assert user.has(member)
    assert not user.has(sid.BUILTIN_ADMINISTRATORS)

    guest = sid.token_for(SimpleNamespace(user="nobody", is_guest=True, is_anonymous=False))
    assert guest.user == sid.GUEST and guest.has(sid.BUILTIN_GUESTS)
    assert not guest.has(sid.AUTHENTICATED_USERS)

    anon = sid.token_for(SimpleNamespace(user="", is_guest=False, is_anonymous=True))
    assert anon.user == sid.ANONYMOUS
    assert not anon.has(sid.EVERYONE) and not anon.has(sid.AUTHENTICATED_USERS)

"""SIDs (MS-DTYP 2.4.2) and the access token of a session (MS-DTYP 2.5.2).

The mapping, chosen so that stored ACLs stay valid across restarts, password-db edits and host
renames (nothing in it is stored or configured):

- The server's domain is ``S-1-5-21-125047133-2838764740-150255973`` (``DOMAIN_SID``), a
  fixed value: the three numbers are the first 12 bytes of SHA-256 of ``ksmbd-embedded``
  (little-endian u32s).
  Every ksmbd-embedded uses it; the SIDs only have to be unique within one server.
- A user of the password db is ``DOMAIN_SID-<rid>``, rid = 1000 + (the first four bytes of
  SHA-256 of the case-folded UTF-8 name, big-endian) mod (2**31 - 1000): stable for a name,
  no table to keep; two names colliding is a 1-in-a-billion event per pair.
- The guest account is ``DOMAIN_SID-501``; an anonymous session is ``S-1-5-7``
  (ANONYMOUS LOGON).
- POSIX ids that are not the server's own uid keep Samba's "Unix User" / "Unix Group" SIDs
  ``S-1-22-1-<uid>`` / ``S-1-22-2-<gid>`` (fs/security.py).

The token of a session (``token_for``):

- authenticated user: user SID (also the owner of what it creates), primary group Domain Users
  (``DOMAIN_SID-513``), Everyone, NETWORK, Authenticated Users, BUILTIN\\Users;
- guest: Guest (``DOMAIN_SID-501``), primary group Domain Guests (``-514``), Everyone, NETWORK,
  BUILTIN\\Guests;
- anonymous: ANONYMOUS LOGON (owner and primary group), NETWORK (Everyone does not include
  anonymous, as on Windows by default).

No token holds a privilege (no SeSecurityPrivilege: SACLs stay unreachable; no SeRestore or
SeTakeOwnership).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

_SUB = struct.Struct("<I")
MAX_SUB_AUTHORITIES = 15


class SidError(ValueError):
    """Malformed SID bytes or text."""


def sid_bytes(authority: int, *sub_authorities: int) -> bytes:
    """A binary SID (MS-DTYP 2.4.2.2): Revision 1, count, 48-bit big-endian authority, RIDs."""
    if len(sub_authorities) > MAX_SUB_AUTHORITIES:
        raise SidError("a SID has at most 15 sub-authorities")
    return (bytes((1, len(sub_authorities))) + authority.to_bytes(6, "big")
            + b"".join(_SUB.pack(s & 0xFFFFFFFF) for s in sub_authorities))


def sid_length(buf, offset: int = 0) -> int:
    """The length of the SID at `offset` in `buf`, checked against the buffer (SidError)."""
    if offset < 0 or len(buf) - offset < 8:
        raise SidError("SID truncated")
    revision, count = buf[offset], buf[offset + 1]
    if revision != 1 or count > MAX_SUB_AUTHORITIES:
        raise SidError("bad SID revision or sub-authority count")
    size = 8 + 4 * count
    if len(buf) - offset < size:
        raise SidError("SID truncated")
    return size


def read_sid(buf, offset: int = 0) -> bytes:
    """The SID at `offset` as bytes (validated)."""
    return bytes(buf[offset:offset + sid_length(buf, offset)])


def sid_to_str(sid: bytes) -> str:
    """The S-1-... form of a binary SID."""
    count = sid[1]
    authority = int.from_bytes(sid[2:8], "big")
    subs = struct.unpack_from(f"<{count}I", sid, 8)
    return "S-%d-%d%s" % (sid[0], authority, "".join(f"-{s}" for s in subs))


_SID_TEXT = re.compile(r"^S-1-(\d+)((?:-\d+){0,15})$", re.I)


def sid_from_str(text: str) -> bytes:
    """Binary SID from its S-1-... form (decimal authority and sub-authorities)."""
    m = _SID_TEXT.match(text.strip())
    if not m:
        raise SidError(f"not a SID: {text!r}")
    authority = int(m.group(1))
    subs = [int(x) for x in m.group(2).split("-")[1:]]
    if authority >= 1 << 48 or any(s > 0xFFFFFFFF for s in subs):
        raise SidError(f"SID value out of range: {text!r}")
    return sid_bytes(authority, *subs)


# Well-known SIDs (MS-DTYP 2.4.2.4)
WORLD_SID_AUTHORITY = 1
CREATOR_SID_AUTHORITY = 3
NT_AUTHORITY = 5
UNIX_SID_AUTHORITY = 22  # Samba's S-1-22-1 (users) and S-1-22-2 (groups)

EVERYONE = sid_bytes(WORLD_SID_AUTHORITY, 0)            # S-1-1-0
CREATOR_OWNER = sid_bytes(CREATOR_SID_AUTHORITY, 0)     # S-1-3-0
CREATOR_GROUP = sid_bytes(CREATOR_SID_AUTHORITY, 1)     # S-1-3-1
OWNER_RIGHTS = sid_bytes(CREATOR_SID_AUTHORITY, 4)      # S-1-3-4
NETWORK = sid_bytes(NT_AUTHORITY, 2)                    # S-1-5-2
ANONYMOUS = sid_bytes(NT_AUTHORITY, 7)                  # S-1-5-7
AUTHENTICATED_USERS = sid_bytes(NT_AUTHORITY, 11)       # S-1-5-11
LOCAL_SYSTEM = sid_bytes(NT_AUTHORITY, 18)              # S-1-5-18
BUILTIN_ADMINISTRATORS = sid_bytes(NT_AUTHORITY, 32, 544)
BUILTIN_USERS = sid_bytes(NT_AUTHORITY, 32, 545)
BUILTIN_GUESTS = sid_bytes(NT_AUTHORITY, 32, 546)

# hashlib.sha256(b"ksmbd-embedded").digest(), spelled out: hashlib (libcrypto) is not
# imported before the first logon (issue 11: idle memory).
_DOMAIN_DIGEST = bytes.fromhex("5d117407c41c34a965b9f4084ddde16810ecaffbc98bb3d70dcf241869a8b378")
DOMAIN_SUB_AUTHORITIES = (21,) + struct.unpack("<III", _DOMAIN_DIGEST[:12])
DOMAIN_SID = sid_bytes(NT_AUTHORITY, *DOMAIN_SUB_AUTHORITIES)
RID_GUEST = 501
RID_DOMAIN_USERS = 513
RID_DOMAIN_GUESTS = 514
_FIRST_USER_RID = 1000


def domain_sid(rid: int) -> bytes:
    return sid_bytes(NT_AUTHORITY, *DOMAIN_SUB_AUTHORITIES, rid)


def user_rid(name: str) -> int:
    import hashlib  # at first use, not at start (issue 11)

    digest = hashlib.sha256(name.casefold().encode("utf-8", "surrogatepass")).digest()
    return _FIRST_USER_RID + int.from_bytes(digest[:4], "big") % (2 ** 31 - _FIRST_USER_RID)


def user_sid(name: str) -> bytes:
    """The SID of a password-db user."""
    return domain_sid(user_rid(name))


GUEST = domain_sid(RID_GUEST)
DOMAIN_USERS = domain_sid(RID_DOMAIN_USERS)
DOMAIN_GUESTS = domain_sid(RID_DOMAIN_GUESTS)


def unix_user_sid(uid: int) -> bytes:
    """S-1-22-1-<uid>."""
    return sid_bytes(UNIX_SID_AUTHORITY, 1, uid)


def unix_group_sid(gid: int) -> bytes:
    """S-1-22-2-<gid>."""
    return sid_bytes(UNIX_SID_AUTHORITY, 2, gid)


@dataclass(frozen=True)
class Token:
    """What the access check knows of a caller: its user SID (the owner of what it creates),
    primary group, and every SID it is a member of (user and group included)."""

    user: bytes
    primary_group: bytes
    sids: frozenset[bytes]

    def has(self, sid: bytes) -> bool:
        return sid in self.sids


def make_token(user: bytes, primary_group: bytes, *groups: bytes) -> Token:
    return Token(user, primary_group, frozenset((user, primary_group) + groups))


_tokens: dict[tuple[bool, bool, str], Token] = {}  # every CREATE asks: built once per user


def token_for(session) -> Token:
    """The token of a Session (user / guest / anonymous; see the module docstring)."""
    anonymous = getattr(session, "is_anonymous", False)
    guest = getattr(session, "is_guest", False)
    key = (anonymous, guest, "" if anonymous or guest else session.user)
    token = _tokens.get(key)
    if token is not None:
        return token
    if anonymous:
        token = make_token(ANONYMOUS, ANONYMOUS, NETWORK)
    elif guest:
        token = make_token(GUEST, DOMAIN_GUESTS, EVERYONE, NETWORK, BUILTIN_GUESTS)
    else:
        token = make_token(user_sid(session.user), DOMAIN_USERS, EVERYONE, NETWORK,
                           AUTHENTICATED_USERS, BUILTIN_USERS)
    if len(_tokens) >= 1024:  # bounded: the users of the password db, in practice
        _tokens.clear()
    _tokens[key] = token
    return token

"""Stored NT ACLs end to end: a DACL that alice sets (impacket's SET_INFO security) is kept
and enforced against bob (Debian's smbclient), and is inherited by new files."""

import io
import os

import pytest
from impacket.smbconnection import SessionError, SMBConnection

from ksmbd_embedded.fs import acl, sid
from ksmbd_embedded.fs.acl import (
    CONTAINER_INHERIT_ACE, FILE_ALL_ACCESS, OBJECT_INHERIT_ACE, Ace, Acl, SecurityDescriptor,
)

from .smbclient_tool import output, smbclient

SECURITY = 3
OWNER, DACL = acl.OWNER_SECURITY_INFORMATION, acl.DACL_SECURITY_INFORMATION
READ_CONTROL, WRITE_DAC = 0x00020000, 0x00040000
ALICE, BOB = sid.user_sid("alice"), sid.user_sid("bob")


def _login(server, user):
    conn = SMBConnection("127.0.0.1", "127.0.0.1", sess_port=server.port, timeout=15)
    conn.login(user, f"{user}-pw")
    return conn, conn.connectTree("share")


def _get_sd(conn, tid, path) -> SecurityDescriptor:
    fid = conn.openFile(tid, path, desiredAccess=READ_CONTROL, creationOption=0)
    try:
        blob = conn.getSMBServer().queryInfo(tid, fid, infoType=SECURITY, fileInfoClass=0,
                                             additionalInformation=OWNER | DACL)
    finally:
        conn.closeFile(tid, fid)
    return acl.parse_sd(blob)


def _set_dacl(conn, tid, path, dacl: Acl):
    fid = conn.openFile(tid, path, desiredAccess=READ_CONTROL | WRITE_DAC, creationOption=0)
    try:
        conn.getSMBServer().setInfo(tid, fid, SecurityDescriptor(0x8004, None, None, None,
                                                                 dacl).pack(DACL),
                                    infoType=SECURITY, fileInfoClass=0,
                                    additionalInformation=DACL)
    finally:
        conn.closeFile(tid, fid)


def test_dacl_set_by_alice_is_enforced_against_bob(server):
    root = server.shares["share"]
    (root / "secret.txt").write_bytes(b"for alice only")
    conn, tid = _login(server, "alice")
    try:
        # no stored descriptor yet: the file (owned by the server's uid) shows alice as owner
        assert _get_sd(conn, tid, "secret.txt").owner == ALICE
        _set_dacl(conn, tid, "secret.txt", Acl([Ace(0, 0, FILE_ALL_ACCESS, ALICE)]))
        sd = _get_sd(conn, tid, "secret.txt")
        assert sd.owner == ALICE
        assert [(a.sid, a.mask) for a in sd.dacl.aces] == [(ALICE, FILE_ALL_ACCESS)]
    finally:
        conn.close()
    # kept on disk, in our xattr
    stored = acl.parse_sd(os.getxattr(root / "secret.txt", acl.XATTR_NAME))
    assert stored.owner == ALICE

    denied = smbclient(server.port, "share", "get secret.txt -", user="bob", password="bob-pw")
    assert "NT_STATUS_ACCESS_DENIED" in output(denied)
    allowed = smbclient(server.port, "share", "get secret.txt -")
    assert "for alice only" in allowed.stdout, output(allowed)

    # bob is not the owner: he cannot read or rewrite the DACL either
    conn, tid = _login(server, "bob")
    try:
        with pytest.raises(SessionError) as info:
            conn.openFile(tid, "secret.txt", desiredAccess=READ_CONTROL | WRITE_DAC)
        assert "STATUS_ACCESS_DENIED" in str(info.value)
    finally:
        conn.close()


def test_inherited_dacl_and_parent_check(server):
    conn, tid = _login(server, "alice")
    try:
        conn.createDirectory("share", "private")
        _set_dacl(conn, tid, "private", Acl([
            Ace(0, OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE, FILE_ALL_ACCESS, ALICE)]))
        conn.putFile("share", "private\\mine.txt", io.BytesIO(b"data").read)
        sd = _get_sd(conn, tid, "private\\mine.txt")
        assert sd.owner == ALICE
        assert [(a.sid, a.flags, a.mask) for a in sd.dacl.aces] == [(ALICE, 0, FILE_ALL_ACCESS)]
    finally:
        conn.close()
    # bob may neither add a file to the directory (FILE_ADD_FILE on the parent) nor read
    src = server.root / "upload.txt"
    src.write_bytes(b"bob's")
    put = smbclient(server.port, "share", f"put {src} private\\bobs.txt", user="bob",
                    password="bob-pw")
    assert "NT_STATUS_ACCESS_DENIED" in output(put)
    assert not (server.shares["share"] / "private" / "bobs.txt").exists()
    get = smbclient(server.port, "share", "get private\\mine.txt -", user="bob",
                    password="bob-pw")
    assert "NT_STATUS_ACCESS_DENIED" in output(get)

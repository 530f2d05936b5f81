"""Symlinks as reparse points and FILE_OPEN_BY_FILE_ID end to end, with the Python
smbprotocol / smbclient clients: smbclient.readlink / lstat / islink open with
FILE_OPEN_REPARSE_POINT and send FSCTL_GET_REPARSE_POINT; deleting a link leaves its target;
a link leading out of the share is never read; a file opens by its 8-byte id."""

from __future__ import annotations

import os
import stat
import struct
import uuid

import pytest
import smbclient
import smbclient.path
from smbprotocol.connection import Connection
from smbprotocol.exceptions import SMBResponseException
from smbprotocol.ioctl import IOCTLFlags, SMB2IOCTLRequest, SMB2IOCTLResponse
from smbprotocol.open import (
    CreateDisposition, CreateOptions, FileAttributes, FilePipePrinterAccessMask,
    ImpersonationLevel, Open, ShareAccess,
)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

FSCTL_GET_REPARSE_POINT = 0x000900A8
IO_REPARSE_TAG_SYMLINK = 0xA000000C
FILE_OPEN_BY_FILE_ID = 0x00002000
STATUS_ACCESS_DENIED = 0xC0000022
STATUS_NOT_A_REPARSE_POINT = 0xC0000275
STATUS_INVALID_PARAMETER = 0xC000000D
STATUS_BUFFER_OVERFLOW = 0x80000005
ACCESS = FilePipePrinterAccessMask
SHARE_ALL = ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE \
    | ShareAccess.FILE_SHARE_DELETE


@pytest.fixture
def share(server):
    root = server.shares["share"]
    (root / "dir").mkdir()
    (root / "dir" / "target.txt").write_bytes(b"target data")
    (root / "dir" / "sub").mkdir()
    (root / "dir" / "sub" / "inner.txt").write_bytes(b"inner")
    os.symlink("target.txt", root / "dir" / "link")
    os.symlink("sub", root / "dir" / "dlink")
    os.symlink(str(root / "dir" / "target.txt"), root / "abs_link")
    outside = server.root / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    os.symlink(str(outside / "secret.txt"), root / "out_link")
    return root


@pytest.fixture
def client(server):
    smbclient.register_session("127.0.0.1", username="alice", password="alice-pw",
                               port=server.port, auth_protocol="ntlm")
    yield rf"\\127.0.0.1\share", {"port": server.port}
    smbclient.reset_connection_cache()


@pytest.fixture
def tree(server):
    conn = Connection(uuid.uuid4(), "127.0.0.1", server.port)
    conn.connect(timeout=15)
    session = Session(conn, "alice", "alice-pw", auth_protocol="ntlm")
    session.connect()
    tc = TreeConnect(session, r"\\127.0.0.1\share")
    tc.connect()
    yield tc
    session.disconnect()
    conn.disconnect()


def _open(tree, name, access, options=CreateOptions.FILE_OPEN_REPARSE_POINT, raw=None):
    f = Open(tree, name)
    req, receive = f.create(ImpersonationLevel.Impersonation, access,
                            FileAttributes.FILE_ATTRIBUTE_NORMAL, SHARE_ALL,
                            CreateDisposition.FILE_OPEN, options, send=False)
    if raw is not None:
        req["buffer_path"] = raw  # FILE_OPEN_BY_FILE_ID: the id, not a UTF-16 name
    sent = tree.session.connection.send(req, tree.session.session_id, tree.tree_connect_id)
    receive(sent)
    return f


def _get_reparse(tree, f, max_out=16384):
    conn = tree.session.connection
    req = SMB2IOCTLRequest()
    req["ctl_code"] = FSCTL_GET_REPARSE_POINT
    req["file_id"] = f.file_id
    req["max_output_response"] = max_out
    req["flags"] = IOCTLFlags.SMB2_0_IOCTL_IS_FSCTL
    req["buffer"] = b""
    sent = conn.send(req, sid=tree.session.session_id, tid=tree.tree_connect_id)
    try:
        response = conn.receive(sent)
    except SMBResponseException as exc:
        response = exc.header
        if response["data"].get_value()[:2] != b"\x31\x00":
            return exc.status, b""
    rsp = SMB2IOCTLResponse()
    rsp.unpack(response["data"].get_value())
    return response["status"].get_value(), rsp["buffer"].get_value()


def test_smbclient_reads_links(share, client):
    unc, kw = client
    assert smbclient.readlink(unc + r"\dir\link", **kw) == unc + r"\dir\target.txt"
    assert smbclient.readlink(unc + r"\abs_link", **kw) == unc + r"\dir\target.txt"
    assert smbclient.path.islink(unc + r"\dir\link", **kw)
    lst = smbclient.lstat(unc + r"\dir\link", **kw)
    assert stat.S_ISLNK(lst.st_mode) and lst.st_reparse_tag == IO_REPARSE_TAG_SYMLINK
    st = smbclient.stat(unc + r"\dir\link", **kw)  # followed on the server, as before
    assert stat.S_ISREG(st.st_mode) and st.st_size == len(b"target data")
    assert not smbclient.path.islink(unc + r"\dir\target.txt", **kw)
    with smbclient.open_file(unc + r"\dir\link", "rb", **kw) as f:
        assert f.read() == b"target data"
    dl = smbclient.lstat(unc + r"\dir\dlink", **kw)
    assert stat.S_ISLNK(dl.st_mode) and dl.st_file_attributes & 0x10  # a directory link
    names = sorted(smbclient.listdir(unc + r"\dir", **kw))
    assert names == ["dlink", "link", "sub", "target.txt"]


def test_get_reparse_point_statuses(share, tree):
    f = _open(tree, r"dir\link", ACCESS.FILE_READ_ATTRIBUTES)
    status, out = _get_reparse(tree, f)
    assert status == 0
    tag, length = struct.unpack_from("<IH", out, 0)
    assert tag == IO_REPARSE_TAG_SYMLINK and length == len(out) - 8
    sub_off, sub_len, _, _, flags = struct.unpack_from("<HHHHI", out, 8)
    assert flags == 1 and out[20 + sub_off:20 + sub_off + sub_len] == "target.txt".encode(
        "utf-16-le")
    status, head = _get_reparse(tree, f, max_out=16)
    assert status == STATUS_BUFFER_OVERFLOW and head == out[:16]
    f.close()
    g = _open(tree, r"dir\target.txt", ACCESS.FILE_READ_ATTRIBUTES)
    assert _get_reparse(tree, g)[0] == STATUS_NOT_A_REPARSE_POINT
    g.close()
    out_link = _open(tree, "out_link", ACCESS.FILE_READ_ATTRIBUTES)
    status, out = _get_reparse(tree, out_link)
    assert status == STATUS_ACCESS_DENIED and b"s\x00e\x00c\x00r\x00e\x00t" not in out
    out_link.close()


def test_deleting_links_leaves_targets(share, tree, server):
    for name in (r"dir\link", r"dir\dlink", "out_link"):
        f = _open(tree, name, ACCESS.DELETE | ACCESS.FILE_READ_ATTRIBUTES,
                  CreateOptions.FILE_OPEN_REPARSE_POINT | CreateOptions.FILE_DELETE_ON_CLOSE)
        f.close()
        assert not os.path.lexists(share / name.replace("\\", "/"))
    assert (share / "dir" / "target.txt").read_bytes() == b"target data"
    assert (share / "dir" / "sub" / "inner.txt").read_bytes() == b"inner"
    assert (server.root / "outside" / "secret.txt").read_bytes() == b"secret"


def test_smbclient_remove_link(share, client):
    unc, kw = client
    assert smbclient.path.islink(unc + r"\dir\link", **kw)  # connected: the failure is remove()
    smbclient.remove(unc + r"\dir\link", **kw)
    assert not os.path.lexists(share / "dir" / "link")


def test_open_by_file_id(share, tree):
    f = _open(tree, r"dir\target.txt", ACCESS.GENERIC_READ, options=0)  # remembers the id
    f.close()
    ino = os.stat(share / "dir" / "target.txt").st_ino
    g = _open(tree, "", ACCESS.GENERIC_READ, options=FILE_OPEN_BY_FILE_ID,
              raw=struct.pack("<Q", ino))
    assert g.read(0, 100) == b"target data"
    g.close()
    with pytest.raises(SMBResponseException) as err:
        _open(tree, "", ACCESS.GENERIC_READ, options=FILE_OPEN_BY_FILE_ID,
              raw=struct.pack("<Q", ino + 1000003))
    assert err.value.status == STATUS_INVALID_PARAMETER

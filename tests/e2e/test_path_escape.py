"""Nothing outside a share is read, written or revealed: `..`, absolute names, symlinks."""

import os
import uuid

import pytest
from smbprotocol.connection import Connection
from smbprotocol.exceptions import SMBResponseException
from smbprotocol.open import (
    CreateDisposition, FileAttributes, FilePipePrinterAccessMask, ImpersonationLevel,
    Open, ShareAccess,
)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

from .smbclient_tool import output, smbclient

SECRET = "top-secret-outside-the-share"


@pytest.fixture
def tree(server):
    conn = Connection(uuid.uuid4(), "127.0.0.1", server.port, require_signing=True)
    conn.connect(timeout=15)
    session = Session(conn, "alice", "alice-pw", require_encryption=False, auth_protocol="ntlm")
    session.connect()
    tc = TreeConnect(session, r"\\127.0.0.1\share")
    tc.connect()
    yield tc
    tc.disconnect()
    session.disconnect()
    conn.disconnect()


def _open(tree, name, disposition=CreateDisposition.FILE_OPEN, options=0):
    f = Open(tree, name)
    f.create(ImpersonationLevel.Impersonation,
             FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE,
             FileAttributes.FILE_ATTRIBUTE_NORMAL,
             ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE, disposition, options)
    return f


@pytest.fixture
def outside(server):
    """A secret file next to (outside) the share, and links to it from inside."""
    secret_dir = server.root / "outside"
    secret_dir.mkdir()
    (secret_dir / "secret.txt").write_text(SECRET)
    root = server.shares["share"]
    os.symlink("/etc", root / "etc_link")
    os.symlink(secret_dir, root / "dir_link")
    os.symlink(secret_dir / "secret.txt", root / "file_link")
    os.symlink("../../outside/secret.txt", root / "rel_link")
    return secret_dir


@pytest.mark.parametrize("name", [
    r"..\outside\secret.txt", r"..\..\outside\secret.txt", r"a\..\..\outside\secret.txt",
    r"\..\outside\secret.txt", r"\etc\passwd", r"C:\etc\passwd", r"..", r"file_link",
    r"rel_link", r"dir_link\secret.txt", r"etc_link\passwd", r"etc_link",
])
def test_escape_attempts_refused(tree, outside, name):
    with pytest.raises(SMBResponseException):
        f = _open(tree, name)
        f.close()


@pytest.mark.parametrize("name", [r"..\outside\new.txt", r"dir_link\new.txt",
                                  r"etc_link\new.txt"])
def test_escape_creates_refused(tree, outside, name):
    with pytest.raises(SMBResponseException):
        f = _open(tree, name, CreateDisposition.FILE_CREATE)
        f.close()
    assert not (outside / "new.txt").exists()
    assert not os.path.exists("/etc/new.txt")


def test_symlink_inside_share_allowed(tree, server):
    root = server.shares["share"]
    (root / "real.txt").write_text("inside")
    os.symlink("real.txt", root / "inner_link")
    f = _open(tree, "inner_link")
    assert f.read(0, 6) == b"inside"
    f.close()


def test_smbclient_cannot_follow_links_out(server, outside, tmp_path):
    result = smbclient(server.port, "share", "get etc_link/passwd p; get dir_link/secret.txt s; "
                       "get file_link f; ls dir_link/*", cwd=tmp_path)
    text = output(result)
    assert "NT_STATUS_" in text
    assert SECRET not in text and "root:" not in text
    for name in ("p", "s", "f"):
        got = tmp_path / name
        assert not got.exists() or SECRET not in got.read_text(errors="replace")

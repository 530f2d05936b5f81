"""Plain WRITEs whose payload the loop splices from the socket to the file (issue 11):
whole files through real clients, byte for byte, with and without signing."""

import hashlib
import os
import uuid

from smbprotocol.connection import Connection, Dialects
from smbprotocol.open import (
    CreateDisposition, CreateOptions, FileAttributes, FilePipePrinterAccessMask, ImpersonationLevel,
    Open, ShareAccess,
)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

from .smbclient_tool import assert_ok, smbclient


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_smbclient_put_20mib_unprotected(server, tmp_path):
    work = tmp_path / "client"
    work.mkdir()
    data = os.urandom(20 * 1024 * 1024)
    (work / "big.bin").write_bytes(data)
    assert_ok(smbclient(server.port, "share", "put big.bin big.bin; get big.bin back.bin",
                        dialect="SMB3_11", protection="off", cwd=work, timeout=300))
    assert _md5((server.shares["share"] / "big.bin").read_bytes()) == _md5(data)
    assert _md5((work / "back.bin").read_bytes()) == _md5(data)


def test_smbclient_put_signed_takes_the_old_path(server, tmp_path):
    work = tmp_path / "client"
    work.mkdir()
    data = os.urandom(3 * 1024 * 1024 + 12345)
    (work / "big.bin").write_bytes(data)
    assert_ok(smbclient(server.port, "share", "put big.bin signed.bin", dialect="SMB3_11",
                        protection="sign", cwd=work, timeout=300))
    assert _md5((server.shares["share"] / "signed.bin").read_bytes()) == _md5(data)


def test_smbprotocol_unsigned_1mib_writes(server):
    conn = Connection(uuid.uuid4(), "127.0.0.1", server.port, require_signing=False)
    conn.connect(dialect=Dialects.SMB_3_1_1, timeout=15)
    session = Session(conn, "alice", "alice-pw", require_encryption=False,
                      auth_protocol="ntlm")
    session.connect()
    try:
        assert not session.signing_required and not session.encrypt_data
        tree = TreeConnect(session, r"\\127.0.0.1\share")
        tree.connect()
        f = Open(tree, "plain.bin")
        f.create(ImpersonationLevel.Impersonation,
                 FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE,
                 FileAttributes.FILE_ATTRIBUTE_NORMAL, ShareAccess.FILE_SHARE_READ,
                 CreateDisposition.FILE_OVERWRITE_IF, CreateOptions.FILE_NON_DIRECTORY_FILE)
        chunks = [os.urandom(1024 * 1024) for _ in range(6)]
        # out of order, and one with write-through
        for i in (1, 0, 3, 2, 5, 4):
            assert f.write(chunks[i], i * 1024 * 1024, write_through=(i == 3)) == len(chunks[i])
        data = b"".join(chunks)
        back = b"".join(f.read(i * 1024 * 1024, 1024 * 1024) for i in range(6))
        f.close()
        tree.disconnect()
        assert back == data
        assert _md5((server.shares["share"] / "plain.bin").read_bytes()) == _md5(data)
    finally:
        session.disconnect()
        conn.disconnect()

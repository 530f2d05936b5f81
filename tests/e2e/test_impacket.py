"""End to end with impacket's SMBConnection (SMB 2.1 / 3.0 client, NTLMv2)."""

import io
import os

import pytest
from impacket.smb3structs import SMB2_DIALECT_21, SMB2_DIALECT_30
from impacket.smbconnection import SessionError, SMBConnection


@pytest.mark.parametrize("dialect", [SMB2_DIALECT_21, SMB2_DIALECT_30])
def test_impacket_file_operations(server, dialect):
    conn = SMBConnection("127.0.0.1", "127.0.0.1", sess_port=server.port,
                         preferredDialect=dialect, timeout=15)
    try:
        conn.login("alice", "alice-pw")
        data = os.urandom(123_457)
        conn.createDirectory("share", "imp")
        conn.putFile("share", "imp\\data.bin", io.BytesIO(data).read)
        out = io.BytesIO()
        conn.getFile("share", "imp\\data.bin", out.write)
        assert out.getvalue() == data
        names = {f.get_longname() for f in conn.listPath("share", "imp\\*")}
        assert {"data.bin", ".", ".."} <= names
        conn.rename("share", "imp\\data.bin", "imp\\renamed.bin")
        conn.deleteFile("share", "imp\\renamed.bin")
        conn.deleteDirectory("share", "imp")
        assert not (server.shares["share"] / "imp").exists()
    finally:
        conn.close()


def test_impacket_wrong_password(server):
    conn = SMBConnection("127.0.0.1", "127.0.0.1", sess_port=server.port, timeout=15)
    try:
        with pytest.raises(SessionError) as info:
            conn.login("alice", "nope")
        assert "STATUS_LOGON_FAILURE" in str(info.value)
    finally:
        conn.close()

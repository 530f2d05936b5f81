"""End to end with the Python smbprotocol client: 3.1.1 encryption (AES-128/256-GCM and CCM),
signing algorithms, and the file operations its high-level API performs."""

import os
import uuid

import pytest
from smbprotocol.connection import Ciphers, Connection, Dialects, SigningAlgorithms
from smbprotocol.open import (
    CreateDisposition, CreateOptions, FileAttributes, FilePipePrinterAccessMask, ImpersonationLevel,
    Open, ShareAccess,
)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect


def _connect(server, cipher=None, signing=None, dialect=Dialects.SMB_3_1_1,
             user="alice", password="alice-pw", require_encryption=True):
    conn = Connection(uuid.uuid4(), "127.0.0.1", server.port, require_signing=True)
    conn.connect(dialect=dialect, timeout=15,
                 preferred_encryption_algos=[cipher] if cipher else None,
                 preferred_signing_algos=[signing] if signing else None)
    session = Session(conn, user, password, require_encryption=require_encryption,
                      auth_protocol="ntlm")
    session.connect()
    return conn, session


def _roundtrip(server, session, name, data):
    tree = TreeConnect(session, rf"\\127.0.0.1\share")
    tree.connect()
    f = Open(tree, name)
    f.create(ImpersonationLevel.Impersonation,
             FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE,
             FileAttributes.FILE_ATTRIBUTE_NORMAL, ShareAccess.FILE_SHARE_READ,
             CreateDisposition.FILE_OVERWRITE_IF, CreateOptions.FILE_NON_DIRECTORY_FILE)
    f.write(data, 0)
    back = f.read(0, len(data))
    f.close()
    tree.disconnect()
    assert back == data
    assert (server.shares["share"] / name).read_bytes() == data


@pytest.mark.parametrize("cipher", [Ciphers.AES_128_GCM, Ciphers.AES_256_GCM,
                                    Ciphers.AES_128_CCM, Ciphers.AES_256_CCM])
def test_encrypted_session(server, cipher):
    conn, session = _connect(server, cipher=cipher)
    try:
        assert conn.cipher_id == cipher
        assert session.encrypt_data
        _roundtrip(server, session, f"enc-{int(cipher)}.bin", os.urandom(200_000))
    finally:
        session.disconnect()
        conn.disconnect()


@pytest.mark.parametrize("signing", [SigningAlgorithms.HMAC_SHA256, SigningAlgorithms.AES_CMAC,
                                     SigningAlgorithms.AES_GMAC])
def test_signed_session(server, signing):
    conn, session = _connect(server, signing=signing, require_encryption=False)
    try:
        assert session.signing_required
        _roundtrip(server, session, f"signed-{int(signing)}.bin", os.urandom(70_000))
    finally:
        session.disconnect()
        conn.disconnect()


@pytest.mark.parametrize("dialect", [Dialects.SMB_2_0_2, Dialects.SMB_2_1_0, Dialects.SMB_3_0_0,
                                     Dialects.SMB_3_0_2])
def test_older_dialects(server, dialect):
    conn, session = _connect(server, dialect=dialect, require_encryption=False)
    try:
        assert conn.dialect == dialect
        _roundtrip(server, session, f"d-{int(dialect):x}.bin", os.urandom(50_000))
    finally:
        session.disconnect()
        conn.disconnect()


def test_high_level_api(server):
    import smbclient
    smbclient.ClientConfig(username="alice", password="alice-pw")
    base = rf"\\127.0.0.1\share"
    kwargs = {"port": server.port, "encrypt": True, "connection_cache": {}}
    cache = kwargs["connection_cache"]
    try:
        smbclient.register_session("127.0.0.1", username="alice", password="alice-pw",
                                   port=server.port, encrypt=True, connection_cache=cache)
        smbclient.mkdir(base + r"\dir", port=server.port, connection_cache=cache)
        with smbclient.open_file(base + r"\dir\f.txt", mode="w", port=server.port,
                                 connection_cache=cache) as fd:
            fd.write("hello world")
        assert smbclient.listdir(base + r"\dir", port=server.port,
                                 connection_cache=cache) == ["f.txt"]
        st = smbclient.stat(base + r"\dir\f.txt", port=server.port, connection_cache=cache)
        assert st.st_size == 11
        smbclient.rename(base + r"\dir\f.txt", base + r"\dir\g.txt", port=server.port,
                         connection_cache=cache)
        with smbclient.open_file(base + r"\dir\g.txt", port=server.port,
                                 connection_cache=cache) as fd:
            assert fd.read() == "hello world"
        smbclient.remove(base + r"\dir\g.txt", port=server.port, connection_cache=cache)
        smbclient.rmdir(base + r"\dir", port=server.port, connection_cache=cache)
        assert not (server.shares["share"] / "dir").exists()
    finally:
        smbclient.reset_connection_cache(connection_cache=cache)

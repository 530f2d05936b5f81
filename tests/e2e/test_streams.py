"""Named streams and EAs end to end: the smbprotocol client and Debian's smbclient."""

import os
import uuid

import pytest
from smbprotocol.connection import Connection
from smbprotocol.exceptions import SMBResponseException
from smbprotocol.file_info import FileStreamInformation
from smbprotocol.open import (
    CreateDisposition, FileAttributes, FilePipePrinterAccessMask, ImpersonationLevel, Open,
    ShareAccess, SMB2QueryInfoRequest, SMB2QueryInfoResponse,
)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

from .smbclient_tool import output, smbclient

STATUS_OBJECT_NAME_INVALID = 0xC0000033
STATUS_OBJECT_PATH_SYNTAX_BAD = 0xC000003B


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


def _open(tree, name, disposition=CreateDisposition.FILE_OPEN_IF):
    f = Open(tree, name)
    f.create(ImpersonationLevel.Impersonation,
             FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE,
             FileAttributes.FILE_ATTRIBUTE_NORMAL,
             ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE, disposition, 0)
    return f


def _stream_names(f) -> list[tuple[str, int]]:
    """QUERY_INFO FileStreamInformation through smbprotocol's own structures."""
    req = SMB2QueryInfoRequest()
    req["info_type"] = FileStreamInformation.INFO_TYPE
    req["file_info_class"] = FileStreamInformation.INFO_CLASS
    req["file_id"] = f.file_id
    req["output_buffer_length"] = 4096
    tc = f.tree_connect
    request = f.connection.send(req, tc.session.session_id, tc.tree_connect_id)
    resp = SMB2QueryInfoResponse()
    resp.unpack(f.connection.receive(request)["data"].get_value())
    info = resp.parse_buffer(FileStreamInformation)
    return sorted((e["stream_name"].get_value(), e["stream_size"].get_value()) for e in info)


def test_stream_write_read_list(server, tree):
    s1 = _open(tree, "file.txt:s1")
    s1.write(b"first stream", 0)
    s2 = _open(tree, "file.txt:Second:$DATA")
    s2.write(b"2", 0)
    base = _open(tree, "file.txt")
    base.write(b"default data", 0)
    assert s1.read(0, 100) == b"first stream"
    assert _stream_names(base) == [("::$DATA", 12), (":Second:$DATA", 1), (":s1:$DATA", 12)]
    for f in (s1, s2, base):
        f.close()
    again = _open(tree, "FILE.TXT:S1", CreateDisposition.FILE_OPEN)
    assert again.read(0, 100) == b"first stream"
    again.close()
    on_disk = server.shares["share"] / "file.txt"
    assert on_disk.read_bytes() == b"default data"
    assert os.getxattr(on_disk, "user.DosStream.s1:$DATA") == b"first stream\x00"
    # the stream never becomes a file of its own
    assert sorted(os.listdir(server.shares["share"])) == ["file.txt"]


@pytest.mark.parametrize("name,status", [
    (r"..\outside.txt:s", STATUS_OBJECT_PATH_SYNTAX_BAD),
    (r"file.txt:..\..\x", STATUS_OBJECT_NAME_INVALID),
    (r"file.txt:a/b", STATUS_OBJECT_NAME_INVALID),
    (r"file.txt:s:$FOO", STATUS_OBJECT_NAME_INVALID),
])
def test_stream_names_never_become_paths(server, tree, name, status):
    with pytest.raises(SMBResponseException) as err:
        _open(tree, name, CreateDisposition.FILE_CREATE)
    assert err.value.status == status
    assert os.listdir(server.shares["share"]) == []
    assert not (server.root / "shares" / "outside.txt").exists()  # nothing beside the share


def test_smbclient_put_get_allinfo(server, tmp_path):
    local = tmp_path / "local.txt"
    local.write_bytes(b"stream via smbclient")
    back = tmp_path / "back.txt"
    result = smbclient(server.port, "share",
                       f'put {local} f.txt; put {local} "f.txt:alt"; '
                       f'get "f.txt:alt" {back}; allinfo f.txt')
    text = output(result)
    assert "[:alt:$DATA]" in text, text
    assert back.read_bytes() == b"stream via smbclient"
    assert (server.shares["share"] / "f.txt").read_bytes() == b"stream via smbclient"


def test_eas_through_smbprotocol_xattr_api(server):
    """smbprotocol's getxattr/setxattr speak FileFullEaInformation (SET_INFO/QUERY_INFO)."""
    import smbclient
    smbclient.register_session("127.0.0.1", username="alice", password="alice-pw",
                               port=server.port, auth_protocol="ntlm")
    try:
        unc = r"\\127.0.0.1\share\ea.txt"
        with smbclient.open_file(unc, mode="wb", port=server.port) as f:
            f.write(b"x")
        smbclient.setxattr(unc, b"MyAttr", b"value one", port=server.port)
        # names come back upper-cased, as from NTFS (this client compares them exactly)
        assert smbclient.getxattr(unc, b"MYATTR", port=server.port) == b"value one"
        assert smbclient.listxattr(unc, port=server.port) == [b"MYATTR"]
        on_disk = server.shares["share"] / "ea.txt"
        assert os.getxattr(on_disk, "user.MYATTR") == b"value one"
        smbclient.removexattr(unc, b"MYATTR", port=server.port)
        assert smbclient.listxattr(unc, port=server.port) == []
        # our internal xattrs are no EAs
        assert "user.DOSATTRIB" in os.listxattr(on_disk)
    finally:
        smbclient.reset_connection_cache()

"""IOCTLs end to end with the Python smbprotocol/smbclient client: server-side copy
(smbclient.copyfile uses FSCTL_SRV_REQUEST_RESUME_KEY + FSCTL_SRV_COPYCHUNK_WRITE), the sparse
FSCTLs, and FSCTL_PIPE_TRANSCEIVE on IPC$ with a response larger than MaxOutputResponse."""

from __future__ import annotations

import os
import struct
import uuid

import pytest
import smbclient
from smbprotocol.connection import Connection
from smbprotocol.exceptions import SMBResponseException
from smbprotocol.ioctl import IOCTLFlags, SMB2IOCTLRequest, SMB2IOCTLResponse
from smbprotocol.open import (
    CreateDisposition, FileAttributes, FilePipePrinterAccessMask,
    ImpersonationLevel, Open, ShareAccess,
)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

FSCTL_PIPE_TRANSCEIVE = 0x0011C017
FSCTL_SET_SPARSE = 0x000900C4
FSCTL_SET_ZERO_DATA = 0x000980C8
FSCTL_QUERY_ALLOCATED_RANGES = 0x000940CF
FILE_ATTRIBUTE_SPARSE_FILE = 0x200
STATUS_BUFFER_OVERFLOW = 0x80000005
UNIT = 64 * 1024


@pytest.fixture
def client(server):
    smbclient.register_session("127.0.0.1", username="alice", password="alice-pw",
                               port=server.port, auth_protocol="ntlm")
    yield rf"\\127.0.0.1\share"
    smbclient.reset_connection_cache()


def test_copyfile_is_server_side(server, client):
    data = os.urandom(3 * (1 << 20) + 12345)
    (server.shares["share"] / "big.bin").write_bytes(data)
    smbclient.copyfile(client + r"\big.bin", client + r"\copy.bin", port=server.port)
    assert (server.shares["share"] / "copy.bin").read_bytes() == data


def _connect(server, share):
    conn = Connection(uuid.uuid4(), "127.0.0.1", server.port)
    conn.connect(timeout=15)
    session = Session(conn, "alice", "alice-pw", auth_protocol="ntlm")
    session.connect()
    tree = TreeConnect(session, rf"\\127.0.0.1\{share}")
    tree.connect()
    return conn, session, tree


def _open(tree, name, access, disposition=CreateDisposition.FILE_OPEN, options=0):
    f = Open(tree, name)
    f.create(ImpersonationLevel.Impersonation, access, FileAttributes.FILE_ATTRIBUTE_NORMAL,
             ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE, disposition, options)
    return f


def _ioctl(conn, session, tree, f, ctl, data=b"", max_out=1024):
    """(status, output) of one FSCTL."""
    req = SMB2IOCTLRequest()
    req["ctl_code"] = ctl
    req["file_id"] = f.file_id
    req["max_output_response"] = max_out
    req["flags"] = IOCTLFlags.SMB2_0_IOCTL_IS_FSCTL
    req["buffer"] = data
    request = conn.send(req, sid=session.session_id, tid=tree.tree_connect_id)
    try:
        response = conn.receive(request)
    except SMBResponseException as exc:
        response = exc.header
        if not response["data"].get_value()[:2] == b"\x31\x00":  # an error body, no output
            return exc.status, b""
    rsp = SMB2IOCTLResponse()
    rsp.unpack(response["data"].get_value())
    return response["status"].get_value(), rsp["buffer"].get_value()


def test_sparse_fsctls(server):
    (server.shares["share"] / "sparse.bin").write_bytes(os.urandom(4 * UNIT))
    conn, session, tree = _connect(server, "share")
    try:
        f = _open(tree, "sparse.bin", FilePipePrinterAccessMask.GENERIC_READ
                  | FilePipePrinterAccessMask.GENERIC_WRITE)
        assert _ioctl(conn, session, tree, f, FSCTL_SET_SPARSE, b"\x01")[0] == 0
        assert _ioctl(conn, session, tree, f, FSCTL_SET_ZERO_DATA,
                      struct.pack("<qq", UNIT, 2 * UNIT))[0] == 0
        status, out = _ioctl(conn, session, tree, f, FSCTL_QUERY_ALLOCATED_RANGES,
                             struct.pack("<qq", 0, 4 * UNIT))
        assert status == 0
        assert [struct.unpack_from("<qq", out, i) for i in range(0, len(out), 16)] == \
            [(0, UNIT), (2 * UNIT, 2 * UNIT)]
        assert f.read(UNIT, UNIT) == bytes(UNIT)
        f.close()
    finally:
        session.disconnect()
        conn.disconnect()
    attrs = smbclient.stat(rf"\\127.0.0.1\share\sparse.bin", username="alice",
                           password="alice-pw", port=server.port,
                           auth_protocol="ntlm").st_file_attributes
    smbclient.reset_connection_cache()
    assert attrs & FILE_ATTRIBUTE_SPARSE_FILE
    st = os.stat(server.shares["share"] / "sparse.bin")
    assert st.st_size == 4 * UNIT and st.st_blocks * 512 <= 3 * UNIT  # a real hole


def _bind_srvsvc() -> bytes:
    ctx = struct.pack("<HBB", 0, 1, 0) \
        + uuid.UUID("4b324fc8-1670-01d3-1278-5a47bf6ee188").bytes_le + struct.pack("<HH", 3, 0) \
        + uuid.UUID("8a885d04-1ceb-11c9-9fe8-08002b104860").bytes_le + struct.pack("<I", 2)
    body = struct.pack("<HHIB3x", 4280, 4280, 0, 1) + ctx
    return struct.pack("<BBBB4sHHI", 5, 0, 11, 3, b"\x10\0\0\0", 16 + len(body), 0, 1) + body


def test_pipe_transceive_overflow_rest_by_read(server):
    conn, session, tree = _connect(server, "IPC$")
    try:
        f = _open(tree, "srvsvc", FilePipePrinterAccessMask.GENERIC_READ
                  | FilePipePrinterAccessMask.GENERIC_WRITE)
        status, head = _ioctl(conn, session, tree, f, FSCTL_PIPE_TRANSCEIVE, _bind_srvsvc(),
                              max_out=24)
        assert status == STATUS_BUFFER_OVERFLOW and len(head) == 24
        assert head[2] == 12  # bind_ack
        frag_len = struct.unpack_from("<H", head, 8)[0]
        rest = f.read(0, 4280)
        assert len(head) + len(rest) == frag_len
        f.close()
    finally:
        session.disconnect()
        conn.disconnect()

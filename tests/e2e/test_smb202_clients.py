"""Clients that speak only SMB 2.0.2 (issue 10): an SMB1 multi-protocol NEGOTIATE offering
just "SMB 2.002", as Python/embedded SMB libraries, scan-to-folder printers and older media
players send it, is served with the default configuration, and refused (by closing the
connection, the server staying up) when the configured floor is SMB2_10."""

from __future__ import annotations

import io
import os
import socket
import struct

import pytest
from impacket.dcerpc.v5 import srvs, transport
from impacket.smb3structs import SMB2_DIALECT_002, SMB2_DIALECT_21
from impacket.smbconnection import SMBConnection

from . import harness

ONLY_202 = b"\x02SMB 2.002\x00"  # SMB1 dialect strings: 0x02 BufferFormat, name, NUL
SHARES = {
    "share": {"read_only": "no", "users": ["alice", "bob"]},
    "public": {"read_only": "no", "guest_ok": "yes"},
}
# Everything but the shares is left at its default: no server_min_protocol in globals.
DEFAULT_GLOBALS = "config globals\n\toption workgroup 'TESTGROUP'\n"
REFUSED = "SMB1 NEGOTIATE without an SMB2 dialect we serve"


def _config(root, globals_text: str) -> str:
    text = globals_text
    for name, opts in SHARES.items():
        path = root / "shares" / name
        path.mkdir(parents=True, exist_ok=True)
        text += harness.share_block(name, path, **opts)
    return text


def _start(tmp, globals_text: str) -> harness.ServerProcess:
    tmp.mkdir(parents=True, exist_ok=True)
    srv = harness.start_server(tmp, config_text=_config(tmp, globals_text), log_level="debug")
    srv.shares = {name: tmp / "shares" / name for name in SHARES}
    return srv


def _stop(srv: harness.ServerProcess) -> None:
    code = srv.stop()
    assert code == 0, f"server did not stop cleanly ({code}):\n{srv.log()}"
    assert "Traceback" not in srv.log(), srv.log()


@pytest.fixture(scope="module")
def default_server(tmp_path_factory):
    srv = _start(tmp_path_factory.mktemp("smb202"), DEFAULT_GLOBALS)
    yield srv
    _stop(srv)


@pytest.fixture
def floor_210_server(tmp_path):
    srv = _start(tmp_path / "srv", DEFAULT_GLOBALS + "\toption server_min_protocol 'SMB2_10'\n")
    yield srv
    _stop(srv)


def smb1_negotiate(port: int, names: bytes) -> bytes | None:
    """Send one SMB1 NEGOTIATE offering `names`; the SMB2 response (without its 4-byte
    transport header), or None if the server closed the connection instead."""
    smb1 = (b"\xffSMB" + bytes([0x72]) + bytes(4)            # Protocol, Command, Status
            + bytes([0x18]) + struct.pack("<H", 0xC843)       # Flags, Flags2
            + bytes(12) + struct.pack("<HHHH", 0, 0xFEFF, 0, 0)  # ..., Tid, PidLow, Uid, Mid
            + b"\x00" + struct.pack("<H", len(names)) + names)  # WordCount 0, ByteCount
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(struct.pack(">I", len(smb1)) + smb1)
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            data += chunk
        return data[4:]


def connect_202(port: int) -> SMBConnection:
    """impacket, made to send an SMB1 NEGOTIATE offering only "SMB 2.002"."""
    conn = SMBConnection("127.0.0.1", "127.0.0.1", sess_port=port, timeout=15,
                         manualNegotiate=True)
    conn.negotiateSession(negoData=ONLY_202)
    return conn


def test_raw_smb1_negotiate_offering_only_202_gets_0x0202(default_server):
    resp = smb1_negotiate(default_server.port, ONLY_202)
    assert resp is not None, default_server.log()
    assert resp[:4] == b"\xfeSMB"
    assert struct.unpack_from("<I", resp, 8)[0] == 0  # STATUS_SUCCESS
    size, _, dialect = struct.unpack_from("<HHH", resp, 64)
    assert (size, dialect) == (65, 0x0202)
    # 2.0.2 has no multi-credit I/O: every maximum is 64 KiB
    assert struct.unpack_from("<III", resp, 64 + 28) == (65536, 65536, 65536)


def _file_round_trip(conn: SMBConnection, share: str, disk) -> None:
    data = os.urandom(200_003)  # several 64 KiB READs and WRITEs
    conn.putFile(share, "from-202.bin", io.BytesIO(data).read)
    assert (disk / "from-202.bin").read_bytes() == data
    names = {f.get_longname(): f.get_filesize() for f in conn.listPath(share, "*")}
    assert names.get("from-202.bin") == len(data)
    out = io.BytesIO()
    conn.getFile(share, "from-202.bin", out.write)
    assert out.getvalue() == data
    conn.deleteFile(share, "from-202.bin")
    assert not (disk / "from-202.bin").exists()


def _netshareenum(conn: SMBConnection, port: int) -> set[str]:
    rpc = transport.SMBTransport("127.0.0.1", port, filename=r"\srvsvc", smb_connection=conn)
    dce = rpc.get_dce_rpc()
    dce.connect()
    try:
        dce.bind(srvs.MSRPC_UUID_SRVS)
        shares = srvs.hNetrShareEnum(dce, 1)["InfoStruct"]["ShareInfo"]["Level1"]["Buffer"]
        return {s["shi1_netname"][:-1] for s in shares}
    finally:
        dce.disconnect()


def test_smb202_only_client_with_default_config(default_server):
    srv = default_server
    conn = connect_202(srv.port)
    try:
        assert conn.getDialect() == SMB2_DIALECT_002
        conn.login("alice", "alice-pw")
        _file_round_trip(conn, "share", srv.shares["share"])
        assert {s["shi1_netname"][:-1] for s in conn.listShares()} == {"share", "public", "IPC$"}
        assert _netshareenum(conn, srv.port) == {"share", "public", "IPC$"}
    finally:
        conn.close()
    log = srv.log()
    assert "SMB1 negotiate upgraded to 0x0202" in log
    assert REFUSED not in log


def test_smb202_only_guest_with_default_config(default_server):
    srv = default_server
    conn = connect_202(srv.port)
    try:
        assert conn.getDialect() == SMB2_DIALECT_002
        conn.login("visitor", "whatever")  # map_to_guest bad_user: an unknown user is a guest
        assert conn.isGuestSession()
        _file_round_trip(conn, "public", srv.shares["public"])
        assert {s["shi1_netname"][:-1] for s in conn.listShares()} == {"share", "public", "IPC$"}
    finally:
        conn.close()


def test_floor_smb2_10_refuses_smb202_only_client_cleanly(floor_210_server):
    srv = floor_210_server
    # On the wire: no response, the connection is closed.
    assert smb1_negotiate(srv.port, ONLY_202) is None
    # impacket sees no answer (it retries once on a new connection, then gives up).
    with pytest.raises(Exception):
        connect_202(srv.port)
    assert srv.log().count(REFUSED) >= 2
    assert srv.alive()
    # The server still serves clients that offer SMB 2.1 or later.
    assert smb1_negotiate(srv.port, ONLY_202 + b"\x02SMB 2.???\x00")[68:70] == b"\xff\x02"
    conn = SMBConnection("127.0.0.1", "127.0.0.1", sess_port=srv.port, timeout=15,
                         preferredDialect=SMB2_DIALECT_21)
    try:
        conn.login("alice", "alice-pw")
        assert conn.listPath("share", "*")
    finally:
        conn.close()

"""Share listing over IPC$ named pipes (srvsvc, wkssvc): smbclient -L and impacket."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from impacket.dcerpc.v5 import srvs, transport, wkst
from impacket.smb3structs import SMB2_DIALECT_002, SMB2_DIALECT_21, SMB2_DIALECT_30
from impacket.smbconnection import SessionError, SMBConnection

from . import harness
from .smbclient_tool import output

SHARES = {
    "share": {"read_only": "no", "users": ["alice", "bob"], "comment": "Main share"},
    "public": {"read_only": "no", "guest_ok": "yes"},
    "secret": {"read_only": "no", "browseable": "no", "comment": "not listed"},
}
LISTED = {"share", "public", "IPC$"}
_SHARE_LINE = re.compile(r"^\s+(\S+)\s+(Disk|IPC|Printer)\b\s*(.*)$")


@pytest.fixture(scope="module")
def listing_server(tmp_path_factory):
    # this module's servers listen on 4700-4799
    harness._next_port[0] = 4700 + (os.getpid() % 10) * 10
    srv = harness.start_server(tmp_path_factory.mktemp("listing"), shares=SHARES)
    assert 4700 <= srv.port <= 4799
    yield srv
    code = srv.stop()
    assert code == 0, f"server did not stop cleanly ({code}):\n{srv.log()}"
    assert "Traceback" not in srv.log(), srv.log()


def smbclient_list(port: int, *auth: str, dialect: str | None = None) -> dict[str, tuple]:
    args = ["smbclient", "-L", "//127.0.0.1", "-p", str(port), "--configfile=/dev/null",
            *auth]
    if dialect:
        args += [f"--option=client min protocol={dialect}",
                 f"--option=client max protocol={dialect}"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    text = output(result)
    assert result.returncode == 0, text
    shares = {}
    for line in result.stdout.splitlines():
        m = _SHARE_LINE.match(line)
        if m and m.group(1) != "Sharename":
            shares[m.group(1)] = (m.group(2), m.group(3).strip())
    assert shares, text
    return shares


@pytest.mark.parametrize("auth", [("-U", "alice%alice-pw"), ("-N",)], ids=["user", "guest"])
def test_smbclient_lists_browseable_shares(listing_server, auth):
    shares = smbclient_list(listing_server.port, *auth)
    assert set(shares) == LISTED
    assert shares["share"] == ("Disk", "Main share")
    assert shares["public"] == ("Disk", "")
    assert shares["IPC$"][0] == "IPC"


@pytest.mark.parametrize("dialect", ["SMB2_02", "SMB3_00"])
def test_smbclient_list_other_dialects(listing_server, dialect):
    assert set(smbclient_list(listing_server.port, "-U", "alice%alice-pw",
                              dialect=dialect)) == LISTED


def _login(port: int, user: str, password: str, dialect=None) -> SMBConnection:
    conn = SMBConnection("127.0.0.1", "127.0.0.1", sess_port=port, preferredDialect=dialect,
                         timeout=15)
    conn.login(user, password)
    return conn


@pytest.mark.parametrize("dialect", [SMB2_DIALECT_002, SMB2_DIALECT_21, SMB2_DIALECT_30])
def test_impacket_list_shares(listing_server, dialect):
    conn = _login(listing_server.port, "alice", "alice-pw", dialect)
    try:
        names = {s["shi1_netname"][:-1] for s in conn.listShares()}
        assert names == LISTED
    finally:
        conn.close()


def test_impacket_list_shares_anonymous(listing_server):
    conn = _login(listing_server.port, "", "")
    try:
        assert {s["shi1_netname"][:-1] for s in conn.listShares()} == LISTED
    finally:
        conn.close()


def _dce(conn: SMBConnection, port: int, pipe: str, iface):
    """A DCE/RPC binding over the logged-in SMB connection's IPC$ pipe `pipe`."""
    rpc = transport.SMBTransport("127.0.0.1", port, filename=pipe, smb_connection=conn)
    dce = rpc.get_dce_rpc()
    dce.connect()
    dce.bind(iface)
    return dce


def test_impacket_srvsvc_and_wkssvc_calls(listing_server):
    conn = _login(listing_server.port, "alice", "alice-pw")
    try:
        dce = _dce(conn, listing_server.port, r"\srvsvc", srvs.MSRPC_UUID_SRVS)
        info = srvs.hNetrShareGetInfo(dce, "secret\x00", 2)["InfoStruct"]["ShareInfo2"]
        assert info["shi2_netname"][:-1] == "secret"  # hidden, but GetInfo answers
        assert info["shi2_remark"][:-1] == "not listed"
        with pytest.raises(srvs.DCERPCSessionError) as err:
            srvs.hNetrShareGetInfo(dce, "nosuch\x00", 1)
        assert err.value.get_error_code() == 2310
        server = srvs.hNetrServerGetInfo(dce, 101)["InfoStruct"]["ServerInfo101"]
        assert server["sv101_platform_id"] == 500
        assert server["sv101_comment"][:-1] == "Ksmbd on OpenWrt"
        for level in (0, 1, 2, 501, 502):
            resp = srvs.hNetrShareEnum(dce, level)
            buf = resp["InfoStruct"]["ShareInfo"]["Level%d" % level]["Buffer"]
            assert {e["shi%d_netname" % level][:-1] for e in buf} == LISTED
        dce.disconnect()

        dce = _dce(conn, listing_server.port, r"\wkssvc", wkst.MSRPC_UUID_WKST)
        info = wkst.hNetrWkstaGetInfo(dce, 100)["WkstaInfo"]["WkstaInfo100"]
        assert info["wki100_langroup"][:-1] == "TESTGROUP"
        assert info["wki100_platform_id"] == 500
        assert (info["wki100_ver_major"], info["wki100_ver_minor"]) == (6, 1)
        dce.disconnect()
    finally:
        conn.close()


def test_unknown_pipe_is_not_found(listing_server):
    conn = _login(listing_server.port, "alice", "alice-pw")
    try:
        tid = conn.connectTree("IPC$")
        with pytest.raises(SessionError) as err:
            conn.openFile(tid, "\\lsarpc")
        assert "STATUS_OBJECT_NAME_NOT_FOUND" in str(err.value)
        fid = conn.openFile(tid, "\\SRVSVC")  # any case
        conn.closeFile(tid, fid)
        conn.disconnectTree(tid)
    finally:
        conn.close()

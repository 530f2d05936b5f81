"""srvsvc and wkssvc over an RpcPipe, with impacket's DCE/RPC client as the independent peer.

impacket's DCERPC_v5 runs over a transport that writes to and reads from the RpcPipe the way
impacket's SMBTransport does over SMB2 WRITE/READ, so its own bind, request fragmentation,
response reassembly and NDR decoding check ours.
"""

from __future__ import annotations

import struct
import uuid
from types import SimpleNamespace

import pytest

from impacket.dcerpc.v5 import srvs, wkst
from impacket.dcerpc.v5.rpcrt import DCERPC_v5, DCERPCException, MSRPCBindAck
from impacket.dcerpc.v5.transport import DCERPCTransport
from impacket.uuid import uuidtup_to_bin

from ksmbd_embedded.config import GlobalConfig, ServerConfig, ShareConfig
from ksmbd_embedded.rpc import pdu, pipe_name
from ksmbd_embedded.rpc.pipe import STATUS_PIPE_EMPTY, RpcPipe
from ksmbd_embedded.status import STATUS_BUFFER_OVERFLOW, STATUS_SUCCESS


def make_server(shares=None):
    if shares is None:
        shares = (
            ShareConfig(name="share", path="/mnt/data", comment="Main share"),
            ShareConfig(name="public", path="/srv/public", guest_ok=True),
            ShareConfig(name="secret", path="/srv/secret", comment="hidden", browseable=False),
        )
    config = ServerConfig(globals=GlobalConfig(workgroup="TESTGROUP", description="Router NAS",
                                               netbios_name="ROUTER"), shares=tuple(shares))
    return SimpleNamespace(config=config, sessions={})


class PipeTransport(DCERPCTransport):
    """impacket transport over an RpcPipe: every recv is one pipe READ of `read_size`."""

    def __init__(self, pipe: RpcPipe, read_size: int = 4280) -> None:
        super().__init__("127.0.0.1", 0)
        self.pipe = pipe
        self.read_size = read_size
        self.statuses: list[int] = []

    def connect(self):
        return 1

    def disconnect(self):
        return 1

    def send(self, data, forceWriteAndx=0, forceRecv=0):
        assert self.pipe.write(memoryview(data)) == len(data)

    def recv(self, forceRecv=0, count=0):
        status, data = self.pipe.read(self.read_size)
        self.statuses.append(status)
        assert status in (STATUS_SUCCESS, STATUS_BUFFER_OVERFLOW), hex(status)
        return bytes(data)


USER = SimpleNamespace(is_guest=False, is_anonymous=False)
GUEST = SimpleNamespace(is_guest=True, is_anonymous=False)


def connect(name: str, iface, server=None, read_size: int = 4280, session=USER):
    server = server or make_server()
    p = RpcPipe(name, server, session)
    transport = PipeTransport(p, read_size)
    dce = DCERPC_v5(transport)
    dce.connect()
    dce.bind(iface)
    return dce, transport, p


def names(resp, level):
    return [e["shi%d_netname" % level][:-1]
            for e in resp["InfoStruct"]["ShareInfo"]["Level%d" % level]["Buffer"]]


def test_pipe_names():
    assert pipe_name("srvsvc") == "srvsvc"
    assert pipe_name("\\SRVSVC") == "srvsvc"
    assert pipe_name("\\PIPE\\srvsvc") == "srvsvc"
    assert pipe_name("wkssvc") == "wkssvc"
    assert pipe_name("lsarpc") is None
    assert pipe_name("") is None


def test_bind_and_share_enum_level_1():
    dce, _, _ = connect("srvsvc", srvs.MSRPC_UUID_SRVS)
    resp = srvs.hNetrShareEnum(dce, 1)
    entries = resp["InfoStruct"]["ShareInfo"]["Level1"]["Buffer"]
    got = [(e["shi1_netname"][:-1], e["shi1_type"], e["shi1_remark"][:-1]) for e in entries]
    assert got == [("share", 0, "Main share"), ("public", 0, ""),
                   ("IPC$", 0x80000003, "IPC Service (Router NAS)")]
    assert resp["TotalEntries"] == 3
    assert resp["ErrorCode"] == 0


@pytest.mark.parametrize("level", [0, 1, 2, 501, 502])
def test_share_enum_levels(level):
    dce, _, _ = connect("srvsvc", srvs.MSRPC_UUID_SRVS)
    resp = srvs.hNetrShareEnum(dce, level)
    assert names(resp, level) == ["share", "public", "IPC$"]
    first = resp["InfoStruct"]["ShareInfo"]["Level%d" % level]["Buffer"][0]
    if level in (2, 502):
        assert first["shi%d_path" % level][:-1] == "C:\\mnt\\data"
        assert first["shi%d_max_uses" % level] == 0xFFFFFFFF
    if level == 502:
        assert first["shi502_security_descriptor"] == b"" or \
            not first["shi502_security_descriptor"]
    if level == 501:
        ipc = resp["InfoStruct"]["ShareInfo"]["Level501"]["Buffer"][2]
        assert ipc["shi501_flags"] == 0x30


def test_share_enum_sticky_and_unknown_level():
    dce, _, _ = connect("srvsvc", srvs.MSRPC_UUID_SRVS)
    resp = srvs.hNetrShareEnumSticky(dce, 1)
    assert names(resp, 1) == ["share", "public", "IPC$"]
    # impacket cannot encode an unknown level: ServerName NULL, Level 3, tag 3, an empty
    # container, PreferedMaximumLength, ResumeHandle NULL
    dce.call(15, struct.pack("<IIIIIIII", 0, 3, 3, 0x20000, 0, 0, 0xFFFFFFFF, 0))
    answer = dce.recv()
    assert struct.unpack("<IIIIII", answer) == (3, 3, 0, 0, 0, 124)  # ERROR_INVALID_LEVEL


def test_share_get_info():
    dce, _, _ = connect("srvsvc", srvs.MSRPC_UUID_SRVS)
    resp = srvs.hNetrShareGetInfo(dce, "secret\x00", 1)  # hidden, but it answers
    info = resp["InfoStruct"]["ShareInfo1"]
    assert info["shi1_netname"][:-1] == "secret"
    assert info["shi1_remark"][:-1] == "hidden"
    resp = srvs.hNetrShareGetInfo(dce, "ipc$\x00", 2)
    assert resp["InfoStruct"]["ShareInfo2"]["shi2_type"] == 0x80000003
    resp = srvs.hNetrShareGetInfo(dce, "SHARE\x00", 502)
    assert resp["InfoStruct"]["ShareInfo502"]["shi502_path"][:-1] == "C:\\mnt\\data"
    resp = srvs.hNetrShareGetInfo(dce, "share\x00", 1005)
    assert resp["InfoStruct"]["ShareInfo1005"]["shi1005_flags"] == 0
    with pytest.raises(DCERPCException) as err:
        srvs.hNetrShareGetInfo(dce, "nosuch\x00", 1)
    assert err.value.get_error_code() == 2310  # NERR_NetNameNotFound
    with pytest.raises(DCERPCException) as err:
        srvs.hNetrShareGetInfo(dce, "share\x00", 7)
    assert err.value.get_error_code() == 124


def test_server_get_info():
    dce, _, _ = connect("srvsvc", srvs.MSRPC_UUID_SRVS)
    info = srvs.hNetrServerGetInfo(dce, 101)["InfoStruct"]["ServerInfo101"]
    assert info["sv101_platform_id"] == 500
    assert info["sv101_name"][:-1] == "ROUTER"
    assert (info["sv101_version_major"], info["sv101_version_minor"]) == (6, 1)
    assert info["sv101_type"] & 0x8003 == 0x8003  # WORKSTATION | SERVER | SERVER_NT
    assert info["sv101_comment"][:-1] == "Router NAS"
    info = srvs.hNetrServerGetInfo(dce, 100)["InfoStruct"]["ServerInfo100"]
    assert info["sv100_name"][:-1] == "ROUTER"
    info = srvs.hNetrServerGetInfo(dce, 102)["InfoStruct"]["ServerInfo102"]
    assert info["sv102_comment"][:-1] == "Router NAS"
    assert info["sv102_userpath"][:-1] == "C:\\"
    with pytest.raises(DCERPCException) as err:
        srvs.hNetrServerGetInfo(dce, 103)
    assert err.value.get_error_code() == 124


@pytest.mark.parametrize("level", [100, 101, 102])
def test_wksta_get_info(level):
    dce, _, _ = connect("\\PIPE\\wkssvc", wkst.MSRPC_UUID_WKST)
    info = wkst.hNetrWkstaGetInfo(dce, level)["WkstaInfo"]["WkstaInfo%d" % level]
    assert info["wki%d_platform_id" % level] == 500
    assert info["wki%d_computername" % level][:-1] == "ROUTER"
    assert info["wki%d_langroup" % level][:-1] == "TESTGROUP"
    assert info["wki%d_ver_major" % level] == 6
    assert info["wki%d_ver_minor" % level] == 1


def test_wksta_unknown_opnum_faults():
    dce, _, _ = connect("wkssvc", wkst.MSRPC_UUID_WKST)
    with pytest.raises(DCERPCException) as err:
        dce.request(wkst.NetrWkstaUserEnum())  # opnum 2: not served
    assert "nca_s_op_rng_error" in str(err.value)


def test_wrong_interface_is_rejected():
    """Binding srvsvc's pipe to wkssvc's interface: provider rejection,
    abstract syntax not supported."""
    with pytest.raises(DCERPCException):
        connect("srvsvc", wkst.MSRPC_UUID_WKST)


def test_large_response_is_fragmented_and_read_in_pieces():
    shares = [ShareConfig(name=f"share{i:03d}", path=f"/mnt/disk{i}", comment="x" * 40)
              for i in range(120)]
    # impacket reads 1000 bytes at a time: fragments of 4280 arrive over several READs
    dce, transport, _ = connect("srvsvc", srvs.MSRPC_UUID_SRVS, make_server(shares), 1000)
    transport.statuses.clear()
    resp = srvs.hNetrShareEnum(dce, 2)
    assert names(resp, 2) == [f"share{i:03d}" for i in range(120)] + ["IPC$"]
    assert STATUS_BUFFER_OVERFLOW in transport.statuses


def test_fragmented_request_is_reassembled():
    long_name = "a-rather-long-share-name-that-needs-several-fragments"
    server = make_server([ShareConfig(name=long_name, path="/mnt/x", comment="long")])
    dce, _, _ = connect("srvsvc", srvs.MSRPC_UUID_SRVS, server)
    dce.set_max_fragment_size(40)  # impacket now splits each request into small fragments
    resp = srvs.hNetrShareGetInfo(dce, long_name + "\x00", 1)
    assert resp["InfoStruct"]["ShareInfo1"]["shi1_remark"][:-1] == "long"


# -- raw PDUs ------------------------------------------------------------------------------------

NDR20 = uuidtup_to_bin(("8a885d04-1ceb-11c9-9fe8-08002b104860", "2.0"))
NDR64 = uuidtup_to_bin(("71710533-beba-4937-8319-b5dbef9ccc36", "1.0"))
BTFN = uuid.UUID("6cb71c2c-9812-4540-0300-000000000000").bytes_le + b"\x01\x00\x00\x00"


def raw_bind(contexts, ptype=pdu.BIND, max_frag=4280, call_id=1):
    body = struct.pack("<HHIB3x", max_frag, max_frag, 0, len(contexts))
    for ctx_id, abstract, syntaxes in contexts:
        body += struct.pack("<HB1x", ctx_id, len(syntaxes)) + abstract + b"".join(syntaxes)
    return struct.pack("<BBBB4sHHI", 5, 0, ptype, 3, pdu.DREP_LE, 16 + len(body), 0,
                       call_id) + body


def test_bind_results_ndr64_and_feature_negotiation():
    """Windows clients offer NDR64 and bind-time feature negotiation in extra contexts:
    NDR 2.0 accepted, NDR64 provider rejection (transfer syntaxes not supported),
    feature negotiation negotiate_ack."""
    p = RpcPipe("srvsvc", make_server(), USER)
    p.write(memoryview(raw_bind([(0, srvs.MSRPC_UUID_SRVS, [NDR20]),
                                 (1, srvs.MSRPC_UUID_SRVS, [NDR64]),
                                 (2, srvs.MSRPC_UUID_SRVS, [BTFN])])))
    status, data = p.read(4280)
    assert status == STATUS_SUCCESS
    ack = MSRPCBindAck(data)
    assert ack["SecondaryAddr"] in ("\\PIPE\\srvsvc", "\\PIPE\\srvsvc\x00")
    assert ack["ctx_num"] == 3
    results = ack["ctx_items"]
    res = [struct.unpack_from("<HH", results, i * 24) for i in range(3)]
    assert res == [(0, 0), (2, 2), (3, 0)]
    assert results[4:24] == NDR20
    assert ack["max_tfrag"] == 4280
    # a read with nothing queued
    assert p.read(100) == (STATUS_PIPE_EMPTY, b"")


def test_alter_context_adds_a_context():
    p = RpcPipe("srvsvc", make_server(), USER)
    p.write(memoryview(raw_bind([(0, srvs.MSRPC_UUID_SRVS, [NDR64])])))
    _, data = p.read(4280)
    assert struct.unpack_from("<H", MSRPCBindAck(data)["ctx_items"], 0)[0] == 2
    p.write(memoryview(raw_bind([(1, srvs.MSRPC_UUID_SRVS, [NDR20])], ptype=pdu.ALTER_CONTEXT,
                                call_id=2)))
    _, data = p.read(4280)
    assert data[2] == pdu.ALTER_CONTEXT_RESP
    assert struct.unpack_from("<HH", data, 28) == (1, 0)  # one result
    assert struct.unpack_from("<H", data, 32)[0] == 0  # acceptance
    # a request on the unknown context 0 faults, on context 1 it is answered
    stub = struct.pack("<II", 0, 100)  # ServerName NULL, level 100
    for ctx_id, expect in ((0, pdu.FAULT), (1, pdu.RESPONSE)):
        req = struct.pack("<BBBB4sHHIIHH", 5, 0, pdu.REQUEST, 3, pdu.DREP_LE, 24 + len(stub), 0,
                          3, len(stub), ctx_id, 21) + stub
        p.write(memoryview(req))
        _, data = p.read(4280)
        assert data[2] == expect


def test_transceive_and_overflow_read():
    p = RpcPipe("srvsvc", make_server(), USER)
    status, data = p.transceive(memoryview(raw_bind([(0, srvs.MSRPC_UUID_SRVS, [NDR20])])), 30)
    assert status == STATUS_BUFFER_OVERFLOW and len(data) == 30
    assert p.pending() > 0
    status, rest = p.transceive(memoryview(b""), 4280)
    assert status != STATUS_SUCCESS  # unread data: the pipe is busy
    status, rest = p.read(4280)
    assert status == STATUS_SUCCESS
    MSRPCBindAck(data + rest)
    assert p.pending() == 0


def test_bind_with_auth_is_nakked():
    p = RpcPipe("srvsvc", make_server(), USER)
    raw = bytearray(raw_bind([(0, srvs.MSRPC_UUID_SRVS, [NDR20])]))
    raw += struct.pack("<BBBBI", 10, 2, 0, 0, 0) + b"\x00" * 16  # NTLM auth verifier
    struct.pack_into("<HH", raw, 8, len(raw), 16)
    p.write(memoryview(bytes(raw)))
    _, data = p.read(4280)
    assert data[2] == pdu.BIND_NAK


# -- the SMB2 handlers on an IPC$ pipe open ------------------------------------------------------

def _ipc_env(tmp_path):
    from info_fixtures import Env
    from ksmbd_embedded.tree import TreeConnect
    env = Env(tmp_path)
    ipc = TreeConnect(2, env.session, None, True, False, "")
    env.session.add_tree(ipc)
    env.tree = ipc
    return env


def _create_body(name: str, access: int = 0x0012019F) -> bytes:
    raw = name.encode("utf-16-le")
    body = struct.pack("<HBBIQQIIIIIHHII", 57, 0, 0, 2, 0, 0, access, 0, 3, 1, 0, 120, len(raw),
                       0, 0)
    return body + (raw or b"\x00")


def test_create_write_read_transceive_query_close_on_pipe(tmp_path):
    from info_fixtures import ioctl_body, query_body
    from ksmbd_embedded import header as h
    from ksmbd_embedded.handlers.close import handle_close
    from ksmbd_embedded.handlers.create import handle_create
    from ksmbd_embedded.handlers.ioctl import handle_ioctl
    from ksmbd_embedded.handlers.query_info import handle_query_info
    from ksmbd_embedded.handlers.read_write import handle_read, handle_write
    from ksmbd_embedded.status import STATUS_OBJECT_NAME_NOT_FOUND

    env = _ipc_env(tmp_path)
    for name in ("lsarpc", "", "srvsvc\\x", "..\\srvsvc"):
        assert env.call(handle_create, h.CREATE, _create_body(name))[0] == \
            STATUS_OBJECT_NAME_NOT_FOUND, name
    status, body = env.call(handle_create, h.CREATE, _create_body("\\PIPE\\SrvSvc"))
    assert status == STATUS_SUCCESS
    (_, _, _, action, _, _, _, _, alloc, eof, attrs, _, fid_p, fid_v, _, _) = \
        struct.unpack("<HBBIQQQQQQIIQQII", body)
    assert (action, eof, attrs) == (1, 0, 0x80)
    op = env.server.opens.get(fid_v)
    assert op.fd == -1 and op.pipe is not None and op.file_key is None

    # WRITE a bind, READ the bind_ack in two pieces (STATUS_BUFFER_OVERFLOW first)
    bind = raw_bind([(0, srvs.MSRPC_UUID_SRVS, [NDR20])])
    write = struct.pack("<HHIQQQIIHHI", 49, 112, len(bind), 0, fid_p, fid_v, 0, 0, 0, 0, 0)
    status, body = env.call(handle_write, h.WRITE, write + bind)
    assert status == STATUS_SUCCESS and struct.unpack_from("<I", body, 4)[0] == len(bind)
    read = struct.pack("<HBBIQQQIIIHH", 49, 0, 0, 20, 0, fid_p, fid_v, 0, 0, 0, 0, 0) + b"\x00"
    status, first = env.call(handle_read, h.READ, read)
    assert status == STATUS_BUFFER_OVERFLOW and len(first) == 16 + 20
    read = struct.pack("<HBBIQQQIIIHH", 49, 0, 0, 4280, 0, fid_p, fid_v, 0, 0, 0, 0, 0) + b"\0"
    status, rest = env.call(handle_read, h.READ, read)
    assert status == STATUS_SUCCESS
    ack = MSRPCBindAck(first[16:] + rest[16:])
    assert struct.unpack_from("<H", ack["ctx_items"], 0)[0] == 0

    # FSCTL_PIPE_TRANSCEIVE: NetrServerGetInfo level 100
    stub = struct.pack("<II", 0, 100)
    req = struct.pack("<BBBB4sHHIIHH", 5, 0, pdu.REQUEST, 3, pdu.DREP_LE, 24 + len(stub), 0, 2,
                      len(stub), 0, 21) + stub
    status, body = env.call(handle_ioctl, h.IOCTL, ioctl_body(0x0011C017, op, req, max_out=4280))
    assert status == STATUS_SUCCESS
    out_off, out_len = struct.unpack_from("<II", body, 32)
    out = body[out_off - 64:out_off - 64 + out_len]
    assert out[2] == pdu.RESPONSE
    assert out[-4:] == b"\x00\x00\x00\x00"  # WERR_OK
    assert "KSMBD SERVER".encode("utf-16-le") in out  # Env's default netbios name

    # QUERY_INFO on a pipe is refused cleanly (FileStandardInformation: STATUS_NOT_SUPPORTED,
    # query_info.py's answer for pipes until it serves them)
    status, _ = env.call(handle_query_info, h.QUERY_INFO, query_body(1, 5, op))
    assert status == 0xC00000BB

    # CLOSE
    close = struct.pack("<HHIQQ", 24, 1, 0, fid_p, fid_v)  # with POSTQUERY_ATTRIB
    status, body = env.call(handle_close, h.CLOSE, close)
    assert status == STATUS_SUCCESS
    assert env.server.opens.get(fid_v) is None and env.tree.open_count == 0


@pytest.mark.parametrize("level", [2, 502])
def test_guests_do_not_see_share_paths(level):
    dce, _, _ = connect("srvsvc", srvs.MSRPC_UUID_SRVS, session=GUEST)
    with pytest.raises(DCERPCException) as info:
        srvs.hNetrShareEnum(dce, level)
    assert info.value.get_error_code() == 5  # ERROR_ACCESS_DENIED
    with pytest.raises(DCERPCException):
        srvs.hNetrShareGetInfo(dce, "share\x00", level)
    # level 1 (what smbclient -L asks) still works for guests
    assert srvs.hNetrShareEnum(dce, 1)["ErrorCode"] == 0

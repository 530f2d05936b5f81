"""The default dialect range (issue 10): SMB2_02 to SMB3_11, so clients that speak only
SMB 2.0.2 (often inside an SMB1 multi-protocol NEGOTIATE) connect; SMB1 stays off."""

import struct
import uuid

import pytest

from ksmbd_embedded import header as h
from ksmbd_embedded import ksmbd_conf
from ksmbd_embedded.config import GlobalConfig, config_from_text
from ksmbd_embedded.connection import Connection
from ksmbd_embedded.pwddb import PasswordDb
from ksmbd_embedded.server import ServerState

SHARE = "\nconfig share\n\toption name 'share'\n\toption path '{path}'\n"


def cfg(text):
    return config_from_text(text, "ksmbd", check_paths=False, hostname="router")


# -- configuration ------------------------------------------------------------------------

def test_default_floor_is_smb2_02():
    assert GlobalConfig().server_min_protocol == "SMB2_02"
    c = cfg("")
    assert (c.globals.server_min_protocol, c.globals.server_max_protocol) == ("SMB2_02",
                                                                              "SMB3_11")
    assert c.warnings == ()
    c = cfg("config globals\n\toption workgroup 'HOME'\n")
    assert c.globals.server_min_protocol == "SMB2_02" and c.warnings == ()


def test_max_smb2_02_alone_is_a_valid_range():
    # With the old SMB2_10 floor this was "server_min_protocol SMB2_10 is above ...".
    c = cfg("config globals\n\toption server_max_protocol 'SMB2_02'\n")
    assert (c.globals.server_min_protocol, c.globals.server_max_protocol) == ("SMB2_02",
                                                                              "SMB2_02")


def test_explicit_floor_is_kept():
    for name in ("SMB2_10", "smb3_00", "SMB3_11"):
        c = cfg(f"config globals\n\toption server_min_protocol '{name}'\n")
        assert c.globals.server_min_protocol == name.upper()


def test_allow_legacy_protocols_still_never_enables_smb1():
    c = cfg("config globals\n\toption allow_legacy_protocols '1'\n")
    assert c.globals.allow_legacy_protocols and c.globals.server_min_protocol == "SMB2_02"
    assert any("SMB1 is not supported" in w for w in c.warnings)
    c = cfg("config globals\n\toption allow_legacy_protocols '0'\n")
    assert c.globals.server_min_protocol == "SMB2_02" and c.warnings == ()


def test_generated_ksmbd_conf_states_the_floor(tmp_path):
    text = ksmbd_conf.render(cfg("config globals\n" + SHARE.format(path=tmp_path)))
    assert "\tserver min protocol = SMB2_02\n" in text
    assert "\tserver max protocol = SMB3_11\n" in text
    back = ksmbd_conf.config_from_ksmbd_conf(text, "ksmbd.conf", check_paths=False)
    assert back.globals.server_min_protocol == "SMB2_02"


def test_users_ksmbd_conf_without_min_protocol_gets_the_default(tmp_path):
    text = f"[global]\n\tworkgroup = HOME\n[share]\n\tpath = {tmp_path}\n"
    c = ksmbd_conf.config_from_ksmbd_conf(text, "ksmbd.conf", check_paths=False)
    assert c.globals.server_min_protocol == "SMB2_02"
    text = f"[global]\n\tserver min protocol = SMB2_10\n[share]\n\tpath = {tmp_path}\n"
    c = ksmbd_conf.config_from_ksmbd_conf(text, "ksmbd.conf", check_paths=False)
    assert c.globals.server_min_protocol == "SMB2_10"


# -- NEGOTIATE with the default configuration -------------------------------------------------

def _state(tmp_path, extra_globals=""):
    text = "config globals\n\toption workgroup 'TESTGROUP'\n" + extra_globals
    config = config_from_text(text + SHARE.format(path=tmp_path), "test.uci")
    return ServerState(config, PasswordDb.load(tmp_path / "db"))


def _send(conn, message):
    """Responses to one frame (without transport headers joined), None if nothing came."""
    conn.outbox.clear()
    conn.receive(memoryview(bytes(message)))
    if not conn.outbox:
        return None
    frames = b"".join(bytes(b) for b in conn.outbox)
    assert len(frames) == 4 + struct.unpack(">I", frames[:4])[0]
    return frames[4:]


def _smb1_negotiate(*names):
    data = b"".join(b"\x02" + n + b"\x00" for n in names)
    return (b"\xffSMB\x72" + bytes(27)) + b"\x00" + struct.pack("<H", len(data)) + data


def _smb2_negotiate(dialects, msg_id=0):
    hdr = bytearray(64)
    h.HEADER.pack_into(hdr, 0, h.SMB2_MAGIC, 64, 0, 0, h.NEGOTIATE, 1, 0, 0, msg_id, 0, 0)
    body = struct.pack("<HHHHI16sIHH", 36, len(dialects), 1, 0, 0, uuid.uuid4().bytes, 0, 0, 0)
    return hdr + body + struct.pack(f"<{len(dialects)}H", *dialects)


def _status(resp):
    return struct.unpack_from("<I", resp, 8)[0]


def _negotiated(resp):
    """(DialectRevision, Capabilities, MaxTransact, MaxRead, MaxWrite) of a response."""
    dialect = struct.unpack_from("<H", resp, 64 + 4)[0]
    return (dialect, *struct.unpack_from("<IIII", resp, 64 + 24))


@pytest.mark.parametrize("names", [
    (b"SMB 2.002",),
    (b"NT LM 0.12", b"SMB 2.002"),        # what most 2.0.2-only libraries send
    (b"PC NETWORK PROGRAM 1.0", b"LANMAN1.0", b"NT LM 0.12", b"SMB 2.002"),
])
def test_smb1_negotiate_offering_only_smb_2_002_gets_2_0_2(tmp_path, names):
    conn = Connection(_state(tmp_path), "test:1", 0.0)
    resp = _send(conn, _smb1_negotiate(*names))
    assert resp is not None and not conn.closing
    assert resp[:4] == b"\xfeSMB" and _status(resp) == 0
    assert _negotiated(resp) == (0x0202, 0, 65536, 65536, 65536)  # no LARGE_MTU on 2.0.2
    assert conn.negotiated and conn.dialect == h.SMB2_02
    # The connection is negotiated: a further NEGOTIATE ends it (MS-SMB2 3.3.5.4).
    assert _send(conn, _smb2_negotiate((0x0202,), msg_id=1)) is None and conn.closing


def test_smb2_negotiate_offering_only_2_0_2_with_default_config(tmp_path):
    conn = Connection(_state(tmp_path), "test:1", 0.0)
    resp = _send(conn, _smb2_negotiate((0x0202,)))
    assert _status(resp) == 0
    assert _negotiated(resp) == (0x0202, 0, 65536, 65536, 65536)
    assert conn.dialect == h.SMB2_02


def test_wildcard_is_still_preferred_to_2_002(tmp_path):
    conn = Connection(_state(tmp_path), "test:1", 0.0)
    resp = _send(conn, _smb1_negotiate(b"NT LM 0.12", b"SMB 2.002", b"SMB 2.???"))
    assert _negotiated(resp)[0] == h.SMB2_WILDCARD and not conn.negotiated
    resp = _send(conn, _smb2_negotiate((0x0202, 0x0210, 0x0300), msg_id=1))
    assert _status(resp) == 0 and _negotiated(resp)[0] == 0x0300


def test_smb1_only_client_is_still_disconnected(tmp_path):
    conn = Connection(_state(tmp_path), "test:1", 0.0)
    assert _send(conn, _smb1_negotiate(b"NT LM 0.12")) is None and conn.closing


def test_floor_smb2_10_refuses_2_0_2_only_clients(tmp_path):
    state = _state(tmp_path, "\toption server_min_protocol 'SMB2_10'\n")
    conn = Connection(state, "test:1", 0.0)
    assert _send(conn, _smb1_negotiate(b"NT LM 0.12", b"SMB 2.002")) is None
    assert conn.closing and "without an SMB2 dialect we serve" in conn.close_reason
    conn = Connection(state, "test:2", 0.0)
    resp = _send(conn, _smb2_negotiate((0x0202,)))
    assert _status(resp) == 0xC00000BB  # STATUS_NOT_SUPPORTED
    # Clients that also offer "SMB 2.???" still get in.
    conn = Connection(state, "test:3", 0.0)
    resp = _send(conn, _smb1_negotiate(b"SMB 2.002", b"SMB 2.???"))
    assert _negotiated(resp)[0] == h.SMB2_WILDCARD


def test_max_smb2_02_answers_a_wildcard_offer_with_2_0_2(tmp_path):
    state = _state(tmp_path, "\toption server_max_protocol 'SMB2_02'\n")
    conn = Connection(state, "test:1", 0.0)
    resp = _send(conn, _smb1_negotiate(b"NT LM 0.12", b"SMB 2.002", b"SMB 2.???"))
    assert _negotiated(resp)[0] == 0x0202 and conn.negotiated

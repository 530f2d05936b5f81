"""hosts allow / hosts deny with real clients (issue 11, item 1).

127.0.0.0/8 is all loopback on Linux, so a client socket bound to source 127.0.0.2 reaches
the server on 127.0.0.1 as another host. smbprotocol opens its socket with
socket.create_connection; the tests give that a source address.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import uuid

import pytest
from smbprotocol.connection import Connection, Dialects
from smbprotocol.exceptions import AccessDenied
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

from .harness import start_server
from .smbclient_tool import assert_ok, smbclient

DENIED = "127.0.0.2"

# An SMB2 NEGOTIATE for 2.0.2/2.1 in Direct TCP framing: a server that serves it answers.
_NEGOTIATE_BODY = struct.pack("<HHHH I 16s Q HH", 36, 2, 1, 0, 0, uuid.uuid4().bytes, 0,
                              0x0202, 0x0210)
_HEADER = b"\xfeSMB" + struct.pack("<HHIHHIIQIIQ16s", 64, 0, 0, 0, 31, 0, 0, 0, 0xFEFF, 0, 0,
                                   b"\0" * 16)
NEGOTIATE = struct.pack(">I", len(_HEADER) + len(_NEGOTIATE_BODY)) + _HEADER + _NEGOTIATE_BODY


@contextlib.contextmanager
def source_address(monkeypatch, address):
    """smbprotocol's sockets come from `address` while this is active."""
    real = socket.create_connection

    def bound(target, timeout=None, source_address=None, **kw):
        return real(target, timeout, source_address=(address, 0), **kw)

    with monkeypatch.context() as m:
        m.setattr(socket, "create_connection", bound)
        yield


def raw_negotiate(port, source):
    """Connect from `source`, send a NEGOTIATE; the bytes answered before the server closed
    (bounded by a 5 s timeout: a server that neither answers nor closes fails the test)."""
    with socket.socket() as s:
        s.settimeout(5)
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        try:
            s.sendall(NEGOTIATE)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return data
                data += chunk
                if len(data) >= 4 and len(data) >= 4 + struct.unpack(">I", data[:4])[0]:
                    return data  # a whole answer
        except (ConnectionResetError, BrokenPipeError):
            return data


def login(port, user="alice", password="alice-pw"):
    conn = Connection(uuid.uuid4(), "127.0.0.1", port, require_signing=False)
    conn.connect(dialect=Dialects.SMB_3_1_1, timeout=10)
    session = Session(conn, user, password, require_encryption=False, auth_protocol="ntlm")
    session.connect()
    return conn, session


def tree(session, share):
    t = TreeConnect(session, rf"\\127.0.0.1\{share}")
    t.connect()
    return t


def test_global_hosts_deny_closes_the_connection_without_an_answer(tmp_path, monkeypatch):
    srv = start_server(tmp_path / "srv", extra_globals=f"\tlist hosts_deny '{DENIED}'\n")
    try:
        # the denied source: closed at once, no SMB answer, five times over
        for _ in range(5):
            assert raw_negotiate(srv.port, DENIED) == b""
        # a real client from there does not get a session either
        with source_address(monkeypatch, DENIED), pytest.raises(Exception):
            conn, _ = login(srv.port)
            conn.disconnect()
        # 127.0.0.1 is served: a raw NEGOTIATE is answered, smbclient works
        answer = raw_negotiate(srv.port, "127.0.0.1")
        assert answer[4:8] == b"\xfeSMB", answer[:16]
        assert_ok(smbclient(srv.port, "share", "ls"))
        # logged once for the six refusals, not six times
        line = f"{DENIED}: connection refused by hosts deny"
        assert srv.wait_for_log(line, timeout=5), srv.log()
        assert srv.log().count(line) == 1, srv.log()
        assert f"{DENIED}:" not in srv.log().replace(line, "")  # never connected
    finally:
        assert srv.stop() == 0
    assert "Traceback" not in srv.log()


def test_global_hosts_allow_refuses_others_but_not_loopback(tmp_path):
    srv = start_server(tmp_path / "srv", extra_globals="\toption hosts_allow '192.168.1.0/24'\n"
                                                       f"\toption hosts_deny '{DENIED}'\n")
    try:
        assert raw_negotiate(srv.port, DENIED) == b""          # denied by name
        assert raw_negotiate(srv.port, "127.0.0.3")[4:8] == b"\xfeSMB"  # loopback, not denied
        assert_ok(smbclient(srv.port, "share", "ls"))
    finally:
        assert srv.stop() == 0


def test_share_hosts_deny_refuses_tree_connect(tmp_path, monkeypatch):
    srv = start_server(tmp_path / "srv", shares={
        "private": {"read_only": "no", "users": ["alice"], "hosts_deny": DENIED},
        "open": {"read_only": "no", "users": ["alice"]},
        # loopback is admitted unless denied: an allow list alone does not keep it out
        "lan": {"read_only": "no", "users": ["alice"], "hosts_allow": "192.168.1."},
    })
    try:
        with source_address(monkeypatch, DENIED):
            conn, session = login(srv.port)
            try:
                for _ in range(3):
                    with pytest.raises(AccessDenied):
                        tree(session, "private")
                tree(session, "open").disconnect()
                tree(session, "lan").disconnect()
            finally:
                conn.disconnect()
        conn, session = login(srv.port)  # from 127.0.0.1
        try:
            tree(session, "private").disconnect()
        finally:
            conn.disconnect()
        line = f"{DENIED}: tree connect to 'private' refused by the share's hosts deny"
        assert srv.wait_for_log(line, timeout=5), srv.log()
        assert srv.log().count(line) == 1, srv.log()
    finally:
        assert srv.stop() == 0
    assert "Traceback" not in srv.log()


def test_bad_host_entry_keeps_the_server_from_starting(tmp_path):
    with pytest.raises(RuntimeError) as info:
        srv = start_server(tmp_path / "srv", extra_globals="\tlist hosts_allow '10.0.0.0/8'\n"
                                                           "\tlist hosts_allow 'nas.lan'\n")
        srv.stop()
    text = str(info.value)
    assert "ksmbd.uci:7: option 'hosts_allow' in globals: bad host entry 'nas.lan'" in text


def test_deny_wins_over_a_less_specific_allow(tmp_path):
    """An address inside an allowed network but denied by name is refused; its neighbours
    in that network are served."""
    srv = start_server(tmp_path / "srv", extra_globals="\toption hosts_allow '127.0.0.0/8'\n"
                                                       f"\toption hosts_deny '{DENIED}'\n")
    try:
        assert raw_negotiate(srv.port, DENIED) == b""
        assert raw_negotiate(srv.port, "127.0.0.3")[4:8] == b"\xfeSMB"
    finally:
        assert srv.stop() == 0

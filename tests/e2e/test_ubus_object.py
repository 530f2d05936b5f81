"""End to end: the real server registers the ubus object `ksmbd` with the ubusd stand-in
(--ubus-socket), and every method is invoked the way `ubus call` does, while a real SMB
client (smbprotocol) is connected."""

import re
import time
import uuid

import pytest
from smbprotocol.connection import Connection, Dialects
from smbprotocol.exceptions import LogonFailure, SMBResponseException
from smbprotocol.open import (
    CreateDisposition, CreateOptions, FileAttributes, FilePipePrinterAccessMask,
    ImpersonationLevel, Open, ShareAccess,
)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

from ksmbd_embedded.pwddb import PasswordDb, nt_hash
from ksmbd_embedded.ubus import message as m

from .fake_ubusd import FakeUbusd, ubus_call
from .harness import start_server

STATUS_FILE_CLOSED = 0xC0000128


def wait_for(predicate, seconds=20.0, what="condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def smb_login(server, user, password):
    conn = Connection(uuid.uuid4(), "127.0.0.1", server.port, require_signing=False)
    conn.connect(dialect=Dialects.SMB_3_1_1, timeout=10)
    session = Session(conn, user, password, require_encryption=False, auth_protocol="ntlm")
    try:
        session.connect()
    except Exception:
        conn.disconnect()
        raise
    return conn, session


def open_file(session, name):
    tree = TreeConnect(session, r"\\127.0.0.1\share")
    tree.connect()
    f = Open(tree, name)
    f.create(ImpersonationLevel.Impersonation,
             FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE,
             FileAttributes.FILE_ATTRIBUTE_NORMAL, ShareAccess.FILE_SHARE_READ,
             CreateDisposition.FILE_OVERWRITE_IF, CreateOptions.FILE_NON_DIRECTORY_FILE)
    return tree, f


@pytest.fixture
def ubus_server(tmp_path):
    sock = str(tmp_path / "ubus.sock")
    ubusd = FakeUbusd(sock).start()
    srv = start_server(tmp_path / "srv", extra_args=["--ubus-socket", sock])
    try:
        wait_for(lambda: "ksmbd" in ubusd.object_paths(), what="registration")
        yield srv, ubusd, sock
    finally:
        code = srv.stop()
        ubusd.stop()
    assert code == 0, srv.log()
    assert "Traceback" not in srv.log(), srv.log()


def call(sock, method, args=None):
    return ubus_call(sock, "ksmbd", method, args)


def test_read_methods_describe_a_live_client(ubus_server):
    srv, ubusd, sock = ubus_server
    conn, session = smb_login(srv, "alice", "alice-pw")
    try:
        tree, f = open_file(session, "report.txt")
        f.write(b"x" * 1000, 0)
        f.read(0, 1000)

        status, st = call(sock, "status")
        assert status == 0
        assert st["listen"] == [f"127.0.0.1:{srv.port}"]
        assert st["connections"] == 1 and st["sessions"] == 1
        assert st["trees"] == 1 and st["opens"] == 1
        assert st["bytes_written"] >= 1000 and st["bytes_read"] >= 1000
        assert st["dialects"] == {"SMB3_11": 1} and st["uptime"] >= 0
        assert re.fullmatch(r"\d+\.\d+\.\d+.*", st["version"])

        status, reply = call(sock, "sessions")
        assert status == 0 and reply["total"] == 1 and reply["offset"] == 0
        (s,) = reply["sessions"]
        assert s["user"] == "alice" and s["dialect"] == "SMB3_11"
        assert s["client"].startswith("127.0.0.1:") and s["trees"] == ["share"]
        assert s["open_count"] == 1 and s["id"] == session.session_id
        # a cipher was agreed, but this client does not encrypt and nothing asks it to
        assert s["negotiated_cipher"] == "AES-128-GCM" and s["encrypted"] is False
        assert s["encrypted_shares"] == [] and s["signing_required"] is False
        assert s["signing_algorithm"] == "AES-GMAC"
        assert "encryption" not in s and "cipher" not in s and "signing" not in s

        status, reply = call(sock, "open_files")
        assert status == 0 and reply["total"] == 1 and reply["offset"] == 0
        (o,) = reply["open_files"]
        assert o["share"] == "share" and o["path"] == "report.txt"
        assert o["session"] == session.session_id and "write" in o["access"]
        assert o["locks"] == [] and o["lock_count"] == 0

        status, reply = call(sock, "shares")
        assert status == 0 and reply["total"] == 3
        by_name = {x["name"]: x for x in reply["shares"]}
        assert set(by_name) == {"share", "public", "readonly"}
        assert by_name["share"]["connected"] == 1 and by_name["public"]["connected"] == 0
        assert by_name["share"]["path"] == str(srv.shares["share"])
        assert by_name["share"]["fs_type"] and int(by_name["share"]["total"]) > 0

        assert call(sock, "nosuch") == (m.UBUS_STATUS_METHOD_NOT_FOUND, None)
        status, reply = call(sock, "close_file", {"id": "nope"})
        assert status == m.UBUS_STATUS_INVALID_ARGUMENT and reply["error"]
        f.close()
        tree.disconnect()
    finally:
        session.disconnect()
        conn.disconnect()


def test_sessions_tell_a_negotiated_cipher_from_encrypted_traffic(tmp_path):
    """`encrypted` is what the traffic is; `negotiated_cipher` only what the session could
    use. A share that demands encryption is listed in `encrypted_shares`."""
    sock = str(tmp_path / "ubus.sock")
    ubusd = FakeUbusd(sock).start()
    srv = start_server(tmp_path / "srv", extra_args=["--ubus-socket", sock], shares={
        "share": {"read_only": "no", "users": ["alice", "bob"]},
        "secret": {"read_only": "no", "users": ["alice", "bob"],
                   "smb3_encryption": "mandatory"}})
    clients = []
    try:
        wait_for(lambda: "ksmbd" in ubusd.object_paths(), what="registration")
        for user, encrypt in (("alice", False), ("bob", True)):
            conn = Connection(uuid.uuid4(), "127.0.0.1", srv.port, require_signing=False)
            conn.connect(dialect=Dialects.SMB_3_1_1, timeout=10)
            clients.append(conn)
            session = Session(conn, user, f"{user}-pw", require_encryption=encrypt,
                              auth_protocol="ntlm")
            session.connect()
            for name in ("share", "secret"):
                TreeConnect(session, rf"\\127.0.0.1\{name}").connect()
        status, reply = call(sock, "sessions")
        assert status == 0 and reply["total"] == 2
        by_user = {x["user"]: x for x in reply["sessions"]}
        plain, private = by_user["alice"], by_user["bob"]
        assert plain["negotiated_cipher"] == private["negotiated_cipher"] == "AES-128-GCM"
        assert plain["encrypted"] is False and plain["encrypted_shares"] == ["secret"]
        assert private["encrypted"] is True
        assert private["encrypted_shares"] == private["trees"] == ["share", "secret"]
    finally:
        for conn in clients:
            try:
                conn.disconnect()
            except Exception:
                pass
        code = srv.stop()
        ubusd.stop()
    assert code == 0 and "Traceback" not in srv.log(), srv.log()


def test_user_management_over_ubus_and_smb(ubus_server):
    srv, ubusd, sock = ubus_server
    assert call(sock, "users") == (0, {"users": [{"name": "alice", "sessions": 0},
                                                 {"name": "bob", "sessions": 0}],
                                       "offset": 0, "total": 2})
    assert call(sock, "users", {"offset": 1, "limit": 1}) == (
        0, {"users": [{"name": "bob", "sessions": 0}], "offset": 1, "total": 2})
    assert call(sock, "user_add", {"name": "carol", "password": "carol-pw"}) == (0, None)
    assert PasswordDb.load(srv.root / "ksmbdpwd.db").get("carol") == nt_hash("carol-pw")
    conn, session = smb_login(srv, "carol", "carol-pw")  # logs in without a reload
    session.disconnect()
    conn.disconnect()
    status, reply = call(sock, "user_add", {"name": "carol", "password": "x"})
    assert status == m.UBUS_STATUS_INVALID_ARGUMENT and "exists" in reply["error"]

    assert call(sock, "user_passwd", {"name": "carol", "password": "new-pw"}) == (0, None)
    with pytest.raises(LogonFailure):
        smb_login(srv, "carol", "carol-pw")
    conn, session = smb_login(srv, "carol", "new-pw")
    session.disconnect()
    conn.disconnect()

    assert call(sock, "user_del", {"name": "carol"}) == (0, None)
    assert "carol" not in PasswordDb.load(srv.root / "ksmbdpwd.db")
    # map_to_guest 'bad_user': an unknown user is now a guest, no longer carol
    conn, session = smb_login(srv, "carol", "new-pw")
    (entry,) = call(sock, "sessions")[1]["sessions"]
    assert entry["guest"] is True
    session.disconnect()
    conn.disconnect()
    assert call(sock, "user_del", {"name": "carol"})[0] == m.UBUS_STATUS_NOT_FOUND
    assert call(sock, "user_add", {"name": "a:b", "password": "p"})[0] == \
        m.UBUS_STATUS_INVALID_ARGUMENT


def test_close_file_and_disconnect(ubus_server):
    srv, ubusd, sock = ubus_server
    conn, session = smb_login(srv, "alice", "alice-pw")
    tree, f = open_file(session, "held.txt")
    f.write(b"data", 0)
    (o,) = call(sock, "open_files")[1]["open_files"]
    assert call(sock, "close_file", {"id": o["id"]}) == (0, None)
    with pytest.raises(SMBResponseException) as exc:
        f.read(0, 4)
    assert exc.value.status == STATUS_FILE_CLOSED
    assert call(sock, "open_files")[1]["open_files"] == []
    assert call(sock, "close_file", {"id": o["id"]})[0] == m.UBUS_STATUS_NOT_FOUND

    assert call(sock, "disconnect", {"session": session.session_id}) == (0, None)
    wait_for(lambda: "disconnected by the administrator" in srv.log(), what="disconnect")
    assert call(sock, "status")[1]["connections"] == 0
    with pytest.raises(Exception):  # the client's connection is gone
        open_file(session, "again.txt")
    try:
        conn.disconnect()
    except Exception:
        pass
    assert call(sock, "disconnect", {"session": session.session_id})[0] == \
        m.UBUS_STATUS_NOT_FOUND


def test_reload_picks_up_a_new_share(ubus_server):
    srv, ubusd, sock = ubus_server
    config = srv.root / "ksmbd.uci"
    extra = srv.root / "shares" / "extra"
    extra.mkdir()
    config.write_text(config.read_text() + f"\nconfig share\n\toption name 'extra'\n"
                      f"\toption path '{extra}'\n\toption guest_ok 'yes'\n")
    assert call(sock, "reload") == (0, {"shares": 4, "users": 2})
    names = {x["name"] for x in call(sock, "shares")[1]["shares"]}
    assert "extra" in names
    config.write_text("config nonsense\n")
    status, reply = call(sock, "reload")
    assert status == m.UBUS_STATUS_UNKNOWN_ERROR and "reload failed" in reply["error"]
    assert len(call(sock, "shares")[1]["shares"]) == 4  # still the old configuration


def test_without_ubusd_serves_files_warns_once_and_registers_later(tmp_path):
    sock = str(tmp_path / "ubus.sock")
    srv = start_server(tmp_path / "srv", extra_args=["--ubus-socket", sock])
    ubusd = None
    try:
        conn, session = smb_login(srv, "alice", "alice-pw")
        tree, f = open_file(session, "served.txt")
        f.write(b"still serving", 0)
        assert f.read(0, 13) == b"still serving"
        f.close()
        time.sleep(2.0)  # several reconnection attempts (0.5 s, 1 s, 2 s ...)
        warnings = [line for line in srv.log().splitlines() if "WARNING ksmbd.ubus" in line]
        assert len(warnings) == 1, srv.log()
        assert sock in warnings[0]

        ubusd = FakeUbusd(sock).start()
        wait_for(lambda: "ksmbd" in ubusd.object_paths(), what="late registration")
        status, st = call(sock, "status")
        assert status == 0 and st["sessions"] == 1

        # ubusd restarts: one more warning, the object comes back, SMB never stopped
        ubusd.stop()
        wait_for(lambda: len([x for x in srv.log().splitlines()
                              if "WARNING ksmbd.ubus" in x]) == 2, what="loss warning")
        ubusd = FakeUbusd(sock).start()
        wait_for(lambda: "ksmbd" in ubusd.object_paths(), what="re-registration")
        assert call(sock, "sessions")[1]["sessions"][0]["user"] == "alice"
        f = Open(tree, "served.txt")
        f.create(ImpersonationLevel.Impersonation, FilePipePrinterAccessMask.GENERIC_READ,
                 FileAttributes.FILE_ATTRIBUTE_NORMAL, ShareAccess.FILE_SHARE_READ,
                 CreateDisposition.FILE_OPEN, CreateOptions.FILE_NON_DIRECTORY_FILE)
        assert f.read(0, 13) == b"still serving"
        f.close()
        session.disconnect()
        conn.disconnect()
    finally:
        code = srv.stop()
        if ubusd is not None:
            ubusd.stop()
    assert code == 0 and "Traceback" not in srv.log(), srv.log()

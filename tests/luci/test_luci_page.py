"""The LuCI page (luci-app/.../view/ksmbd.js) in headless chromium, against a real server.

The page is loaded through a small LuCI client stand-in (luci_shim.js) served by
luci_backend.py, which answers rpcd's JSON-RPC with the project's uci.py on the server's real
config file and forwards `ksmbd` calls over the ubus wire (fake ubusd) to the running server,
checking every call against the app's acl.d file.  The test clicks and types like a user and
checks the results on disk and on the server, with real SMB clients.
"""

from __future__ import annotations

import json
import re
import socket
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

from ksmbd_embedded.config import load_config
from ksmbd_embedded.pwddb import PasswordDb, nt_hash
from ksmbd_embedded.uci import parse_uci
from tests.e2e.fake_ubusd import FakeUbusd, ubus_call
from tests.e2e.harness import free_port, start_server

from .cdp import Browser
from .luci_backend import LuciBackend

STATUS_FILE_CLOSED = 0xC0000128


def wait_until(predicate, seconds=15.0, what="condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def smb_login(port, user, password):
    conn = Connection(uuid.uuid4(), "127.0.0.1", port, require_signing=False)
    conn.connect(dialect=Dialects.SMB_3_1_1, timeout=10)
    session = Session(conn, user, password, require_encryption=False, auth_protocol="ntlm")
    try:
        session.connect()
    except Exception:
        conn.disconnect()
        raise
    return conn, session


def open_rw(session, share, name):
    tree = TreeConnect(session, rf"\\127.0.0.1\{share}")
    tree.connect()
    f = Open(tree, name)
    f.create(ImpersonationLevel.Impersonation,
             FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE,
             FileAttributes.FILE_ATTRIBUTE_NORMAL, ShareAccess.FILE_SHARE_READ,
             CreateDisposition.FILE_OVERWRITE_IF, CreateOptions.FILE_NON_DIRECTORY_FILE)
    return tree, f


def quiet_disconnect(conn):
    try:
        conn.disconnect()
    except Exception:
        pass


@pytest.fixture
def luci(tmp_path):
    """A running server (ubus object registered), the LuCI backend and a chromium tab."""
    sock = str(tmp_path / "ubus.sock")
    shares = tmp_path / "srv" / "shares"
    (shares / "data").mkdir(parents=True)
    (shares / "media").mkdir(parents=True)
    config_text = ("config globals\n"
                   "\toption workgroup 'WORKGROUP'\n"
                   "\toption description 'Ksmbd on OpenWrt'\n"
                   "\n"
                   "config share\n"
                   "\toption name 'data'\n"
                   f"\toption path '{shares / 'data'}'\n"
                   "\toption read_only 'no'\n"
                   "\toption guest_ok 'no'\n"
                   "\toption create_mask '0666'\n"
                   "\toption dir_mask '0777'\n")
    ubusd = FakeUbusd(sock).start()
    srv = browser = backend = None
    try:
        srv = start_server(tmp_path / "srv", config_text=config_text,
                           extra_args=["--ubus-socket", sock])
        wait_until(lambda: "ksmbd" in ubusd.object_paths(), what="ubus registration")
        backend = LuciBackend(free_port(), srv.root / "ksmbd.uci", sock).start()
        browser = Browser(tmp_path / "chromium")
        page = browser.page(1280, 1000)
        page.navigate(backend.url)
        page.wait_for("window.__shim && (window.__shim.ready || window.__shim.error)",
                      timeout=20, what="the view to render")
        assert page.evaluate("window.__shim.error") is None, page.evaluate("window.__shim.error")
        yield srv, backend, page, sock, shares
        assert page.console_problems() == []
        assert page.evaluate("window.__shim.errors") == []
        assert page.evaluate("window.__shim.markup") == []  # no text went in as HTML
        assert backend.denied == []
    finally:
        if browser is not None:
            browser.close()
        if backend is not None:
            backend.stop()
        code = srv.stop() if srv is not None else 0
        ubusd.stop()
    assert code == 0, srv.log()
    assert "Traceback" not in srv.log(), srv.log()


def take_errors(page, what):
    """Wait for error notifications, return their text and clear them."""
    page.wait_for("window.__shim.errors.length > 0", what=what)
    text = " | ".join(page.evaluate("window.__shim.errors.splice(0)"))
    page.evaluate("document.querySelectorAll('#notifications .alert-message')"
                  ".forEach(n => n.remove())")
    return text


def text_of(page, selector):
    return page.evaluate(
        f"(document.querySelector({json.dumps(selector)}) || {{}}).textContent || ''")


def test_page_shows_status_edits_config_and_manages_users(luci, tmp_path):
    srv, backend, page, sock, shares = luci

    # -- Status: the server's own numbers, refreshed by poll ------------------------------
    assert "ksmbd-embedded " in text_of(page, "#ksmbd-summary")
    assert f"127.0.0.1:{srv.port}" in text_of(page, "#ksmbd-summary")
    # the I/O budget (ubus status io_buffers): in use of the limit, 256 MiB at most
    assert re.search(r"Memory for transfers in use\s*[\d.]+ [KMG]?i?B of [\d.]+ MiB",
                     text_of(page, "#ksmbd-summary")), text_of(page, "#ksmbd-summary")
    assert "data" in text_of(page, "#ksmbd-shares")
    assert "No client is connected." in text_of(page, "#ksmbd-sessions")

    conn, session = smb_login(srv.port, "alice", "alice-pw")
    tree, f = open_rw(session, "data", "held.txt")
    f.write(b"held", 0)
    page.wait_for("document.querySelector('#ksmbd-open-files button[data-open]') !== null",
                  what="the open file to appear (poll)")
    assert "held.txt" in text_of(page, "#ksmbd-open-files")
    sessions_text = text_of(page, "#ksmbd-sessions")
    assert "alice" in sessions_text and "SMB3_11" in sessions_text

    page.screenshot(tmp_path / "luci-status.png")  # a client on the Status section
    page.click("#ksmbd-open-files button[data-open]")  # Close
    page.wait_for("document.querySelector('#ksmbd-open-files button[data-open]') === null",
                  what="the open file to go")
    with pytest.raises(SMBResponseException) as exc:
        f.read(0, 4)
    assert exc.value.status == STATUS_FILE_CLOSED

    page.click(f"#ksmbd-sessions button[data-session='{session.session_id}']")  # Disconnect
    page.wait_for("document.querySelector('#ksmbd-sessions button[data-session]') === null",
                  what="the session to go")
    wait_until(lambda: "disconnected by the administrator" in srv.log(), what="disconnect")
    with pytest.raises(Exception):  # the client's connection is gone
        open_rw(session, "data", "again.txt")
    quiet_disconnect(conn)

    # -- General settings and a new share, Save & Apply -----------------------------------
    page.type(".cbi-value[data-name='workgroup'] input", "HOMENET")
    page.type(".cbi-value[data-name='description'] input", "Router disk")
    page.click(".cbi-value[data-name='allow_guest_ipc'] input")
    page.click(".cbi-value[data-name='interface'] input[data-network='lan']")
    page.click(".cbi-value[data-name='interface'] input[data-network='guest']")
    page.select(".cbi-value[data-name='server_signing'] select", "mandatory")
    page.select(".cbi-value[data-name='server_min_protocol'] select", "SMB3_00")
    options = page.evaluate(
        "[...document.querySelectorAll(\".cbi-value[data-name='server_max_protocol'] option\")]"
        ".map(o => o.value)")
    assert options == ["SMB2_02", "SMB2_10", "SMB3_00", "SMB3_02", "SMB3_11"]

    rows = "document.querySelectorAll('.cbi-tblsection tr[data-sid]').length"
    assert page.evaluate(rows) == 1
    page.click(".cbi-tblsection .cbi-button-add")
    page.wait_for(f"{rows} === 2", what="the new share row")
    new_row = ".cbi-tblsection tr[data-sid]:last-child"
    # the old page's defaults on a new row
    defaults = page.evaluate(
        f"(() => {{ const r = document.querySelector(\"{new_row}\");"
        " const v = n => r.querySelector("
        "`[data-name='${n}'] input`); return [v('browseable').checked, v('read_only').checked,"
        " v('force_root').checked, v('guest_ok').checked, v('inherit_owner').checked,"
        " v('hide_dot_files').checked, v('create_mask').value, v('dir_mask').value]; })()")
    assert defaults == [True, False, False, True, False, True, "0666", "0777"]
    page.type(f"{new_row} [data-name='name'] input", "media")
    page.type(f"{new_row} [data-name='path'] input", str(shares / "media"))
    page.type(f"{new_row} [data-name='users'] input", "carol")
    page.click(f"{new_row} [data-name='guest_ok'] input")       # no guests
    page.type(f"{new_row} [data-name='create_mask'] input", "0640")

    # a bad mask is refused by the form and nothing is written
    page.type(f"{new_row} [data-name='dir_mask'] input", "0999")
    before = (srv.root / "ksmbd.uci").read_text()
    page.click("#footer-save-apply")
    assert "octal mask" in take_errors(page, "the validation error")
    assert (srv.root / "ksmbd.uci").read_text() == before
    assert page.evaluate("window.__shim.applied") == 0

    page.type(f"{new_row} [data-name='dir_mask'] input", "0750")
    page.click("#footer-save-apply")
    page.wait_for("window.__shim.applied === 1", what="Save & Apply")

    pkg = parse_uci((srv.root / "ksmbd.uci").read_text(), "ksmbd")
    glob, data, media = pkg.sections
    assert glob.type == "globals" and glob.name is None
    assert glob.options["workgroup"] == "HOMENET"
    assert glob.options["description"] == "Router disk"
    assert glob.options["allow_guest_ipc"] == "1"
    assert glob.options["interface"] == "lan guest"
    assert glob.options["server_signing"] == "mandatory"
    assert glob.options["server_min_protocol"] == "SMB3_00"
    assert "allow_legacy_protocols" not in glob.options
    assert data.options["name"] == "data" and data.options["guest_ok"] == "no"
    assert media.type == "share" and media.name is None
    assert media.options == {"name": "media", "path": str(shares / "media"), "read_only": "no",
                             "users": "carol", "guest_ok": "no", "create_mask": "0640",
                             "dir_mask": "0750"}
    config = load_config(srv.root / "ksmbd.uci")  # the server accepts what the page wrote
    assert config.globals.workgroup == "HOMENET" and config.globals.server_signing == "mandatory"
    assert config.share("media").users == ("carol",) and config.share("media").create_mask == 0o640
    assert backend.reloads == [(0, {"shares": 2, "users": 2})]  # procd's reload trigger
    page.wait_for("document.querySelector('#ksmbd-shares').textContent.includes('media')",
                  what="the new share in Status")

    # -- Users: add, change password, delete (ubus) ---------------------------------------
    page.type("#ksmbd-new-user", "carol")
    page.type("#ksmbd-new-password", "carol-pw1")
    page.type("#ksmbd-new-confirm", "carol-pw1")
    page.click("#ksmbd-user-add")
    page.wait_for("document.querySelector(\"#ksmbd-users button[data-delete='carol']\") !== null",
                  what="carol in the user list")
    assert PasswordDb.load(srv.root / "ksmbdpwd.db").get("carol") == nt_hash("carol-pw1")
    conn, session = smb_login(srv.port, "carol", "carol-pw1")  # the new user, on the new share
    tree, f = open_rw(session, "media", "hello.txt")
    f.write(b"from carol", 0)
    f.close()
    (entry,) = ubus_call(sock, "ksmbd", "sessions")[1]["sessions"]
    assert entry["user"] == "carol" and entry["signing_required"] is True  # mandatory now
    session.disconnect()
    quiet_disconnect(conn)
    assert (shares / "media" / "hello.txt").read_bytes() == b"from carol"

    page.click("#ksmbd-users button[data-passwd='bob']")
    page.wait_for("document.getElementById('ksmbd-passwd-password') !== null", what="the dialog")
    page.type("#ksmbd-passwd-password", "bob-new")
    page.type("#ksmbd-passwd-confirm", "bob-new")
    page.click("#ksmbd-passwd-save")
    page.wait_for("document.getElementById('modal_overlay') === null", what="the dialog to close")
    assert PasswordDb.load(srv.root / "ksmbdpwd.db").get("bob") == nt_hash("bob-new")
    with pytest.raises(LogonFailure):
        smb_login(srv.port, "bob", "bob-pw")
    conn, session = smb_login(srv.port, "bob", "bob-new")
    session.disconnect()
    quiet_disconnect(conn)

    page.click("#ksmbd-users button[data-delete='bob']")
    page.wait_for("document.getElementById('ksmbd-delete-confirm') !== null", what="the dialog")
    page.click("#ksmbd-delete-confirm")
    page.wait_for("document.querySelector(\"#ksmbd-users button[data-delete='bob']\") === null",
                  what="bob to go")
    assert PasswordDb.load(srv.root / "ksmbdpwd.db").names() == ["alice", "carol"]

    # passwords that differ, then a name the server refuses: errors shown, nothing changes
    page.type("#ksmbd-new-user", "dave")
    page.type("#ksmbd-new-password", "one")
    page.type("#ksmbd-new-confirm", "two")
    page.click("#ksmbd-user-add")
    assert "do not match" in take_errors(page, "the mismatch error")
    page.type("#ksmbd-new-user", "carol")
    page.type("#ksmbd-new-confirm", "one")
    page.click("#ksmbd-user-add")
    assert "ubus code 2" in take_errors(page, "the server's refusal")  # INVALID_ARGUMENT
    assert PasswordDb.load(srv.root / "ksmbdpwd.db").names() == ["alice", "carol"]
    assert PasswordDb.load(srv.root / "ksmbdpwd.db").get("carol") == nt_hash("carol-pw1")

    # -- Reload button, then every method the page used was granted by the ACL ----------
    page.click("#ksmbd-reload")
    wait_until(lambda: ("ksmbd", "reload", 0) in backend.calls, what="reload")
    used = {method for obj, method, _ in backend.calls if obj == "ksmbd"}
    assert used == {"status", "sessions", "open_files", "shares", "users", "disconnect",
                    "close_file", "reload", "user_add", "user_del", "user_passwd"}

    page.evaluate("document.querySelectorAll('#notifications .alert-message')"
                  ".forEach(n => n.remove())")
    shot = tmp_path / "luci-page.png"
    page.screenshot(shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def open_many(tree, names, batch=100):
    """Handles on `names`, created `batch` at a time in compound requests."""
    conn = tree.session.connection
    opens = []
    for start in range(0, len(names), batch):
        files = [Open(tree, name) for name in names[start:start + batch]]
        pending = [f.create(ImpersonationLevel.Impersonation,
                            FilePipePrinterAccessMask.GENERIC_READ,
                            FileAttributes.FILE_ATTRIBUTE_NORMAL,
                            ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE,
                            CreateDisposition.FILE_OPEN_IF, CreateOptions.FILE_NON_DIRECTORY_FILE,
                            send=False) for f in files]
        requests = conn.send_compound([msg for msg, _ in pending], tree.session.session_id,
                                      tree.tree_connect_id)
        for (_, receive), request in zip(pending, requests):
            receive(request)
        opens += files
    return opens


def session_cells(page):
    """The Sessions table as {user cell: [cells]}."""
    return page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('#ksmbd-sessions tr')]"
        ".filter(r => r.querySelector('button[data-session]'))"
        ".map(r => [...r.querySelectorAll('td')].map(c => c.textContent))"
        ".map(cells => [cells[0], cells]))")


def test_status_pages_open_files_and_tells_a_negotiated_cipher_from_encryption(luci):
    srv, backend, page, sock, shares = luci
    conn, session = smb_login(srv.port, "alice", "alice-pw")  # could encrypt, does not
    private = Connection(uuid.uuid4(), "127.0.0.1", srv.port, require_signing=False)
    private.connect(dialect=Dialects.SMB_3_1_1, timeout=10)
    try:
        encrypting = Session(private, "bob", "bob-pw", require_encryption=True,
                             auth_protocol="ntlm")
        encrypting.connect()
        # the server learns that a client encrypts unasked from its first request
        TreeConnect(encrypting, r"\\127.0.0.1\data").connect()
        tree = TreeConnect(session, r"\\127.0.0.1\data")
        tree.connect()
        (shares / "data" / "many").mkdir()
        opens = open_many(tree, [f"many\\file-{i:04d}.txt" for i in range(520)])
        assert len(opens) == 520

        # more open files than the page reads: it pages through them, then says so
        page.wait_for("document.querySelector('#ksmbd-open-files-more') !== null",
                      what="the note about more open files")
        rows = page.evaluate("document.querySelectorAll('#ksmbd-open-files button[data-open]')"
                             ".length")
        assert rows == 500
        assert text_of(page, "#ksmbd-open-files-more") == "Showing the first 500 of 520."
        asked = [args for method, args in backend.call_args if method == "open_files"]
        assert {a.get("offset") for a in asked} >= {0, 100, 200, 300, 400}
        assert all(a.get("limit") == 100 for a in asked)
        assert page.evaluate("document.querySelector('#ksmbd-sessions-more')") is None

        cells = wait_until(lambda: (lambda c: c if len(c) == 2 else None)(session_cells(page)),
                           what="both sessions")
        # Encryption column: what the traffic is, and what could have been used
        assert cells["alice"][4] == "no (AES-128-GCM negotiated)"
        assert cells["bob"][4] == "AES-128-GCM"
        assert cells["alice"][3] == cells["bob"][3] == "not required"  # Signing
        assert cells["alice"][6] == "520"  # open files of the session
        # the server's row counts negotiated ciphers, and says that is all they are
        status = text_of(page, "#ksmbd-status")
        assert "Ciphers negotiated" in status and "AES-128-GCM (2)" in status
        assert "Ciphers in use" not in status

        quiet_disconnect(conn)  # the server closes them all
        page.wait_for("document.querySelector('#ksmbd-open-files-more') === null && "
                      "document.querySelector('#ksmbd-open-files').textContent"
                      ".includes('No file is open.')", what="the open files to go")
    finally:
        quiet_disconnect(conn)
        quiet_disconnect(private)


def test_hosts_lists_in_settings_and_shares(luci):
    """hosts allow / hosts deny on the page (issue 11): a bad entry is refused by the form;
    good ones are saved, accepted by the server's loader and enforced after the reload."""
    srv, backend, page, sock, shares = luci
    deny = ".cbi-value[data-name='hosts_deny'] input"
    row = ".cbi-tblsection tr[data-sid]"  # the one share, 'data'
    assert page.evaluate(f"document.querySelector(\"{deny}\").placeholder") == "any"
    before = (srv.root / "ksmbd.uci").read_text()
    page.type(deny, "127.0.0.2 nas.lan")
    page.click("#footer-save-apply")
    assert "Not a host entry: nas.lan" in take_errors(page, "the validation error")
    assert (srv.root / "ksmbd.uci").read_text() == before

    page.type(deny, "127.0.0.2, 10.0.0.0/8")
    page.type(".cbi-value[data-name='hosts_allow'] input", "192.168.1.0/255.255.255.0")
    page.type(f"{row} [data-name='hosts_allow'] input", "192.168.1. fd00::/8")
    page.type(f"{row} [data-name='hosts_deny'] input", "[fd00::1]")
    page.click("#footer-save-apply")
    page.wait_for("window.__shim.applied === 1", what="Save & Apply")
    glob, data = parse_uci((srv.root / "ksmbd.uci").read_text(), "ksmbd").sections
    assert glob.options["hosts_deny"] == "127.0.0.2, 10.0.0.0/8"
    assert glob.options["hosts_allow"] == "192.168.1.0/255.255.255.0"
    assert data.options["hosts_allow"] == "192.168.1. fd00::/8"
    assert data.options["hosts_deny"] == "[fd00::1]"
    config = load_config(srv.root / "ksmbd.uci")
    assert config.globals.hosts_deny.entries == ("127.0.0.2", "10.0.0.0/8")
    assert config.share("data").hosts_allow.entries == ("192.168.1.", "fd00::/8")
    assert backend.reloads and srv.wait_for_log("configuration reloaded")

    # enforced: 127.0.0.2 is closed at once, counted in status; 127.0.0.1 still logs on
    with socket.socket() as s:
        s.settimeout(5)
        s.bind(("127.0.0.2", 0))
        s.connect(("127.0.0.1", srv.port))
        assert s.recv(16) == b""
    wait_until(lambda: ubus_call(sock, "ksmbd", "status")[1]["refused"].get("hosts_deny"),
               what="the refusal to be counted")
    conn, session = smb_login(srv.port, "alice", "alice-pw")
    quiet_disconnect(conn)


def test_connection_limits_in_settings_and_status(luci):
    """Connection limits and timers on the page (issue 11): a bad number is refused by the
    form; good ones are saved, loaded by the server, enforced after the reload, and the
    refusal shows in the status."""
    srv, backend, page, sock, shares = luci
    field = "[data-name='{}'] input".format
    assert page.evaluate(f"document.querySelector(\"{field('max_connections')}\").placeholder") \
        == "256"
    assert page.evaluate(f"document.querySelector(\"{field('deadtime')}\").placeholder") == "0"
    before = (srv.root / "ksmbd.uci").read_text()
    page.type(field("max_ip_connections"), "-3")
    page.click("#footer-save-apply")
    assert "Expecting: a whole number from 0 to 65536" in take_errors(page, "the error")
    assert (srv.root / "ksmbd.uci").read_text() == before

    page.type(field("max_ip_connections"), "1")
    page.type(field("deadtime"), "15")
    page.click("#footer-save-apply")
    page.wait_for("window.__shim.applied === 1", what="Save & Apply")
    glob = parse_uci((srv.root / "ksmbd.uci").read_text(), "ksmbd").sections[0]
    assert (glob.options["max_ip_connections"], glob.options["deadtime"]) == ("1", "15")
    config = load_config(srv.root / "ksmbd.uci")
    assert (config.globals.max_ip_connections, config.globals.deadtime) == (1, 15)
    assert backend.reloads and srv.wait_for_log("configuration reloaded")

    # enforced: with a file open on its one connection, 127.0.0.1's next one is refused
    conn, session = smb_login(srv.port, "alice", "alice-pw")
    try:
        open_rw(session, "data", "held.txt")
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
            assert s.recv(16) == b""
        wait_until(lambda: ubus_call(sock, "ksmbd", "status")[1]["refused"].get(
            "max_ip_connections"), what="the refusal to be counted")
        page.wait_for("(document.querySelector('#ksmbd-summary') || {}).textContent"
                      ".indexOf('max_ip_connections (1)') >= 0", timeout=15,
                      what="the status to show the refusal")
    finally:
        quiet_disconnect(conn)

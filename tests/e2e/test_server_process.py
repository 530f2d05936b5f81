"""The server as a process: bad clients, reload on SIGHUP, IPv6, clean stop."""

import os
import signal
import socket
import struct
import time

import pytest

from .harness import DEFAULT_GLOBALS, share_block, start_server
from .smbclient_tool import assert_ok, output, smbclient


def _raw(port, payload, family=socket.AF_INET, host="127.0.0.1"):
    """Send bytes; return what the server answered before closing (bounded wait)."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect((host, port))
        s.sendall(payload)
        chunks = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                data = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)


def test_bad_clients_do_not_disturb_others(server, tmp_path):
    (server.shares["share"] / "f.txt").write_text("still here")
    # A client that stays connected through all of it.
    good = socket.create_connection(("127.0.0.1", server.port))
    junk = [
        b"\x00\x00\x00\x04ABCD",                          # not SMB
        b"\x00\x00\x00\x40" + b"\xfeSMB" + bytes(60),     # header with StructureSize 0
        b"\xff\xff\xff\xff",                              # not a Direct TCP frame
        b"\x00\xff\xff\xff" + bytes(100),                 # 16 MB frame announced, never sent
        b"\x00\x00\x00\x05\xfdSMB\x00",                   # truncated transform header
        b"\x00\x00\x00\x30\xffSMB\x72" + bytes(43),       # SMB1 negotiate without SMB2 dialects
        os.urandom(3000),
    ]
    for payload in junk:
        _raw(server.port, payload)
    work = tmp_path / "w"
    work.mkdir()
    assert_ok(smbclient(server.port, "share", "get f.txt f.txt", cwd=work))
    assert (work / "f.txt").read_text() == "still here"
    good.close()
    assert server.alive()
    log = server.log()
    assert "disconnecting" in log or "exceeds" in log or "not a Direct TCP frame" in log
    assert "Traceback" not in log


def test_reload_on_sighup(tmp_path):
    srv = start_server(tmp_path / "srv", shares={"one": {"read_only": "no", "guest_ok": "yes"}})
    try:
        two = tmp_path / "two"
        two.mkdir()
        (two / "x.txt").write_text("two")
        config = srv.root / "ksmbd.uci"
        text = DEFAULT_GLOBALS + share_block("two", two, guest_ok="yes")
        assert "NT_STATUS_BAD_NETWORK_NAME" in output(smbclient(srv.port, "two", "ls", user=None))
        config.write_text(text)
        srv.proc.send_signal(signal.SIGHUP)
        assert srv.wait_for_log("configuration reloaded"), srv.log()
        assert "x.txt" in assert_ok(smbclient(srv.port, "two", "ls", user=None))
        assert "NT_STATUS_BAD_NETWORK_NAME" in output(smbclient(srv.port, "one", "ls", user=None))
        # A broken config on reload keeps the running one.
        config.write_text("config nonsense\n")
        srv.proc.send_signal(signal.SIGHUP)
        assert srv.wait_for_log("reload failed"), srv.log()
        assert "x.txt" in assert_ok(smbclient(srv.port, "two", "ls", user=None))
    finally:
        assert srv.stop() == 0


def test_missing_share_path_is_skipped_until_a_reload_finds_it(tmp_path):
    """A USB disk not mounted yet: the server starts, serves the other shares, warns about
    this one, and serves it after the reload the mount hotplug sends (README, Configuration)."""
    disk = tmp_path / "mnt" / "sda1"
    config = DEFAULT_GLOBALS + share_block("usb", disk, guest_ok="yes")
    config += share_block("other", tmp_path, guest_ok="yes")
    srv = start_server(tmp_path / "srv", config_text=config)
    try:
        assert "share 'usb': path" in srv.log() and "not served until a reload" in srv.log()
        assert "NT_STATUS_BAD_NETWORK_NAME" in output(smbclient(srv.port, "usb", "ls", user=None))
        assert_ok(smbclient(srv.port, "other", "ls", user=None))
        disk.mkdir(parents=True)
        (disk / "photo.jpg").write_bytes(b"jpeg")
        srv.proc.send_signal(signal.SIGHUP)
        assert srv.wait_for_log("configuration reloaded"), srv.log()
        assert "photo.jpg" in assert_ok(smbclient(srv.port, "usb", "ls", user=None))
    finally:
        assert srv.stop() == 0


def test_ipv6_listener(tmp_path):
    if not socket.has_ipv6:
        pytest.fail("this machine has no IPv6 loopback")
    srv = start_server(tmp_path / "srv")
    srv.stop()
    # Restart the same config on ::1 and 127.0.0.1 by passing two --listen options.
    import subprocess
    import sys
    port = srv.port
    proc = subprocess.Popen(
        [sys.executable, "-m", "ksmbd_embedded", "serve", "--config", str(srv.root / "ksmbd.uci"),
         "--pwddb", str(srv.root / "ksmbdpwd.db"), "--listen", "::1", "--listen", "127.0.0.1",
         "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("::1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "no IPv6 listener"
                time.sleep(0.05)
        neg = _negotiate_frame()
        answer = _raw(port, neg, socket.AF_INET6, "::1")
        assert answer[4:8] == b"\xfeSMB"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def _negotiate_frame():
    hdr = bytearray(64)
    struct.pack_into("<IHHIHHIIQQQ", hdr, 0, 0x424D53FE, 64, 0, 0, 0, 1, 0, 0, 0, 0, 0)
    body = struct.pack("<HHHHI16sIHH", 36, 2, 1, 0, 0, bytes(16), 0, 0, 0) + \
        struct.pack("<HH", 0x0210, 0x0300)
    msg = bytes(hdr) + body
    return struct.pack(">I", len(msg)) + msg


def test_sigterm_stops_cleanly_with_clients_connected(server):
    s = socket.create_connection(("127.0.0.1", server.port))
    s.sendall(_negotiate_frame())
    time.sleep(0.2)
    assert server.stop() == 0
    s.close()

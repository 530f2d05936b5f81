"""Server policies seen by real clients: mandatory encryption and signing, share lists,
and a bad configuration that keeps the server from starting."""

import signal
import subprocess
import sys
import time

from .harness import start_server
from .smbclient_tool import assert_ok, output, smbclient


def test_share_with_mandatory_encryption(tmp_path):
    srv = start_server(tmp_path / "srv", shares={
        "secret": {"read_only": "no", "users": ["alice"], "smb3_encryption": "mandatory"},
        "plain": {"read_only": "no", "users": ["alice"]},
    })
    try:
        # smbclient follows the share's ENCRYPT_DATA flag even with protection off, so the
        # refusal of plain requests on such a tree is shown in tests/unit/test_connection.py;
        # a client that cannot encrypt at all (SMB 2.1) is refused here.
        refused = smbclient(srv.port, "secret", "ls", dialect="SMB2_10")
        assert "NT_STATUS_ACCESS_DENIED" in output(refused)
        assert_ok(smbclient(srv.port, "secret", "ls", dialect="SMB3_11", protection="encrypt"))
        assert_ok(smbclient(srv.port, "plain", "ls", dialect="SMB3_11", protection="off"))
    finally:
        assert srv.stop() == 0


def test_global_mandatory_encryption(tmp_path):
    srv = start_server(tmp_path / "srv", extra_globals="\toption smb3_encryption 'mandatory'\n")
    try:
        assert "NT_STATUS_ACCESS_DENIED" in output(
            smbclient(srv.port, "share", "ls", dialect="SMB2_10"))
        assert_ok(smbclient(srv.port, "share", "ls", dialect="SMB3_11", protection="encrypt"))
        assert_ok(smbclient(srv.port, "share", "ls", dialect="SMB3_02", protection="encrypt"))
        assert "encryption" in srv.log()
    finally:
        assert srv.stop() == 0


def test_mandatory_signing(tmp_path):
    srv = start_server(tmp_path / "srv", extra_globals="\toption server_signing 'mandatory'\n")
    try:
        for dialect in ("SMB2_10", "SMB3_00", "SMB3_11"):
            assert_ok(smbclient(srv.port, "share", "ls", dialect=dialect, protection="off"))
        logons = [ln for ln in srv.log().splitlines() if "session 0x" in ln and "alice" in ln]
        assert logons and all(": signed (" in ln for ln in logons), srv.log()
    finally:
        assert srv.stop() == 0


def test_read_and_write_lists(tmp_path):
    srv = start_server(tmp_path / "srv", shares={
        "ro": {"read_only": "yes", "write_list": "bob"},
        "rw": {"read_only": "no", "read_list": "bob"},
    })
    work = tmp_path / "w"
    work.mkdir()
    (work / "f.txt").write_text("x")
    try:
        assert "NT_STATUS_ACCESS_DENIED" in output(
            smbclient(srv.port, "ro", "put f.txt a.txt", cwd=work))
        assert_ok(smbclient(srv.port, "ro", "put f.txt b.txt", user="bob", password="bob-pw",
                            cwd=work))
        assert_ok(smbclient(srv.port, "rw", "put f.txt c.txt", cwd=work))
        assert "NT_STATUS_ACCESS_DENIED" in output(
            smbclient(srv.port, "rw", "put f.txt d.txt", user="bob", password="bob-pw",
                      cwd=work))
    finally:
        assert srv.stop() == 0
    assert (srv.shares["ro"] / "b.txt").exists() and not (srv.shares["ro"] / "a.txt").exists()
    assert (srv.shares["rw"] / "c.txt").exists() and not (srv.shares["rw"] / "d.txt").exists()


def test_bad_config_does_not_start(tmp_path):
    config = tmp_path / "bad.uci"
    (tmp_path / "nonexistent-dir").write_text("a file where the share's directory should be")
    config.write_text("config globals\n\toption workgroup 'W'\n\nconfig share\n"
                      f"\toption name 'x'\n\toption path '{tmp_path}/nonexistent-dir'\n")
    result = subprocess.run(
        [sys.executable, "-m", "ksmbd_embedded", "serve", "--config", str(config), "--pwddb",
         str(tmp_path / "db"), "--listen", "127.0.0.1", "--port", "4449"],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert f"{config}:6" in result.stderr and "nonexistent" in result.stderr


def test_share_on_a_disk_not_mounted_yet(tmp_path):
    """A share whose directory is missing (a USB disk not mounted yet) does not keep the others
    from being served; the reload the mount hotplug sends brings it in."""
    disk = tmp_path / "usb"
    srv = start_server(tmp_path / "srv", extra_globals=DISK_SHARE.format(path=disk))
    try:
        work = tmp_path / "work"
        work.mkdir()
        (work / "f.txt").write_text("hello")
        assert_ok(smbclient(srv.port, "share", "put f.txt a.txt", cwd=work))
        assert "NT_STATUS_BAD_NETWORK_NAME" in output(smbclient(srv.port, "usb", "ls", cwd=work))
        assert "does not exist" in srv.log()
        disk.mkdir()
        srv.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "configuration reloaded" not in srv.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert_ok(smbclient(srv.port, "usb", "put f.txt b.txt", cwd=work))
        assert (disk / "b.txt").read_text() == "hello"
    finally:
        assert srv.stop() == 0


DISK_SHARE = """
config share
\toption name 'usb'
\toption path '{path}'
\toption read_only 'no'
\toption guest_ok 'yes'
"""

"""The tools against a real server started like the init script starts it: pid file,
generated ksmbd.conf + symlink, reload by ksmbd.control/ksmbd.adduser, shutdown."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from e2e.harness import free_port

BIN = Path(sys.executable).parent


def _wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_pid_file_reload_and_shutdown(tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    uci = tmp_path / "etc/config/ksmbd"
    uci.parent.mkdir(parents=True)
    uci.write_text(f"config globals\n\toption workgroup 'TESTGROUP'\n\n"
                   f"config share\n\toption name 'first'\n\toption path '{share}'\n")
    runtime = tmp_path / "var/run/config/ksmbd"
    user_conf = tmp_path / "etc/ksmbd/ksmbd.conf"
    generated = tmp_path / "var/etc/ksmbd/ksmbd.conf"
    pid_file = tmp_path / "var/run/ksmbd.lock"
    pwddb = tmp_path / "etc/ksmbd/ksmbdpwd.db"
    log = tmp_path / "server.log"
    port = free_port()
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(BIN / "ksmbd-embedded"), "serve", "--config", str(uci),
             "--config-extra", str(runtime), "--ksmbd-conf", str(user_conf),
             "--write-ksmbd-conf", str(generated), "--pwddb", str(pwddb),
             "--pid-file", str(pid_file), "--listen", "127.0.0.1", "--port", str(port),
             "--ubus-socket", ""], stdout=out, stderr=subprocess.STDOUT)
    try:
        assert _wait_for(pid_file.exists), log.read_text()
        assert int(pid_file.read_text()) == proc.pid
        # wsdd2's view: /etc/ksmbd/ksmbd.conf -> the generated file
        assert user_conf.is_symlink() and os.readlink(user_conf) == str(generated)
        text = user_conf.read_text()
        assert "\tworkgroup = TESTGROUP\n" in text and "\tnetbios name = " in text
        assert "[first]" in text

        # a hotplugged share appears after `ksmbd.control -r`
        runtime.parent.mkdir(parents=True)
        runtime.write_text(f"config share 'sda1'\n\toption name 'usb'\n\toption path '{share}'\n"
                           "\toption read_only 'yes'\n\toption guest_ok 'yes'\n")
        ctl = [str(BIN / "ksmbd.control"), "--pid-file", str(pid_file)]
        assert subprocess.run([*ctl, "-r"]).returncode == 0
        assert _wait_for(lambda: "[usb]" in generated.read_text()), log.read_text()
        assert _wait_for(lambda: "reloaded: 2 shares, 0 users" in log.read_text())

        # ksmbd.adduser writes the db and makes the server re-read it
        rc = subprocess.run([str(BIN / "ksmbd.adduser"), "-P", str(pwddb), "-a", "-p", "pw",
                             "alice", "--pid-file", str(pid_file)]).returncode
        assert rc == 0
        assert _wait_for(lambda: "reloaded: 2 shares, 1 users" in log.read_text())

        rc = subprocess.run([*ctl, "-s", "--init-script", "/nonexistent"]).returncode
        assert rc == 0
        assert proc.wait(10) == 0
        assert not pid_file.exists()
        assert "Traceback" not in log.read_text(), log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

"""The ksmbd-tools compatible entry points: ksmbd.adduser, ksmbd.control, ksmbd.mountd."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from ksmbd_embedded import __version__
from ksmbd_embedded.ksmbd_conf import ConfigSources
from ksmbd_embedded.pwddb import PasswordDb, nt_hash
from ksmbd_embedded.tools import adduser, control, mountd
from ksmbd_embedded.tools.pid_file import read_pid, remove_pid_file, write_pid_file


@pytest.fixture
def hup_child(tmp_path):
    """A process that counts SIGHUPs into a file and exits on SIGTERM; its pid file."""
    marks = tmp_path / "hups"
    code = textwrap.dedent(f"""
        import signal, sys, time
        def hup(*a):
            open({str(marks)!r}, "a").write("x")
        signal.signal(signal.SIGHUP, hup)
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
        open({str(marks)!r}, "a").close()
        while True:
            time.sleep(0.05)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 10
    while not marks.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    pid_file = tmp_path / "ksmbd.lock"
    write_pid_file(pid_file, proc.pid)
    yield proc, pid_file, marks
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


# --- pid file -------------------------------------------------------------------------------

def test_pid_file_round_trip(tmp_path):
    path = tmp_path / "run/ksmbd.lock"
    write_pid_file(path)
    assert read_pid(path) == os.getpid()
    remove_pid_file(path)
    assert not path.exists()
    write_pid_file(path, 999999999)  # no such process
    assert read_pid(path) is None
    remove_pid_file(path)  # not ours: left alone
    assert path.exists()
    path.write_text("garbage")
    assert read_pid(path) is None


# --- ksmbd.adduser --------------------------------------------------------------------------

def test_adduser_add_update_delete(tmp_path, capsys):
    db = tmp_path / "ksmbdpwd.db"
    pid = str(tmp_path / "none.lock")
    assert adduser.main(["-P", str(db), "-a", "-p", "secret", "alice", "--pid-file", pid]) == 0
    assert PasswordDb.load(db).get("alice") == nt_hash("secret")
    assert oct(db.stat().st_mode & 0o777) == "0o600"
    assert adduser.main(["-P", str(db), "-a", "-p", "x", "ALICE", "--pid-file", pid]) == 1
    assert "already exists" in capsys.readouterr().err
    assert adduser.main(["-P", str(db), "-u", "-p", "new", "ALICE", "--pid-file", pid]) == 0
    assert PasswordDb.load(db).names() == ["alice"]  # the stored spelling is kept
    assert PasswordDb.load(db).get("alice") == nt_hash("new")
    assert adduser.main(["-P", str(db), "-u", "-p", "x", "bob", "--pid-file", pid]) == 1
    # neither -a nor -u: add or update
    assert adduser.main(["-P", str(db), "-p", "b", "bob", "--pid-file", pid]) == 0
    assert adduser.main(["-P", str(db), "-p", "c", "bob", "--pid-file", pid]) == 0
    assert PasswordDb.load(db).get("bob") == nt_hash("c")
    assert adduser.main(["-P", str(db), "-d", "alice", "--pid-file", pid]) == 0
    assert adduser.main(["-P", str(db), "-d", "alice", "--pid-file", pid]) == 1
    assert PasswordDb.load(db).names() == ["bob"]
    assert adduser.main(["-P", str(db), "-a", "-p", "x", "bad:name", "--pid-file", pid]) == 1


def test_adduser_prompts_without_p(tmp_path, monkeypatch):
    answers = iter(["pw1", "pw1"])
    monkeypatch.setattr(adduser.getpass, "getpass", lambda prompt: next(answers))
    db = tmp_path / "db"
    assert adduser.main(["-P", str(db), "-a", "carol", "--pid-file", str(tmp_path / "x")]) == 0
    assert PasswordDb.load(db).get("carol") == nt_hash("pw1")
    answers = iter(["a", "b"])
    assert adduser.main(["-P", str(db), "-u", "carol", "--pid-file", str(tmp_path / "x")]) == 1


def test_adduser_tells_the_server_to_reload(tmp_path, hup_child):
    _, pid_file, marks = hup_child
    assert adduser.main(["-P", str(tmp_path / "db"), "-a", "-p", "pw", "dave",
                         "--pid-file", str(pid_file)]) == 0
    assert _wait_for(lambda: marks.read_text() == "x")


def test_adduser_exit_code_ignores_a_missing_server(tmp_path):
    assert adduser.main(["-P", str(tmp_path / "db"), "-p", "pw", "erin", "-v",
                         "--pid-file", str(tmp_path / "nothing.lock")]) == 0


# --- ksmbd.mountd ---------------------------------------------------------------------------

def test_mountd_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        mountd.main(["-V"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"ksmbd-tools version : {__version__}\n"


def test_mountd_version_line_matches_the_old_luci_regex():
    import re
    m = re.search(r"version : (\S+)", mountd.version_line())
    assert m and m.group(1) == __version__


def test_mountd_runs_the_server_with_the_openwrt_layout(monkeypatch):
    seen = []
    import ksmbd_embedded.cli as cli
    monkeypatch.setattr(cli, "main", lambda argv: seen.append(argv) or 0)
    assert mountd.main(["-n", "-p", "4450", "-P", "/tmp/db", "-v"]) == 0
    argv = seen[0]
    assert argv[0] == "serve"
    opts = dict(zip(argv[1::2], argv[2::2]))
    assert opts["--config"] == "/etc/config/ksmbd"
    assert opts["--config-extra"] == "/var/run/config/ksmbd"
    assert opts["--ksmbd-conf"] == "/etc/ksmbd/ksmbd.conf"
    assert opts["--write-ksmbd-conf"] == "/var/etc/ksmbd/ksmbd.conf"
    assert opts["--pwddb"] == "/tmp/db" and opts["--port"] == "4450"
    assert opts["--pid-file"] == "/var/run/ksmbd.lock" and opts["--log-level"] == "debug"
    cli._parser().parse_args(argv)  # every option exists in the real CLI


def test_mountd_refuses_to_detach(capsys):
    assert mountd.main(["-n0"]) == 1


# --- ksmbd.control --------------------------------------------------------------------------

def test_control_reload_sends_sighup(hup_child):
    _, pid_file, marks = hup_child
    assert control.main(["-r", "--pid-file", str(pid_file)]) == 0
    assert _wait_for(lambda: marks.read_text() == "x")


def test_control_without_server_fails(tmp_path, capsys):
    pid = str(tmp_path / "none.lock")
    assert control.main(["-r", "--pid-file", pid]) == 1
    assert control.main(["-s", "--pid-file", pid, "--init-script", "/nonexistent"]) == 1
    assert "not running" in capsys.readouterr().err


def test_control_shutdown_signals_without_procd(hup_child):
    proc, pid_file, _ = hup_child
    assert control.main(["-s", "--pid-file", str(pid_file),
                         "--init-script", "/nonexistent"]) == 0
    assert proc.wait(5) == 0


def test_control_shutdown_goes_through_the_init_script(tmp_path, hup_child):
    proc, pid_file, _ = hup_child
    init = tmp_path / "ksmbd.init"
    calls = tmp_path / "calls"
    init.write_text(f"#!/bin/sh\necho \"$1\" >> {calls}\nkill {proc.pid}\n")
    init.chmod(0o755)
    assert control.main(["-s", "--pid-file", str(pid_file), "--init-script", str(init)]) == 0
    assert calls.read_text() == "stop\n"
    assert proc.wait(5) == 0


def test_control_list_from_ubus(tmp_path, monkeypatch, capsys):
    """`ubus call ksmbd shares` answers a page at a time (offset, total): -l reads them all."""
    fake = tmp_path / "ubus"
    fake.write_text(
        "#!/bin/sh\n"
        "case \"$*\" in\n"
        "  'call ksmbd shares {\"offset\": 0}') echo '{\"shares\": [{\"name\": \"media\"}, "
        "{\"name\": \"usb\"}], \"offset\": 0, \"total\": 3}' ;;\n"
        "  'call ksmbd shares {\"offset\": 2}') echo '{\"shares\": [{\"name\": \"zz\"}], "
        "\"offset\": 2, \"total\": 3}' ;;\n"
        "  *) exit 4 ;;\n"
        "esac\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert control.main(["-l"]) == 0
    assert capsys.readouterr().out == "media\nusb\nzz\n"


def test_control_list_falls_back_to_the_config(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no ubus tool
    uci = tmp_path / "ksmbd"
    uci.write_text("config share\n\toption name 'docs'\n\toption path '/nonexistent'\n")
    monkeypatch.setattr(control, "CONFIG_SOURCES", ConfigSources(str(uci)))
    assert control.main(["-l"]) == 0
    assert capsys.readouterr().out == "docs\n"


def test_control_version_and_debug(capsys):
    assert control.main(["-c"]) == 0
    assert capsys.readouterr().out == f"ksmbd version : {__version__}\n"
    assert control.main(["-d", "all"]) == 1
    with pytest.raises(SystemExit):
        control.main([])  # one action is required


def test_entry_points_are_registered():
    import tomllib
    from pathlib import Path
    data = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    scripts = data["project"]["scripts"]
    assert scripts["ksmbd.adduser"] == "ksmbd_embedded.tools.adduser:main"
    assert scripts["ksmbd.control"] == "ksmbd_embedded.tools.control:main"
    assert scripts["ksmbd.mountd"] == "ksmbd_embedded.tools.mountd:main"

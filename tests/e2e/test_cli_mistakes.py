"""A user's mistakes at the command line get one clear line, never a traceback.

Real `ksmbd-embedded` (and `ksmbd.adduser`) processes: a port in use, `make run`'s hints only
once the server listens, passwords piped in or abandoned at the prompt (a pty), password
database paths that do not exist, names and passwords ksmbd-tools would not take.
"""

from __future__ import annotations

import errno
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ksmbd_embedded.pwddb import PasswordDb, nt_hash

from .harness import free_port

REPO = Path(__file__).resolve().parents[2]


def ksmbd(*args, input: str | None = None, timeout: float = 20,
          module: str = "ksmbd_embedded") -> subprocess.CompletedProcess:
    """Run the command in a new session: no controlling terminal, so nothing can prompt on
    the terminal pytest runs in."""
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], input=input,
                          stdin=None if input is not None else subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout,
                          start_new_session=True)


def serve_setup(tmp: Path) -> tuple[Path, Path]:
    """A config with one share and a password database with one user."""
    share = tmp / "share"
    share.mkdir(parents=True)
    config = tmp / "ksmbd.uci"
    config.write_text(f"config share\n\toption name 'public'\n\toption path '{share}'\n"
                      "\toption guest_ok 'yes'\n")
    db = PasswordDb()
    db.set("alice", nt_hash("alice-pw"))
    db.save(tmp / "ksmbdpwd.db")
    return config, tmp / "ksmbdpwd.db"


def hold(port: int, host: str = "127.0.0.1",
         family: socket.AddressFamily = socket.AF_INET) -> socket.socket:
    """Another program listening on host:port."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind((host, port))
    sock.listen(1)
    return sock


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


def assert_nothing_served(proc: subprocess.CompletedProcess) -> None:
    both = (proc.stdout + proc.stderr).lower()
    assert "serving" not in both and "listening on" not in both, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr


# --- a port that cannot be listened on --------------------------------------------------

def test_port_in_use(tmp_path):
    config, db = serve_setup(tmp_path)
    port = free_port()
    with hold(port):
        proc = ksmbd("serve", "--config", config, "--pwddb", db, "--listen", "127.0.0.1",
                     "--port", port, "--ubus-socket", "")
    assert proc.returncode == 1, proc.stderr
    assert error_lines(proc.stderr) == [
        f"error: cannot listen on 127.0.0.1:{port}: address already in use"]
    assert proc.stdout == ""
    assert_nothing_served(proc)


def test_ipv6_port_in_use(tmp_path):
    try:
        probe = hold(0, "::1", socket.AF_INET6)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    probe.close()
    config, db = serve_setup(tmp_path)
    port = free_port()
    with hold(port, "::1", socket.AF_INET6):
        proc = ksmbd("serve", "--config", config, "--pwddb", db, "--listen", "::1",
                     "--port", port, "--ubus-socket", "")
    assert proc.returncode == 1
    assert error_lines(proc.stderr) == [
        f"error: cannot listen on [::1]:{port}: address already in use"]
    assert_nothing_served(proc)


def test_second_address_in_use_nothing_listens(tmp_path):
    """127.0.0.1 can be bound, 127.0.0.2 cannot: no "listening on 127.0.0.1" first."""
    config, db = serve_setup(tmp_path)
    port = free_port()
    try:
        held = hold(port, "127.0.0.2")
    except OSError:
        pytest.skip("127.0.0.2 is not usable here")
    with held:
        proc = ksmbd("serve", "--config", config, "--pwddb", db, "--listen", "127.0.0.1",
                     "--listen", "127.0.0.2", "--port", port, "--ubus-socket", "")
    assert proc.returncode == 1
    assert error_lines(proc.stderr) == [
        f"error: cannot listen on 127.0.0.2:{port}: address already in use"]
    assert_nothing_served(proc)


def test_address_not_on_this_host(tmp_path):
    config, db = serve_setup(tmp_path)
    port = free_port()
    proc = ksmbd("serve", "--config", config, "--pwddb", db, "--listen", "192.0.2.1",
                 "--port", port, "--ubus-socket", "")  # TEST-NET-1: on no host
    assert proc.returncode == 1
    assert error_lines(proc.stderr) == [
        f"error: cannot listen on 192.0.2.1:{port}: address not available on this host"]
    assert_nothing_served(proc)


def test_privileged_port_reason():
    """Tests run as root here, so the message of a refused port below 1024 is checked as is."""
    from ksmbd_embedded.loop import _listen_problem
    refused = PermissionError(errno.EACCES, "Permission denied")
    assert _listen_problem("0.0.0.0", 445, refused) == (
        "cannot listen on 0.0.0.0:445: permission denied (ports below 1024 need root or "
        "CAP_NET_BIND_SERVICE)")
    assert _listen_problem("::", 4445, refused) == "cannot listen on [::]:4445: permission denied"


@pytest.mark.parametrize("option,value,words", [("--port", "70000", "bad port '70000'"),
                                                ("--listen", "my-router", "bad address")])
def test_bad_port_or_address_is_a_usage_error(tmp_path, option, value, words):
    config, db = serve_setup(tmp_path)
    args = ["serve", "--config", config, "--pwddb", db, "--ubus-socket", "", option, value]
    if option == "--port":
        args += ["--listen", "127.0.0.1"]
    else:
        args += ["--port", free_port()]
    proc = ksmbd(*args, timeout=10)
    assert proc.returncode == 2 and words in proc.stderr
    assert_nothing_served(proc)


# --- saying "serving" only once it does -------------------------------------------------

def read_line(stream, deadline: float) -> str:
    """One line of a subprocess pipe, waiting at most until ``deadline``."""
    line = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        byte = os.read(stream.fileno(), 1)
        if not byte:
            break
        line += byte
        if byte == b"\n":
            break
    return line.decode(errors="replace")


def stop(proc: subprocess.Popen, group: bool = False) -> int:
    if proc.poll() is None:
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            if group:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


def test_ready_message_printed_once_listening(tmp_path):
    config, db = serve_setup(tmp_path)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ksmbd_embedded", "serve", "--config", str(config),
         "--pwddb", str(db), "--listen", "127.0.0.1", "--port", str(port),
         "--ubus-socket", "", "--ready-message", "Ready on", "--ready-message", "  two lines"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        first = read_line(proc.stdout, time.monotonic() + 20)
        assert first == "Ready on\n", proc.stderr.read1() if proc.poll() is not None else ""
        # printed after the listener exists: a client gets in at once
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        assert read_line(proc.stdout, time.monotonic() + 5) == "  two lines\n"
    finally:
        assert stop(proc) == 0
    assert "Traceback" not in proc.stderr.read().decode()


def make_run(tmp: Path, port: int, **popen) -> subprocess.Popen:
    """`make run` of the repository's Makefile, in a copy of what it reads (Makefile,
    dev/ksmbd.uci), with this venv's commands and without the `setup` step."""
    # make test runs from make, in the venv that `make setup` installed the command into:
    # either missing is a broken install, not a reason to skip.
    assert shutil.which("make"), "make is missing"
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "ksmbd-embedded").exists(), \
        f"no ksmbd-embedded command beside {sys.executable}: run make setup"
    tmp.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "Makefile", tmp / "Makefile")
    (tmp / "dev").mkdir(exist_ok=True)
    shutil.copy(REPO / "dev" / "ksmbd.uci", tmp / "dev" / "ksmbd.uci")
    return subprocess.Popen(["make", "-s", "-C", str(tmp), "-o", "setup", "run",
                             f"PORT={port}", f"BIN={bin_dir}"],
                            stdin=subprocess.DEVNULL, start_new_session=True, **popen)


def test_make_run_port_in_use_says_no_serving(tmp_path):
    port = free_port()
    with hold(port):
        proc = make_run(tmp_path / "m", port, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                        text=True)
        try:
            out, err = proc.communicate(timeout=30)
        finally:
            stop(proc, group=True)
    assert proc.returncode != 0
    assert "Serving" not in out and "Stop with Ctrl-C" not in out
    assert f"error: cannot listen on 127.0.0.1:{port}: address already in use" in err
    assert "Traceback" not in err


def test_make_run_hint_only_once_listening(tmp_path):
    port = free_port()
    proc = make_run(tmp_path / "m", port, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        lines = [read_line(proc.stdout, deadline)]  # "user 'alice' added" comes first
        while lines[-1] and not lines[-1].startswith("Serving"):
            lines.append(read_line(proc.stdout, deadline))
        assert lines[-1].startswith("Serving //127.0.0.1/public"), lines
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        assert f"port {port}" in lines[-1]
        assert read_line(proc.stdout, deadline).startswith("Try:")
    finally:
        stop(proc, group=True)
    assert "Traceback" not in proc.stderr.read().decode()


# --- passwords --------------------------------------------------------------------------

def test_user_add_password_piped(tmp_path):
    db = tmp_path / "pw.db"
    proc = ksmbd("user", "add", "bob", "--pwddb", db, input="s3cret\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and "added" in proc.stdout
    assert PasswordDb.load(db).get("bob") == nt_hash("s3cret")


def test_user_add_password_piped_with_confirmation(tmp_path):
    db = tmp_path / "pw.db"
    proc = ksmbd("user", "add", "bob", "--pwddb", db, input="s3cret\ns3cret\n")
    assert proc.returncode == 0 and PasswordDb.load(db).get("bob") == nt_hash("s3cret")
    proc = ksmbd("user", "add", "carol", "--pwddb", db, input="one\ntwo\n")
    assert proc.returncode == 1
    assert proc.stderr == ("error: passwords do not match (lines 1 and 2 of the input "
                           "differ)\n")
    assert "carol" not in PasswordDb.load(db)


def test_user_add_nothing_piped(tmp_path):
    db = tmp_path / "pw.db"
    proc = ksmbd("user", "add", "bob", "--pwddb", db, input="")
    assert proc.returncode == 1
    assert proc.stderr == "error: no password given: standard input is empty\n"
    assert not db.exists()


def test_adduser_password_piped(tmp_path):
    db = tmp_path / "pw.db"
    proc = ksmbd("-P", db, "-a", "dave", "--pid-file", tmp_path / "none.lock",
                 module="ksmbd_embedded.tools.adduser", input="pw\npw\n")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "GetPassWarning" not in proc.stderr
    assert PasswordDb.load(db).get("dave") == nt_hash("pw")


def run_at_prompt(args: list[str], keys: bytes, prompt: bytes) -> tuple[int, str]:
    """Run the command on a pty (its controlling terminal), wait for ``prompt``, type
    ``keys``; return (exit status, everything it wrote)."""
    pid, fd = pty.fork()
    if pid == 0:  # child: the pty is its terminal
        try:
            os.execv(sys.executable, [sys.executable, "-m", *args])
        finally:
            os._exit(127)
    output = b""
    try:
        deadline = time.monotonic() + 20
        sent = False
        while time.monotonic() < deadline:
            if not sent and prompt in output:
                os.write(fd, keys)
                sent = True
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                data = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the pty
                break
            if not data:
                break
            output += data
        assert sent, f"no prompt: {output!r}"
    finally:
        os.close(fd)
        done, status = os.waitpid(pid, os.WNOHANG)
        for _ in range(100):
            if done:
                break
            time.sleep(0.05)
            done, status = os.waitpid(pid, os.WNOHANG)
        if not done:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


@pytest.mark.parametrize("key", [b"\x04", b"\x03"], ids=["ctrl-d", "ctrl-c"])
def test_user_add_prompt_abandoned(tmp_path, key):
    db = tmp_path / "pw.db"
    rc, output = run_at_prompt(["ksmbd_embedded", "user", "add", "bob", "--pwddb", str(db)],
                               key, b"New SMB password: ")
    assert rc == 1, output
    assert "Traceback" not in output and "KeyboardInterrupt" not in output
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    assert lines == ["New SMB password:", "error: no password given"]
    assert not db.exists()


def test_adduser_prompt_abandoned(tmp_path):
    db = tmp_path / "pw.db"
    rc, output = run_at_prompt(["ksmbd_embedded.tools.adduser", "-P", str(db), "-a", "erin",
                                "--pid-file", str(tmp_path / "none.lock")],
                               b"\x04", b"New password: ")
    assert rc == 1 and "Traceback" not in output
    assert "ksmbd.adduser: no password given" in output


def test_empty_password_refused(tmp_path):
    db = tmp_path / "pw.db"
    for proc in (ksmbd("user", "add", "bob", "--pwddb", db, "--password", ""),
                 ksmbd("user", "add", "bob", "--pwddb", db, input="\n")):
        assert proc.returncode == 1
        assert proc.stderr.startswith("error: empty password; ")
        assert proc.stderr.count("\n") == 1
    assert not db.exists()


def test_adduser_empty_password_said(tmp_path):
    """ksmbd-tools' ksmbd.adduser accepts an empty password, and says so."""
    db = tmp_path / "pw.db"
    proc = ksmbd("-P", db, "-a", "-p", "", "frank", "--pid-file", tmp_path / "none.lock",
                 module="ksmbd_embedded.tools.adduser")
    assert proc.returncode == 0
    assert proc.stderr == "ksmbd.adduser: empty password given\n"
    assert PasswordDb.load(db).get("frank") == nt_hash("")


# --- names and database paths -----------------------------------------------------------

def test_name_with_space_accepted_with_a_warning(tmp_path):
    db = tmp_path / "pw.db"
    proc = ksmbd("user", "add", "john doe", "--pwddb", db, "--password", "pw")
    assert proc.returncode == 0
    assert proc.stderr.startswith("warning: user name 'john doe' contains a space or comma")
    assert "users, write_list or read_list" in proc.stderr and proc.stderr.count("\n") == 1
    assert PasswordDb.load(db).names() == ["john doe"]


def test_user_add_creates_missing_directory_and_says_so(tmp_path):
    db = tmp_path / "new" / "dir" / "pw.db"
    proc = ksmbd("user", "add", "bob", "--pwddb", db, "--password", "pw")
    assert proc.returncode == 0
    assert proc.stdout.splitlines() == [f"created directory {db.parent}", "user 'bob' added"]
    proc = ksmbd("user", "add", "carol", "--pwddb", db, "--password", "pw")
    assert proc.stdout.splitlines() == ["user 'carol' added"]


def test_user_list_missing_database(tmp_path):
    db = tmp_path / "nope" / "pw.db"
    proc = ksmbd("user", "list", "--pwddb", db)
    assert (proc.returncode, proc.stdout) == (0, "")
    assert proc.stderr == f"warning: {db} does not exist: no users\n"


def test_unreadable_database(tmp_path):
    folder = tmp_path / "a-directory"
    folder.mkdir()
    proc = ksmbd("user", "list", "--pwddb", folder)
    assert proc.returncode == 1
    assert proc.stderr == f"error: cannot read {folder}: is a directory\n"
    config, _ = serve_setup(tmp_path / "srv")
    proc = ksmbd("serve", "--config", config, "--pwddb", folder, "--listen", "127.0.0.1",
                 "--port", free_port(), "--ubus-socket", "")
    assert proc.returncode == 1
    assert error_lines(proc.stderr) == [
        f"error: cannot read the password database {folder}: is a directory"]
    assert_nothing_served(proc)


def test_serve_without_database_warns_and_serves(tmp_path):
    config, _ = serve_setup(tmp_path)
    missing = tmp_path / "no-such" / "pw.db"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ksmbd_embedded", "serve", "--config", str(config),
         "--pwddb", str(missing), "--listen", "127.0.0.1", "--port", str(port),
         "--ubus-socket", ""],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, "the server exited"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not listen"
                time.sleep(0.05)
    finally:
        assert stop(proc) == 0
    log = proc.stderr.read().decode()
    assert [line for line in log.splitlines() if "WARNING" in line and "pw.db" in line] \
        and f"no users: {missing} does not exist; only guest logons" in log
    assert "Traceback" not in log

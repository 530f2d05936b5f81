"""A LAN peer cannot take all connections or descriptors (issue 11): per-address and global
connection limits that reclaim stale connections instead of locking a client out, logon and
frame timeouts, the fd limit without a busy loop, the soft RLIMIT_NOFILE raised at start."""

from __future__ import annotations

import os
import resource
import select
import socket
import time
import uuid

import pytest
from smbprotocol.connection import Connection
from smbprotocol.open import (
    CreateDisposition, CreateOptions, FileAttributes, FilePipePrinterAccessMask,
    ImpersonationLevel, Open, ShareAccess,
)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

from .harness import start_server
from .smbclient_tool import assert_ok, smbclient


def _globals(**options) -> str:
    return "".join(f"\toption {key} '{value}'\n" for key, value in options.items())


def _dial(port: int, source: str = "127.0.0.1") -> socket.socket:
    s = socket.socket()
    s.settimeout(5)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    """Whether the server closes `sock` within `within` seconds (EOF or reset)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(4096)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        if not data:
            return True
    return False


def _closed(socks: list[socket.socket], within: float) -> list[bool]:
    """Which of `socks` the server has closed (EOF or reset) after `within` seconds."""
    closed = [False] * len(socks)
    deadline = time.monotonic() + within
    while True:
        left = deadline - time.monotonic()
        waiting = [s for s, c in zip(socks, closed) if not c]
        if left <= 0 or not waiting:
            return closed
        for s in select.select(waiting, [], [], left)[0]:
            i = socks.index(s)
            try:
                closed[i] = not s.recv(4096)
            except OSError:
                closed[i] = True


def _session(port: int, signing: bool = False):
    conn = Connection(uuid.uuid4(), "127.0.0.1", port, require_signing=signing)
    conn.connect(timeout=10)
    session = Session(conn, "alice", "alice-pw", require_encryption=False,
                      auth_protocol="ntlm")
    session.connect()
    tree = TreeConnect(session, r"\\127.0.0.1\share")
    tree.connect()
    return conn, tree


def _open(tree, name: str) -> Open:
    f = Open(tree, name)
    f.create(ImpersonationLevel.Impersonation,
             FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE,
             FileAttributes.FILE_ATTRIBUTE_NORMAL, ShareAccess.FILE_SHARE_READ,
             CreateDisposition.FILE_OPEN_IF, CreateOptions.FILE_NON_DIRECTORY_FILE)
    return f


def _disconnect(conn) -> None:
    try:
        conn.disconnect()
    except Exception:  # the server may have closed it first
        pass


@pytest.fixture
def make_server(tmp_path):
    started = []

    def make(**options):
        srv = start_server(tmp_path / f"srv{len(started)}", extra_globals=_globals(**options),
                           extra_args=["--ubus-socket", ""])
        started.append(srv)
        return srv

    yield make
    for srv in started:
        assert srv.stop() == 0, srv.log()
        assert "Traceback" not in srv.log(), srv.log()


def test_stale_connections_of_an_address_are_reclaimed_for_its_new_one(make_server):
    srv = make_server(max_ip_connections=3)
    dead = [_dial(srv.port) for _ in range(3)]  # a client's connections before a Wi-Fi drop
    try:
        assert srv.wait_for_log("connected", 5)
        time.sleep(0.3)  # all three accepted
        assert_ok(smbclient(srv.port, "public", "ls", user=None))
        assert _closed(dead, 0.5) == [True, False, False]  # the one idle longest went
        assert "reclaimed for a new connection" in srv.log()
        assert "is at max_ip_connections (3)" in srv.log()
        assert "connection refused" not in srv.log()
    finally:
        for s in dead:
            s.close()


def test_global_limit_reclaims_the_idlest_connection_of_any_address(make_server):
    srv = make_server(max_connections=2)
    first = _dial(srv.port, "127.0.0.2")
    time.sleep(1.2)  # idle longer than the next one, to a sweep's precision
    second = _dial(srv.port, "127.0.0.3")
    try:
        time.sleep(0.3)
        assert_ok(smbclient(srv.port, "public", "ls", user=None))
        assert _closed_by_server(first, 2.0)
        assert not _closed_by_server(second, 0.3)
        assert "the server is at max_connections (2)" in srv.log()
    finally:
        first.close()
        second.close()


def test_an_address_whose_connections_hold_files_is_refused_and_logged_once(make_server):
    srv = make_server(max_ip_connections=2)
    clients = []
    try:
        for i in range(2):
            conn, tree = _session(srv.port)
            clients.append(conn)
            _open(tree, f"held-{i}.txt")
        refused = 0
        for _ in range(5):
            s = _dial(srv.port)
            refused += _closed_by_server(s, 1.0)
            s.close()
        assert refused == 5
        other = _dial(srv.port, "127.0.0.2")  # another address is not affected
        assert not _closed_by_server(other, 0.5)
        other.close()
        lines = [ln for ln in srv.log().splitlines() if "connection refused" in ln]
        assert len(lines) == 1, lines
        assert "127.0.0.1: connection refused: this address is at max_ip_connections (2)" in lines[0]
    finally:
        for conn in clients:
            _disconnect(conn)


def test_logon_timeout_closes_connections_that_never_log_on(make_server):
    srv = make_server(logon_timeout=1, frame_timeout=30)
    silent = _dial(srv.port)
    conn, tree = _session(srv.port)
    try:
        assert _closed_by_server(silent, 4.0)
        assert srv.wait_for_log("no logon within 1 s", 2)
        time.sleep(1.5)  # a logged-on connection stays
        f = _open(tree, "still.txt")
        f.close()
    finally:
        silent.close()
        _disconnect(conn)


def test_frame_timeout_closes_frames_that_never_complete(make_server):
    srv = make_server(logon_timeout=30, frame_timeout=1)
    stuck = _dial(srv.port)
    stuck.sendall(b"\x00\x00\x01\x00" + b"\xfeSMB" + bytes(6))  # 256 bytes announced, 10 sent
    trickle = _dial(srv.port)
    trickle.sendall(b"\x00\x00\x01\x00")
    try:
        deadline = time.monotonic() + 4
        gone = False
        while time.monotonic() < deadline and not gone:
            try:
                trickle.sendall(b"\0")  # progress, but the frame does not get whole in time
            except OSError:
                gone = True
            gone = gone or _closed_by_server(trickle, 0.25)
        assert gone
        assert _closed_by_server(stuck, 1.0)
        deadline = time.monotonic() + 2
        while srv.log().count("frame not complete after 1 s") < 2 and \
                time.monotonic() < deadline:
            time.sleep(0.05)
        assert srv.log().count("frame not complete after 1 s") == 2
    finally:
        stuck.close()
        trickle.close()


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _serve_while_measuring(pid: int, f, seconds: float, during=None) -> float:
    """Read through the open `f` every 0.25 s for `seconds` (each answer within a second)
    and call `during()` each round; the server's CPU seconds used meanwhile."""
    cpu = _cpu_seconds(pid)
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        t0 = time.monotonic()
        assert f.read(0, 7) == b"payload"  # an existing client is served meanwhile
        assert time.monotonic() - t0 < 1.0
        if during is not None:
            during()
        time.sleep(0.25)
    return _cpu_seconds(pid) - cpu


def test_many_connections_at_a_low_fd_limit_keep_headroom_and_do_not_spin(make_server):
    srv = make_server(max_connections=0, max_ip_connections=0)
    (srv.shares["share"] / "data.txt").write_text("payload")
    conn, tree = _session(srv.port)
    f = _open(tree, "data.txt")
    idle = []
    try:
        resource.prlimit(srv.proc.pid, resource.RLIMIT_NOFILE, (64, 64))
        for _ in range(90):  # more than 64 descriptors can hold
            idle.append(_dial(srv.port))
        time.sleep(0.3)
        used = _serve_while_measuring(srv.proc.pid, f, 3.0)
        assert used < 0.6, f"server used {used:.2f} s of CPU in 3 s at the fd limit"
        # idle connections without open files made room for the newer ones; the held
        # file's connection was kept, and a new client gets in while all that goes on
        assert_ok(smbclient(srv.port, "public", "ls", user=None))
        log = srv.log()
        assert "the server is short of file descriptors" in log
        assert "accept failed" not in log and "Too many open files" not in log, log
        assert len(log.splitlines()) < 400
    finally:
        for s in idle:
            s.close()
        _disconnect(conn)


def test_accept_at_the_fd_limit_pauses_and_closes_what_it_cannot_hold(make_server):
    srv = make_server(max_connections=0, max_ip_connections=0)
    (srv.shares["share"] / "data.txt").write_text("payload")
    conn, tree = _session(srv.port, signing=True)  # (signed reads need no extra descriptor)
    f = _open(tree, "data.txt")
    idle = [_dial(srv.port) for _ in range(20)]
    late: list[socket.socket] = []
    try:
        time.sleep(0.3)
        in_use = len(os.listdir(f"/proc/{srv.proc.pid}/fd"))
        resource.prlimit(srv.proc.pid, resource.RLIMIT_NOFILE, (in_use, in_use))
        used = _serve_while_measuring(srv.proc.pid, f, 3.0,
                                      lambda: late.append(_dial(srv.port)))
        assert used < 0.6, f"server used {used:.2f} s of CPU in 3 s at the fd limit"
        assert all(_closed(late, 1.0)), "connections over the fd limit left hanging"
        assert not any(_closed(idle, 0.1))
        log = srv.log()
        assert log.count("out of file descriptors") == 1, log
        assert "accept failed" not in log
        for s in idle:  # once connections go, new clients get in
            s.close()
        deadline = time.monotonic() + 5
        while True:
            result = smbclient(srv.port, "public", "ls", user=None)
            if result.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert_ok(result)
    finally:
        for s in idle + late:
            s.close()
        _disconnect(conn)


def test_soft_open_files_limit_is_raised_to_the_hard_one(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # the server inherits 256, or more if this (pytest) process already has that many open
    low = max(256, len(os.listdir("/proc/self/fd")) + 64)
    if hard != resource.RLIM_INFINITY and hard <= low:
        pytest.skip("the hard open files limit is too low to tell")
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    try:
        srv = start_server(tmp_path / "srv")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        with open(f"/proc/{srv.proc.pid}/limits") as f:
            line = next(ln for ln in f if ln.startswith("Max open files"))
        server_soft, server_hard = line.split()[3:5]
        assert server_soft == server_hard, line
    finally:
        assert srv.stop() == 0

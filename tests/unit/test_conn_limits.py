"""Connection limits, reclaim and timers without a server process (conn_limits.py,
conn_timeouts.py, their use in loop.py), and their options (UCI, ksmbd.conf, ubus)."""

from __future__ import annotations

import errno
import logging
import socket
import threading
import time
from types import SimpleNamespace

import pytest

from ksmbd_embedded import conn_limits, conn_timeouts
from ksmbd_embedded.config import ConfigError, config_from_text
from ksmbd_embedded.connection import Connection
from ksmbd_embedded.ksmbd_conf import config_from_ksmbd_conf, render
from ksmbd_embedded.loop import Loop
from ksmbd_embedded.session import IN_PROGRESS, VALID
from ksmbd_embedded.ubus.ksmbd_object import KsmbdObject

from test_connection import state  # noqa: F401


def _conn(state, *, opens=0, session=None):
    conn = Connection(state, "peer", 0.0)
    if session is not None or opens:
        tree = SimpleNamespace(open_count=opens)
        conn.sessions[1] = SimpleNamespace(state=session or VALID, trees={1: tree})
    return conn


def _settings(**kw):
    base = dict(logon_timeout=20, frame_timeout=30, deadtime=0)
    base.update(kw)
    return SimpleNamespace(**base)


# -- admit: the per-address and global limits, reclaim ------------------------------------

def test_below_the_limits_nothing_is_closed(state):
    table = conn_limits.ConnTable()
    table.add("c1", _conn(state), "10.0.0.1", 0.0)
    assert table.admit("10.0.0.1", 1.0, 256, 32) == ([], None)


def test_per_address_limit_reclaims_the_idlest_connection_without_open_files(state):
    table = conn_limits.ConnTable()
    busy = table.add("busy", _conn(state, opens=1), "10.0.0.1", 0.0)
    old = table.add("old", _conn(state), "10.0.0.1", 1.0)
    new = table.add("new", _conn(state), "10.0.0.1", 2.0)
    table.add("other", _conn(state), "10.0.0.2", 0.0)  # another address is not touched
    victims, rule = table.admit("10.0.0.1", 5.0, 256, 3)
    assert rule is None and victims == [(old, "max_ip_connections")]
    # a frame received since the last sweep makes a connection active now
    old.conn.bytes_in = 100
    victims, rule = table.admit("10.0.0.1", 5.0, 256, 3)
    assert victims == [(new, "max_ip_connections")]
    assert busy not in [v for v, _ in victims]


def test_per_address_limit_refuses_when_every_connection_has_open_files(state):
    table = conn_limits.ConnTable()
    for i in range(2):
        table.add(i, _conn(state, opens=1), "10.0.0.1", 0.0)
    table.add("idle", _conn(state), "10.0.0.2", 0.0)
    assert table.admit("10.0.0.1", 9.0, 256, 2) == ([], "max_ip_connections")
    assert table.admit("10.0.0.2", 9.0, 256, 2) == ([], None)


def test_global_limit_reclaims_across_addresses_or_refuses(state):
    table = conn_limits.ConnTable()
    a = table.add("a", _conn(state), "10.0.0.1", 3.0)
    b = table.add("b", _conn(state), "10.0.0.2", 1.0)
    assert table.admit("10.0.0.3", 5.0, 2, 32) == ([(b, "max_connections")], None)
    b.conn.sessions[1] = SimpleNamespace(state=VALID, trees={1: SimpleNamespace(open_count=2)})
    assert table.admit("10.0.0.3", 5.0, 2, 32) == ([(a, "max_connections")], None)
    a.conn.async_ops[1] = object()  # a pending request counts as busy
    assert table.admit("10.0.0.3", 5.0, 2, 32) == ([], "max_connections")


def test_both_limits_pick_distinct_connections(state):
    table = conn_limits.ConnTable()
    a1 = table.add("a1", _conn(state), "10.0.0.1", 1.0)
    b1 = table.add("b1", _conn(state), "10.0.0.2", 0.0)
    victims, rule = table.admit("10.0.0.1", 5.0, 2, 1)
    assert rule is None and victims == [(a1, "max_ip_connections")]  # room for both
    table.add("b2", _conn(state), "10.0.0.2", 2.0)
    victims, rule = table.admit("10.0.0.1", 5.0, 2, 1)
    assert victims == [(a1, "max_ip_connections"), (b1, "max_connections")]


def test_fd_tight_reclaims_one_or_refuses(state):
    table = conn_limits.ConnTable()
    assert table.admit("10.0.0.1", 0.0, 256, 32, fd_tight=True) == ([], "fd_limit")
    idle = table.add("idle", _conn(state), "10.0.0.2", 0.0)
    assert table.admit("10.0.0.1", 1.0, 256, 32, fd_tight=True) == (
        [(idle, "fd_limit")], None)


def test_forget_and_zero_means_ksmbds_65536(state):
    table = conn_limits.ConnTable()
    conn = _conn(state)
    table.add("c", conn, "10.0.0.1", 0.0)
    table.forget(conn)
    table.forget(conn)  # twice is harmless
    assert len(table) == 0 and table.by_ip == {}
    assert conn_limits.effective(0) == 65536 and conn_limits.effective(7) == 7


def test_fd_tight_counts_the_descriptor_number_and_the_estimate():
    assert not conn_limits.fd_tight(None, 10_000, 10_000)
    assert not conn_limits.fd_tight(56, 54, 50)
    assert conn_limits.fd_tight(56, 56, 50)  # fds 0..56 in use: 57 > 56
    assert conn_limits.fd_tight(56, 12, 57)  # a low number in a hole: the count says it


def test_refusals_are_logged_once_per_key_per_interval():
    table = conn_limits.ConnTable()
    assert table.should_log("10.0.0.1", 0.0)
    assert not table.should_log("10.0.0.1", 59.0)
    assert table.should_log("10.0.0.2", 59.0)
    assert table.should_log("10.0.0.1", 60.0)
    logged = sum(table.should_log(f"k{i}", 61.0) for i in range(conn_limits.MAX_LOG_KEYS + 10))
    assert logged == conn_limits.MAX_LOG_LINES - 1  # (the window began at 60 with one line)
    assert len(table._logged) <= conn_limits.MAX_LOG_KEYS  # and so is memory
    table.prune_log(200.0)
    assert table._logged == {}
    assert table.should_log("k0", 200.0)


def test_spare_fd_is_released_and_restored():
    spare = conn_limits.SpareFd()
    assert spare.fd >= 0
    assert spare.release() and spare.fd == -1 and not spare.release()
    assert spare.restore() and spare.fd >= 0
    spare.close()


# -- the timers ----------------------------------------------------------------------------

def test_logon_timeout(state):
    table = conn_limits.ConnTable()
    never = table.add("never", _conn(state), "10.0.0.1", 0.0)
    logging_on = table.add("on", _conn(state, session=IN_PROGRESS), "10.0.0.1", 0.0)
    logged = table.add("ok", _conn(state, session=VALID), "10.0.0.1", 0.0)
    settings = _settings(logon_timeout=20)
    none = lambda client: False  # noqa: E731
    assert conn_timeouts.expired(table, 19.0, settings, none) == []
    out = conn_timeouts.expired(table, 20.0, settings, none)
    assert [(t, kind) for t, kind, _ in out] == [(never, "logon"), (logging_on, "logon")]
    assert out[0][2] == "no logon within 20 s"
    # a connection whose last session went away gets the time again from then
    logged.conn.sessions.clear()
    assert conn_timeouts.expired(table, 30.0, settings, none)[-1][0] is not logged
    assert logged in [t for t, _, _ in conn_timeouts.expired(table, 50.0, settings, none)]
    assert conn_timeouts.expired(table, 100.0, _settings(logon_timeout=0), none) == []


def test_frame_timeout_counts_from_the_frames_start(state):
    table = conn_limits.ConnTable()
    t = table.add("c", _conn(state, session=VALID), "10.0.0.1", 0.0)
    partial = {"c": True}
    settings = _settings(frame_timeout=30)
    mid = lambda client: partial[client]  # noqa: E731
    assert conn_timeouts.expired(table, 1.0, settings, mid) == []  # first seen mid-frame
    assert conn_timeouts.expired(table, 30.0, settings, mid) == []
    t.conn.bytes_in += 100  # a frame completed, another started: it counts from now
    assert conn_timeouts.expired(table, 31.0, settings, mid) == []
    assert conn_timeouts.expired(table, 60.0, settings, mid) == []
    out = conn_timeouts.expired(table, 61.0, settings, mid)
    assert [(x, kind) for x, kind, _ in out] == [(t, "frame")]
    partial["c"] = False
    assert conn_timeouts.expired(table, 200.0, settings, mid) == []


def test_send_timeout_closes_a_peer_that_stopped_reading(state):
    """Unsent output of which no byte moves for frame_timeout seconds ends the connection;
    any progress, or nothing left to send, restarts the count."""
    table = conn_limits.ConnTable()
    t = table.add("c", _conn(state, session=VALID), "10.0.0.1", 0.0)
    progress = {"c": 0}
    settings = _settings(frame_timeout=30)
    none = lambda client: False  # noqa: E731
    sent = lambda client: progress[client]  # noqa: E731
    assert conn_timeouts.expired(table, 1.0, settings, none, sent) == []  # first seen
    assert conn_timeouts.expired(table, 30.0, settings, none, sent) == []
    progress["c"] = 4096  # the peer read some: counts from now
    assert conn_timeouts.expired(table, 31.0, settings, none, sent) == []
    assert conn_timeouts.expired(table, 60.0, settings, none, sent) == []
    out = conn_timeouts.expired(table, 61.0, settings, none, sent)
    assert [(x, kind) for x, kind, _ in out] == [(t, "send")]
    assert out[0][2] == "answers not read for 30 s"
    progress["c"] = None  # all sent
    assert conn_timeouts.expired(table, 200.0, settings, none, sent) == []
    progress["c"] = 4096  # output again, the same count as before: a new wait
    assert conn_timeouts.expired(table, 201.0, settings, none, sent) == []
    assert conn_timeouts.expired(table, 230.0, settings, none, sent) == []
    assert conn_timeouts.expired(table, 300.0, _settings(frame_timeout=0), none, sent) == []


def test_deadtime_closes_idle_connections_without_open_files(state, monkeypatch):
    table = conn_limits.ConnTable()
    idle = table.add("idle", _conn(state, session=VALID), "10.0.0.1", 0.0)
    busy = table.add("busy", _conn(state, opens=1), "10.0.0.1", 0.0)
    active = table.add("active", _conn(state, session=VALID), "10.0.0.1", 0.0)
    none = lambda client: False  # noqa: E731
    settings = _settings(deadtime=15, logon_timeout=0)
    active.conn.bytes_in = 1
    assert conn_timeouts.expired(table, 899.0, settings, none) == []
    out = conn_timeouts.expired(table, 900.0, settings, none)
    assert [(t, kind) for t, kind, _ in out] == [(idle, "deadtime")]
    assert out[0][2] == "idle 15 min without open files (deadtime)"
    assert busy not in [t for t, _, _ in conn_timeouts.expired(table, 10**6, settings, none)]
    assert conn_timeouts.expired(table, 10**6, _settings(deadtime=0, logon_timeout=0),
                                 none) == []


# -- in the loop ---------------------------------------------------------------------------

@pytest.fixture
def lp(state):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    loop = Loop(state, ["127.0.0.1"], port)
    loop.port = port
    yield loop
    if loop.listeners:
        loop.shutdown()


def _run_until(lp, predicate, seconds=5.0):
    thread = threading.Thread(target=lp.run)
    thread.start()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.01)
    lp.running = False
    lp.wake()
    thread.join(5)
    assert not thread.is_alive()


def test_accepted_connections_have_tcp_keepalive(lp):
    seen = {}

    def accepted():
        for client in list(lp.clients.values()):
            sock = client.sock
            seen["keepalive"] = sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
            if hasattr(socket, "TCP_KEEPIDLE"):
                seen["timers"] = tuple(sock.getsockopt(socket.IPPROTO_TCP, opt) for opt in (
                    socket.TCP_KEEPIDLE, socket.TCP_KEEPINTVL, socket.TCP_KEEPCNT))
            seen["tracked"] = len(lp.conns)
        return seen.get("tracked") == 1  # (the loop adds the client, then tracks it)

    with socket.create_connection(("127.0.0.1", lp.port)):
        _run_until(lp, accepted)
    assert seen["keepalive"] == 1 and seen["tracked"] == 1
    assert seen.get("timers", (60, 10, 6)) == (60, 10, 6)


def test_sweep_closes_by_deadtime_then_stops(lp, state, monkeypatch):
    import dataclasses
    monkeypatch.setattr(conn_timeouts, "MINUTE", 0.5)
    monkeypatch.setattr(conn_timeouts, "SWEEP_INTERVAL", 0.1)
    state.config = dataclasses.replace(state.config, globals=dataclasses.replace(
        state.config.globals, deadtime=1, logon_timeout=0))
    with socket.create_connection(("127.0.0.1", lp.port)) as c:
        c.settimeout(3)
        _run_until(lp, lambda: lp.conns.timed_out["deadtime"], 3.0)
        assert c.recv(10) == b""  # closed by the server
    assert lp.conns.timed_out == {"logon": 0, "frame": 0, "send": 0, "deadtime": 1}
    assert not lp.clients and len(lp.conns) == 0 and not lp._sweeping


class _EmfileSocket(socket.socket):
    """A listener whose accept() fails as at the fd limit."""

    calls = 0

    def accept(self):
        _EmfileSocket.calls += 1
        raise OSError(errno.EMFILE, "Too many open files")


def _emfile_listener(lp):
    from ksmbd_embedded.loop import READ, _Listener
    sock = _EmfileSocket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    lp.sel.register(sock, READ, _Listener(sock))
    lp.listeners.append(sock)
    _EmfileSocket.calls = 0
    return sock


def test_emfile_pauses_the_listener_and_logs_once(lp, caplog):
    listener = _emfile_listener(lp)
    caplog.set_level(logging.WARNING, "ksmbd.loop")
    lp._accept(listener)
    assert _EmfileSocket.calls == 2  # accept, and again with the spare fd released
    lp._accept(listener)  # (reported ready once more in the same round): nothing
    assert _EmfileSocket.calls == 2
    assert listener in lp._paused  # not polled: no busy loop
    assert listener.fileno() not in lp.sel._tags
    assert sum("out of file descriptors" in r.message for r in caplog.records) == 1
    assert lp.spare_fd.fd >= 0  # taken back after the release
    fd = listener.fileno()
    resumed = []
    started = time.monotonic()

    def polled_again():
        if fd in lp.sel._tags and not resumed:
            resumed.append(time.monotonic() - started)
        return resumed

    _run_until(lp, polled_again, 3.0)
    assert resumed and 0.3 < resumed[0] < 2.0  # polled again after the pause


def test_shutdown_with_a_paused_listener(lp):
    lp._accept(_emfile_listener(lp))
    lp.shutdown()
    assert lp.listeners == [] and lp.spare_fd.fd == -1


# -- options ------------------------------------------------------------------------------

def _cfg(text):
    return config_from_text(text, "ksmbd", False, hostname="h", mem_total_kb=1 << 20)


def test_uci_options_and_defaults():
    g = _cfg("").globals
    assert (g.max_connections, g.max_ip_connections, g.deadtime) == (256, 32, 0)
    assert (g.logon_timeout, g.frame_timeout) == (20, 30)
    g = _cfg("config globals\n\toption max_connections 64\n\toption max_ip_connections 0\n"
             "\toption deadtime 15\n\toption logon_timeout 5\n\toption frame_timeout 0\n"
             ).globals
    assert (g.max_connections, g.max_ip_connections, g.deadtime) == (64, 0, 15)
    assert (g.logon_timeout, g.frame_timeout) == (5, 0)


def test_uci_option_errors_name_file_and_line():
    with pytest.raises(ConfigError) as info:
        _cfg("config globals\n\toption max_connections -1\n\toption deadtime x\n"
             "\toption logon_timeout 9999\n\toption max_ip_connections 70000\n")
    assert [(e.line, e.message.split(":")[0]) for e in info.value.errors] == [
        (2, "option 'max_connections' in globals"), (3, "option 'deadtime' in globals"),
        (4, "option 'logon_timeout' in globals"),
        (5, "option 'max_ip_connections' in globals")]


def test_ksmbd_conf_names_and_render():
    config = config_from_ksmbd_conf(
        "[global]\n\tmax connections = 100\n\tmax ip connections = 4\n\tdeadtime = 15\n"
        "\tlogon timeout = 10\n\tframe timeout = 60\n", "ksmbd.conf", hostname="h",
        mem_total_kb=1 << 20)
    g = config.globals
    assert (g.max_connections, g.max_ip_connections, g.deadtime) == (100, 4, 15)
    assert (g.logon_timeout, g.frame_timeout) == (10, 60)
    assert config.warnings == ()
    text = render(config)
    for line in ("max connections = 100", "max ip connections = 4", "deadtime = 15",
                 "logon timeout = 10", "frame timeout = 60"):
        assert f"\t{line}\n" in text
    back = config_from_ksmbd_conf(text, "gen.conf", hostname="h", mem_total_kb=1 << 20)
    assert back.globals == g


def test_ubus_status_counts_refusals_reclaims_and_timeouts(state):
    _, reply = KsmbdObject(state).call("status", {})
    assert reply["refused"] == {"max_connections": 0, "max_ip_connections": 0, "fd_limit": 0}
    assert reply["reclaimed"] == 0
    assert reply["timed_out"] == {"logon": 0, "frame": 0, "send": 0, "deadtime": 0}
    table = conn_limits.ConnTable()
    table.refused["max_ip_connections"] = 3
    table.reclaimed = 2
    table.timed_out["frame"] = 1
    state.loop = SimpleNamespace(conns=table, listeners=[])
    _, reply = KsmbdObject(state).call("status", {})
    assert reply["refused"]["max_ip_connections"] == 3 and reply["reclaimed"] == 2
    assert reply["timed_out"]["frame"] == 1


def test_mid_frame_is_the_clients_wait_only():
    from ksmbd_embedded.loop import READ, WRITE, _mid_frame
    client = SimpleNamespace(frame=None, pending=b"\0\0\1", held=False, events=READ,
                             splice=None)
    assert _mid_frame(client)
    assert not _mid_frame(SimpleNamespace(frame=None, pending=b"", held=False, events=READ,
                                          splice=None))
    assert _mid_frame(SimpleNamespace(frame=bytearray(9), pending=b"", held=False,
                                      events=READ | WRITE, splice=None))
    # a WRITE payload being spliced to its file is part of a frame too
    assert _mid_frame(SimpleNamespace(frame=None, pending=b"", held=False, events=READ,
                                      splice=object()))
    client.events = WRITE  # reading paused: output waits to drain
    assert not _mid_frame(client)
    client.events, client.held = READ, True  # whole frames held for the output
    assert not _mid_frame(client)

"""The loop's extension points used by services living beside SMB (ubus, change notify):
readers, timers, administrative disconnect, start-up and shutdown hooks."""

import socket
import threading
import time

import pytest

from ksmbd_embedded.loop import Loop

from test_connection import state  # noqa: F401


@pytest.fixture
def lp(state):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    loop = Loop(state, ["127.0.0.1"], port)
    yield loop
    if loop.listeners:
        loop.shutdown()


def _run_until(lp, predicate, seconds=5.0):
    """Run the loop in a thread until predicate() holds (bounded), then stop it."""
    thread = threading.Thread(target=lp.run)
    thread.start()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.01)
    lp.running = False
    lp.wake()
    thread.join(5)
    assert not thread.is_alive()


def test_state_knows_its_loop(lp, state):
    assert state.loop is lp


def test_reader_is_called_when_readable(lp):
    a, b = socket.socketpair()
    got = []
    lp.add_reader(a, lambda: got.append(a.recv(100)))
    b.send(b"ping")
    _run_until(lp, lambda: got)
    assert got == [b"ping"]
    a.close(), b.close()


def test_removed_reader_is_not_called(lp):
    a, b = socket.socketpair()
    got = []
    lp.add_reader(a, lambda: got.append(a.recv(100)))
    lp.remove_reader(a)
    lp.remove_reader(a)  # twice is harmless
    b.send(b"ping")
    fired = []
    lp.call_later(0.2, lambda: fired.append(1))
    _run_until(lp, lambda: fired)
    assert got == []
    a.close(), b.close()


def test_timers_fire_in_order_and_a_failing_one_does_not_stop_the_loop(lp):
    order = []

    def boom():
        order.append("boom")
        raise RuntimeError("timer failure")

    lp.call_later(0.10, lambda: order.append("second"))
    lp.call_later(0.01, boom)
    lp.call_later(0.05, lambda: order.append("first"))
    lp.call_later(0.15, lambda: order.append("third"))
    _run_until(lp, lambda: len(order) == 4)
    assert order == ["boom", "first", "second", "third"]


def test_disconnect_drops_a_connected_client(lp, state):
    port = lp.listeners[0].getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    thread = threading.Thread(target=lp.run)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while not state.connections and time.monotonic() < deadline:
            time.sleep(0.01)
        conn = next(iter(state.connections))
        done = []
        lp.call_later(0, lambda: done.append(lp.disconnect(conn, "admin")))
        lp.wake()
        client.settimeout(5)
        assert client.recv(10) == b""  # the server closed it
        deadline = time.monotonic() + 5
        while not done and time.monotonic() < deadline:
            time.sleep(0.01)
        assert done == [True]
        assert lp.disconnect(conn, "again") is False
    finally:
        lp.running = False
        lp.wake()
        thread.join(5)
        client.close()


def test_shutdown_hooks_run(lp, state):
    ran = []
    state.shutdown_hooks.append(lambda: ran.append(1))
    lp.shutdown()
    assert ran == [1]

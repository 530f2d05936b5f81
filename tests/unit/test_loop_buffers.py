"""The loop's shared pool of large receive buffers: reused, never while a view is alive,
bounded, and emptied when idle."""

import socket

import pytest

from ksmbd_embedded import loop as loop_module
from ksmbd_embedded.loop import POOL_IDLE_SECONDS, POOL_MAX, Loop

from test_connection import state  # noqa: F401


@pytest.fixture
def lp(state):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    loop = Loop(state, ["127.0.0.1"], port)
    yield loop
    loop.shutdown()


def test_buffer_is_reused(lp):
    buf = lp._take_buffer(lp.max_frame - 100)
    assert len(buf) >= lp.max_frame - 100
    lp._give_back(buf, memoryview(buf)[:1000])
    assert lp.pool == [buf]
    assert lp._take_buffer(5000 * 16) is buf


def test_buffer_with_a_live_view_is_not_reused(lp):
    buf = lp._take_buffer(lp.max_frame)
    view = memoryview(buf)[:1000]
    kept = view[10:20]  # a handler that kept a slice
    lp._give_back(buf, view)
    assert lp.pool == []
    assert bytes(kept) == bytes(10)


def test_pool_is_bounded_and_trimmed_when_idle(lp, monkeypatch):
    bufs = [lp._take_buffer(lp.max_frame) for _ in range(POOL_MAX + 3)]
    for buf in bufs:
        lp._give_back(buf, memoryview(buf)[:10])
    assert len(lp.pool) == POOL_MAX
    lp._trim_pool(lp.pool_used + POOL_IDLE_SECONDS / 2)
    assert len(lp.pool) == POOL_MAX
    lp._trim_pool(lp.pool_used + POOL_IDLE_SECONDS + 1)
    assert lp.pool == []


def test_small_frames_never_take_pool_buffers(lp):
    assert len(lp._take_buffer(loop_module.SCRATCH_SIZE - 10)) == loop_module.SCRATCH_SIZE - 10

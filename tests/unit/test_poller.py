"""poller.py: the loop's readiness poller (epoll, or selectors where there is none)."""

import socket

import pytest

from ksmbd_embedded import poller
from ksmbd_embedded.poller import READ, WRITE, Poller


@pytest.fixture(params=["epoll", "selectors"])
def p(request, monkeypatch):
    if request.param == "selectors":  # what a system without epoll gets
        monkeypatch.delattr(poller.select, "epoll", raising=False)
    else:
        assert hasattr(poller.select, "epoll"), "Linux (the product's only OS) has epoll"
    pl = Poller()
    yield pl
    pl.close()


def test_read_write_modify_unregister(p):
    a, b = socket.socketpair()
    with a, b:
        p.register(a, READ, "tag-a")
        assert p.poll(0) == []
        b.send(b"x")
        assert p.poll(0) == [("tag-a", READ)]
        p.modify(a, READ | WRITE, "tag-a2")
        assert p.poll(0) == [("tag-a2", READ | WRITE)]
        p.modify(a, WRITE, "tag-a3")
        assert p.poll(0) == [("tag-a3", WRITE)]
        p.unregister(a)
        assert p.poll(0) == []
        with pytest.raises(KeyError):
            p.unregister(a)


def test_peer_close_reports_readable(p):
    a, b = socket.socketpair()
    with a:
        p.register(a, READ, "a")
        b.close()
        assert p.poll(0) == [("a", READ)]
        assert a.recv(10) == b""


def test_unregister_after_close(p):
    a, b = socket.socketpair()
    with b:
        p.register(a.fileno(), READ, "a")
        fd = a.fileno()
        if p._epoll is None:
            p.unregister(fd)
            a.close()
        else:
            a.close()
            p.unregister(fd)  # the kernel already forgot it: no error
        assert p.poll(0) == []

"""Large WRITEs on the disk pool (disk_io.py): other connections are served while one
connection's write is stuck in the kernel, the response comes only after the data is
written, and an Open closed meanwhile keeps its descriptor until the write ends.

In-process server (Loop in a thread) driven by the real smbprotocol client."""

import os
import threading
import time
import uuid

import pytest
from smbprotocol.connection import Connection as SmbConnection
from smbprotocol.open import (
    CreateDisposition, CreateOptions, FilePipePrinterAccessMask, ImpersonationLevel, Open,
    ShareAccess,
)
from smbprotocol.session import Session as SmbSession
from smbprotocol.tree import TreeConnect as SmbTree

from ksmbd_embedded import disk_io
from ksmbd_embedded.loop import Loop

from test_connection import state  # noqa: F401

MiB = 1024 * 1024


@pytest.fixture
def server(state, monkeypatch):
    """A running Loop whose disk pool waits for `gate` before each write it is handed."""
    gate = threading.Event()
    started = threading.Event()
    real_run = disk_io.WriteJob.run

    def gated_run(job):
        if threading.current_thread().name.startswith("ksmbd-disk"):  # not inline writes
            started.set()
            assert gate.wait(20), "test never released the write"
        real_run(job)

    monkeypatch.setattr(disk_io.WriteJob, "run", gated_run)
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    loop = Loop(state, ["127.0.0.1"], port)
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    yield port, gate, started, loop
    gate.set()
    loop.running = False
    loop.wake()
    thread.join(10)
    assert not thread.is_alive()


def _client(port):
    conn = SmbConnection(uuid.uuid4(), "127.0.0.1", port, require_signing=False)
    conn.connect(timeout=10)
    sess = SmbSession(conn, "alice", "secret", require_encryption=False)
    sess.connect()
    tree = SmbTree(sess, r"\\127.0.0.1\share")
    tree.connect()
    return conn, tree


def _open(tree, name):
    f = Open(tree, name)
    f.create(ImpersonationLevel.Impersonation,
             FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE,
             0, ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE,
             CreateDisposition.FILE_OVERWRITE_IF, CreateOptions.FILE_NON_DIRECTORY_FILE)
    return f


def test_other_clients_are_served_while_a_write_is_stuck(server, state):
    port, gate, started, _ = server
    conn_a, tree_a = _client(port)
    big = _open(tree_a, "big.bin")
    data = os.urandom(2 * MiB)
    result = {}
    writer = threading.Thread(target=lambda: result.setdefault("n", big.write(data, 0)))
    writer.start()
    assert started.wait(10), "the write never reached the disk pool"
    # The write is held inside the pool: its client has no answer yet ...
    time.sleep(0.2)
    assert "n" not in result
    # ... while another connection creates, writes, reads and closes a file.
    conn_b, tree_b = _client(port)
    small = _open(tree_b, "small.txt")
    assert small.write(b"hello", 0) == 5
    assert small.read(0, 5) == b"hello"
    small.close()
    conn_b.disconnect()
    gate.set()
    writer.join(20)
    assert result["n"] == len(data)
    assert big.read(0, len(data)) == data
    big.close()
    conn_a.disconnect()
    share = state.config.shares[0].path
    with open(os.path.join(share, "big.bin"), "rb") as f:
        assert f.read() == data


def test_an_open_closed_under_a_write_keeps_its_descriptor(server, state):
    port, gate, started, loop = server
    conn_a, tree_a = _client(port)
    big = _open(tree_a, "big.bin")
    data = os.urandom(MiB)
    writer = threading.Thread(target=lambda: _swallow(lambda: big.write(data, 0)))
    writer.start()
    assert started.wait(10)
    (op,) = state.opens.by_id.values()
    fd = op.fd
    share = state.config.shares[0].path
    inode = os.stat(os.path.join(share, "big.bin")).st_ino
    conn_a.transport.close()  # the client goes away with its write in the pool
    deadline = time.monotonic() + 10
    while state.opens.by_id and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not state.opens.by_id  # the Open is gone ...
    # ... but its descriptor is not closed (so not reused) while the write runs.
    assert op.fd == -1 and op.fd_close_pending == fd and os.fstat(fd).st_ino == inode
    gate.set()
    deadline = time.monotonic() + 10
    while loop.disk.in_flight and time.monotonic() < deadline:
        time.sleep(0.02)
    assert loop.disk.in_flight == 0 and op.fd_close_pending == -1  # closed once done
    with open(os.path.join(share, "big.bin"), "rb") as f:
        assert f.read() == data  # written to the right file, then the descriptor closed
    writer.join(10)


def _swallow(fn):
    try:
        fn()
    except Exception:
        pass

"""Issue 11: memory bounded under volume, reproduced at a small scale (1 MiB I/O size).

Each test measures the server process itself (/proc/PID/status: VmRSS now, VmHWM the peak)
while a raw client misbehaves, asserts a bound that the old code broke, checks that another
client is still answered within a second, and that the misbehaving client gets every answer
once it reads (nothing dropped)."""

from __future__ import annotations

import os
import resource
import socket
import struct
import time

import pytest

from ksmbd_embedded import header as h

from .harness import start_server
from .raw_smb import (
    RawSmb, open_fds, peak_rss_kb, rss_kb, split_compound, status_of,
)

MIB = 1 << 20
IO_GLOBALS = "\toption smb2_max_read '1M'\n\toption smb2_max_write '1M'\n"
STALLED = 28  # below the default per-address connection limit


@pytest.fixture
def srv(tmp_path):
    server = start_server(tmp_path / "srv", extra_globals=IO_GLOBALS)
    (server.shares["share"] / "big.bin").write_bytes(os.urandom(MIB))
    (server.shares["share"] / "small.bin").write_bytes(b"0123456789")
    try:
        yield server
    finally:
        code = server.stop()
        log = server.log()
        assert code == 0, log
        assert "Traceback" not in log, log
        assert "Errno 24" not in log, log


def _warm(server) -> RawSmb:
    """A logged-on client that has read once (imports and heap set-up are done), kept open as
    the 'other client' whose answers must keep coming."""
    c = RawSmb(server.port)
    fid = c.setup(name="big.bin")
    c.send(c.read_msg(fid, 0, MIB, sign=True))
    assert status_of(c.recv_frame()) == 0
    return c


def _settle(pid: int, seconds: float = 1.0) -> int:
    """VmRSS once it stopped growing (sampled every 0.1 s for at most `seconds`)."""
    last = rss_kb(pid)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = rss_kb(pid)
        if now <= last:
            return now
        last = now
    return last


def _returns_to(pid: int, bound_kb: int, seconds: float = 6.0) -> int:
    deadline = time.monotonic() + seconds
    while True:
        now = rss_kb(pid)
        if now <= bound_kb or time.monotonic() > deadline:
            return now
        time.sleep(0.2)


def test_large_frames_before_logon_close_the_connection_and_cost_nothing(srv):
    pid = srv.proc.pid
    other = _warm(srv)
    base = rss_kb(pid)
    socks = []
    try:
        for _ in range(STALLED):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            # A frame of 1 MiB announced, 1 KiB of it sent, then nothing.
            s.sendall(struct.pack(">I", MIB) + b"\xfeSMB" + bytes(1020))
            socks.append(s)
        grown = _settle(pid) - base
        assert grown < 8 * 1024, f"RSS grew {grown} kB for {STALLED} announced frames"
        assert other.echo() < 1.0
        deadline = time.monotonic() + 5
        for s in socks:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                assert s.recv(100) == b""  # closed by the server, nothing answered
            except ConnectionResetError:
                pass
    finally:
        for s in socks:
            s.close()
        other.close()
    log = srv.log()
    assert log.count("before logon") == STALLED, log


def test_frames_announced_after_logon_take_no_buffer_until_their_bytes_come(srv):
    pid = srv.proc.pid
    other = _warm(srv)
    base = rss_kb(pid)
    clients = []
    try:
        for _ in range(STALLED):
            c = RawSmb(srv.port)
            c.setup()
            # A WRITE frame of 1 MiB announced, its header and 1 KiB sent, then nothing.
            c.sock.sendall(struct.pack(">I", MIB + 112) + _write_start(c, MIB, 1024))
            clients.append(c)
        grown = _settle(pid) - base
        assert grown < 10 * 1024, f"RSS grew {grown} kB for {STALLED} stalled frames"
        assert other.echo() < 1.0
    finally:
        for c in clients:
            c.close()
    assert other.echo() < 1.0
    other.close()
    after = _returns_to(pid, base + 4 * 1024)
    assert after <= base + 4 * 1024, f"RSS {after} kB after the load, {base} kB before"


def _write_start(c: RawSmb, length: int, first: int, fid: bytes = bytes(16),
                 data_offset: int = 112) -> bytes:
    """The first `first` bytes of a WRITE of `length` bytes at offset 0. With the payload
    right after the body (DataOffset 112) a plain WRITE to an open file is spliced from the
    socket to the file (no receive buffer); DataOffset 120 (8 bytes of padding) takes a
    receive buffer as any other large frame."""
    msg = bytearray(64)
    h.HEADER.pack_into(msg, 0, h.SMB2_MAGIC, 64, 16, 0, h.WRITE, 16, 0, 0, c.next_id(16),
                       c.tid << 32, c.sid)
    msg += struct.pack("<HHIQ16sIIHHI", 49, data_offset, length, 0, fid, 0, 0, 0, 0, 0)
    return bytes(msg) + bytes(first - len(msg))


def _reader_of_big_file(srv, count: int):
    """A warmed-up other client, and a client with big.bin open and credits for `count`
    1 MiB READs, its receive buffer small so that answers queue in the server; then the
    server's peak and current RSS before the load (kB)."""
    other = _warm(srv)
    c = RawSmb(srv.port, rcvbuf=16384)
    fid = c.setup(name="big.bin")
    c.gather_credits(count * 16 + 16)
    return other, c, fid, peak_rss_kb(srv.proc.pid), rss_kb(srv.proc.pid)


def test_a_compound_of_large_reads_is_answered_in_bounded_memory(srv):
    pid = srv.proc.pid
    count = 40
    other, c, fid, base_peak, base = _reader_of_big_file(srv, count)
    first = c.msg_id
    c.send(c.compound_reads(fid, count, MIB))  # one 5 KB frame: 40 MiB of answers
    _settle(pid, 2.0)
    grown = peak_rss_kb(pid) - max(base, base_peak)
    assert grown < 24 * 1024, f"peak RSS grew {grown} kB for a compound of {count} 1 MiB READs"
    assert other.echo() < 1.0
    # Every answer arrives once the client reads, each signed, whatever frames carry them.
    seen = []
    for _ in range(count):
        if len(seen) == count:
            break
        for msg in split_compound(c.recv_frame()):
            assert status_of(msg) == 0
            assert c.signer.verify(bytearray(msg))
            length = struct.unpack_from("<I", msg, 64 + 4)[0]
            assert length == MIB
            seen.append(struct.unpack_from("<Q", msg, 24)[0])
    assert sorted(seen) == [first + 16 * i for i in range(count)]
    c.close()
    other.close()
    after = _returns_to(pid, base + 6 * 1024)
    assert after <= base + 6 * 1024, f"RSS {after} kB after the load, {base} kB before"


def test_pipelined_signed_reads_not_read_by_the_client_stay_bounded(srv):
    pid = srv.proc.pid
    count = 64
    other, c, fid, base_peak, base = _reader_of_big_file(srv, count)
    reqs = b"".join(struct.pack(">I", len(m)) + bytes(m) for m in
                    (c.read_msg(fid, 0, MIB, sign=True) for _ in range(count)))
    c.sock.sendall(reqs)
    _settle(pid, 2.0)
    grown = peak_rss_kb(pid) - max(base, base_peak)
    assert grown < 24 * 1024, f"peak RSS grew {grown} kB for {count} pipelined 1 MiB READs"
    assert other.echo() < 1.0
    for _ in range(count):
        msg = c.recv_frame()
        assert status_of(msg) == 0 and c.signer.verify(bytearray(msg))
    c.close()
    other.close()


def test_queued_sendfile_reads_hold_a_bounded_number_of_descriptors(srv):
    pid = srv.proc.pid
    other = _warm(srv)
    c = RawSmb(srv.port, rcvbuf=4096)
    fid = c.setup(name="small.bin")
    count = 4000
    c.gather_credits(count + 16)
    fds = open_fds(pid)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (fds + 64, fds + 64))
    # 1-byte unsigned READs, pipelined, answers not read: each would be a sendfile range.
    data = b"".join(struct.pack(">I", len(m)) + bytes(m) for m in
                    (c.read_msg(fid, 5, 1, credits=1) for _ in range(count)))
    sent = c.send_some(data, 1.5)
    held = open_fds(pid) - fds
    assert held <= 20, f"{held} descriptors held for queued READ answers"
    assert other.echo() < 1.0
    frames = c.finish(data, sent, count)
    assert all(status_of(f) == 0 and f[-1:] == b"5" for f in frames)
    c.close()
    other.close()


def test_a_client_that_never_reads_its_answers_is_closed_after_frame_timeout(tmp_path):
    """Queued answers of which the socket takes nothing for frame_timeout seconds end the
    connection (one log line), so a peer that stops reading cannot keep 8 MiB of the
    budget; the memory comes back and other clients are served throughout."""
    srv = start_server(tmp_path / "srv", extra_globals=IO_GLOBALS +
                       "\toption frame_timeout '2'\n")
    try:
        (srv.shares["share"] / "big.bin").write_bytes(os.urandom(MIB))
        pid = srv.proc.pid
        other, c, fid, _, base = _reader_of_big_file(srv, 16)
        c.sock.sendall(b"".join(struct.pack(">I", len(m)) + bytes(m) for m in
                                (c.read_msg(fid, 0, MIB, sign=True) for _ in range(16))))
        deadline = time.monotonic() + 8
        while "answers not read" not in srv.log() and time.monotonic() < deadline:
            assert other.echo() < 1.0
            time.sleep(0.2)
        assert srv.log().count("answers not read for 2 s") == 1
        c.sock.settimeout(5)
        got = 0
        with pytest.raises(ConnectionError):  # what was still queued never comes: closed
            for _ in range(16):
                c.recv_frame()
                got += 1
        assert got < 16
        assert other.echo() < 1.0
        c.close()
        other.close()
        after = _returns_to(pid, base + 4 * 1024)
        assert after <= base + 4 * 1024, f"RSS {after} kB after, {base} kB before"
    finally:
        assert srv.stop() == 0
    assert "Traceback" not in srv.log()


BUDGET_GLOBALS = IO_GLOBALS + "\toption memory_limit '4M'\n"


@pytest.fixture
def small_budget(tmp_path):
    server = start_server(tmp_path / "srv", extra_globals=BUDGET_GLOBALS)
    (server.shares["share"] / "big.bin").write_bytes(os.urandom(MIB))
    try:
        yield server
    finally:
        code = server.stop()
        log = server.log()
        assert code == 0, log
        assert "Traceback" not in log, log


def test_clients_not_reading_their_answers_share_one_budget(small_budget):
    """Four clients pipeline signed 1 MiB READs and read nothing: each alone may queue 8 MiB,
    together they stay near the 4 MiB budget; a client that reads is still answered."""
    srv = small_budget
    pid = srv.proc.pid
    other = _warm(srv)
    other_fid = other.open("big.bin")
    hogs = []
    base_peak = peak_rss_kb(pid)
    base = rss_kb(pid)
    try:
        for _ in range(4):
            c = RawSmb(srv.port, rcvbuf=16384)
            fid = c.setup(name="big.bin")
            c.gather_credits(32 * 16 + 16)
            c.sock.sendall(b"".join(struct.pack(">I", len(m)) + bytes(m) for m in
                                    (c.read_msg(fid, 0, MIB, sign=True) for _ in range(32))))
            hogs.append(c)
        _settle(pid, 2.0)
        grown = peak_rss_kb(pid) - max(base, base_peak)
        assert grown < 14 * 1024, f"peak RSS grew {grown} kB for 4 clients not reading"
        assert other.echo() < 1.0
        t = time.monotonic()
        other.send(other.read_msg(other_fid, 0, MIB, sign=True))
        msg = other.recv_frame()
        assert status_of(msg) == 0 and len(msg) == 80 + MIB
        assert time.monotonic() - t < 1.0
        for c in hogs:  # nothing was dropped: every answer comes once they read
            for _ in range(32):
                assert status_of(c.recv_frame()) == 0
    finally:
        for c in hogs:
            c.close()
        other.close()
    after = _returns_to(pid, base + 4 * 1024)
    assert after <= base + 4 * 1024, f"RSS {after} kB after the load, {base} kB before"


@pytest.mark.parametrize("data_offset", (120, 112))
def test_concurrent_large_writes_take_receive_buffers_within_the_budget(small_budget,
                                                                        data_offset):
    """Twenty clients each start a 1 MiB WRITE (more than 64 KiB of it sent) and pause: only
    the budget's worth get receive buffers, the others wait unread (DataOffset 112: spliced,
    none takes a buffer); when they all go on, every WRITE succeeds."""
    srv = small_budget
    pid = srv.proc.pid
    other = _warm(srv)
    base = rss_kb(pid)
    clients, rests = [], []
    try:
        for i in range(20):
            c = RawSmb(srv.port)
            c.setup()
            msg = _write_start(c, MIB, data_offset + MIB, c.open("w.bin", write=True),
                               data_offset)
            frame = struct.pack(">I", len(msg)) + msg
            c.sock.sendall(frame[:200 * 1024])
            clients.append(c)
            rests.append(frame[200 * 1024:])
        grown = _settle(pid) - base
        assert grown < 10 * 1024, f"RSS grew {grown} kB for 20 large WRITEs begun"
        assert other.echo() < 1.0
        for c, rest in zip(clients, rests):
            sent = c.send_some(rest, 0.05)
            rests[clients.index(c)] = (rest, sent)
        for c, (rest, sent) in zip(clients, rests):
            frames = c.finish(rest, sent, 1)
            assert status_of(frames[0]) == 0
    finally:
        for c in clients:
            c.close()
        other.close()
    assert (srv.shares["share"] / "w.bin").stat().st_size == MIB
    after = _returns_to(pid, base + 4 * 1024)
    assert after <= base + 4 * 1024, f"RSS {after} kB after the load, {base} kB before"


def test_memory_comes_back_when_stalled_frames_end_after_an_idle_trim(srv):
    """Large frames begun and left (their buffers in use past the 2 s idle trim), then the
    connections close: their buffers go back to the system too."""
    pid = srv.proc.pid
    other = _warm(srv)
    base = rss_kb(pid)
    clients = []
    try:
        for _ in range(16):
            c = RawSmb(srv.port)
            c.setup()
            # (DataOffset 120: a receive buffer, where 112 would be spliced without one)
            msg = _write_start(c, MIB, 120 + MIB, c.open("w.bin", write=True), 120)
            c.sock.sendall((struct.pack(">I", len(msg)) + msg)[:300 * 1024])
            clients.append(c)
        grown = _settle(pid) - base
        assert grown > 12 * 1024, f"RSS grew only {grown} kB: the buffers were not taken"
        time.sleep(2.3)  # idle, then a request: the loop trims while they are still in use
        assert other.echo() < 1.0
    finally:
        for c in clients:
            c.close()
    assert other.echo() < 1.0
    other.close()
    after = _returns_to(pid, base + 4 * 1024)
    assert after <= base + 4 * 1024, f"RSS {after} kB after the load, {base} kB before"

"""READ, WRITE, FLUSH handlers (MS-SMB2 3.3.5.11-3.3.5.13), called directly on real files."""

from __future__ import annotations

import errno
import os
import struct

import pytest
from handler_fixtures import MIB, HandlerEnv, call, u16, u32

from ksmbd_embedded import header as h
from ksmbd_embedded.handlers import read_write as rw
from ksmbd_embedded.handlers.read_write import handle_flush, handle_read, handle_write
from ksmbd_embedded.status import (
    STATUS_ACCESS_DENIED, STATUS_DISK_FULL, STATUS_END_OF_FILE, STATUS_FILE_CLOSED,
    STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_PARAMETER, STATUS_SUCCESS,
)
from ksmbd_embedded.tree import (
    FILE_APPEND_DATA, FILE_EXECUTE, FILE_READ_ATTRIBUTES, FILE_READ_DATA, FILE_WRITE_DATA,
)

RW = FILE_READ_DATA | FILE_WRITE_DATA | FILE_APPEND_DATA


def read_body(op, length, offset=0, min_count=0, channel=0, fid=None):
    p, v = fid if fid is not None else (op.persistent_id, op.volatile_id)
    return struct.pack("<HBBIQQQIIIHH", 49, 0, 0, length, offset, p, v, min_count, channel,
                       0, 0, 0) + b"\x00"


def write_body(op, data, offset=0, flags=0, channel=0, data_offset=0x70, fid=None):
    p, v = fid if fid is not None else (op.persistent_id, op.volatile_id)
    fixed = struct.pack("<HHIQQQIIHHI", 49, data_offset, len(data), offset, p, v, channel, 0,
                        0, 0, flags)
    return fixed + bytes(data)


def flush_body(op):
    return struct.pack("<HHIQQ", 24, 0, 0, op.persistent_id, op.volatile_id)


@pytest.fixture
def env(tmp_path):
    return HandlerEnv(str(tmp_path))


@pytest.fixture
def data_file(env):
    path = os.path.join(env.root, "data.bin")
    with open(path, "wb") as f:
        f.write(bytes(range(256)) * 4)  # 1024 bytes
    return path


# -- READ ----------------------------------------------------------------------------------------

def test_read_returns_data_with_payload_as_separate_part(env, data_file):
    op = env.open("data.bin", FILE_READ_DATA)
    status, body = handle_read(env.request(h.READ, read_body(op, 100, 10)))
    assert status == STATUS_SUCCESS
    assert isinstance(body, list) and len(body) == 2
    fixed, payload = body
    assert len(fixed) == 16
    assert u16(fixed, 0) == 17
    assert fixed[2] == 0x50  # DataOffset
    assert u32(fixed, 4) == 100  # DataLength
    assert u32(fixed, 8) == 0  # DataRemaining
    # The payload stays on disk as a FileRange (sent with os.sendfile when possible).
    from ksmbd_embedded.file_range import FileRange
    assert isinstance(payload, FileRange) and (payload.offset, payload.length) == (10, 100)
    assert payload.read() == (bytes(range(256)) * 4)[10:110]
    assert env.session.bytes_read == 100 and env.server.bytes_read == 100


def test_read_short_at_end_of_file(env, data_file):
    op = env.open("data.bin", FILE_READ_DATA)
    status, body = call(handle_read, env.request(h.READ, read_body(op, 4096, 1000)))
    assert status == STATUS_SUCCESS
    assert u32(body, 4) == 24 and len(body) == 16 + 24


@pytest.mark.parametrize("offset", [1024, 5000, 2**62, 2**63 - 11])
def test_read_at_or_past_eof_is_end_of_file(env, data_file, offset):
    op = env.open("data.bin", FILE_READ_DATA)
    status, _ = call(handle_read, env.request(h.READ, read_body(op, 10, offset)))
    assert status == STATUS_END_OF_FILE


@pytest.mark.parametrize("length,offset,expected", [
    (0, 2**63 - 1, STATUS_SUCCESS),
    (1, 2**63 - 1, STATUS_INVALID_PARAMETER),  # ends beyond the signed 64-bit range
    (0, 2**63, STATUS_INVALID_PARAMETER),
    (0, 2**64 - 1, STATUS_INVALID_PARAMETER),
    (0, 2**64 - 2, STATUS_INVALID_PARAMETER),
    (10, 2**63, STATUS_INVALID_PARAMETER),
])
def test_read_offsets_beyond_signed_range(env, data_file, length, offset, expected):
    op = env.open("data.bin", FILE_READ_DATA)
    status, _ = call(handle_read, env.request(h.READ, read_body(op, length, offset)))
    assert status == expected


def test_read_empty_file_is_end_of_file(env):
    op = env.open("empty", FILE_READ_DATA | FILE_WRITE_DATA)
    status, _ = call(handle_read, env.request(h.READ, read_body(op, 1, 0)))
    assert status == STATUS_END_OF_FILE


def test_read_zero_length_succeeds(env, data_file):
    op = env.open("data.bin", FILE_READ_DATA)
    status, body = call(handle_read, env.request(h.READ, read_body(op, 0, 5000)))
    assert status == STATUS_SUCCESS and u32(body, 4) == 0


def test_read_minimum_count(env, data_file):
    op = env.open("data.bin", FILE_READ_DATA)
    status, _ = call(handle_read, env.request(h.READ, read_body(op, 100, 1000, min_count=50)))
    assert status == STATUS_END_OF_FILE
    status, body = call(handle_read, env.request(h.READ, read_body(op, 100, 1000, min_count=24)))
    assert status == STATUS_SUCCESS and u32(body, 4) == 24
    status, _ = call(handle_read, env.request(h.READ, read_body(op, 0, 0, min_count=1)))
    assert status == STATUS_END_OF_FILE


def test_read_needs_read_or_execute_access(env, data_file):
    op = env.open("data.bin", FILE_READ_ATTRIBUTES | FILE_WRITE_DATA)
    status, _ = call(handle_read, env.request(h.READ, read_body(op, 10)))
    assert status == STATUS_ACCESS_DENIED
    op2 = env.open("data.bin", FILE_EXECUTE)
    status, _ = call(handle_read, env.request(h.READ, read_body(op2, 10)))
    assert status == STATUS_SUCCESS


def test_read_directory_is_invalid_device_request(env):
    os.mkdir(os.path.join(env.root, "d"))
    op = env.open("d", FILE_READ_DATA)
    status, _ = call(handle_read, env.request(h.READ, read_body(op, 10)))
    assert status == STATUS_INVALID_DEVICE_REQUEST


def test_read_longer_than_max_read(env, data_file):
    op = env.open("data.bin", FILE_READ_DATA)
    env.conn.max_read = MIB
    status, _ = call(handle_read, env.request(h.READ, read_body(op, MIB + 1), credit_charge=17))
    assert status == STATUS_INVALID_PARAMETER
    status, _ = call(handle_read, env.request(h.READ, read_body(op, MIB), credit_charge=16))
    assert status == STATUS_SUCCESS


@pytest.mark.parametrize("length,charge,ok", [
    (65536, 1, True),
    (65536, 0, True),
    (65537, 0, False),
    (65537, 1, False),
    (65537, 2, True),
    (131072, 2, True),
    (131073, 2, False),
    (1 * MIB, 15, False),
    (1 * MIB, 16, True),
    (1 * MIB, 64, True),
])
def test_read_credit_charge(env, data_file, length, charge, ok):
    op = env.open("data.bin", FILE_READ_DATA)
    status, _ = call(handle_read, env.request(h.READ, read_body(op, length), credit_charge=charge))
    assert status == (STATUS_SUCCESS if ok else STATUS_INVALID_PARAMETER)


def test_read_smb202_is_limited_to_64k(tmp_path):
    env = HandlerEnv(str(tmp_path), dialect=h.SMB2_02)
    with open(os.path.join(env.root, "f"), "wb") as f:
        f.write(b"x" * 70000)
    op = env.open("f", FILE_READ_DATA)
    status, _ = call(handle_read, env.request(h.READ, read_body(op, 65537), credit_charge=0))
    assert status == STATUS_INVALID_PARAMETER
    status, body = call(handle_read, env.request(h.READ, read_body(op, 65536), credit_charge=0))
    assert status == STATUS_SUCCESS and u32(body, 4) == 65536


def test_read_rdma_channel_refused(env, data_file):
    op = env.open("data.bin", FILE_READ_DATA)
    status, _ = call(handle_read, env.request(h.READ, read_body(op, 10, channel=1)))
    assert status == STATUS_INVALID_PARAMETER


def test_read_unknown_file_id(env, data_file):
    op = env.open("data.bin", FILE_READ_DATA)
    status, _ = call(handle_read, env.request(h.READ, read_body(op, 10, fid=(99, 99))))
    assert status == STATUS_FILE_CLOSED


def test_read_related_compound_uses_previous_open(env, data_file):
    op = env.open("data.bin", FILE_READ_DATA)
    req = env.request(h.READ, read_body(op, 4, fid=(h.FILE_ID_ANY, h.FILE_ID_ANY)), related=True)
    req.chain.open = op
    status, body = call(handle_read, req)
    assert status == STATUS_SUCCESS and body[16:] == bytes([0, 1, 2, 3])


def test_read_and_write_update_position(env, data_file):
    op = env.open("data.bin", RW)
    handle_read(env.request(h.READ, read_body(op, 10, 100)))
    assert op.position == 110
    handle_read(env.request(h.READ, read_body(op, 100, 1000)))
    assert op.position == 1024  # a short read moves it by what was read
    handle_write(env.request(h.WRITE, write_body(op, b"abc", 5)))
    assert op.position == 8


# -- WRITE ---------------------------------------------------------------------------------------

def file_bytes(env, name):
    with open(os.path.join(env.root, name), "rb") as f:
        return f.read()


def test_write_then_read_back(env):
    op = env.open("w.bin", RW)
    payload = os.urandom(5000)
    status, body = call(handle_write, env.request(h.WRITE, write_body(op, payload, 100)))
    assert status == STATUS_SUCCESS
    assert len(body) == 16 and u16(body, 0) == 17 and u32(body, 4) == 5000
    assert file_bytes(env, "w.bin") == bytes(100) + payload
    assert env.session.bytes_written == 5000 and env.server.bytes_written == 5000
    status, body = call(handle_read, env.request(h.READ, read_body(op, 5000, 100)))
    assert body[16:] == payload


def test_write_payload_is_not_copied(env, monkeypatch):
    op = env.open("w.bin", RW)
    seen = []
    real = os.pwrite

    def spy(fd, data, offset):
        seen.append(type(data))
        return real(fd, data, offset)
    monkeypatch.setattr(rw.os, "pwrite", spy)
    call(handle_write, env.request(h.WRITE, write_body(op, b"abc")))
    assert seen == [memoryview]


def test_short_pwrite_is_continued(env, monkeypatch):
    op = env.open("w.bin", RW)
    real = os.pwrite

    def short(fd, data, offset):
        return real(fd, bytes(data[:3]), offset)
    monkeypatch.setattr(rw.os, "pwrite", short)
    status, body = call(handle_write, env.request(h.WRITE, write_body(op, b"0123456789", 2)))
    assert status == STATUS_SUCCESS and u32(body, 4) == 10
    assert file_bytes(env, "w.bin") == b"\x00\x000123456789"


def test_write_data_outside_message_is_invalid(env):
    op = env.open("w.bin", RW)
    body = write_body(op, b"abcdef")
    fixed = bytearray(body[:48])
    struct.pack_into("<I", fixed, 4, 1000)  # Length beyond the message
    status, _ = call(handle_write, env.request(h.WRITE, bytes(fixed) + b"abcdef"))
    assert status == STATUS_INVALID_PARAMETER
    status, _ = call(handle_write, env.request(h.WRITE, write_body(op, b"abc", data_offset=10)))
    assert status == STATUS_INVALID_PARAMETER


def test_write_needs_write_or_append_access(env):
    op = env.open("w.bin", FILE_READ_DATA)
    status, _ = call(handle_write, env.request(h.WRITE, write_body(op, b"abc")))
    assert status == STATUS_ACCESS_DENIED


def test_append_only_access(env):
    with open(os.path.join(env.root, "log"), "wb") as f:
        f.write(b"0123456789")
    op = env.open("log", FILE_APPEND_DATA)
    # Rewriting existing bytes needs FILE_WRITE_DATA.
    status, _ = call(handle_write, env.request(h.WRITE, write_body(op, b"xx", 3)))
    assert status == STATUS_ACCESS_DENIED
    # Offset -1: at the end of file.
    at_eof = write_body(op, b"AB", rw.WRITE_TO_END_OF_FILE)
    status, _ = call(handle_write, env.request(h.WRITE, at_eof))
    assert status == STATUS_SUCCESS
    status, _ = call(handle_write, env.request(h.WRITE, write_body(op, b"CD", 12)))
    assert status == STATUS_SUCCESS
    assert file_bytes(env, "log") == b"0123456789ABCD"


def test_write_data_alone_writes_anywhere(env):
    with open(os.path.join(env.root, "f"), "wb") as f:
        f.write(b"0123456789")
    op = env.open("f", FILE_WRITE_DATA)
    status, _ = call(handle_write, env.request(h.WRITE, write_body(op, b"ab", 2)))
    assert status == STATUS_SUCCESS
    status, _ = call(handle_write, env.request(h.WRITE, write_body(op, b"ab", 9)))
    assert status == STATUS_SUCCESS
    assert file_bytes(env, "f") == b"01ab45678ab"
    at_eof = write_body(op, b"x", rw.WRITE_TO_END_OF_FILE)
    assert call(handle_write, env.request(h.WRITE, at_eof))[0] == STATUS_INVALID_PARAMETER


MAX_FILE_SIZE = 0xFFFFFFF0000


@pytest.mark.parametrize("data,offset,expected", [
    (b"abc", 2**64 - 1, STATUS_INVALID_PARAMETER),  # -1 only appends on append-only handles
    (b"abc", 2**64 - 2, STATUS_INVALID_PARAMETER),
    (b"a", 2**63, STATUS_INVALID_PARAMETER),
    (b"", 2**63, STATUS_INVALID_PARAMETER),
    (b"", 2**63 - 1, STATUS_SUCCESS),
    (b"a", 2**63 - 1, STATUS_INVALID_PARAMETER),
    (b"abc", 2**63 - 2, STATUS_INVALID_PARAMETER),
    (b"a", MAX_FILE_SIZE, STATUS_INVALID_PARAMETER),
    (b"", MAX_FILE_SIZE, STATUS_SUCCESS),
])
def test_write_offsets_out_of_range(env, data, offset, expected):
    op = env.open("f", RW)
    status, body = call(handle_write, env.request(h.WRITE, write_body(op, data, offset)))
    assert status == expected
    if status == STATUS_SUCCESS:
        assert u32(body, 4) == 0
    assert file_bytes(env, "f") == b""


def test_write_zero_length(env):
    op = env.open("f", RW)
    status, body = call(handle_write, env.request(h.WRITE, write_body(op, b"", 100)))
    assert status == STATUS_SUCCESS and u32(body, 4) == 0
    assert file_bytes(env, "f") == b""


def test_write_directory_is_invalid_device_request(env):
    os.mkdir(os.path.join(env.root, "d"))
    op = env.open("d", RW)
    status, _ = call(handle_write, env.request(h.WRITE, write_body(op, b"abc")))
    assert status == STATUS_INVALID_DEVICE_REQUEST


def test_write_longer_than_max_write_and_credit_charge(env):
    op = env.open("f", RW)
    env.conn.max_write = 65536 * 2
    big = bytes(65536 * 2 + 1)
    status, _ = call(handle_write, env.request(h.WRITE, write_body(op, big), credit_charge=3))
    assert status == STATUS_INVALID_PARAMETER
    status, _ = call(handle_write, env.request(h.WRITE, write_body(op, big[:-1]), credit_charge=1))
    assert status == STATUS_INVALID_PARAMETER
    status, _ = call(handle_write, env.request(h.WRITE, write_body(op, big[:-1]), credit_charge=2))
    assert status == STATUS_SUCCESS


def test_write_rdma_channel_refused(env):
    op = env.open("f", RW)
    status, _ = call(handle_write, env.request(h.WRITE, write_body(op, b"a", channel=2)))
    assert status == STATUS_INVALID_PARAMETER


def test_write_disk_full(env, monkeypatch):
    op = env.open("f", RW)

    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(rw.os, "pwrite", full)
    status, _ = call(handle_write, env.request(h.WRITE, write_body(op, b"abc")))
    assert status == STATUS_DISK_FULL
    assert env.session.bytes_written == 0


@pytest.mark.parametrize("flags,create_options,mode,synced", [
    (0, 0, 0, False),
    (rw.SMB2_WRITEFLAG_WRITE_THROUGH, 0, 0, True),
    (0, rw.FILE_WRITE_THROUGH, 0, True),
    (0, 0, rw.FILE_WRITE_THROUGH, True),
])
def test_write_through(env, monkeypatch, flags, create_options, mode, synced):
    op = env.open("f", RW, create_options=create_options)
    op.mode = mode
    calls = []
    monkeypatch.setattr(rw, "_fdatasync", lambda fd: calls.append(fd))
    status, _ = call(handle_write, env.request(h.WRITE, write_body(op, b"abc", flags=flags)))
    assert status == STATUS_SUCCESS
    assert calls == ([op.fd] if synced else [])


# -- FLUSH ---------------------------------------------------------------------------------------

def test_flush_calls_fsync(env, monkeypatch):
    op = env.open("f", RW)
    calls = []
    monkeypatch.setattr(rw.os, "fsync", lambda fd: calls.append(fd))
    status, body = call(handle_flush, env.request(h.FLUSH, flush_body(op)))
    assert status == STATUS_SUCCESS and body == b"\x04\x00\x00\x00"
    assert calls == [op.fd]


def test_flush_real_fsync_on_file_and_directory(env):
    op = env.open("f", FILE_APPEND_DATA)
    assert call(handle_flush, env.request(h.FLUSH, flush_body(op)))[0] == STATUS_SUCCESS
    os.mkdir(os.path.join(env.root, "d"))
    dop = env.open("d", FILE_READ_DATA | FILE_WRITE_DATA)  # FILE_ADD_FILE
    assert call(handle_flush, env.request(h.FLUSH, flush_body(dop)))[0] == STATUS_SUCCESS


def test_flush_needs_write_access(env):
    op = env.open("f", FILE_READ_DATA)
    status, _ = call(handle_flush, env.request(h.FLUSH, flush_body(op)))
    assert status == STATUS_ACCESS_DENIED


def test_flush_closed_handle(env):
    op = env.open("f", RW)
    body = flush_body(op)
    env.close(op)
    status, _ = call(handle_flush, env.request(h.FLUSH, body))
    assert status == STATUS_FILE_CLOSED


# -- pipes are delegated -------------------------------------------------------------------------

class FakePipe:
    def __init__(self):
        self.written = b""

    def read(self, length):
        return STATUS_SUCCESS, b"reply"[:length]

    def write(self, data):
        self.written += bytes(data)
        return len(data)


def test_pipe_read_and_write_are_delegated(env):
    op = env.open("f", RW)
    op.pipe = FakePipe()
    status, body = call(handle_write, env.request(h.WRITE, write_body(op, b"request")))
    assert status == STATUS_SUCCESS and u32(body, 4) == 7 and op.pipe.written == b"request"
    status, body = call(handle_read, env.request(h.READ, read_body(op, 100)))
    assert status == STATUS_SUCCESS and body[16:] == b"reply"


def test_file_range_read_after_places_data_behind_the_head(tmp_path):
    import os as _os
    from ksmbd_embedded.file_range import FileRange
    path = tmp_path / "f.bin"
    data = _os.urandom(100_000)
    path.write_bytes(data)
    fd = _os.open(path, _os.O_RDONLY)
    try:
        out = FileRange(fd, 10, 50_000).read_after(b"HEAD")
        assert bytes(out) == b"HEAD" + data[10:50_010]
        # past the end of the file the rest is zeros, the length is what was promised
        out = FileRange(fd, 99_990, 20).read_after(b"")
        assert bytes(out) == data[99_990:] + bytes(10)
    finally:
        _os.close(fd)

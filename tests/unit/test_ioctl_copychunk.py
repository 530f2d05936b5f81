"""FSCTL_SRV_REQUEST_RESUME_KEY and FSCTL_SRV_COPYCHUNK(_WRITE) (MS-SMB2 3.3.5.15.5, 3.3.5.15.6)."""

from __future__ import annotations

import os
import struct

import pytest

from info_fixtures import Env, ioctl_body
from ksmbd_embedded import header as h
from ksmbd_embedded.fs import byte_locks, copychunk, deferred_size
from ksmbd_embedded.fs.fs_caps import FsCaps
from ksmbd_embedded.handlers import ioctl
from ksmbd_embedded.handlers.ioctl import handle_ioctl
from ksmbd_embedded.status import (
    STATUS_ACCESS_DENIED, STATUS_FILE_LOCK_CONFLICT, STATUS_INVALID_PARAMETER,
    STATUS_OBJECT_NAME_NOT_FOUND, STATUS_SUCCESS,
)
from ksmbd_embedded.tree import FILE_ALL_ACCESS, FILE_READ_DATA, FILE_WRITE_DATA

RESPONSE = struct.Struct("<HHIQQIIIIII")
PATTERN = bytes(range(256)) * 64  # 16 KiB
STATUS_INVALID_VIEW_SIZE = 0xC000001F


@pytest.fixture
def env(tmp_path):
    root = tmp_path / "share"
    root.mkdir()
    (root / "src").write_bytes(PATTERN)
    (root / "dst").write_bytes(b"")
    e = Env(root, dialect=h.SMB3_11)
    yield e
    e.close_all()


def call(env, body):
    return env.call(handle_ioctl, h.IOCTL, body)


def output(body: bytes) -> bytes:
    fields = RESPONSE.unpack_from(body, 0)
    return body[fields[7] - 64:fields[7] - 64 + fields[8]]


def key_of(env, op) -> bytes:
    status, body = call(env, ioctl_body(ioctl.FSCTL_SRV_REQUEST_RESUME_KEY, op, max_out=32))
    assert status == STATUS_SUCCESS
    out = output(body)
    assert len(out) == 32 and out[24:] == bytes(8)  # ContextLength 0
    return out[:24]


def copy_input(key: bytes, chunks) -> bytes:
    return struct.pack("<24sII", key, len(chunks), 0) + b"".join(
        struct.pack("<QQII", s, d, n, 0) for s, d, n in chunks)


def copy(env, dst, key, chunks, ctl=ioctl.FSCTL_SRV_COPYCHUNK, max_out=12):
    status, body = call(env, ioctl_body(ctl, dst, copy_input(key, chunks), max_out=max_out))
    return status, struct.unpack("<III", output(body)) if body else None


def test_resume_key_is_opaque_and_per_open(env):
    a, b = env.open("src"), env.open("src")
    ka, kb = key_of(env, a), key_of(env, b)
    assert ka != kb and len(ka) == 24
    assert key_of(env, a) == ka  # stable for the open
    assert copychunk.open_for_key(env.server, env.session, ka) is a
    forged = ka[:8] + bytes(16)
    assert copychunk.open_for_key(env.server, env.session, forged) is None
    env.server.opens.remove(a)
    assert copychunk.open_for_key(env.server, env.session, ka) is None  # closed open


def test_resume_key_needs_room(env):
    status, _ = call(env, ioctl_body(ioctl.FSCTL_SRV_REQUEST_RESUME_KEY, env.open("src"),
                                     max_out=27))
    assert status == STATUS_INVALID_PARAMETER


def test_copy_simple_and_multi(env):
    src, dst = env.open("src"), env.open("dst")
    key = key_of(env, src)
    status, rsp = copy(env, dst, key, [(0, 0, 4096), (4096, 4096, 4096)])
    assert (status, rsp) == (STATUS_SUCCESS, (2, 0, 8192))
    assert (env.root / "dst").read_bytes() == PATTERN[:8192]


def test_copy_appends_with_a_gap_of_zeros(env):
    src, dst = env.open("src"), env.open("dst")
    status, rsp = copy(env, dst, key_of(env, src), [(0, 8192, 100)])
    assert (status, rsp) == (STATUS_SUCCESS, (1, 0, 100))
    assert (env.root / "dst").read_bytes() == bytes(8192) + PATTERN[:100]


def test_copy_inside_one_file_overlapping_is_memmove(env):
    src = env.open("src")
    status, rsp = copy(env, src, key_of(env, src), [(0, 2040, 2048)])
    assert (status, rsp) == (STATUS_SUCCESS, (1, 0, 2048))
    data = (env.root / "src").read_bytes()
    assert data[:2040] == PATTERN[:2040] and data[2040:4088] == PATTERN[:2048]


def test_copy_write_without_read_on_target(env):
    src = env.open("src")
    dst = env.open("dst", access=FILE_WRITE_DATA)
    key = key_of(env, src)
    assert copy(env, dst, key, [(0, 0, 10)])[0] == STATUS_ACCESS_DENIED
    status, rsp = copy(env, dst, key, [(0, 0, 10)], ctl=ioctl.FSCTL_SRV_COPYCHUNK_WRITE)
    assert (status, rsp) == (STATUS_SUCCESS, (1, 0, 10))


@pytest.mark.parametrize("src_access,dst_access", [
    (FILE_WRITE_DATA, FILE_ALL_ACCESS),  # source not readable
    (FILE_ALL_ACCESS, FILE_READ_DATA),   # target not writable
])
def test_copy_access(env, src_access, dst_access):
    src, dst = env.open("src", access=src_access), env.open("dst", access=dst_access)
    assert copy(env, dst, key_of(env, src), [(0, 0, 10)],
                ctl=ioctl.FSCTL_SRV_COPYCHUNK_WRITE)[0] == STATUS_ACCESS_DENIED


def test_bad_key_and_other_sessions_key(env):
    src, dst = env.open("src"), env.open("dst")
    assert copy(env, dst, b"deadbeefdeadbeefdeadbeef", [(0, 0, 10)])[0] == \
        STATUS_OBJECT_NAME_NOT_FOUND
    key = key_of(env, src)
    src.session = object()  # as if another session owned the source open
    assert copy(env, dst, key, [(0, 0, 10)])[0] == STATUS_OBJECT_NAME_NOT_FOUND


@pytest.mark.parametrize("chunks", [
    [(0, 0, 0)],                                 # zero length
    [(0, 0, (1 << 20) + 1)],                     # chunk too long
    [(0, 0, 1)] * 257,                           # too many chunks
    [(0, i << 20, 1 << 20) for i in range(17)],  # more than 16 MiB in all
])
def test_limits_answered_with_the_limits(env, chunks):
    src, dst = env.open("src"), env.open("dst")
    status, rsp = copy(env, dst, key_of(env, src), chunks)
    assert (status, rsp) == (STATUS_INVALID_PARAMETER, (256, 1 << 20, 16 << 20))
    assert os.path.getsize(env.root / "dst") == 0


def test_truncated_input_answered_with_the_limits(env):
    src, dst = env.open("src"), env.open("dst")
    data = copy_input(key_of(env, src), [(0, 0, 10), (0, 0, 10)])[:-8]
    status, body = call(env, ioctl_body(ioctl.FSCTL_SRV_COPYCHUNK, dst, data, max_out=12))
    assert status == STATUS_INVALID_PARAMETER
    assert struct.unpack("<III", output(body)) == (256, 1 << 20, 16 << 20)


def test_small_max_output(env):
    src, dst = env.open("src"), env.open("dst")
    status, rsp = copy(env, dst, key_of(env, src), [(0, 0, 10)], max_out=11)
    assert status == STATUS_INVALID_PARAMETER and rsp is None


def test_source_past_end_of_file(env):
    src, dst = env.open("src"), env.open("dst")
    n = len(PATTERN)
    status, rsp = copy(env, dst, key_of(env, src), [(0, 0, 4096), (n - 10, 4096, 11)])
    assert (status, rsp) == (STATUS_INVALID_VIEW_SIZE, (1, 0, 4096))
    assert (env.root / "dst").read_bytes() == PATTERN[:4096]


def test_lock_conflicts(env):
    src, src2, dst, dst2 = env.open("src"), env.open("src"), env.open("dst"), env.open("dst")
    key = key_of(env, src)
    byte_locks.try_lock(env.server, src2, 0, 100, True)
    status, rsp = copy(env, dst, key, [(0, 0, 100)])
    assert (status, rsp) == (STATUS_FILE_LOCK_CONFLICT, (0, 0, 0))
    byte_locks.unlock(env.server, src2, 0, 100)
    byte_locks.try_lock(env.server, dst2, 50, 10, False)  # any lock refuses writing
    assert copy(env, dst, key, [(0, 0, 100)])[0] == STATUS_FILE_LOCK_CONFLICT
    byte_locks.unlock(env.server, dst2, 50, 10)
    assert copy(env, dst, key, [(0, 0, 100)]) == (STATUS_SUCCESS, (1, 0, 100))


def test_deferred_end_of_file_on_both_sides(env):
    """FAT-like share: the source's virtual tail copies as zeros, and a copy reaching the
    target's deferred end of file makes the disk catch up (the entry is forgotten)."""
    fat = FsCaps("vfat", sparse=False, zero_fill_extend=True, hard_links=False,
                 read_only=False)
    src, dst = env.open("src"), env.open("dst")
    deferred_size.set_end_of_file(env.server, src, len(PATTERN) + 1000, caps=fat)
    deferred_size.set_end_of_file(env.server, dst, 1100, caps=fat)
    status, rsp = copy(env, dst, key_of(env, src), [(len(PATTERN) - 100, 0, 1100)])
    assert (status, rsp) == (STATUS_SUCCESS, (1, 0, 1100))
    assert (env.root / "dst").read_bytes() == PATTERN[-100:] + bytes(1000)
    assert deferred_size.virtual_size(env.server, dst.file_key) is None


def test_copy_chunk_function_falls_back(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(PATTERN)
    b.write_bytes(b"")

    def refuse(*args):
        raise OSError(18, "EXDEV")  # as across file systems on old kernels

    monkeypatch.setattr(copychunk, "_copy_file_range", refuse)
    fa, fb = os.open(a, os.O_RDONLY), os.open(b, os.O_RDWR)
    try:
        copychunk.copy_chunk(fa, fb, 100, 5, 1000)
    finally:
        os.close(fa)
        os.close(fb)
    assert b.read_bytes() == bytes(5) + PATTERN[100:1100]


def test_copy_between_named_streams_and_files(env):
    """smbtorture smb2.ioctl "copy-chunk streams": a stream's bytes are an xattr of its file."""
    from ksmbd_embedded.fs import streams
    src = env.open("src")
    streams.write_stream(src.fd, "s1", PATTERN[:1000], create=True)

    def stream_open(name, sname):
        op = env.open(name)
        op.extra = streams.StreamOpen(sname, op.file_key)
        op.file_key = streams.stream_key(op.file_key, sname)
        return op

    s1 = stream_open("src", "s1")
    dst = env.open("dst")
    streams.write_stream(dst.fd, "s2", b"", create=True)
    s2 = stream_open("dst", "s2")
    key = key_of(env, s1)
    assert copy(env, s2, key, [(0, 0, 1000)]) == (STATUS_SUCCESS, (1, 0, 1000))
    assert streams.read_stream(dst.fd, "s2") == PATTERN[:1000]
    assert copy(env, dst, key, [(100, 0, 50)]) == (STATUS_SUCCESS, (1, 0, 50))
    assert (env.root / "dst").read_bytes() == PATTERN[100:150]
    assert copy(env, dst, key, [(990, 0, 11)])[0] == STATUS_INVALID_VIEW_SIZE  # stream's size

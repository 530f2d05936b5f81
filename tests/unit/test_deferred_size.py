"""Deferred end of file on FAT-like file systems (fs/deferred_size.py), on a forced
zero-filling file system: the table, and every handler that reports or uses a size.

The real file system (exFAT under FUSE) is in tests/e2e/test_exfat.py.
"""

from __future__ import annotations

import os
import socket
import struct

import pytest
from handler_fixtures import HandlerEnv, call
from info_fixtures import query_body
from test_create import Created, close_body, create_body

from ksmbd_embedded import header as h
from ksmbd_embedded.file_range import FileRange
from ksmbd_embedded.fs import deferred_size as ds
from ksmbd_embedded.fs import file_info as fi
from ksmbd_embedded.fs.fs_caps import FsCaps
from ksmbd_embedded.fs.share_modes import close_open, set_delete_pending
from ksmbd_embedded.handlers.close import handle_close
from ksmbd_embedded.handlers.create import handle_create
from ksmbd_embedded.handlers.query_directory import handle_query_directory
from ksmbd_embedded.handlers.query_info import handle_query_info
from ksmbd_embedded.handlers.read_write import handle_flush, handle_read, handle_write
from ksmbd_embedded.handlers.set_info import handle_set_info
from ksmbd_embedded.status import STATUS_ACCESS_DENIED, STATUS_END_OF_FILE, STATUS_SUCCESS
from ksmbd_embedded.tree import (
    DELETE, FILE_APPEND_DATA, FILE_READ_ATTRIBUTES, FILE_READ_DATA,
    FILE_WRITE_DATA, GENERIC_ALL,
)

ZERO_FILL = FsCaps("vfat", sparse=False, zero_fill_extend=True, hard_links=False,
                   read_only=False)
SPARSE = FsCaps("ext4", sparse=True, zero_fill_extend=False, hard_links=True, read_only=False)
RW = FILE_READ_DATA | FILE_WRITE_DATA | FILE_APPEND_DATA | FILE_READ_ATTRIBUTES | DELETE
MIB = 1 << 20


@pytest.fixture
def env(tmp_path, monkeypatch):
    root = tmp_path / "share"
    root.mkdir()
    (root / "f.bin").write_bytes(b"abcdefghij")  # 10 bytes
    # the share's file system zero-fills on extend (vfat, exFAT < 6.8, FUSE)
    monkeypatch.setattr(ds, "zero_fill_extend", lambda op: True)
    return HandlerEnv(str(root))


def size_on_disk(env, name="f.bin") -> int:
    return os.stat(os.path.join(env.root, name)).st_size


def fid(op):
    return op.persistent_id, op.volatile_id


def set_eof(env, op, size, info_class=fi.FILE_END_OF_FILE_INFORMATION):
    buf = struct.pack("<q", size)
    body = struct.pack("<HBBIHHIQQ", 33, 1, info_class, len(buf), 96, 0, 0, *fid(op)) + buf
    status, _ = call(handle_set_info, env.request(h.SET_INFO, body))
    assert status == STATUS_SUCCESS, hex(status)


def end_of_file(env, op) -> tuple[int, int]:
    """(AllocationSize, EndOfFile) of FileStandardInformation."""
    body = query_body(1, fi.FILE_STANDARD_INFORMATION, op, 24)
    status, out = call(handle_query_info, env.request(h.QUERY_INFO, body))
    assert status == STATUS_SUCCESS, hex(status)
    return struct.unpack_from("<QQ", out, 8)


def network_open_eof(env, op) -> int:
    body = query_body(1, fi.FILE_NETWORK_OPEN_INFORMATION, op, 56)
    status, out = call(handle_query_info, env.request(h.QUERY_INFO, body))
    assert status == STATUS_SUCCESS, hex(status)
    return struct.unpack_from("<Q", out, 8 + 40)[0]


def read(env, op, offset, length):
    body = struct.pack("<HBBIQQQIIIHH", 49, 0, 0, length, offset, *fid(op), 0, 0, 0, 0, 0)
    status, out = call(handle_read, env.request(h.READ, body + b"\x00"))
    return status, (out[16:] if out is not None else None)


def write(env, op, data, offset, check=True):
    body = struct.pack("<HHIQQQIIHHI", 49, 0x70, len(data), offset, *fid(op), 0, 0, 0, 0, 0)
    status, _ = call(handle_write, env.request(h.WRITE, body + data))
    if check:
        assert status == STATUS_SUCCESS, hex(status)
    return status


def flush(env, op):
    status, _ = call(handle_flush, env.request(h.FLUSH, struct.pack("<HHIQQ", 24, 0, 0,
                                                                    *fid(op))))
    assert status == STATUS_SUCCESS, hex(status)


def listed_size(env, name="f.bin") -> int:
    """EndOfFile of `name` in a QUERY_DIRECTORY FileIdBothDirectoryInformation listing."""
    d = env.open("", FILE_READ_DATA | FILE_READ_ATTRIBUTES)  # FILE_LIST_DIRECTORY
    pattern = name.encode("utf-16-le")
    body = struct.pack("<HBBIQQHHI", 33, 0x25, 0, 0, *fid(d), 96, len(pattern), 65536)
    status, out = call(handle_query_directory, env.request(h.QUERY_DIRECTORY, body + pattern))
    env.close(d)
    assert status == STATUS_SUCCESS, hex(status)
    return struct.unpack_from("<Q", out, 8 + 40)[0]


# -- the table ----------------------------------------------------------------------------------

def test_grow_is_recorded_not_written_and_shrink_applies(env):
    op = env.open("f.bin", RW)
    server = env.server
    ds.set_end_of_file(server, op, 1 << 30, caps=ZERO_FILL)
    assert size_on_disk(env) == 10
    assert ds.virtual_size(server, op.file_key) == 1 << 30
    assert ds.effective_size(server, op.file_key, 10) == 1 << 30
    ds.set_end_of_file(server, op, 100, caps=ZERO_FILL)  # still above the disk: clamped
    assert (size_on_disk(env), ds.virtual_size(server, op.file_key)) == (10, 100)
    ds.set_end_of_file(server, op, 4, caps=ZERO_FILL)  # below the disk: truncated, forgotten
    assert size_on_disk(env) == 4
    assert ds.virtual_size(server, op.file_key) is None
    assert ds.table(server) is None


def test_grow_elsewhere_is_a_plain_truncate(env):
    op = env.open("f.bin", RW)
    ds.set_end_of_file(env.server, op, 5000, caps=SPARSE)
    assert size_on_disk(env) == 5000
    assert ds.table(env.server) is None


def test_servers_do_not_share_sizes(env, tmp_path):
    op = env.open("f.bin", RW)
    ds.set_end_of_file(env.server, op, 1000, caps=ZERO_FILL)
    other = HandlerEnv(str(tmp_path))
    assert ds.effective_size(other.server, op.file_key, 10) == 10


# -- the handlers -------------------------------------------------------------------------------

def test_sizes_reported_everywhere(env):
    op = env.open("f.bin", RW)
    set_eof(env, op, 3 * MIB)
    assert size_on_disk(env) == 10
    alloc, eof = end_of_file(env, op)
    assert eof == 3 * MIB and alloc >= 3 * MIB
    assert network_open_eof(env, op) == 3 * MIB
    assert listed_size(env) == 3 * MIB
    # a second open (CREATE response) sees it too
    status, body = call(handle_create, env.request(h.CREATE, create_body(
        "f.bin", access=FILE_READ_DATA | FILE_READ_ATTRIBUTES)))
    assert status == STATUS_SUCCESS
    c = Created(body)
    assert c.eof == 3 * MIB
    # and CLOSE with post-query attributes
    status, out = call(handle_close, env.request(h.CLOSE, close_body(c, 1)))
    assert status == STATUS_SUCCESS
    assert struct.unpack_from("<Q", out, 48)[0] == 3 * MIB
    assert size_on_disk(env) == 10  # not the last close


def test_reads_data_then_zeros_then_end_of_file(env):
    op = env.open("f.bin", RW)
    set_eof(env, op, 100)
    assert read(env, op, 0, 10) == (STATUS_SUCCESS, b"abcdefghij")
    assert read(env, op, 5, 20) == (STATUS_SUCCESS, b"fghij" + bytes(15))
    assert read(env, op, 50, 100) == (STATUS_SUCCESS, bytes(50))
    assert read(env, op, 100, 1)[0] == STATUS_END_OF_FILE


def test_file_range_pads_zeros_past_the_disk(env):
    """The three ways a READ payload leaves: read(), read_after() and sendfile (the loop pads
    with zeros once sendfile returns 0)."""
    op = env.open("f.bin", RW)
    rng = FileRange(op.fd, 5, 20)
    assert rng.read() == b"fghij" + bytes(15)
    assert bytes(rng.read_after(b"H")) == b"H" + b"fghij" + bytes(15)
    a, b = socket.socketpair()
    try:
        assert os.sendfile(a.fileno(), op.fd, 5, 20) == 5
        assert os.sendfile(a.fileno(), op.fd, 10, 15) == 0
        assert b.recv(100) == b"fghij"
    finally:
        a.close()
        b.close()


def test_writes_grow_the_disk_and_catching_up_forgets(env):
    op = env.open("f.bin", RW)
    set_eof(env, op, 30)
    write(env, op, b"X" * 10, 10)
    assert size_on_disk(env) == 20
    assert end_of_file(env, op)[1] == 30
    assert read(env, op, 15, 15) == (STATUS_SUCCESS, b"XXXXX" + bytes(10))
    write(env, op, b"Y" * 10, 20)
    assert size_on_disk(env) == 30
    assert ds.table(env.server) is None


def test_append_to_end_of_file_uses_the_virtual_size(env):
    op = env.open("f.bin", RW)
    set_eof(env, op, 20)
    appender = env.open("f.bin", FILE_APPEND_DATA | FILE_READ_DATA)
    write(env, appender, b"Z", 0xFFFFFFFFFFFFFFFF)  # FILE_WRITE_TO_END_OF_FILE
    assert size_on_disk(env) == 21
    assert read(env, op, 10, 11) == (STATUS_SUCCESS, bytes(10) + b"Z")
    # append-only handles may not write below the end of file, virtual part included
    set_eof(env, op, 40)
    assert write(env, appender, b"W", 30, check=False) == STATUS_ACCESS_DENIED


def test_flush_writes_the_size(env):
    op = env.open("f.bin", RW)
    set_eof(env, op, 5000)
    flush(env, op)
    assert size_on_disk(env) == 5000
    assert ds.table(env.server) is None
    with open(os.path.join(env.root, "f.bin"), "rb") as f:
        assert f.read() == b"abcdefghij" + bytes(4990)


def test_last_close_writes_the_size_and_keeps_the_times(env):
    op = env.open("f.bin", RW)
    reader = env.open("f.bin", FILE_READ_DATA)
    os.utime(op.fd, ns=(1_000_000_000_000, 2_000_000_000_000))  # a copy's source times
    set_eof(env, op, 4096)
    close_open(env.server, op)
    assert size_on_disk(env) == 10  # the reader still has it open
    assert end_of_file(env, reader)[1] == 4096
    close_open(env.server, reader)  # the last close, through a read-only descriptor
    st = os.stat(os.path.join(env.root, "f.bin"))
    assert st.st_size == 4096
    assert st.st_mtime_ns == 2_000_000_000_000
    assert ds.table(env.server) is None


def test_delete_pending_file_is_forgotten_not_extended(env):
    op = env.open("f.bin", RW)
    set_eof(env, op, 1 << 40)  # never materialized: the file goes away
    set_delete_pending(env.server, op.file_key, True)
    close_open(env.server, op)
    assert not os.path.exists(os.path.join(env.root, "f.bin"))
    assert ds.table(env.server) is None


def test_overwrite_on_open_forgets(env):
    op = env.open("f.bin", RW)
    set_eof(env, op, 1000)
    status, body = call(handle_create, env.request(h.CREATE, create_body(
        "f.bin", access=GENERIC_ALL, disposition=5)))  # FILE_OVERWRITE_IF
    assert status == STATUS_SUCCESS
    assert Created(body).eof == 0
    assert ds.table(env.server) is None
    assert end_of_file(env, op)[1] == 0


def test_allocation_never_extends_and_truncates_below_the_end(env):
    op = env.open("f.bin", RW)
    set_eof(env, op, 1 << 30, fi.FILE_ALLOCATION_INFORMATION)
    assert size_on_disk(env) == 10 and ds.table(env.server) is None
    set_eof(env, op, 1000)
    set_eof(env, op, 500, fi.FILE_ALLOCATION_INFORMATION)  # below the virtual end of file
    assert (size_on_disk(env), end_of_file(env, op)[1]) == (10, 500)
    set_eof(env, op, 4, fi.FILE_ALLOCATION_INFORMATION)
    assert (size_on_disk(env), end_of_file(env, op)[1]) == (4, 4)
    assert ds.table(env.server) is None


def test_never_posix_fallocate(env, monkeypatch):
    monkeypatch.setattr(os, "posix_fallocate",
                        lambda *a: pytest.fail("posix_fallocate writes zeros"), raising=False)
    op = env.open("f.bin", RW)
    set_eof(env, op, 1 << 20, fi.FILE_ALLOCATION_INFORMATION)
    set_eof(env, op, 1 << 20)
    flush(env, op)
    assert size_on_disk(env) == 1 << 20


# -- which file systems defer (fs_caps.classify) --------------------------------------------------

@pytest.mark.parametrize("magic, mount, release, fs_type, zero_fill", [
    (0x4D44, ("vfat", "/dev/sda1", frozenset()), "6.6.86", "vfat", True),
    (None, ("msdos", "/dev/sda1", frozenset()), "6.6.86", "msdos", True),
    (0x2011BAB0, ("exfat", "/dev/sda1", frozenset()), "6.6.86", "exfat", True),
    (0x2011BAB0, ("exfat", "/dev/sda1", frozenset()), "5.15.0-91-generic", "exfat", True),
    (0x2011BAB0, ("exfat", "/dev/sda1", frozenset()), "6.8.0-rc1", "exfat", False),
    (0x2011BAB0, ("exfat", "/dev/sda1", frozenset()), "6.12.21", "exfat", False),
    (0x2011BAB0, None, "weird", "exfat", True),  # an unreadable release counts as older
    (0x65735546, ("fuseblk", "/dev/loop0", frozenset()), "6.18.0", "fuseblk", True),
    (0x65735546, ("fuse", "exfat", frozenset()), "6.18.0", "fuse", True),
    (0x65735546, ("fuseblk", "/dev/sdb1", frozenset()), "6.6.86", "fuseblk", True),
    (0x65735546, ("fuseblk.ntfs-3g", "/dev/sdb1", frozenset()), "6.6.86", "ntfs-3g", False),
    (0xEF53, ("ext4", "/dev/sda2", frozenset()), "6.6.86", "ext4", False),
    (0x01021994, ("tmpfs", "tmpfs", frozenset()), "6.6.86", "tmpfs", False),
])
def test_zero_fill_classification(magic, mount, release, fs_type, zero_fill):
    from ksmbd_embedded.fs.fs_caps import classify
    caps = classify(magic, mount, release)
    assert (caps.fs_type, caps.zero_fill_extend) == (fs_type, zero_fill)
    if zero_fill:
        assert not caps.sparse and not caps.hard_links


def test_fat_like_volume_attributes_are_honest(tmp_path, monkeypatch):
    """FileFsAttributeInformation on a FAT-like share: no hard links, no sparse files, no
    streams, no ACLs; the name stays NTFS (what ksmbd and Samba report)."""
    from info_fixtures import Env

    from ksmbd_embedded.fs import fs_info as fsi
    from ksmbd_embedded.handlers import query_info as qi
    monkeypatch.setattr(qi, "caps_for", lambda root: ZERO_FILL)
    monkeypatch.setattr(qi.streams, "supported", lambda root: False)  # vfat: no user xattrs
    root = tmp_path / "usb"
    root.mkdir()
    env = Env(root)
    status, body = env.call(handle_query_info, h.QUERY_INFO,
                            query_body(2, fsi.FILE_FS_ATTRIBUTE_INFORMATION, env.open("")))
    env.close_all()
    assert status == STATUS_SUCCESS
    attrs, max_name, nlen = struct.unpack_from("<IiI", body, 8)
    assert body[20:20 + nlen].decode("utf-16-le") == "NTFS"
    assert attrs & (fsi.FILE_SUPPORTS_HARD_LINKS | fsi.FILE_SUPPORTS_SPARSE_FILES
                    | fsi.FILE_NAMED_STREAMS | fsi.FILE_PERSISTENT_ACLS) == 0
    assert attrs & fsi.FILE_CASE_PRESERVED_NAMES and attrs & fsi.FILE_UNICODE_ON_DISK

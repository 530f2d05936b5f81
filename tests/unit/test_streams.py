"""Named streams in xattrs (fs/streams.py) and through CREATE/READ/WRITE/QUERY_INFO/SET_INFO."""

from __future__ import annotations

import os
import struct

import pytest
from handler_fixtures import HandlerEnv, call
from test_create import do_close, do_create, ok_close, ok_create, path, slow_down

from ksmbd_embedded import header as h
from ksmbd_embedded.fs import file_info as fi
from ksmbd_embedded.fs import share_paths, streams
from ksmbd_embedded.fs.dos_attrs import unix_to_filetime
from ksmbd_embedded.handlers.create import (
    FILE_CREATE, FILE_CREATED, FILE_DELETE_ON_CLOSE, FILE_DIRECTORY_FILE, FILE_OPEN,
    FILE_OPEN_IF, FILE_OPENED, FILE_OVERWRITE_IF, FILE_OVERWRITTEN, FILE_SUPERSEDE,
)
from ksmbd_embedded.handlers.query_info import handle_query_info
from ksmbd_embedded.handlers.read_write import handle_read, handle_write
from ksmbd_embedded.handlers.set_info import handle_set_info
from ksmbd_embedded.status import (
    STATUS_ACCESS_DENIED, STATUS_DELETE_PENDING, STATUS_DISK_FULL, STATUS_END_OF_FILE,
    STATUS_FILE_IS_A_DIRECTORY, STATUS_INVALID_PARAMETER, STATUS_NOT_A_DIRECTORY,
    STATUS_OBJECT_NAME_COLLISION, STATUS_OBJECT_NAME_INVALID, STATUS_OBJECT_NAME_NOT_FOUND,
    STATUS_OBJECT_PATH_SYNTAX_BAD, STATUS_SHARING_VIOLATION, STATUS_SUCCESS, SmbError,
)
from ksmbd_embedded.tree import DELETE, FILE_ALL_ACCESS, FILE_READ_DATA, FILE_WRITE_DATA

RW = FILE_READ_DATA | FILE_WRITE_DATA


@pytest.fixture
def env(tmp_path):
    root = tmp_path / "share"
    root.mkdir()
    e = HandlerEnv(str(root))
    assert streams.supported(e.root), "the test file system takes no user xattrs"
    return e


# -- names ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,expected", [
    ("f.txt", ("f.txt", None)),
    ("f.txt:s", ("f.txt", "s")),
    ("f.txt:Stream One:$DaTa", ("f.txt", "Stream One")),
    ("f.txt::$DATA", ("f.txt", "")),
    ("dir\\f.txt:\x05Stream\n One", ("dir\\f.txt", "\x05Stream\n One")),
    ("f.txt:?Stream*<>|\"", ("f.txt", "?Stream*<>|\"")),
    (":s", ("", "s")),
])
def test_split_valid(name, expected):
    assert share_paths.parse_name_stream(name.encode("utf-16-le")) == expected


@pytest.mark.parametrize("name", [
    "f.txt:", "f.txt:s:", "f.txt:s:$FOO", "f.txt:s:?D*a", "f.txt::", "f.txt::$FOO",
    "f.txt:a/b", "f.txt:a\\b", "d:s\\f.txt", "dir\\:s", "f.txt:s:$DATA:x",
    "dir\\stream*:?Stream*:$DATA", "f.txt:" + "x" * 256,
])
def test_split_invalid(name):
    with pytest.raises(SmbError) as err:
        share_paths.parse_name_stream(name.encode("utf-16-le"))
    assert err.value.status == STATUS_OBJECT_NAME_INVALID


def test_split_never_escapes():
    with pytest.raises(SmbError) as err:
        share_paths.parse_name_stream("..\\x:s".encode("utf-16-le"))
    assert err.value.status == STATUS_OBJECT_PATH_SYNTAX_BAD
    # "..", "/" in the stream part stay a stream name: never a path
    assert share_paths.parse_name_stream("f:..".encode("utf-16-le")) == ("f", "..")


def test_names2_character_matrix():
    """smbtorture smb2.streams.names2: of 0x01-0x7E only / : \\ are invalid in a stream."""
    for i in range(1, 0x7F):
        name = f"f.txt:Stream{chr(i)}0x{i:02X}:$DATA"
        if chr(i) in "/:\\":
            with pytest.raises(SmbError):
                share_paths.parse_name_stream(name.encode("utf-16-le"))
        else:
            assert share_paths.parse_name_stream(name.encode("utf-16-le"))[1]


# -- storage --------------------------------------------------------------------------------------

def test_storage_layout(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"data")
    fd = os.open(p, os.O_RDONLY)
    try:
        streams.write_stream(fd, "Alt", b"hello", create=True)
        assert os.getxattr(fd, "user.DosStream.Alt:$DATA") == b"hello\x00"  # Samba's layout
        assert streams.list_streams(fd) == [("Alt", 5)]
        assert streams.find_stream(fd, "ALT") == "Alt"
        assert streams.find_stream(fd, "other") is None
        streams.write_at(fd, "Alt", 8, b"XY")
        assert streams.read_stream(fd, "Alt") == b"hello\x00\x00\x00XY"
        streams.set_size(fd, "Alt", 2)
        assert streams.read_stream(fd, "Alt") == b"he"
        streams.rename_stream(fd, "Alt", "New")
        assert [n for n, _ in streams.list_streams(fd)] == ["New"]
        with pytest.raises(SmbError) as err:
            streams.write_stream(fd, "New", b"", create=True)
        assert err.value.status == STATUS_OBJECT_NAME_COLLISION
        streams.remove_all_streams(fd)
        assert streams.list_streams(fd) == []
        assert p.read_bytes() == b"data"
    finally:
        os.close(fd)


def test_too_large_is_disk_full_and_unchanged(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"")
    fd = os.open(p, os.O_RDONLY)
    try:
        streams.write_stream(fd, "s", b"keep", create=True)
        with pytest.raises(SmbError) as err:
            streams.write_at(fd, "s", streams.MAX_STREAM_SIZE, b"x")
        assert err.value.status == STATUS_DISK_FULL
        # what the file system itself refuses (ext4: one 4 KiB block for all xattrs)
        try:
            streams.write_at(fd, "s", 0, b"y" * 60000)
        except SmbError as exc:
            assert exc.status == STATUS_DISK_FULL
            assert streams.read_stream(fd, "s") == b"keep"
        else:
            assert streams.stream_size(fd, "s") == 60000  # tmpfs, xfs, btrfs take it
    finally:
        os.close(fd)


# -- through the handlers -------------------------------------------------------------------------

def write(env, c, data: bytes, offset: int = 0):
    body = struct.pack("<HHIQQQIIHHI", 49, 64 + 48, len(data), offset, c.persistent,
                       c.volatile, 0, 0, 0, 0, 0) + data
    return call(handle_write, env.request(h.WRITE, body))


def read(env, c, length: int, offset: int = 0):
    body = struct.pack("<HBBIQQQIIIHH", 49, 0x50, 0, length, offset, c.persistent, c.volatile,
                       0, 0, 0, 0, 0) + b"\x00"
    status, out = call(handle_read, env.request(h.READ, body))
    return status, (out[16:] if status == STATUS_SUCCESS else None)


def query(env, c, info_class: int, out_len: int = 4096):
    body = struct.pack("<HBBIHHIIIQQ", 41, 1, info_class, out_len, 0, 0, 0, 0, 0,
                       c.persistent, c.volatile) + b"\x00"
    status, out = call(handle_query_info, env.request(h.QUERY_INFO, body))
    return status, (out[8:8 + struct.unpack_from("<I", out, 4)[0]] if out else None)


def set_info(env, c, info_class: int, buf: bytes):
    body = struct.pack("<HBBIHHIQQ", 33, 1, info_class, len(buf), 96, 0, 0, c.persistent,
                       c.volatile) + buf
    return call(handle_set_info, env.request(h.SET_INFO, body))[0]


def stream_names(env, c) -> list[str]:
    status, data = query(env, c, fi.FILE_STREAM_INFORMATION)
    assert status == STATUS_SUCCESS
    names = []
    pos = 0
    while data:
        nxt, nlen = struct.unpack_from("<II", data, pos)
        names.append(data[pos + 24:pos + 24 + nlen].decode("utf-16-le"))
        if not nxt:
            break
        pos += nxt
    return names


def rename_buf(name: str, replace: bool = True) -> bytes:
    nb = name.encode("utf-16-le")
    return struct.pack("<B7xQI", int(replace), 0, len(nb)) + nb


def test_create_write_read_list(env):
    c = ok_create(env, "f.txt:Stream One", access=RW, disposition=FILE_CREATE, share=0)
    assert c.action == FILE_CREATED and c.eof == 0
    assert os.path.getsize(path(env, "f.txt")) == 0  # the file came with its stream
    assert write(env, c, b"test data")[0] == STATUS_SUCCESS
    assert write(env, c, b"MORE DATA ", offset=5)[0] == STATUS_SUCCESS
    assert read(env, c, 100) == (STATUS_SUCCESS, b"test MORE DATA ")
    assert read(env, c, 10, offset=15)[0] == STATUS_END_OF_FILE
    # the file's own open does not conflict with the stream's (share 0)
    base = ok_create(env, "f.txt", access=RW, share=0)
    assert stream_names(env, base) == ["::$DATA", ":Stream One:$DATA"]
    assert stream_names(env, c) == ["::$DATA", ":Stream One:$DATA"]
    # the same stream does, in any case and spelling
    assert do_create(env, "f.txt:STREAM ONE:$DATA", access=RW)[0] == STATUS_SHARING_VIOLATION
    ok_close(env, c)
    again = ok_create(env, "f.txt:stream one", access=RW, disposition=FILE_OPEN)
    assert again.action == FILE_OPENED and again.eof == 15
    status, std = query(env, again, fi.FILE_STANDARD_INFORMATION)
    assert struct.unpack_from("<QQ", std)[1] == 15
    status, name = query(env, again, fi.FILE_NAME_INFORMATION)
    assert name[4:].decode("utf-16-le") == "\\f.txt:Stream One"
    ok_close(env, again)
    ok_close(env, base)
    assert open(path(env, "f.txt"), "rb").read() == b""  # the data went to the stream only


def test_dispositions(env):
    assert do_create(env, "f.txt:s", disposition=FILE_OPEN)[0] == STATUS_OBJECT_NAME_NOT_FOUND
    assert not os.path.exists(path(env, "f.txt"))
    open(path(env, "f.txt"), "wb").close()
    assert do_create(env, "f.txt:s", disposition=FILE_OPEN)[0] == STATUS_OBJECT_NAME_NOT_FOUND
    c = ok_create(env, "f.txt:s", access=RW, disposition=FILE_OPEN_IF)
    write(env, c, b"abc")
    ok_close(env, c)
    assert do_create(env, "f.txt:s", disposition=FILE_CREATE)[0] == \
        STATUS_OBJECT_NAME_COLLISION
    c = ok_create(env, "f.txt:s", access=RW, disposition=FILE_OVERWRITE_IF)
    assert c.action == FILE_OVERWRITTEN and c.eof == 0
    ok_close(env, c)
    # a stream is never a directory; a directory has no default data stream
    os.mkdir(path(env, "d"))
    assert do_create(env, "x:s", options=FILE_DIRECTORY_FILE, disposition=FILE_CREATE)[0] == \
        STATUS_NOT_A_DIRECTORY
    assert do_create(env, "d::$DATA", options=FILE_DIRECTORY_FILE)[0] == STATUS_NOT_A_DIRECTORY
    assert do_create(env, "d::$DATA")[0] == STATUS_FILE_IS_A_DIRECTORY
    # but a directory can hold named streams, and lists no ::$DATA
    c = ok_create(env, "d:ds", access=RW, disposition=FILE_CREATE)
    ok_close(env, c)
    d = ok_create(env, "d", options=FILE_DIRECTORY_FILE)
    assert stream_names(env, d) == [":ds:$DATA"]
    ok_close(env, d)


def test_overwrite_of_file_drops_streams(env):
    ok_close(env, ok_create(env, "f.txt:s1", access=RW, disposition=FILE_CREATE))
    ok_close(env, ok_create(env, "f.txt:s2", access=RW, disposition=FILE_CREATE))
    c = ok_create(env, "f.txt", access=RW, disposition=FILE_SUPERSEDE)
    assert stream_names(env, c) == ["::$DATA"]
    ok_close(env, c)


def test_delete_on_close_of_stream_deletes_only_it(env):
    with open(path(env, "f.txt"), "wb") as f:
        f.write(b"base")
    ok_close(env, ok_create(env, "f.txt:s", access=RW, disposition=FILE_CREATE))
    ok_close(env, ok_create(env, "f.txt:t", access=RW, disposition=FILE_CREATE))
    c = ok_create(env, "f.txt:s", access=FILE_ALL_ACCESS, options=FILE_DELETE_ON_CLOSE)
    # SET_INFO FileDispositionInformation: delete-pending is per stream
    assert set_info(env, c, fi.FILE_DISPOSITION_INFORMATION, b"\x01") == STATUS_SUCCESS
    assert do_create(env, "f.txt:s", access=RW)[0] == STATUS_DELETE_PENDING
    ok_close(env, ok_create(env, "f.txt", access=RW))
    ok_close(env, ok_create(env, "f.txt:t", access=RW))
    ok_close(env, c)
    assert do_create(env, "f.txt:s")[0] == STATUS_OBJECT_NAME_NOT_FOUND
    assert open(path(env, "f.txt"), "rb").read() == b"base"
    c = ok_create(env, "f.txt:t", access=FILE_ALL_ACCESS, options=FILE_DELETE_ON_CLOSE)
    ok_close(env, c)  # FILE_DELETE_ON_CLOSE: the stream goes at its last close
    assert os.listxattr(path(env, "f.txt")) == [x for x in os.listxattr(path(env, "f.txt"))
                                                if not x.startswith("user.DosStream.")]


def test_file_deleted_with_its_streams_after_last_stream_close(env):
    s = ok_create(env, "f.txt:s", access=RW, share=7, disposition=FILE_CREATE)
    write(env, s, b"stream data")
    # a stream open without FILE_SHARE_DELETE refuses DELETE on the file
    t = ok_create(env, "f.txt:t", access=RW, share=3, disposition=FILE_CREATE)
    assert do_create(env, "f.txt", access=DELETE, options=FILE_DELETE_ON_CLOSE)[0] == \
        STATUS_SHARING_VIOLATION
    ok_close(env, t)
    f = ok_create(env, "f.txt", access=DELETE, options=FILE_DELETE_ON_CLOSE)
    ok_close(env, f)
    assert os.path.exists(path(env, "f.txt"))  # the stream open keeps it
    assert do_create(env, "f.txt:s", access=RW)[0] == STATUS_DELETE_PENDING
    assert read(env, s, 100) == (STATUS_SUCCESS, b"stream data")
    ok_close(env, s)
    assert not os.path.exists(path(env, "f.txt"))


def test_rename_stream(env):
    a = ok_create(env, "f.txt:a", access=FILE_ALL_ACCESS, disposition=FILE_CREATE)
    write(env, a, b"AAA")
    ok_close(env, ok_create(env, "f.txt:b", access=RW, disposition=FILE_CREATE))
    assert set_info(env, a, fi.FILE_RENAME_INFORMATION, rename_buf(":b", False)) == \
        STATUS_OBJECT_NAME_COLLISION
    assert set_info(env, a, fi.FILE_RENAME_INFORMATION, rename_buf(":b:$DATA")) == \
        STATUS_SUCCESS  # replaces the empty "b"
    assert stream_names(env, a) == ["::$DATA", ":b:$DATA"]
    assert read(env, a, 10) == (STATUS_SUCCESS, b"AAA")
    assert set_info(env, a, fi.FILE_RENAME_INFORMATION, rename_buf("g.txt:c")) == \
        STATUS_SHARING_VIOLATION
    assert set_info(env, a, fi.FILE_RENAME_INFORMATION, rename_buf(":c:$FOO")) == \
        STATUS_INVALID_PARAMETER
    # the file cannot be renamed while a stream of it is open
    base = ok_create(env, "f.txt", access=FILE_ALL_ACCESS)
    assert set_info(env, base, fi.FILE_RENAME_INFORMATION, rename_buf("g.txt")) == \
        STATUS_ACCESS_DENIED
    ok_close(env, base)
    # to the default stream: its data becomes the file's
    assert set_info(env, a, fi.FILE_RENAME_INFORMATION, rename_buf("::$DATA")) == \
        STATUS_SUCCESS
    ok_close(env, a)
    assert open(path(env, "f.txt"), "rb").read() == b"AAA"
    base = ok_create(env, "f.txt", access=FILE_ALL_ACCESS)
    assert stream_names(env, base) == ["::$DATA"]
    ok_close(env, base)


def test_end_of_file_and_disk_full(env):
    c = ok_create(env, "f.txt:s", access=RW, disposition=FILE_CREATE)
    assert set_info(env, c, fi.FILE_END_OF_FILE_INFORMATION, struct.pack("<Q", 100)) == \
        STATUS_SUCCESS
    assert query(env, c, fi.FILE_STANDARD_INFORMATION)[1][8] == 100
    assert set_info(env, c, fi.FILE_END_OF_FILE_INFORMATION,
                    struct.pack("<Q", streams.MAX_STREAM_SIZE + 1)) == STATUS_DISK_FULL
    assert write(env, c, b"x", offset=streams.MAX_STREAM_SIZE)[0] == STATUS_DISK_FULL
    assert streams.read_stream(os.open(path(env, "f.txt"), os.O_RDONLY), "s") == bytes(100)
    ok_close(env, c)


def test_readonly_file_refuses_stream_writes(env):
    from ksmbd_embedded.fs.dos_attrs import FILE_ATTRIBUTE_READONLY
    ok_close(env, ok_create(env, "f.txt:s", access=RW, disposition=FILE_CREATE))
    c = ok_create(env, "f.txt", access=FILE_ALL_ACCESS)
    basic = struct.pack("<QQQQI4x", 0, 0, 0, 0, FILE_ATTRIBUTE_READONLY)
    assert set_info(env, c, fi.FILE_BASIC_INFORMATION, basic) == STATUS_SUCCESS
    ok_close(env, c)
    assert do_create(env, "f.txt:s", access=RW)[0] == STATUS_ACCESS_DENIED
    assert do_create(env, "f.txt:s", access=FILE_READ_DATA)[0] == STATUS_SUCCESS


def test_unsupported_file_system_refuses_stream_names(env, monkeypatch):
    monkeypatch.setitem(streams._supported, env.root, False)
    assert do_create(env, "f.txt:s", disposition=FILE_CREATE)[0] == STATUS_OBJECT_NAME_INVALID
    assert not os.path.exists(path(env, "f.txt"))


def test_close_of_unknown_leaves_no_state(env):
    c = ok_create(env, "f.txt:s", access=RW, disposition=FILE_CREATE)
    assert streams.stream_opens(env.server, streams.stream_of(
        env.server.opens.get(c.volatile)).base_key)
    assert do_close(env, c)[0] == STATUS_SUCCESS
    assert not env.server.opens.by_file
    assert not streams._by_base.get(env.server)


@pytest.mark.parametrize("existing", [False, True])
def test_create_response_change_time_is_after_the_stream_write(env, monkeypatch, existing):
    """Creating a stream writes an xattr of the file, which moves the file's ctime; the
    CREATE response reports the ChangeTime a QUERY_INFO right after it would (the write is
    slowed down by 30 ms so the kernel's ctime clock certainly ticks in between)."""
    slow_down(monkeypatch, streams, "write_stream")
    if existing:
        open(path(env, "f.txt"), "wb").close()
    c = ok_create(env, "f.txt:s", access=RW, disposition=FILE_CREATE)
    st = os.stat(path(env, "f.txt"))
    assert c.change_time == unix_to_filetime(st.st_ctime_ns)
    ok_close(env, c)

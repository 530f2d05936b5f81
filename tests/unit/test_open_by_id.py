"""CREATE with FILE_OPEN_BY_FILE_ID (handlers/create.py, fs/file_ids.py)."""

from __future__ import annotations

import os
import struct

import pytest
from handler_fixtures import HandlerEnv, call
from info_fixtures import query_body
from test_create import Created, create_body

from ksmbd_embedded import header as h
from ksmbd_embedded.fs import file_ids
from ksmbd_embedded.fs import file_info as fi
from ksmbd_embedded.fs.dos_attrs import FILE_ATTRIBUTE_READONLY, write_dos_attrs
from ksmbd_embedded.handlers.close import handle_close
from ksmbd_embedded.handlers.create import (
    FILE_CREATE, FILE_DIRECTORY_FILE, FILE_OPEN, FILE_OPEN_BY_FILE_ID, FILE_OPEN_IF,
    FILE_OPEN_REPARSE_POINT, FILE_OVERWRITE_IF, handle_create,
)
from ksmbd_embedded.handlers.query_info import handle_query_info
from ksmbd_embedded.status import (
    STATUS_ACCESS_DENIED, STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED,
    STATUS_OBJECT_NAME_COLLISION, STATUS_SUCCESS,
)
from ksmbd_embedded.tree import FILE_READ_ATTRIBUTES, FILE_WRITE_DATA, GENERIC_READ, SYNCHRONIZE


@pytest.fixture
def env(tmp_path):
    root = tmp_path / "share"
    root.mkdir()
    (root / "dir").mkdir()
    (root / "dir" / "f.txt").write_bytes(b"data")
    return HandlerEnv(str(root))


def create(env, name="", raw=None, options=FILE_OPEN_BY_FILE_ID, **kw):
    status, body = call(handle_create, env.request(h.CREATE, create_body(
        name, raw_name=raw, options=options, **kw)))
    if body is None:
        return status, None
    return status, env.server.opens.get(Created(body).volatile)


def close(env, op):
    body = struct.pack("<HHIQQ", 24, 0, 0, op.persistent_id, op.volatile_id)
    assert call(handle_close, env.request(h.CLOSE, body))[0] == STATUS_SUCCESS


def by_name(env, name, **kw):
    """Open by name (which remembers the id) and close again; the file id."""
    kw.setdefault("options", 0)
    status, op = create(env, name, **kw)
    assert status == STATUS_SUCCESS, hex(status)
    ino = os.fstat(op.fd).st_ino
    close(env, op)
    return ino


def fid(ino: int) -> bytes:
    return struct.pack("<Q", ino)


def query_name(env, op) -> str:
    status, body = call(handle_query_info, env.request(h.QUERY_INFO, query_body(
        1, fi.FILE_NAME_INFORMATION, op)))
    assert status == STATUS_SUCCESS
    n = struct.unpack_from("<I", body, 8)[0]
    return body[12:12 + n].decode("utf-16-le")


def test_open_by_id_after_open_by_name(env):
    ino = by_name(env, "DIR\\F.TXT")  # the name as spelled, the path as on disk
    status, op = create(env, raw=fid(ino), access=GENERIC_READ)
    assert status == STATUS_SUCCESS
    assert os.fstat(op.fd).st_ino == ino and op.path == os.path.join(env.root, "dir", "f.txt")
    assert query_name(env, op) == "\\dir\\f.txt"
    # a FileId128 holding the 64-bit id works too
    assert create(env, raw=fid(ino) + bytes(8), access=GENERIC_READ)[0] == STATUS_SUCCESS


def test_directories_and_the_root(env):
    ino = by_name(env, "dir", options=FILE_DIRECTORY_FILE, access=GENERIC_READ)
    status, op = create(env, raw=fid(ino), access=GENERIC_READ)
    assert status == STATUS_SUCCESS and op.is_dir
    root_ino = by_name(env, "")
    status, op = create(env, raw=fid(root_ino), access=GENERIC_READ)
    assert status == STATUS_SUCCESS and op.path == env.root and op.name == ""


def test_unknown_and_stale_ids(env):
    assert create(env, raw=fid(123456789))[0] == STATUS_INVALID_PARAMETER
    ino = by_name(env, "dir\\f.txt")
    os.unlink(os.path.join(env.root, "dir", "f.txt"))
    (open(os.path.join(env.root, "dir", "f.txt"), "wb")).close()  # a new file, same name
    if os.stat(os.path.join(env.root, "dir", "f.txt")).st_ino != ino:
        assert create(env, raw=fid(ino))[0] == STATUS_INVALID_PARAMETER
        assert file_ids.lookup(env.server, env.root, ino) is None  # forgotten
    ino2 = by_name(env, "dir\\f.txt")
    os.rename(os.path.join(env.root, "dir", "f.txt"), os.path.join(env.root, "g.txt"))
    assert create(env, raw=fid(ino2))[0] == STATUS_INVALID_PARAMETER  # moved locally
    ino3 = by_name(env, "g.txt")
    os.unlink(os.path.join(env.root, "g.txt"))
    status, _ = create(env, raw=fid(ino3), disposition=FILE_OPEN_IF)
    assert status == STATUS_INVALID_PARAMETER
    assert not os.path.exists(os.path.join(env.root, "g.txt"))  # an id never creates


@pytest.mark.parametrize("raw", [b"", b"\x01\x00", fid(1)[:6], fid(1) + b"\x00\x00",
                                 fid(1) + fid(1), "name.txt".encode("utf-16-le")])
def test_other_name_lengths_not_supported(env, raw):
    assert create(env, raw=raw)[0] == STATUS_NOT_SUPPORTED


def test_by_id_gets_the_checks_by_name(env):
    path = os.path.join(env.root, "dir", "f.txt")
    ino = by_name(env, "dir\\f.txt")
    if not write_dos_attrs(path, attributes=FILE_ATTRIBUTE_READONLY):
        os.chmod(path, 0o444)  # no user xattrs here: READONLY is the mode
    assert create(env, raw=fid(ino), access=FILE_WRITE_DATA)[0] == STATUS_ACCESS_DENIED
    assert create(env, raw=fid(ino), disposition=FILE_CREATE)[0] == \
        STATUS_OBJECT_NAME_COLLISION
    assert create(env, raw=fid(ino), disposition=FILE_OVERWRITE_IF,
                  access=FILE_WRITE_DATA)[0] == STATUS_ACCESS_DENIED
    assert create(env, raw=fid(ino), access=FILE_READ_ATTRIBUTES | SYNCHRONIZE)[0] == \
        STATUS_SUCCESS
    # a read-only tree refuses by id what it refuses by name
    ro = HandlerEnv(env.root, writable=False)
    ro.server = env.server
    ro.conn.server = env.server
    assert call(handle_create, ro.request(h.CREATE, create_body(
        "", raw_name=fid(ino), options=FILE_OPEN_BY_FILE_ID,
        access=FILE_WRITE_DATA)))[0] == STATUS_ACCESS_DENIED


def test_vetoed_names_are_unknown_ids(tmp_path):
    root = tmp_path / "share"
    root.mkdir()
    (root / "secret.bak").write_bytes(b"x")
    env = HandlerEnv(str(root), veto_files=("*.bak",))
    st = os.stat(root / "secret.bak")
    file_ids.remember(env.server, env.root, str(root / "secret.bak"), st.st_dev, st.st_ino)
    assert create(env, raw=fid(st.st_ino))[0] == STATUS_INVALID_PARAMETER


def test_never_outside_the_share(tmp_path, env):
    outside = tmp_path / "outside"
    outside.mkdir()
    ino = by_name(env, "dir\\f.txt")
    # the same inode reachable outside, and "dir" swapped for a link leading there
    os.link(os.path.join(env.root, "dir", "f.txt"), outside / "f.txt")
    os.rename(os.path.join(env.root, "dir"), tmp_path / "moved")
    os.symlink(outside, os.path.join(env.root, "dir"))
    status, op = create(env, raw=fid(ino), access=GENERIC_READ)
    assert status != STATUS_SUCCESS and op is None
    # a name outside the root is never remembered
    st = os.stat(outside / "f.txt")
    file_ids.remember(env.server, env.root, str(outside / "f.txt"), st.st_dev, st.st_ino + 1)
    assert file_ids.lookup(env.server, env.root, st.st_ino + 1) is None


def test_links_are_not_remembered_and_reparse_option_combines(env):
    os.symlink("f.txt", os.path.join(env.root, "dir", "l"))
    status, op = create(env, "dir\\l", options=FILE_OPEN_REPARSE_POINT, access=GENERIC_READ)
    assert status == STATUS_SUCCESS
    assert file_ids.lookup(env.server, env.root, os.fstat(op.fd).st_ino) is None
    ino = by_name(env, "dir\\l")  # followed: the target's id, under the target's name
    assert file_ids.lookup(env.server, env.root, ino)[1] == "dir\\f.txt"
    status, op = create(env, raw=fid(ino), access=GENERIC_READ,
                        options=FILE_OPEN_BY_FILE_ID | FILE_OPEN_REPARSE_POINT)
    assert status == STATUS_SUCCESS and op.path.endswith("/dir/f.txt")


def test_map_is_bounded_and_per_root(monkeypatch, env):
    monkeypatch.setattr(file_ids, "MAX_ENTRIES", 8)
    server = object.__new__(type("S", (), {}))
    for i in range(20):
        file_ids.remember(server, "/r", f"/r/f{i}", 1, i)
    assert file_ids.size(server) == 8
    assert file_ids.lookup(server, "/r", 11) is None and file_ids.lookup(server, "/r", 12)
    file_ids.lookup(server, "/r", 12)  # used: kept over older entries
    for i in range(20, 27):
        file_ids.remember(server, "/r", f"/r/f{i}", 1, i)
    assert file_ids.lookup(server, "/r", 12) == (1, "f12")
    assert file_ids.lookup(server, "/other", 12) is None
    assert file_ids.relative_name("/r", "/r/a/b") == "a\\b"
    assert file_ids.relative_name("/r", "/rx/a") is None


def test_open_by_name_still_works_with_the_option_off(env):
    status, _ = create(env, "dir\\f.txt", options=0, disposition=FILE_OPEN)
    assert status == STATUS_SUCCESS

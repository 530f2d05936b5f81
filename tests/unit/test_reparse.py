"""Symlinks as reparse points: CREATE with FILE_OPEN_REPARSE_POINT, FSCTL_GET_REPARSE_POINT,
QUERY_INFO, READ/WRITE refusals and deleting the link (handlers/create.py, ioctl.py,
query_info.py; fs/reparse.py)."""

from __future__ import annotations

import os
import struct

import pytest
from handler_fixtures import HandlerEnv, call
from info_fixtures import ioctl_body, query_body, set_body
from test_create import Created, create_body

from ksmbd_embedded import header as h
from ksmbd_embedded.fs import file_info as fi
from ksmbd_embedded.fs import reparse
from ksmbd_embedded.fs.dos_attrs import (
    FILE_ATTRIBUTE_DIRECTORY, FILE_ATTRIBUTE_NORMAL, FILE_ATTRIBUTE_REPARSE_POINT,
)
from ksmbd_embedded.fs.share_paths import resolve_stat
from ksmbd_embedded.handlers import create_contexts as cc
from ksmbd_embedded.handlers.close import handle_close
from ksmbd_embedded.handlers.create import (
    FILE_CREATE, FILE_DELETE_ON_CLOSE, FILE_DIRECTORY_FILE, FILE_NON_DIRECTORY_FILE,
    FILE_OPEN_IF, FILE_OPEN_REPARSE_POINT, FILE_OVERWRITE_IF, handle_create,
)
from ksmbd_embedded.handlers.ioctl import FSCTL_GET_REPARSE_POINT, handle_ioctl
from ksmbd_embedded.handlers.query_info import handle_query_info
from ksmbd_embedded.handlers.read_write import handle_read, handle_write
from ksmbd_embedded.handlers.set_info import handle_set_info
from ksmbd_embedded.status import (
    STATUS_ACCESS_DENIED, STATUS_BUFFER_OVERFLOW, STATUS_BUFFER_TOO_SMALL,
    STATUS_FILE_IS_A_DIRECTORY, STATUS_INVALID_PARAMETER, STATUS_NOT_A_DIRECTORY,
    STATUS_NOT_A_REPARSE_POINT, STATUS_OBJECT_NAME_COLLISION, STATUS_SHARING_VIOLATION,
    STATUS_SUCCESS, SmbError,
)
from ksmbd_embedded.tree import (
    DELETE, FILE_ALL_ACCESS, FILE_READ_ATTRIBUTES, FILE_READ_DATA, FILE_WRITE_DATA,
    GENERIC_ALL, GENERIC_READ, MAXIMUM_ALLOWED, READ_CONTROL, SYNCHRONIZE, WRITE_DAC,
)

TAG = 0xA000000C
ATTRS_ONLY = FILE_READ_ATTRIBUTES | SYNCHRONIZE


@pytest.fixture
def env(tmp_path):
    root = tmp_path / "share"
    root.mkdir()
    (root / "dir").mkdir()
    (root / "dir" / "target.txt").write_bytes(b"target data")
    (root / "dir" / "sub").mkdir()
    (root / "dir" / "sub" / "inner.txt").write_bytes(b"inner")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    os.symlink("target.txt", root / "dir" / "rel_link")
    os.symlink("../dir/sub", root / "dir" / "dir_link")
    os.symlink(str(root / "dir" / "target.txt"), root / "abs_link")
    os.symlink("../outside/secret.txt", root / "out_rel")
    os.symlink(str(outside / "secret.txt"), root / "out_abs")
    os.symlink("missing.txt", root / "dangling")
    e = HandlerEnv(str(root))
    e.outside = outside
    return e


def create(env, name, **kw):
    """(status, Open | None, Created | None)."""
    kw.setdefault("options", FILE_OPEN_REPARSE_POINT)
    status, body = call(handle_create, env.request(h.CREATE, create_body(name, **kw)))
    if body is None:
        return status, None, None
    c = Created(body)
    return status, env.server.opens.get(c.volatile), c


def ok_link(env, name, **kw):
    status, op, c = create(env, name, **kw)
    assert status == STATUS_SUCCESS, hex(status)
    return op, c


def close(env, op):
    body = struct.pack("<HHIQQ", 24, 1, 0, op.persistent_id, op.volatile_id)
    status, out = call(handle_close, env.request(h.CLOSE, body))
    assert status == STATUS_SUCCESS
    return out


def get_reparse(env, op, max_out=16384):
    status, body = call(handle_ioctl, env.request(h.IOCTL, ioctl_body(
        FSCTL_GET_REPARSE_POINT, op, max_out=max_out)))
    if body is None:
        return status, None
    off, count = struct.unpack_from("<II", body, 32)
    return status, body[off - 64:off - 64 + count]


def query(env, op, info_class):
    status, body = call(handle_query_info, env.request(h.QUERY_INFO, query_body(1, info_class,
                                                                                op)))
    assert status == STATUS_SUCCESS, hex(status)
    off, length = struct.unpack_from("<HI", body, 2)
    return body[off - 64:off - 64 + length]


def parse_symlink(buf):
    tag, length, reserved = struct.unpack_from("<IHH", buf, 0)
    sub_off, sub_len, pr_off, pr_len, flags = struct.unpack_from("<HHHHI", buf, 8)
    path = buf[20:]
    return (tag, length, reserved, flags, path[sub_off:sub_off + sub_len].decode("utf-16-le"),
            path[pr_off:pr_off + pr_len].decode("utf-16-le"))


# -- the target a client is given (fs/reparse.py) -------------------------------------------------

@pytest.mark.parametrize("link, target, expected", [
    ("a/b/l", "x", "x"),
    ("a/b/l", "../c/./d/", "..\\c\\d"),
    ("a/b/l", "../../top", "..\\..\\top"),
    ("l", ".", "."),
    ("a/l", "{root}/a/b/f", "b\\f"),
    ("a/b/l", "{root}/c/f", "..\\..\\c\\f"),
    ("a/l", "{root}", ".."),
    ("l", "{root}//x/../y", "y"),
])
def test_client_target_in_share(tmp_path, link, target, expected):
    root = str(tmp_path)
    assert reparse.client_target(root, root + "/" + link, target.format(root=root)) == expected


@pytest.mark.parametrize("link, target", [
    ("l", ".."), ("a/l", "../../x"), ("a/b/l", "../x/../../../y"), ("l", "/etc/passwd"),
    ("l", "{root}/../x"), ("l", "a\\b"), ("l", "c:x"), ("l", "x/a*b"),
])
def test_client_target_refused(tmp_path, link, target):
    root = str(tmp_path / "share")
    os.makedirs(root)
    with pytest.raises(SmbError) as err:
        reparse.client_target(root, root + "/" + link, target.format(root=root))
    assert err.value.status == STATUS_ACCESS_DENIED


def test_client_target_absolute_through_an_alias_of_the_root(tmp_path):
    root = tmp_path / "real"
    root.mkdir()
    os.symlink(root, tmp_path / "alias")
    target = str(tmp_path / "alias" / "d" / "f")
    assert reparse.client_target(str(root), str(root / "d" / "l"), target) == "f"


def test_symlink_reparse_buffer_layout():
    buf = reparse.symlink_reparse_buffer("..\\x")
    n = len("..\\x".encode("utf-16-le"))
    assert parse_symlink(buf) == (TAG, 12 + 2 * n, 0, 1, "..\\x", "..\\x")
    assert len(buf) == 8 + 12 + 2 * n
    with pytest.raises(SmbError):
        reparse.symlink_reparse_buffer("bad\udcff")  # undecodable bytes on disk


def test_resolve_stat_without_following_the_last_component(env):
    path, st = resolve_stat(env.root, "dir\\rel_link", follow_last=False)
    assert path == os.path.join(env.root, "dir", "rel_link") and os.path.islink(path)
    assert st.st_ino == os.lstat(path).st_ino
    path, st = resolve_stat(env.root, "out_abs", follow_last=False)  # not looked behind
    assert os.path.islink(path)
    path, st = resolve_stat(env.root, "DIR\\DIR_LINK\\inner.txt", follow_last=False)
    assert path == os.path.join(env.root, "dir", "sub", "inner.txt")  # only the last one
    with pytest.raises(SmbError):
        resolve_stat(env.root, "out_abs", follow_last=True)


# -- CREATE with FILE_OPEN_REPARSE_POINT ----------------------------------------------------------

def test_open_link_itself_and_get_reparse_point(env):
    op, c = ok_link(env, "dir\\rel_link", access=GENERIC_READ)
    assert reparse.link_of(op) is not None and not op.is_dir
    assert c.attributes == FILE_ATTRIBUTE_REPARSE_POINT and c.eof == 0 and c.alloc == 0
    assert op.path == os.path.join(env.root, "dir", "rel_link")
    status, out = get_reparse(env, op)
    assert status == STATUS_SUCCESS
    assert parse_symlink(out)[3:] == (1, "target.txt", "target.txt")
    assert op.granted_access & ~reparse.LINK_RIGHTS == 0  # no data, no security writes
    assert close(env, op)[56:60] == struct.pack("<I", FILE_ATTRIBUTE_REPARSE_POINT)
    assert os.path.islink(os.path.join(env.root, "dir", "rel_link"))


def test_absolute_in_share_target_is_made_relative(env):
    op, _ = ok_link(env, "abs_link", access=ATTRS_ONLY)
    assert parse_symlink(get_reparse(env, op)[1])[3:] == (1, "dir\\target.txt",
                                                         "dir\\target.txt")


def test_targets_outside_the_share_are_not_revealed(env):
    for name in ("out_rel", "out_abs"):
        op, _ = ok_link(env, name, access=ATTRS_ONLY)  # the link itself may be opened ...
        status, out = get_reparse(env, op)
        assert status == STATUS_ACCESS_DENIED and out is None  # ... but not read
    # without the option the link is followed, and that is refused as before
    assert create(env, "out_abs", options=0)[0] == STATUS_ACCESS_DENIED


def test_dangling_link_opens(env):
    op, c = ok_link(env, "dangling", access=ATTRS_ONLY)
    assert parse_symlink(get_reparse(env, op)[1])[4] == "missing.txt"


def test_short_output_buffers(env):
    op, _ = ok_link(env, "dir\\rel_link", access=ATTRS_ONLY)
    full = get_reparse(env, op)[1]
    assert get_reparse(env, op, max_out=7) == (STATUS_BUFFER_TOO_SMALL, None)
    status, out = get_reparse(env, op, max_out=12)
    assert status == STATUS_BUFFER_OVERFLOW and out == full[:12]
    assert struct.unpack_from("<H", out, 4)[0] == len(full) - 8  # the whole length
    assert get_reparse(env, op, max_out=len(full)) == (STATUS_SUCCESS, full)


def test_non_links_are_not_reparse_points(env):
    op, c = ok_link(env, "dir\\target.txt", access=GENERIC_READ)  # the flag changes nothing
    assert reparse.link_of(op) is None and c.attributes == FILE_ATTRIBUTE_NORMAL
    assert get_reparse(env, op)[0] == STATUS_NOT_A_REPARSE_POINT
    op, c = ok_link(env, "dir\\rel_link", access=GENERIC_READ, options=0)  # followed
    assert reparse.link_of(op) is None and c.eof == len(b"target data")
    assert get_reparse(env, op)[0] == STATUS_NOT_A_REPARSE_POINT
    tag = query(env, op, fi.FILE_ATTRIBUTE_TAG_INFORMATION)
    assert struct.unpack("<II", tag)[1] == 0


def test_query_info_reports_the_reparse_point(env):
    op, _ = ok_link(env, "dir\\rel_link", access=GENERIC_READ)
    attrs, tag = struct.unpack("<II", query(env, op, fi.FILE_ATTRIBUTE_TAG_INFORMATION))
    assert (attrs, tag) == (FILE_ATTRIBUTE_REPARSE_POINT, TAG)
    basic = query(env, op, fi.FILE_BASIC_INFORMATION)
    assert struct.unpack_from("<I", basic, 32)[0] == FILE_ATTRIBUTE_REPARSE_POINT
    all_info = query(env, op, fi.FILE_ALL_INFORMATION)
    assert struct.unpack_from("<I", all_info, 32)[0] == FILE_ATTRIBUTE_REPARSE_POINT
    assert struct.unpack_from("<q", all_info, 48)[0] == 0  # EndOfFile
    name_len = struct.unpack_from("<I", all_info, 96)[0]
    assert all_info[100:100 + name_len].decode("utf-16-le") == "\\dir\\rel_link"
    std = query(env, op, fi.FILE_STANDARD_INFORMATION)
    assert struct.unpack_from("<qq", std, 0) == (0, 0) and std[21] == 0  # not a directory
    access = struct.unpack("<I", query(env, op, fi.FILE_ACCESS_INFORMATION))[0]
    assert not access & FILE_READ_DATA


def test_security_of_a_link_is_its_own(env, monkeypatch):
    op, _ = ok_link(env, "out_abs", access=READ_CONTROL)
    seen = []
    from ksmbd_embedded.handlers import query_info
    real = query_info.descriptor_of
    monkeypatch.setattr(query_info, "descriptor_of",
                        lambda target, st, token, path=None: seen.append(path)
                        or real(target, st, token, path))
    status, _ = call(handle_query_info, env.request(h.QUERY_INFO, query_body(3, 0, op,
                                                                             additional=4)))
    assert status == STATUS_SUCCESS and seen == [None]  # never through the link's path


def test_read_write_and_security_writes_refused(env):
    op, _ = ok_link(env, "dir\\rel_link", access=GENERIC_ALL)
    assert not op.granted_access & (FILE_READ_DATA | FILE_WRITE_DATA | WRITE_DAC)
    rd = struct.pack("<HBBIQQQIIIHH", 49, 0, 0, 10, 0, op.persistent_id, op.volatile_id,
                     0, 0, 0, 0, 0) + b"\x00"
    assert call(handle_read, env.request(h.READ, rd))[0] == STATUS_ACCESS_DENIED
    wr = struct.pack("<HHIQQQIIHHI", 49, 0x70, 3, 0, op.persistent_id, op.volatile_id, 0, 0,
                     0, 0, 0) + b"abc"
    assert call(handle_write, env.request(h.WRITE, wr))[0] == STATUS_ACCESS_DENIED
    assert (env.outside / "secret.txt").read_bytes() == b"secret"
    assert open(os.path.join(env.root, "dir", "target.txt"), "rb").read() == b"target data"


def test_maximal_access_context_of_a_link(env):
    status, op, c = create(env, "dir\\rel_link", access=MAXIMUM_ALLOWED,
                           ctx=cc_ctx(cc.MXAC))
    assert status == STATUS_SUCCESS
    mxac = struct.unpack_from("<II", c.contexts[cc.MXAC])[1]
    assert mxac & ~reparse.LINK_RIGHTS == 0 and mxac & DELETE
    assert op.granted_access == mxac


def cc_ctx(name: bytes) -> bytes:
    from test_create import contexts
    return contexts((name, b""))


def test_dispositions_and_directory_options(env):
    assert create(env, "dir\\rel_link", disposition=FILE_CREATE)[0] == \
        STATUS_OBJECT_NAME_COLLISION
    assert create(env, "dir\\rel_link", disposition=FILE_OVERWRITE_IF,
                  access=FILE_ALL_ACCESS)[0] == STATUS_ACCESS_DENIED
    assert create(env, "dir\\rel_link", disposition=FILE_OPEN_IF)[0] == STATUS_SUCCESS
    assert create(env, "dir\\rel_link",
                  options=FILE_OPEN_REPARSE_POINT | FILE_DIRECTORY_FILE)[0] == \
        STATUS_NOT_A_DIRECTORY
    assert create(env, "dir\\dir_link",
                  options=FILE_OPEN_REPARSE_POINT | FILE_NON_DIRECTORY_FILE)[0] == \
        STATUS_FILE_IS_A_DIRECTORY
    op, c = ok_link(env, "dir\\dir_link", options=FILE_OPEN_REPARSE_POINT | FILE_DIRECTORY_FILE)
    assert c.attributes == FILE_ATTRIBUTE_REPARSE_POINT | FILE_ATTRIBUTE_DIRECTORY
    assert not op.is_dir  # never enumerated, never looked behind
    std = query(env, op, fi.FILE_STANDARD_INFORMATION)
    assert std[21] == 1  # Directory, as a Windows directory symlink
    # a link leading out is never stat'ed to find out what it is
    os.symlink(str(env.outside), os.path.join(env.root, "out_dir"))
    assert create(env, "out_dir", options=FILE_OPEN_REPARSE_POINT | FILE_DIRECTORY_FILE)[0] \
        == STATUS_NOT_A_DIRECTORY


def test_delete_on_close_removes_the_link_not_the_target(env):
    for name, target in (("dir\\rel_link", "dir/target.txt"), ("out_abs", None),
                         ("dir\\dir_link", "dir/sub/inner.txt")):
        op, _ = ok_link(env, name, access=DELETE | FILE_READ_ATTRIBUTES,
                        options=FILE_OPEN_REPARSE_POINT | FILE_DELETE_ON_CLOSE)
        close(env, op)
        assert not os.path.lexists(os.path.join(env.root, *name.split("\\")))
        if target:
            assert os.path.exists(os.path.join(env.root, target))
    assert (env.outside / "secret.txt").read_bytes() == b"secret"


def test_disposition_information_removes_the_link(env):
    op, _ = ok_link(env, "dir\\dir_link", access=DELETE | FILE_READ_ATTRIBUTES)
    status, _ = call(handle_set_info, env.request(h.SET_INFO, set_body(
        1, fi.FILE_DISPOSITION_INFORMATION, op, b"\x01")))
    assert status == STATUS_SUCCESS  # a non-empty target directory does not matter
    close(env, op)
    assert not os.path.lexists(os.path.join(env.root, "dir", "dir_link"))
    assert os.path.isfile(os.path.join(env.root, "dir", "sub", "inner.txt"))


def test_share_modes_are_per_link(env):
    op, _ = ok_link(env, "dir\\rel_link", access=DELETE, share=0)
    assert create(env, "dir\\rel_link", access=DELETE)[0] == STATUS_SHARING_VIOLATION
    target = create(env, "dir\\target.txt", access=DELETE, options=0)  # another file
    assert target[0] == STATUS_SUCCESS


def test_intermediate_links_still_confined(env):
    os.symlink(str(env.outside), os.path.join(env.root, "out_dir"))
    assert create(env, "out_dir\\secret.txt")[0] == STATUS_ACCESS_DENIED


def test_attribute_writes_never_reach_the_target(env):
    from info_fixtures import basic_buffer
    target = env.outside / "secret.txt"
    before = os.stat(target).st_mtime_ns
    op, _ = ok_link(env, "out_abs", access=GENERIC_ALL)
    call(handle_set_info, env.request(h.SET_INFO, set_body(
        1, fi.FILE_BASIC_INFORMATION, op, basic_buffer(mtime=10**17, attrs=0x2))))
    assert os.stat(target).st_mtime_ns == before
    assert target.read_bytes() == b"secret"
    if hasattr(os, "listxattr"):
        assert not [x for x in os.listxattr(target) if x.startswith("user.")]


def test_basic_information_on_a_link_sets_the_link_times(env):
    from info_fixtures import basic_buffer
    target = env.outside / "secret.txt"
    before = os.stat(target).st_mtime_ns
    op, _ = ok_link(env, "out_abs", access=GENERIC_ALL)
    mtime = 132_000_000_000_000_000  # 2019
    status, _ = call(handle_set_info, env.request(h.SET_INFO, set_body(
        1, fi.FILE_BASIC_INFORMATION, op, basic_buffer(mtime=mtime, attrs=0x20))))
    assert status == STATUS_SUCCESS
    link_mtime = os.lstat(os.path.join(env.root, "out_abs")).st_mtime_ns
    assert link_mtime == (mtime - 116_444_736_000_000_000) * 100
    assert os.stat(target).st_mtime_ns == before
    # a file link may not claim to be a directory
    status, _ = call(handle_set_info, env.request(h.SET_INFO, set_body(
        1, fi.FILE_BASIC_INFORMATION, op, basic_buffer(attrs=0x10))))
    assert status == STATUS_INVALID_PARAMETER

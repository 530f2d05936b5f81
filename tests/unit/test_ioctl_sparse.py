"""FSCTL_SET_SPARSE, FSCTL_SET_ZERO_DATA, FSCTL_QUERY_ALLOCATED_RANGES, FSCTL_GET_REPARSE_POINT
(MS-FSA 2.1.5.10.22, .38, .39) and FILE_SUPPORTS_SPARSE_FILES."""

from __future__ import annotations

import os
import struct

import pytest

from info_fixtures import Env, ioctl_body, query_body
from ksmbd_embedded import header as h
from ksmbd_embedded.fs import byte_locks, fs_caps, sparse
from ksmbd_embedded.fs import fs_info as fsi
from ksmbd_embedded.fs.dos_attrs import FILE_ATTRIBUTE_SPARSE_FILE, read_meta
from ksmbd_embedded.fs.fs_caps import FsCaps
from ksmbd_embedded.handlers import ioctl
from ksmbd_embedded.handlers.ioctl import handle_ioctl
from ksmbd_embedded.handlers.query_info import handle_query_info
from ksmbd_embedded.status import (
    STATUS_ACCESS_DENIED, STATUS_BUFFER_OVERFLOW, STATUS_BUFFER_TOO_SMALL,
    STATUS_FILE_LOCK_CONFLICT, STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_PARAMETER,
    STATUS_NOT_A_REPARSE_POINT, STATUS_SUCCESS,
)
from ksmbd_embedded.tree import (
    FILE_APPEND_DATA, FILE_READ_ATTRIBUTES, FILE_READ_DATA, FILE_WRITE_ATTRIBUTES,
    FILE_WRITE_DATA, FILE_WRITE_EA,
)

RESPONSE = struct.Struct("<HHIQQIIIIII")
UNIT = sparse.SPARSE_UNIT
EXT4 = FsCaps("ext4", sparse=True, zero_fill_extend=False, hard_links=True, read_only=False)
VFAT = FsCaps("vfat", sparse=False, zero_fill_extend=True, hard_links=False, read_only=False)


def _holes_work(path) -> bool:
    with open(path, "wb") as f:
        f.truncate(4 * UNIT)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.lseek(fd, 0, os.SEEK_DATA)
        return False  # a hole reads as data: no SEEK_HOLE support here
    except OSError:
        return True
    finally:
        os.close(fd)
        os.unlink(path)


@pytest.fixture
def env(tmp_path, monkeypatch):
    root = tmp_path / "share"
    root.mkdir()
    assert _holes_work(root / "probe"), "the test file system must have holes (ext4, tmpfs)"
    (root / "f").write_bytes(os.urandom(4 * UNIT))
    (root / "d").mkdir()
    monkeypatch.setattr(ioctl, "caps_for", lambda root: EXT4)
    e = Env(root, dialect=h.SMB3_11)
    yield e
    e.close_all()


def call(env, ctl, op, data=b"", max_out=1024):
    status, body = env.call(handle_ioctl, h.IOCTL, ioctl_body(ctl, op, data, max_out=max_out))
    if not body:
        return status, None
    fields = RESPONSE.unpack_from(body, 0)
    return status, body[fields[7] - 64:fields[7] - 64 + fields[8]]


def qar(env, op, offset, length, max_out=1024):
    status, out = call(env, ioctl.FSCTL_QUERY_ALLOCATED_RANGES, op,
                       struct.pack("<qq", offset, length), max_out)
    ranges = [struct.unpack_from("<qq", out, i) for i in range(0, len(out or b""), 16)]
    return status, ranges


def zero(env, op, start, end):
    return call(env, ioctl.FSCTL_SET_ZERO_DATA, op, struct.pack("<qq", start, end))[0]


def test_set_sparse_flag_and_attribute(env):
    op = env.open("f")
    assert not read_meta(op.fd).attributes & FILE_ATTRIBUTE_SPARSE_FILE
    assert call(env, ioctl.FSCTL_SET_SPARSE, op)[0] == STATUS_SUCCESS  # no buffer: TRUE
    assert read_meta(op.fd).attributes & FILE_ATTRIBUTE_SPARSE_FILE
    assert call(env, ioctl.FSCTL_SET_SPARSE, op, b"\x00" * 100)[0] == STATUS_SUCCESS
    assert not read_meta(op.fd).attributes & FILE_ATTRIBUTE_SPARSE_FILE


@pytest.mark.parametrize("access,status", [
    (FILE_WRITE_DATA, STATUS_SUCCESS), (FILE_WRITE_ATTRIBUTES, STATUS_SUCCESS),
    (FILE_APPEND_DATA, STATUS_SUCCESS), (FILE_WRITE_EA, STATUS_ACCESS_DENIED),
])
def test_set_sparse_access(env, access, status):
    assert call(env, ioctl.FSCTL_SET_SPARSE, env.open("f", access=access), b"\x01")[0] == status


def test_set_sparse_directory_and_fat(env, monkeypatch):
    assert call(env, ioctl.FSCTL_SET_SPARSE, env.open("d"))[0] == STATUS_INVALID_PARAMETER
    monkeypatch.setattr(ioctl, "caps_for", lambda root: VFAT)
    assert call(env, ioctl.FSCTL_SET_SPARSE, env.open("f"))[0] == \
        STATUS_INVALID_DEVICE_REQUEST


def test_zero_data_punches_hole_in_sparse_file(env):
    op = env.open("f")
    assert qar(env, op, 0, 4 * UNIT) == (STATUS_SUCCESS, [(0, 4 * UNIT)])
    call(env, ioctl.FSCTL_SET_SPARSE, op)
    assert zero(env, op, UNIT, 2 * UNIT) == STATUS_SUCCESS
    assert os.pread(op.fd, UNIT, UNIT) == bytes(UNIT)
    assert os.fstat(op.fd).st_size == 4 * UNIT
    assert qar(env, op, 0, 4 * UNIT) == (STATUS_SUCCESS, [(0, UNIT), (2 * UNIT, 2 * UNIT)])
    assert qar(env, op, 1, UNIT) == (STATUS_SUCCESS, [(1, UNIT - 1)])
    assert qar(env, op, UNIT, UNIT) == (STATUS_SUCCESS, [])
    # clearing the flag reports the file fully allocated again; the zeros stay
    call(env, ioctl.FSCTL_SET_SPARSE, op, b"\x00")
    assert qar(env, op, 0, 4 * UNIT) == (STATUS_SUCCESS, [(0, 4 * UNIT)])


def test_zero_data_non_sparse_keeps_size_and_allocation(env):
    op = env.open("f")
    assert zero(env, op, 100, 10 * UNIT) == STATUS_SUCCESS  # past EOF: clipped
    assert os.fstat(op.fd).st_size == 4 * UNIT
    assert os.pread(op.fd, 4 * UNIT, 0)[100:] == bytes(4 * UNIT - 100)
    assert qar(env, op, 0, 4 * UNIT) == (STATUS_SUCCESS, [(0, 4 * UNIT)])


def test_zero_data_falls_back_to_writing_zeros(env, monkeypatch):
    def no_fallocate(*args):
        raise OSError(95, "EOPNOTSUPP")

    monkeypatch.setattr(sparse, "fallocate", no_fallocate)
    op = env.open("f")
    assert zero(env, op, 10, 3 * UNIT + 7) == STATUS_SUCCESS
    data = os.pread(op.fd, 4 * UNIT, 0)
    assert data[10:3 * UNIT + 7] == bytes(3 * UNIT - 3) and data[3 * UNIT + 7:] != bytes(
        UNIT - 7)


@pytest.mark.parametrize("data", [struct.pack("<qq", 10, 5), struct.pack("<qq", -1, 5),
                                  struct.pack("<q", 0)])
def test_zero_data_invalid(env, data):
    assert call(env, ioctl.FSCTL_SET_ZERO_DATA, env.open("f"), data)[0] == \
        STATUS_INVALID_PARAMETER


def test_zero_data_access_and_locks(env):
    for access in (FILE_WRITE_ATTRIBUTES, FILE_APPEND_DATA, FILE_WRITE_EA):
        assert zero(env, env.open("f", access=access), 0, 10) == STATUS_ACCESS_DENIED
    op, other = env.open("f"), env.open("f")
    byte_locks.try_lock(env.server, other, 0, 100, True)
    assert zero(env, op, 50, 60) == STATUS_FILE_LOCK_CONFLICT
    assert zero(env, op, 100, 200) == STATUS_SUCCESS


def test_qar_sparse_reports_64k_units(env):
    (env.root / "s").write_bytes(b"")
    op = env.open("s")
    call(env, ioctl.FSCTL_SET_SPARSE, op)
    assert qar(env, op, 0, 1024) == (STATUS_SUCCESS, [])
    os.pwrite(op.fd, b"x" * 1024, 4096)
    assert qar(env, op, 0, 4096) == (STATUS_SUCCESS, [(0, 4096)])
    assert qar(env, op, 0, 8192) == (STATUS_SUCCESS, [(0, 5120)])


def test_qar_buffer_rules(env):
    op = env.open("f")
    call(env, ioctl.FSCTL_SET_SPARSE, op)
    zero(env, op, UNIT, 2 * UNIT)
    assert qar(env, op, 0, 4 * UNIT, max_out=0)[0] == STATUS_BUFFER_TOO_SMALL
    assert qar(env, op, 0, 4 * UNIT, max_out=31) == (STATUS_BUFFER_OVERFLOW, [(0, UNIT)])
    assert qar(env, op, UNIT, UNIT, max_out=0) == (STATUS_SUCCESS, [])  # nothing to report


@pytest.mark.parametrize("data", [struct.pack("<qq", 512, -1), struct.pack("<qq", -1, 1),
                                  struct.pack("<qq", 2 ** 62, 2 ** 62), b""])
def test_qar_invalid(env, data):
    assert call(env, ioctl.FSCTL_QUERY_ALLOCATED_RANGES, env.open("f"), data)[0] == \
        STATUS_INVALID_PARAMETER


def test_qar_needs_read_data(env):
    assert qar(env, env.open("f", access=FILE_READ_ATTRIBUTES), 0, 10)[0] == \
        STATUS_ACCESS_DENIED
    assert qar(env, env.open("f", access=FILE_READ_DATA), 0, 10) == (STATUS_SUCCESS,
                                                                      [(0, 10)])


def test_get_reparse_point_of_a_normal_file(env):
    assert call(env, ioctl.FSCTL_GET_REPARSE_POINT, env.open("f"))[0] == \
        STATUS_NOT_A_REPARSE_POINT
    assert call(env, ioctl.FSCTL_GET_REPARSE_POINT, env.open("d"))[0] == \
        STATUS_NOT_A_REPARSE_POINT


@pytest.mark.parametrize("caps", [EXT4, VFAT])
def test_fs_attributes_sparse_flag_follows_the_file_system(tmp_path, monkeypatch, caps):
    from ksmbd_embedded.handlers import query_info
    monkeypatch.setattr(query_info, "caps_for", lambda root: caps)
    root = tmp_path / "s"
    root.mkdir()
    e = Env(root)
    status, body = e.call(handle_query_info, h.QUERY_INFO,
                          query_body(2, fsi.FILE_FS_ATTRIBUTE_INFORMATION, e.open("")))
    e.close_all()
    assert status == STATUS_SUCCESS
    attrs = struct.unpack_from("<I", body, 8)[0]
    assert bool(attrs & fsi.FILE_SUPPORTS_SPARSE_FILES) == caps.sparse
    assert fs_caps.classify(fs_caps.MSDOS_SUPER_MAGIC, None, "6.1").sparse is False

"""DOS attributes and creation time: xattr storage and the stat fallback."""

import errno
import os
import struct

import pytest

from ksmbd_embedded.fs import dos_attrs as da
from ksmbd_embedded.fs.dos_attrs import (
    FILE_ATTRIBUTE_ARCHIVE,
    FILE_ATTRIBUTE_DIRECTORY,
    FILE_ATTRIBUTE_HIDDEN,
    FILE_ATTRIBUTE_NORMAL,
    FILE_ATTRIBUTE_READONLY,
    FILE_ATTRIBUTE_SPARSE_FILE,
    FILE_ATTRIBUTE_SYSTEM,
    FileMeta,
    filetime_to_unix_ns,
    read_meta,
    unix_to_filetime,
    write_dos_attrs,
)

FT_2000 = 125911584000000000  # 2000-01-01T00:00:00Z


def _xattrs_work(directory) -> bool:
    probe = os.path.join(directory, ".xattr-probe")
    with open(probe, "w"):
        pass
    try:
        os.setxattr(probe, "user.probe", b"1")
        return os.getxattr(probe, "user.probe") == b"1"
    except (OSError, AttributeError):
        return False
    finally:
        os.unlink(probe)


@pytest.fixture
def xattr_dir(tmp_path):
    # DOS attributes live in user xattrs: a test file system without them is a failure to see.
    assert _xattrs_work(tmp_path), "user xattrs not supported on the tmp_path file system"
    return tmp_path


@pytest.fixture
def no_xattrs(monkeypatch):
    """A file system without user xattrs: every xattr call fails with ENOTSUP."""
    def fail(*args, **kwargs):
        raise OSError(errno.ENOTSUP, "Operation not supported")
    monkeypatch.setattr(os, "getxattr", fail)
    monkeypatch.setattr(os, "setxattr", fail)


def _file(tmp_path, name="f.txt", data=b"hello", mode=0o644):
    p = tmp_path / name
    p.write_bytes(data)
    os.chmod(p, mode)
    return p


# --- FILETIME --------------------------------------------------------------

def test_filetime_epoch_and_known_date():
    assert unix_to_filetime(0) == 116444736000000000
    assert unix_to_filetime(946684800 * 10**9) == FT_2000
    assert filetime_to_unix_ns(FT_2000) == 946684800 * 10**9
    assert filetime_to_unix_ns(116444736000000000) == 0


def test_filetime_truncates_to_100ns_and_round_trips():
    ns = 1_700_000_000_123_456_789
    ft = unix_to_filetime(ns)
    assert ft == ns // 100 + 116444736000000000
    assert filetime_to_unix_ns(ft) == ns - ns % 100


def test_filetime_before_1601_clamps_to_zero():
    assert unix_to_filetime(-116444736000000000 * 100 - 100) == 0
    assert unix_to_filetime(-10**9) == 116444736000000000 - 10**7


# --- FileMeta --------------------------------------------------------------

def test_filemeta_defaults_and_slots():
    m = FileMeta()
    assert m.attributes == FILE_ATTRIBUTE_NORMAL
    assert m.delete_pending is False and m.is_dir is False and m.nlink == 1
    with pytest.raises(AttributeError):
        m.something_else = 1
    assert "FileMeta(attributes=128" in repr(m)


# --- stat fallback (no xattr) ----------------------------------------------

def test_read_meta_plain_file_without_xattr(tmp_path, no_xattrs):
    p = _file(tmp_path, data=b"x" * 5000)
    st = os.stat(p)
    m = read_meta(p)
    assert m.attributes == FILE_ATTRIBUTE_NORMAL
    assert m.is_dir is False
    assert m.end_of_file == 5000
    assert m.allocation_size == st.st_blocks * 512
    assert m.nlink == st.st_nlink == 1
    assert m.file_id == st.st_ino
    assert m.last_access_time == unix_to_filetime(st.st_atime_ns)
    assert m.last_write_time == unix_to_filetime(st.st_mtime_ns)
    assert m.change_time == unix_to_filetime(st.st_ctime_ns)
    assert m.creation_time == unix_to_filetime(min(st.st_mtime_ns, st.st_ctime_ns))
    assert m.delete_pending is False


def test_read_meta_creation_is_min_of_mtime_and_ctime(tmp_path, no_xattrs):
    p = _file(tmp_path)
    os.utime(p, ns=(10**18, 10**18 - 10**9 * 3600))  # mtime an hour before
    st = os.stat(p)
    assert st.st_mtime_ns < st.st_ctime_ns
    assert read_meta(p).creation_time == unix_to_filetime(st.st_mtime_ns)


def test_read_meta_readonly_from_owner_write_bit(tmp_path, no_xattrs):
    p = _file(tmp_path, mode=0o444)
    assert read_meta(p).attributes == FILE_ATTRIBUTE_READONLY
    os.chmod(p, 0o244)  # owner write only: not read-only
    assert read_meta(p).attributes == FILE_ATTRIBUTE_NORMAL
    os.chmod(p, 0o577)  # group/other write do not count
    assert read_meta(p).attributes == FILE_ATTRIBUTE_READONLY


def test_read_meta_directory(tmp_path, no_xattrs):
    d = tmp_path / "sub"
    d.mkdir()
    (d / "child").write_bytes(b"abc")
    m = read_meta(d)
    assert m.is_dir is True
    assert m.attributes == FILE_ATTRIBUTE_DIRECTORY
    assert m.end_of_file == 0 and m.allocation_size == 0
    os.chmod(d, 0o555)
    assert read_meta(d).attributes == FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_READONLY


def test_read_meta_hide_dot(tmp_path, no_xattrs):
    p = _file(tmp_path, ".profile")
    assert read_meta(p).attributes == FILE_ATTRIBUTE_NORMAL
    assert read_meta(p, hide_dot=True).attributes == FILE_ATTRIBUTE_HIDDEN
    assert read_meta(str(p), hide_dot=True).attributes == FILE_ATTRIBUTE_HIDDEN
    assert read_meta(os.fsencode(p), hide_dot=True).attributes == FILE_ATTRIBUTE_HIDDEN
    # an explicit name wins over the path's last component
    assert read_meta(p, hide_dot=True, name="visible").attributes == FILE_ATTRIBUTE_NORMAL
    q = _file(tmp_path, "plain")
    assert read_meta(q, hide_dot=True, name=".x").attributes == FILE_ATTRIBUTE_HIDDEN
    # "." and ".." entries are never hidden
    assert read_meta(tmp_path, hide_dot=True, name=".").attributes == FILE_ATTRIBUTE_DIRECTORY
    assert read_meta(tmp_path, hide_dot=True, name="..").attributes == FILE_ATTRIBUTE_DIRECTORY
    d = tmp_path / ".git"
    d.mkdir()
    assert read_meta(str(d) + "/", hide_dot=True).attributes == (
        FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_HIDDEN)


def test_read_meta_uses_given_stat(tmp_path, no_xattrs):
    p = _file(tmp_path)
    st = os.stat(p)
    fake = os.stat_result(
        (st.st_mode, 77, st.st_dev, 3, 0, 0, 1234, 1, 2, 3),
        {"st_atime_ns": 10**9, "st_mtime_ns": 2 * 10**9, "st_ctime_ns": 3 * 10**9,
         "st_blocks": 8},
    )
    m = read_meta(p, fake)
    assert m.file_id == 77 and m.nlink == 3 and m.end_of_file == 1234
    assert m.allocation_size == 4096
    assert m.last_access_time == unix_to_filetime(10**9)
    assert m.last_write_time == m.creation_time == unix_to_filetime(2 * 10**9)
    assert m.change_time == unix_to_filetime(3 * 10**9)


def test_read_meta_from_fd(tmp_path, no_xattrs):
    p = _file(tmp_path, data=b"12345")
    fd = os.open(p, os.O_RDONLY)
    try:
        m = read_meta(fd)
        assert m.end_of_file == 5 and m.file_id == os.stat(p).st_ino
        # an fd has no name to hide by; an explicit one works
        assert read_meta(fd, hide_dot=True).attributes == FILE_ATTRIBUTE_NORMAL
        assert read_meta(fd, hide_dot=True, name=".a").attributes == FILE_ATTRIBUTE_HIDDEN
    finally:
        os.close(fd)


def test_read_meta_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_meta(tmp_path / "nope")


@pytest.mark.parametrize("err", [errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM,
                                 errno.ENODATA, errno.EACCES, errno.ENOENT])
def test_read_meta_never_raises_for_xattr_errors(tmp_path, monkeypatch, err):
    p = _file(tmp_path, mode=0o444)

    def fail(*args, **kwargs):
        raise OSError(err, os.strerror(err))
    monkeypatch.setattr(os, "getxattr", fail)
    assert read_meta(p).attributes == FILE_ATTRIBUTE_READONLY


def test_write_returns_false_without_xattr_support(tmp_path, no_xattrs):
    p = _file(tmp_path)
    assert write_dos_attrs(p, FILE_ATTRIBUTE_HIDDEN) is False
    assert write_dos_attrs(p, creation_time=FT_2000) is False
    assert read_meta(p).attributes == FILE_ATTRIBUTE_NORMAL


@pytest.mark.parametrize("err", [errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM])
def test_write_unsupported_errnos_give_false(tmp_path, monkeypatch, err):
    p = _file(tmp_path)

    def fail(*args, **kwargs):
        raise OSError(err, os.strerror(err))
    monkeypatch.setattr(os, "setxattr", fail)
    assert write_dos_attrs(p, FILE_ATTRIBUTE_ARCHIVE) is False


@pytest.mark.parametrize("err", [errno.EACCES, errno.EROFS, errno.ENOSPC, errno.ENOENT])
def test_write_real_failures_raise(tmp_path, monkeypatch, err):
    p = _file(tmp_path)

    def fail(*args, **kwargs):
        raise OSError(err, os.strerror(err))
    monkeypatch.setattr(os, "setxattr", fail)
    with pytest.raises(OSError) as ei:
        write_dos_attrs(p, FILE_ATTRIBUTE_ARCHIVE, FT_2000)
    assert ei.value.errno == err


def test_write_nothing_is_a_noop(tmp_path, monkeypatch):
    p = _file(tmp_path)
    monkeypatch.setattr(os, "setxattr", lambda *a, **k: pytest.fail("no write expected"))
    assert write_dos_attrs(p) is True


def test_write_rejects_bad_creation_time(tmp_path):
    p = _file(tmp_path)
    with pytest.raises(ValueError):
        write_dos_attrs(p, creation_time=-1)
    with pytest.raises(ValueError):
        write_dos_attrs(p, creation_time=1 << 64)


# --- the xattr path (needs a file system with user xattrs) -----------------

def test_xattr_blob_format(xattr_dir):
    p = _file(xattr_dir)
    assert write_dos_attrs(p, FILE_ATTRIBUTE_ARCHIVE | FILE_ATTRIBUTE_HIDDEN, FT_2000) is True
    blob = os.getxattr(p, "user.DOSATTRIB")
    assert blob == b"".join([
        b"\x01",                                  # version
        b"\x03",                                  # flags: attributes + creation time
        struct.pack("<I", 0x22),                  # attributes
        struct.pack("<Q", FT_2000),               # creation time
    ])
    assert len(blob) == 14


def test_xattr_round_trip(xattr_dir):
    p = _file(xattr_dir)
    write_dos_attrs(p, FILE_ATTRIBUTE_ARCHIVE | FILE_ATTRIBUTE_SYSTEM, FT_2000)
    m = read_meta(p)
    assert m.attributes == FILE_ATTRIBUTE_ARCHIVE | FILE_ATTRIBUTE_SYSTEM
    assert m.creation_time == FT_2000
    # the creation time survives writes to the file
    p.write_bytes(b"more data")
    assert read_meta(p).creation_time == FT_2000


def test_xattr_through_fd(xattr_dir):
    p = _file(xattr_dir)
    fd = os.open(p, os.O_RDWR)
    try:
        assert write_dos_attrs(fd, FILE_ATTRIBUTE_HIDDEN, FT_2000) is True
        m = read_meta(fd)
    finally:
        os.close(fd)
    assert m.attributes == FILE_ATTRIBUTE_HIDDEN and m.creation_time == FT_2000
    assert read_meta(p).attributes == FILE_ATTRIBUTE_HIDDEN


def test_xattr_partial_writes_merge(xattr_dir):
    p = _file(xattr_dir)
    write_dos_attrs(p, creation_time=FT_2000)
    m = read_meta(p)
    assert m.creation_time == FT_2000
    assert m.attributes == FILE_ATTRIBUTE_NORMAL  # attributes still from mode
    write_dos_attrs(p, attributes=FILE_ATTRIBUTE_HIDDEN)
    m = read_meta(p)
    assert m.creation_time == FT_2000 and m.attributes == FILE_ATTRIBUTE_HIDDEN
    write_dos_attrs(p, creation_time=FT_2000 + 10)
    m = read_meta(p)
    assert m.creation_time == FT_2000 + 10 and m.attributes == FILE_ATTRIBUTE_HIDDEN


def test_xattr_attributes_only_keeps_stat_creation_time(xattr_dir):
    p = _file(xattr_dir)
    write_dos_attrs(p, attributes=FILE_ATTRIBUTE_ARCHIVE)
    st = os.stat(p)
    assert read_meta(p).creation_time == unix_to_filetime(min(st.st_mtime_ns, st.st_ctime_ns))
    assert os.getxattr(p, "user.DOSATTRIB")[1] == 0x01  # only "attributes valid"


def test_xattr_readonly_is_independent_of_mode(xattr_dir):
    p = _file(xattr_dir, mode=0o644)
    write_dos_attrs(p, FILE_ATTRIBUTE_READONLY | FILE_ATTRIBUTE_ARCHIVE)
    assert read_meta(p).attributes == FILE_ATTRIBUTE_READONLY | FILE_ATTRIBUTE_ARCHIVE
    assert os.stat(p).st_mode & 0o777 == 0o644  # mode untouched
    os.chmod(p, 0o444)
    write_dos_attrs(p, FILE_ATTRIBUTE_ARCHIVE)
    assert read_meta(p).attributes == FILE_ATTRIBUTE_ARCHIVE  # xattr wins over the mode


def test_xattr_derived_bits_are_not_stored(xattr_dir):
    p = _file(xattr_dir)
    write_dos_attrs(p, FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_NORMAL | FILE_ATTRIBUTE_HIDDEN)
    assert struct.unpack_from("<I", os.getxattr(p, "user.DOSATTRIB"), 2)[0] == FILE_ATTRIBUTE_HIDDEN
    assert read_meta(p).attributes == FILE_ATTRIBUTE_HIDDEN
    write_dos_attrs(p, FILE_ATTRIBUTE_SPARSE_FILE)  # only FSCTL_SET_SPARSE sets it
    assert read_meta(p).attributes == FILE_ATTRIBUTE_NORMAL
    write_dos_attrs(p, 0)
    assert read_meta(p).attributes == FILE_ATTRIBUTE_NORMAL


def test_xattr_on_directory(xattr_dir):
    d = xattr_dir / "dir"
    d.mkdir()
    write_dos_attrs(d, FILE_ATTRIBUTE_HIDDEN, FT_2000)
    m = read_meta(d)
    assert m.attributes == FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_HIDDEN
    assert m.creation_time == FT_2000
    write_dos_attrs(d, 0)
    assert read_meta(d).attributes == FILE_ATTRIBUTE_DIRECTORY


def test_xattr_hide_dot_adds_to_stored(xattr_dir):
    p = _file(xattr_dir, ".dotfile")
    write_dos_attrs(p, FILE_ATTRIBUTE_ARCHIVE)
    assert read_meta(p, hide_dot=True).attributes == FILE_ATTRIBUTE_ARCHIVE | FILE_ATTRIBUTE_HIDDEN


@pytest.mark.parametrize("blob", [
    b"0x20\x00\x03\x00\x03\x00\x00\x00\x11\x00\x00\x00\x20\x00\x00\x00",  # Samba-style
    b"\x01\x03\x20\x00",                                                  # truncated
    b"",
    b"\x00" * 14,                                                        # version 0
])
def test_foreign_or_broken_blobs_are_ignored(xattr_dir, blob):
    p = _file(xattr_dir, mode=0o444)
    os.setxattr(p, "user.DOSATTRIB", blob)
    m = read_meta(p)
    assert m.attributes == FILE_ATTRIBUTE_READONLY
    st = os.stat(p)
    assert m.creation_time == unix_to_filetime(min(st.st_mtime_ns, st.st_ctime_ns))
    # a partial write replaces the foreign blob rather than merging with it
    write_dos_attrs(p, creation_time=FT_2000)
    assert os.getxattr(p, "user.DOSATTRIB")[:2] == b"\x01\x02"


def test_newer_version_blob_is_read(xattr_dir):
    p = _file(xattr_dir)
    os.setxattr(p, "user.DOSATTRIB",
                struct.pack("<BBIQ", 2, 3, FILE_ATTRIBUTE_HIDDEN, FT_2000) + b"future")
    m = read_meta(p)
    assert m.attributes == FILE_ATTRIBUTE_HIDDEN and m.creation_time == FT_2000


def test_module_constants():
    assert (da.FILE_ATTRIBUTE_READONLY, da.FILE_ATTRIBUTE_HIDDEN, da.FILE_ATTRIBUTE_SYSTEM,
            da.FILE_ATTRIBUTE_DIRECTORY, da.FILE_ATTRIBUTE_ARCHIVE, da.FILE_ATTRIBUTE_NORMAL,
            da.FILE_ATTRIBUTE_TEMPORARY, da.FILE_ATTRIBUTE_SPARSE_FILE,
            da.FILE_ATTRIBUTE_REPARSE_POINT, da.FILE_ATTRIBUTE_COMPRESSED,
            da.FILE_ATTRIBUTE_OFFLINE, da.FILE_ATTRIBUTE_NOT_CONTENT_INDEXED,
            da.FILE_ATTRIBUTE_ENCRYPTED) == (
        0x1, 0x2, 0x4, 0x10, 0x20, 0x80, 0x100, 0x200, 0x400, 0x800, 0x1000, 0x2000, 0x4000)
    assert da.XATTR_NAME == "user.DOSATTRIB"


# --- sparse flag (FSCTL_SET_SPARSE) ------------------------------------------

def test_sparse_flag_set_and_cleared(xattr_dir):
    p = _file(xattr_dir)
    assert not da.is_sparse(p)
    assert da.set_sparse(p, True)
    assert da.is_sparse(p)
    assert read_meta(p).attributes == FILE_ATTRIBUTE_SPARSE_FILE
    assert da.set_sparse(p, False)
    assert not da.is_sparse(p)
    assert read_meta(p).attributes == FILE_ATTRIBUTE_NORMAL


def test_sparse_flag_survives_attribute_and_ctime_writes(xattr_dir):
    p = _file(xattr_dir)
    write_dos_attrs(p, FILE_ATTRIBUTE_HIDDEN, FT_2000)
    da.set_sparse(p, True)
    m = read_meta(p)
    assert m.attributes == FILE_ATTRIBUTE_HIDDEN | FILE_ATTRIBUTE_SPARSE_FILE
    assert m.creation_time == FT_2000
    write_dos_attrs(p, FILE_ATTRIBUTE_ARCHIVE, FT_2000 + 1)  # SET_INFO FileBasicInformation
    m = read_meta(p)
    assert m.attributes == FILE_ATTRIBUTE_ARCHIVE | FILE_ATTRIBUTE_SPARSE_FILE
    da.set_sparse(p, False)
    m = read_meta(p)
    assert m.attributes == FILE_ATTRIBUTE_ARCHIVE and m.creation_time == FT_2000 + 1


def test_sparse_flag_not_reported_for_directories(xattr_dir):
    d = xattr_dir / "d"
    d.mkdir()
    da.set_sparse(d, True)
    assert not read_meta(d).attributes & FILE_ATTRIBUTE_SPARSE_FILE


def test_sparse_flag_without_xattrs(tmp_path, no_xattrs):
    p = _file(tmp_path)
    assert da.set_sparse(p, True) is False
    assert not da.is_sparse(p)

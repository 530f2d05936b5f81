"""fs/xattr_cache.py: xattrs of files unchanged for RACY_NS are read once; any change shows."""

import os
import types

import pytest

from ksmbd_embedded.fs import xattr_cache

NAME = "user.test.cache"


@pytest.fixture
def f(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"")
    os.setxattr(path, NAME, b"one")  # no user xattrs on the test file system: a failure to see
    xattr_cache._entries.clear()
    yield str(path)
    xattr_cache._entries.clear()


def aged(st, seconds=10):
    """A stat of the same file as `st`, its ctime `seconds` older (past the racy window)."""
    return types.SimpleNamespace(st_dev=st.st_dev, st_ino=st.st_ino,
                                 st_ctime_ns=st.st_ctime_ns - seconds * 1_000_000_000)


def test_unchanged_old_file_is_read_once(f):
    st = aged(os.stat(f))
    assert xattr_cache.getxattr(f, st, NAME) == b"one"
    os.setxattr(f, NAME, b"two")  # behind the cache's back, and with `st` the caller's
    assert xattr_cache.getxattr(f, st, NAME) == b"one"  # remembered for that ctime
    # the caller's next stat sees the new ctime: read again
    assert xattr_cache.getxattr(f, os.stat(f), NAME) == b"two"


def test_absent_value_is_remembered_without_an_exception(f):
    st = aged(os.stat(f))
    assert xattr_cache.getxattr(f, st, "user.test.absent") is None
    assert xattr_cache.size() == 1
    os.setxattr(f, "user.test.absent", b"now")
    assert xattr_cache.getxattr(f, st, "user.test.absent") is None
    assert xattr_cache.getxattr(f, os.stat(f), "user.test.absent") == b"now"


def test_recent_ctime_is_never_remembered(f):
    st = os.stat(f)  # ctime: just now (the setxattr of the fixture)
    assert xattr_cache.getxattr(f, st, NAME) == b"one"
    assert xattr_cache.size() == 0
    os.setxattr(f, NAME, b"two")  # may land in the same timestamp tick as `st`
    assert xattr_cache.getxattr(f, st, NAME) == b"two"


def test_no_stat_means_no_cache_and_errors_raise(f, tmp_path):
    assert xattr_cache.getxattr(f, None, NAME) == b"one"
    assert xattr_cache.size() == 0
    with pytest.raises(OSError):
        xattr_cache.getxattr(str(tmp_path / "missing"), None, NAME)


def test_bounded(f, monkeypatch):
    monkeypatch.setattr(xattr_cache, "MAX_ENTRIES", 3)
    st = os.stat(f)
    for ino in range(10):
        fake = types.SimpleNamespace(st_dev=st.st_dev, st_ino=ino,
                                     st_ctime_ns=st.st_ctime_ns - 10**10)
        xattr_cache.getxattr(f, fake, NAME)
        assert xattr_cache.size() <= 3


def test_our_own_writes_are_seen_even_with_an_unchanged_ctime(tmp_path):
    """fs/dos_attrs.py and fs/acl.py empty the table before they write: a file system that
    did not move ctime on setxattr would still show our change at once."""
    from ksmbd_embedded.fs import dos_attrs
    path = tmp_path / "g"
    path.write_bytes(b"")
    assert dos_attrs.write_dos_attrs(str(path), 0x20), "no user xattrs here"
    xattr_cache._entries.clear()
    st = aged(os.stat(path))  # the same stat (same ctime) before and after the write
    before = xattr_cache.getxattr(str(path), st, dos_attrs.XATTR_NAME)
    assert xattr_cache.size() == 1
    dos_attrs.write_dos_attrs(str(path), 0x21)  # READONLY | ARCHIVE
    assert xattr_cache.size() == 0
    after = xattr_cache.getxattr(str(path), st, dos_attrs.XATTR_NAME)
    assert after != before and after == os.getxattr(path, dos_attrs.XATTR_NAME)

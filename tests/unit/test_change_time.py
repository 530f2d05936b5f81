"""A ChangeTime set by a client is reported until the file really changes (fs/change_time.py)."""

import os
import time

from ksmbd_embedded.fs import change_time
from ksmbd_embedded.fs.dos_attrs import read_meta


def test_set_value_is_reported_until_the_file_changes(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"x")
    fd = os.open(p, os.O_RDWR)
    try:
        wanted = 134_423_546_980_000_000  # some day a month ahead
        change_time.remember(os.fstat(fd), wanted)
        assert read_meta(fd, os.fstat(fd)).change_time == wanted
        time.sleep(0.01)
        os.write(fd, b"more")  # a real change moves ctime: the kernel's value wins again
        st = os.fstat(fd)
        assert read_meta(fd, st).change_time != wanted
        assert read_meta(fd, st).change_time // 10_000_000 - 11644473600 \
            == st.st_ctime_ns // 1_000_000_000
    finally:
        os.close(fd)


def test_other_files_are_not_affected(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"")
    b.write_bytes(b"")
    change_time.remember(os.stat(a), 42)
    assert change_time.reported(os.stat(b), 7) == 7
    assert change_time.reported(os.stat(a), 7) == 42


def test_memory_is_bounded(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"")
    st = os.stat(p)
    for i in range(change_time.MAX_ENTRIES + 50):
        fake = os.stat_result((st.st_mode, 10_000_000 + i, st.st_dev) + tuple(st)[3:])
        change_time.remember(fake, i)
    assert len(change_time._remembered) <= change_time.MAX_ENTRIES

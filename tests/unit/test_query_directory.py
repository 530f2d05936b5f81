"""QUERY_DIRECTORY handler (MS-SMB2 3.3.5.18) and its enumeration state (fs/dir_scan.py)."""

from __future__ import annotations

import os
import struct

import pytest
from handler_fixtures import HandlerEnv, call, u16, u32

from ksmbd_embedded import header as h
from ksmbd_embedded.fs.dir_info import DIR_INFO_FIXED_SIZES
from ksmbd_embedded.fs.dir_scan import DirScan, close_dir_state
from ksmbd_embedded.fs.dos_attrs import FILE_ATTRIBUTE_DIRECTORY, FILE_ATTRIBUTE_HIDDEN
from ksmbd_embedded.handlers import query_directory as qd
from ksmbd_embedded.handlers.query_directory import handle_query_directory
from ksmbd_embedded.status import (
    STATUS_ACCESS_DENIED, STATUS_BUFFER_OVERFLOW, STATUS_INFO_LENGTH_MISMATCH,
    STATUS_INVALID_INFO_CLASS, STATUS_INVALID_PARAMETER, STATUS_NO_MORE_FILES,
    STATUS_NO_SUCH_FILE, STATUS_SUCCESS,
)
from ksmbd_embedded.tree import FILE_READ_ATTRIBUTES, FILE_READ_DATA

ID_BOTH = 37
NAMES = 12
DIRECTORY = 1
LIST = FILE_READ_DATA | FILE_READ_ATTRIBUTES


def qd_body(op, pattern="*", info_class=ID_BOTH, flags=0, out_len=65536, file_index=0,
            name_bytes=None):
    name = pattern.encode("utf-16-le") if name_bytes is None else name_bytes
    fixed = struct.pack("<HBBIQQHHI", 33, info_class, flags, file_index, op.persistent_id,
                        op.volatile_id, 96 if name else 0, len(name), out_len)
    return fixed + (name or b"\x00")


def parse(body, info_class=ID_BOTH):
    """[(name, attributes, file_id or None)] from a response; checks the entry chain."""
    assert u16(body, 0) == 9
    assert u16(body, 2) == 72
    length = u32(body, 4)
    buf = body[8:]
    assert len(buf) == length
    fixed = DIR_INFO_FIXED_SIZES[info_class]
    out = []
    off = 0
    while True:
        assert off % 8 == 0
        nxt = u32(buf, off)
        if info_class == NAMES:
            nlen = u32(buf, off + 8)
            attrs = None
        else:
            nlen = u32(buf, off + 60)
            attrs = u32(buf, off + 56)
        name = buf[off + fixed:off + fixed + nlen].decode("utf-16-le")
        file_id = struct.unpack_from("<Q", buf, off + 96)[0] if info_class == ID_BOTH else None
        out.append((name, attrs, file_id))
        if nxt == 0:
            assert off + fixed + nlen == length  # the buffer ends at the last entry, unpadded
            return out
        assert nxt >= fixed + nlen
        off += nxt


def query(env, op, charge=1, **kw):
    req = env.request(h.QUERY_DIRECTORY, qd_body(op, **kw), credit_charge=charge)
    return call(handle_query_directory, req)


def names_of(env, op, **kw):
    status, body = query(env, op, **kw)
    assert status == STATUS_SUCCESS, hex(status)
    return [e[0] for e in parse(body, kw.get("info_class", ID_BOTH))]


def list_all(env, op, **kw):
    """Page through a whole enumeration; returns the names in order."""
    seen = []
    while True:
        status, body = query(env, op, **kw)
        if status == STATUS_NO_MORE_FILES:
            return seen
        assert status == STATUS_SUCCESS, hex(status)
        seen += [e[0] for e in parse(body, kw.get("info_class", ID_BOTH))]


@pytest.fixture
def env(tmp_path):
    return HandlerEnv(str(tmp_path))


def touch(env, *names):
    for name in names:
        with open(os.path.join(env.root, name), "wb") as f:
            f.write(b"x")


# -- enumeration ---------------------------------------------------------------------------------

def test_dot_entries_first_then_files(env):
    touch(env, "a.txt", "b.txt")
    os.mkdir(os.path.join(env.root, "sub"))
    op = env.open("", LIST)
    status, body = query(env, op)
    assert status == STATUS_SUCCESS
    entries = parse(body)
    assert [e[0] for e in entries[:2]] == [".", ".."]
    assert sorted(e[0] for e in entries[2:]) == ["a.txt", "b.txt", "sub"]
    attrs = {e[0]: e[1] for e in entries}
    assert attrs["."] & FILE_ATTRIBUTE_DIRECTORY and attrs["sub"] & FILE_ATTRIBUTE_DIRECTORY
    assert not attrs["a.txt"] & FILE_ATTRIBUTE_DIRECTORY
    # The share root's ".." is the root itself.
    ids = {e[0]: e[2] for e in entries}
    assert ids["."] == ids[".."] == os.stat(env.root).st_ino
    assert query(env, op)[0] == STATUS_NO_MORE_FILES
    assert query(env, op)[0] == STATUS_NO_MORE_FILES


def test_subdirectory_dotdot_is_parent(env):
    os.mkdir(os.path.join(env.root, "sub"))
    op = env.open("sub", LIST)
    entries = parse(query(env, op)[1])
    ids = {e[0]: e[2] for e in entries}
    assert ids["."] == os.stat(os.path.join(env.root, "sub")).st_ino
    assert ids[".."] == os.stat(env.root).st_ino


@pytest.mark.parametrize("info_class", sorted(DIR_INFO_FIXED_SIZES))
def test_every_info_class(env, info_class):
    touch(env, "file")
    op = env.open("", LIST)
    names = names_of(env, op, info_class=info_class)
    assert names[:2] == [".", ".."] and names[2:] == ["file"]


def test_pagination_over_1000_entries(env):
    names = {f"file-{i:04d}-{'x' * (i % 37)}.dat" for i in range(1000)}
    touch(env, *names)
    op = env.open("", LIST)
    seen = []
    calls = 0
    while True:
        status, body = query(env, op, out_len=1024)
        if status == STATUS_NO_MORE_FILES:
            break
        assert status == STATUS_SUCCESS
        assert u32(body, 4) <= 1024
        page = [e[0] for e in parse(body)]
        assert page
        seen += page
        calls += 1
    assert seen[:2] == [".", ".."]
    assert len(seen) == 1002 and set(seen[2:]) == names  # each name exactly once
    assert calls > 100
    assert op.dir_state is not None
    assert query(env, op)[0] == STATUS_NO_MORE_FILES


def test_scan_is_streamed_not_listed(env, monkeypatch):
    touch(env, *(f"f{i}" for i in range(50)))
    op = env.open("", LIST)
    monkeypatch.setattr(os, "listdir", lambda *a: pytest.fail("listdir used"))
    query(env, op, out_len=200)
    scan = op.dir_state
    assert isinstance(scan, DirScan)
    assert not any(isinstance(getattr(scan, s, None), (list, dict, set))
                   for s in DirScan.__slots__)


def test_return_single_entry(env):
    touch(env, "a", "b")
    op = env.open("", LIST)
    got = []
    for _ in range(4):
        names = names_of(env, op, flags=qd.SMB2_RETURN_SINGLE_ENTRY)
        assert len(names) == 1
        got += names
    assert got[:2] == [".", ".."] and sorted(got[2:]) == ["a", "b"]
    assert query(env, op, flags=qd.SMB2_RETURN_SINGLE_ENTRY)[0] == STATUS_NO_MORE_FILES


def test_restart_scans(env):
    touch(env, "a", "b")
    op = env.open("", LIST)
    first = list_all(env, op)
    assert len(first) == 4
    again = names_of(env, op, flags=qd.SMB2_RESTART_SCANS)
    assert again == first
    # Restart in the middle of a paged enumeration.
    names_of(env, op, flags=qd.SMB2_RESTART_SCANS | qd.SMB2_RETURN_SINGLE_ENTRY)
    assert names_of(env, op, flags=qd.SMB2_RESTART_SCANS) == first


def test_restart_keeps_pattern_when_none_given(env):
    touch(env, "a.txt", "b.doc")
    op = env.open("", LIST)
    assert names_of(env, op, pattern="*.txt") == ["a.txt"]
    assert names_of(env, op, pattern="", flags=qd.SMB2_RESTART_SCANS) == ["a.txt"]


def test_restart_with_new_pattern_finding_nothing_is_no_more_files(env):
    touch(env, "a.txt")
    op = env.open("", LIST)
    list_all(env, op)
    status, _ = query(env, op, pattern="nothing", flags=qd.SMB2_RESTART_SCANS)
    assert status == STATUS_NO_MORE_FILES


def test_reopen_starts_a_new_search(env):
    touch(env, "a.txt", "b.doc")
    op = env.open("", LIST)
    list_all(env, op)
    assert names_of(env, op, pattern="*.doc", flags=qd.SMB2_REOPEN) == ["b.doc"]
    status, _ = query(env, op, pattern="zzz", flags=qd.SMB2_REOPEN)
    assert status == STATUS_NO_SUCH_FILE


def test_new_pattern_restarts_empty_pattern_continues(env):
    touch(env, "a.txt", "b.txt", "c.doc")
    op = env.open("", LIST)
    assert names_of(env, op, pattern="*", flags=qd.SMB2_RETURN_SINGLE_ENTRY) == ["."]
    # An empty pattern on a continuation keeps "*".
    assert names_of(env, op, pattern="", flags=qd.SMB2_RETURN_SINGLE_ENTRY) == [".."]
    # A different pattern is a new search.
    assert sorted(names_of(env, op, pattern="*.TXT")) == ["a.txt", "b.txt"]
    assert query(env, op, pattern="*.TXT")[0] == STATUS_NO_MORE_FILES


@pytest.mark.parametrize("pattern,expected", [
    ("*", [".", "..", "Alpha.TXT", "beta.txt", "gamma.doc"]),
    ("*.txt", ["Alpha.TXT", "beta.txt"]),
    ("ALPHA.txt", ["Alpha.TXT"]),
    ("?eta.*", ["beta.txt"]),
    ("<.doc", ["gamma.doc"]),
])
def test_patterns_case_insensitive(env, pattern, expected):
    touch(env, "Alpha.TXT", "beta.txt", "gamma.doc")
    op = env.open("", LIST)
    assert sorted(list_all(env, op, pattern=pattern)) == sorted(expected)


def test_no_match_on_first_query_is_no_such_file(env):
    touch(env, "a.txt")
    op = env.open("", LIST)
    assert query(env, op, pattern="missing.txt")[0] == STATUS_NO_SUCH_FILE
    assert query(env, op, pattern="missing.txt")[0] == STATUS_NO_MORE_FILES


def test_exact_name_lookup(env):
    touch(env, "a.txt", "b.txt")
    op = env.open("", LIST)
    assert names_of(env, op, pattern="b.txt") == ["b.txt"]
    assert query(env, op, pattern="b.txt")[0] == STATUS_NO_MORE_FILES


# -- what is shown -------------------------------------------------------------------------------

def test_veto_files_are_not_listed(tmp_path):
    env = HandlerEnv(str(tmp_path), veto_files=("*.tmp", "secret"))
    touch(env, "keep.txt", "junk.tmp", "secret")
    op = env.open("", LIST)
    assert sorted(list_all(env, op)) == [".", "..", "keep.txt"]


def test_hide_dot_files_marks_hidden(tmp_path):
    env = HandlerEnv(str(tmp_path), hide_dot_files=True)
    touch(env, ".profile", "visible")
    op = env.open("", LIST)
    entries = {e[0]: e[1] for e in parse(query(env, op)[1])}
    assert set(entries) == {".", "..", ".profile", "visible"}
    assert entries[".profile"] & FILE_ATTRIBUTE_HIDDEN
    assert not entries["visible"] & FILE_ATTRIBUTE_HIDDEN
    assert not entries["."] & FILE_ATTRIBUTE_HIDDEN and not entries[".."] & FILE_ATTRIBUTE_HIDDEN


def test_dot_files_not_hidden_without_option(env):
    touch(env, ".profile")
    op = env.open("", LIST)
    entries = {e[0]: e[1] for e in parse(query(env, op)[1])}
    assert not entries[".profile"] & FILE_ATTRIBUTE_HIDDEN


def test_undecodable_names_are_skipped(env):
    touch(env, "good")
    fd = os.open(os.path.join(os.fsencode(env.root), b"bad\xff\xfe"), os.O_CREAT | os.O_WRONLY)
    os.close(fd)
    op = env.open("", LIST)
    assert sorted(list_all(env, op)) == [".", "..", "good"]


def test_vanished_entries_are_skipped(env):
    names = [f"f{i:03d}" for i in range(300)]
    touch(env, *names)
    op = env.open("", LIST)
    first = names_of(env, op, out_len=600)
    for name in names:
        if name not in first:
            os.unlink(os.path.join(env.root, name))
    pushed_back = op.dir_state._pending  # already stat'ed when it did not fit
    rest = list_all(env, op)
    gone = [n for n in rest if not os.path.exists(os.path.join(env.root, n))]
    assert gone == ([pushed_back[0]] if pushed_back else [])


def test_names_create_would_refuse_are_skipped(env):
    touch(env, "good", "a:b", "what?", "back\\slash", "ctl\x01", 'quo"te')
    op = env.open("", LIST)
    assert sorted(list_all(env, op)) == [".", "..", "good"]


def test_symlinks_listed_only_inside_the_share(env, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret").write_bytes(b"x" * 12345)
    touch(env, "target")
    os.mkdir(os.path.join(env.root, "dir"))
    os.symlink("target", os.path.join(env.root, "inside-link"))
    os.symlink("dir", os.path.join(env.root, "dir-link"))
    os.symlink(str(outside / "secret"), os.path.join(env.root, "outside-link"))
    os.symlink(str(outside), os.path.join(env.root, "outside-dir"))
    op = env.open("", LIST)
    entries = {e[0]: e[1] for e in parse(query(env, op)[1])}
    assert set(entries) == {".", "..", "target", "dir", "inside-link", "dir-link"}
    assert entries["dir-link"] & FILE_ATTRIBUTE_DIRECTORY


def test_dangling_symlink_is_skipped(env):
    touch(env, "real")
    os.symlink("nowhere", os.path.join(env.root, "dangling"))
    op = env.open("", LIST)
    assert sorted(list_all(env, op)) == [".", "..", "real"]


# -- buffer sizes --------------------------------------------------------------------------------

def test_buffer_smaller_than_fixed_part(env):
    op = env.open("", LIST)
    status, _ = query(env, op, out_len=DIR_INFO_FIXED_SIZES[ID_BOTH] - 1)
    assert status == STATUS_INFO_LENGTH_MISMATCH


def test_first_entry_too_big_is_kept_for_the_next_call(env):
    long_name = "n" * 100
    touch(env, long_name)
    op = env.open("", LIST)
    assert names_of(env, op, flags=qd.SMB2_RETURN_SINGLE_ENTRY) == ["."]
    assert names_of(env, op, flags=qd.SMB2_RETURN_SINGLE_ENTRY) == [".."]
    fixed = DIR_INFO_FIXED_SIZES[ID_BOTH]
    status, _ = query(env, op, out_len=fixed + 10)
    assert status == STATUS_BUFFER_OVERFLOW
    assert names_of(env, op) == [long_name]


def test_entry_that_does_not_fit_comes_next_time(env):
    touch(env, "a" * 40, "b" * 40, "c" * 40)
    op = env.open("", LIST)
    fixed = DIR_INFO_FIXED_SIZES[ID_BOTH]
    # Room for ".", ".." and one 40-character name, not two.
    out_len = ((fixed + 2 + 7) & ~7) + ((fixed + 4 + 7) & ~7) + fixed + 80 + 40
    page1 = names_of(env, op, out_len=out_len)
    assert page1[:2] == [".", ".."] and len(page1) == 3
    rest = list_all(env, op, out_len=out_len)
    assert sorted(page1[2:] + rest) == ["a" * 40, "b" * 40, "c" * 40]


# -- refusals ------------------------------------------------------------------------------------

def test_not_a_directory(env):
    touch(env, "f")
    op = env.open("f", LIST)
    assert query(env, op)[0] == STATUS_INVALID_PARAMETER
    assert query(env, op, flags=qd.SMB2_REOPEN)[0] == STATUS_INVALID_PARAMETER


def test_needs_list_directory_access(env):
    op = env.open("", FILE_READ_ATTRIBUTES)
    assert query(env, op)[0] == STATUS_ACCESS_DENIED


@pytest.mark.parametrize("info_class", [0, 4, 13, 18, 99])
def test_bad_info_class(env, info_class):
    op = env.open("", LIST)
    assert query(env, op, info_class=info_class)[0] == STATUS_INVALID_INFO_CLASS


def test_output_buffer_longer_than_max_transact(env):
    env.conn.max_trans = 65536
    op = env.open("", LIST)
    assert query(env, op, out_len=65537, charge=2)[0] == STATUS_INVALID_PARAMETER
    assert query(env, op, out_len=65536)[0] == STATUS_SUCCESS


def test_credit_charge(env):
    op = env.open("", LIST)
    assert query(env, op, out_len=200000, charge=3)[0] == STATUS_INVALID_PARAMETER
    assert query(env, op, out_len=200000, charge=4)[0] == STATUS_SUCCESS


def test_bad_pattern_encoding(env):
    op = env.open("", LIST)
    assert query(env, op, name_bytes=b"*\x00*")[0] == STATUS_INVALID_PARAMETER  # odd length
    assert query(env, op, name_bytes=b"\x00\xd8")[0] == STATUS_INVALID_PARAMETER  # lone surrogate
    body = bytearray(qd_body(op, "*"))
    struct.pack_into("<H", body, 26, 4000)  # FileNameLength beyond the message
    status, _ = call(handle_query_directory, env.request(h.QUERY_DIRECTORY, bytes(body)))
    assert status == STATUS_INVALID_PARAMETER


# -- lifetime of the state -----------------------------------------------------------------------

def test_close_dir_state_releases_the_iterator(env):
    touch(env, *(f"f{i}" for i in range(20)))
    op = env.open("", LIST)
    query(env, op, out_len=200)
    scan = op.dir_state
    assert scan is not None and scan._it is not None
    close_dir_state(op)
    assert op.dir_state is None and scan._it is None
    close_dir_state(op)  # twice is harmless
    # A new query after that starts over.
    assert names_of(env, op, flags=qd.SMB2_RETURN_SINGLE_ENTRY) == ["."]


def test_iterator_closed_at_end_and_on_restart(env):
    touch(env, "a")
    op = env.open("", LIST)
    list_all(env, op)
    assert op.dir_state._it is None
    query(env, op, flags=qd.SMB2_RESTART_SCANS | qd.SMB2_RETURN_SINGLE_ENTRY)
    assert op.dir_state._it is not None


def test_directory_renamed_during_enumeration(env):
    os.mkdir(os.path.join(env.root, "old"))
    os.mkdir(os.path.join(env.root, "other"))
    for i in range(30):
        open(os.path.join(env.root, "old", f"f{i:02d}"), "wb").close()
    op = env.open("old", LIST)
    first = names_of(env, op, out_len=400)
    new = os.path.join(env.root, "other", "new")
    os.rename(op.path, new)
    op.path = op.dir_state.path = new  # what SET_INFO FileRenameInformation does
    rest = list_all(env, op)
    assert sorted(first[2:] + rest) == [f"f{i:02d}" for i in range(30)]
    ids = {e[0]: e[2] for e in parse(query(env, op, flags=qd.SMB2_RESTART_SCANS)[1])}
    assert ids[".."] == os.stat(os.path.join(env.root, "other")).st_ino


def test_directory_removed_before_first_query(env):
    os.mkdir(os.path.join(env.root, "gone"))
    op = env.open("gone", LIST)
    os.rmdir(os.path.join(env.root, "gone"))
    status, _ = query(env, op)
    assert status != STATUS_SUCCESS

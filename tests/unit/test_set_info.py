"""SET_INFO (MS-SMB2 3.3.5.21, MS-FSA 2.1.5.15): times, sizes, disposition, rename, link."""

from __future__ import annotations

import os
import struct

import pytest

from info_fixtures import Env, basic_buffer, query_body, rename_buffer, set_body, unix_to_filetime
from ksmbd_embedded import header as h
from ksmbd_embedded.fs import file_info as fi
from ksmbd_embedded.fs.dos_attrs import read_meta
from ksmbd_embedded.fs.security import DACL_SECURITY_INFORMATION
from ksmbd_embedded.fs.share_modes import close_open, is_delete_pending
from ksmbd_embedded.handlers.query_info import handle_query_info
from ksmbd_embedded.handlers.set_info import handle_set_info
from ksmbd_embedded.status import (
    STATUS_ACCESS_DENIED, STATUS_CANNOT_DELETE, STATUS_DIRECTORY_NOT_EMPTY,
    STATUS_FILE_IS_A_DIRECTORY, STATUS_INFO_LENGTH_MISMATCH,
    STATUS_INVALID_INFO_CLASS, STATUS_INVALID_PARAMETER,
    STATUS_INVALID_SECURITY_DESCR,
    STATUS_NOT_SUPPORTED, STATUS_OBJECT_NAME_COLLISION, STATUS_OBJECT_NAME_INVALID,
    STATUS_OBJECT_PATH_NOT_FOUND, STATUS_OBJECT_PATH_SYNTAX_BAD, STATUS_PRIVILEGE_NOT_HELD,
    STATUS_SHARING_VIOLATION, STATUS_SUCCESS,
)
from ksmbd_embedded.tree import (
    DELETE, FILE_READ_ATTRIBUTES, FILE_READ_DATA, FILE_WRITE_ATTRIBUTES, FILE_WRITE_DATA,
    SYNCHRONIZE, WRITE_DAC,
)

FILE, FS, SECURITY, QUOTA = 1, 2, 3, 4
RESPONSE = b"\x02\x00"


@pytest.fixture
def env(tmp_path):
    root = tmp_path / "share"
    root.mkdir()
    (root / "dir").mkdir()
    (root / "dir" / "f.txt").write_bytes(b"hello world")
    (root / "other.txt").write_bytes(b"other")
    (root / "empty").mkdir()
    e = Env(root)
    yield e
    e.close_all()


def set_info(env, op, info_class, buffer, info_type=FILE, **kw):
    return env.call(handle_set_info, h.SET_INFO, set_body(info_type, info_class, op, buffer, **kw))


def ok(result):
    status, body = result
    assert status == STATUS_SUCCESS, hex(status)
    assert body == RESPONSE


def has_user_xattrs(path) -> bool:
    try:
        os.setxattr(path, "user.probe", b"1")
        os.removexattr(path, "user.probe")
        return True
    except OSError:
        return False


# -- request validation ---------------------------------------------------------------------------

def test_buffer_length_zero_and_out_of_bounds(env):
    op = env.open("dir\\f.txt")
    assert set_info(env, op, fi.FILE_POSITION_INFORMATION, b"", buf_len=0)[0] == \
        STATUS_INVALID_PARAMETER
    assert set_info(env, op, fi.FILE_POSITION_INFORMATION, bytes(8), buf_len=4096)[0] == \
        STATUS_INVALID_PARAMETER
    assert set_info(env, op, fi.FILE_POSITION_INFORMATION, bytes(8), buf_off=10)[0] == \
        STATUS_INVALID_PARAMETER
    assert set_info(env, op, fi.FILE_POSITION_INFORMATION, bytes(8),
                    buf_len=(1 << 20) + 1)[0] == STATUS_INVALID_PARAMETER


@pytest.mark.parametrize("info_class,status", [
    (fi.FILE_STANDARD_INFORMATION, STATUS_INVALID_INFO_CLASS),   # query only
    (200, STATUS_INVALID_INFO_CLASS),
    (fi.FILE_RENAME_INFORMATION_EX, STATUS_NOT_SUPPORTED),       # "Set", not in 2.2.39
    (fi.FILE_QUOTA_INFORMATION, STATUS_NOT_SUPPORTED),
    (fi.FILE_SHORT_NAME_INFORMATION, STATUS_NOT_SUPPORTED),
    (fi.FILE_FULL_EA_INFORMATION, 0x80000013),  # STATUS_INVALID_EA_NAME: an empty name
    (fi.FILE_VALID_DATA_LENGTH_INFORMATION, STATUS_PRIVILEGE_NOT_HELD),
])
def test_class_validity(env, info_class, status):
    assert set_info(env, env.open("dir\\f.txt"), info_class, bytes(16))[0] == status


# -- FileBasicInformation -------------------------------------------------------------------------

def test_basic_sets_times(env):
    op = env.open("dir\\f.txt")
    before = os.stat(op.path)
    mtime = unix_to_filetime(1_500_000_000)
    ok(set_info(env, op, fi.FILE_BASIC_INFORMATION, basic_buffer(mtime=mtime)))
    st = os.stat(op.path)
    assert st.st_mtime_ns == 1_500_000_000 * 10**9
    assert st.st_atime_ns == before.st_atime_ns  # 0: unchanged
    atime = unix_to_filetime(1_400_000_000)
    ok(set_info(env, op, fi.FILE_BASIC_INFORMATION, basic_buffer(atime=atime, mtime=-1)))
    st = os.stat(op.path)
    assert (st.st_atime_ns, st.st_mtime_ns) == (1_400_000_000 * 10**9, 1_500_000_000 * 10**9)


def test_basic_sets_attributes_and_creation_time(env):
    op = env.open("dir\\f.txt")
    assert has_user_xattrs(op.path), "no user xattrs on this file system"
    ctime = unix_to_filetime(1_000_000_000)
    ok(set_info(env, op, fi.FILE_BASIC_INFORMATION, basic_buffer(ctime=ctime, attrs=0x21)))
    meta = read_meta(op.path)
    assert meta.attributes == 0x21  # READONLY | ARCHIVE
    assert meta.creation_time == ctime
    ok(set_info(env, op, fi.FILE_BASIC_INFORMATION, basic_buffer(attrs=0x80)))  # NORMAL: clear
    assert read_meta(op.path).attributes == 0x80
    assert read_meta(op.path).creation_time == ctime


def test_basic_attribute_validation(env):
    f = env.open("dir\\f.txt")
    d = env.open("dir")
    assert set_info(env, f, fi.FILE_BASIC_INFORMATION, basic_buffer(attrs=0x10))[0] == \
        STATUS_INVALID_PARAMETER
    assert set_info(env, d, fi.FILE_BASIC_INFORMATION, basic_buffer(attrs=0x100))[0] == \
        STATUS_INVALID_PARAMETER
    assert set_info(env, f, fi.FILE_BASIC_INFORMATION, basic_buffer(mtime=-3))[0] == \
        STATUS_INVALID_PARAMETER
    assert set_info(env, f, fi.FILE_BASIC_INFORMATION, basic_buffer()[:39])[0] == \
        STATUS_INFO_LENGTH_MISMATCH


def test_basic_needs_write_attributes(env):
    op = env.open("dir\\f.txt", access=FILE_READ_ATTRIBUTES | FILE_WRITE_DATA)
    assert set_info(env, op, fi.FILE_BASIC_INFORMATION, basic_buffer(mtime=1))[0] == \
        STATUS_ACCESS_DENIED


def test_read_only_tree_refuses_changes_but_not_handle_state(tmp_path):
    root = tmp_path / "ro"
    root.mkdir()
    (root / "f").write_bytes(b"abc")
    env = Env(root, writable=False)
    op = env.open("f", access=0x1F01FF)
    assert set_info(env, op, fi.FILE_BASIC_INFORMATION, basic_buffer(mtime=1))[0] == \
        STATUS_ACCESS_DENIED
    assert set_info(env, op, fi.FILE_END_OF_FILE_INFORMATION, bytes(8))[0] == \
        STATUS_ACCESS_DENIED
    assert set_info(env, op, fi.FILE_DISPOSITION_INFORMATION, b"\x01")[0] == \
        STATUS_ACCESS_DENIED
    assert set_info(env, op, fi.FILE_RENAME_INFORMATION, rename_buffer("g"))[0] == \
        STATUS_ACCESS_DENIED
    assert set_info(env, op, fi.FILE_LINK_INFORMATION, rename_buffer("g"))[0] == \
        STATUS_ACCESS_DENIED
    ok(set_info(env, op, fi.FILE_POSITION_INFORMATION, struct.pack("<Q", 2)))
    assert set_info(env, op, 6, bytes(48), info_type=FS)[0] == STATUS_ACCESS_DENIED
    assert (root / "f").read_bytes() == b"abc"
    env.close_all()


# -- sizes ----------------------------------------------------------------------------------------

def test_end_of_file(env):
    op = env.open("dir\\f.txt")
    ok(set_info(env, op, fi.FILE_END_OF_FILE_INFORMATION, struct.pack("<q", 5)))
    assert (env.root / "dir" / "f.txt").read_bytes() == b"hello"
    ok(set_info(env, op, fi.FILE_END_OF_FILE_INFORMATION, struct.pack("<q", 1 << 20)))
    assert os.path.getsize(op.path) == 1 << 20
    assert set_info(env, op, fi.FILE_END_OF_FILE_INFORMATION, struct.pack("<q", -1))[0] == \
        STATUS_INVALID_PARAMETER
    assert set_info(env, op, fi.FILE_END_OF_FILE_INFORMATION, bytes(7))[0] == \
        STATUS_INFO_LENGTH_MISMATCH
    d = env.open("dir")
    assert set_info(env, d, fi.FILE_END_OF_FILE_INFORMATION, bytes(8))[0] == \
        STATUS_INVALID_PARAMETER


def test_end_of_file_needs_write_data(env):
    op = env.open("dir\\f.txt", access=FILE_WRITE_ATTRIBUTES | FILE_READ_DATA)
    assert set_info(env, op, fi.FILE_END_OF_FILE_INFORMATION, bytes(8))[0] == \
        STATUS_ACCESS_DENIED
    assert set_info(env, op, fi.FILE_ALLOCATION_INFORMATION, bytes(8))[0] == \
        STATUS_ACCESS_DENIED


def test_allocation_truncates_only_below_eof(env):
    op = env.open("dir\\f.txt")
    ok(set_info(env, op, fi.FILE_ALLOCATION_INFORMATION, struct.pack("<q", 1 << 30)))
    assert os.path.getsize(op.path) == 11
    ok(set_info(env, op, fi.FILE_ALLOCATION_INFORMATION, struct.pack("<q", 4)))
    assert (env.root / "dir" / "f.txt").read_bytes() == b"hell"


# -- disposition ----------------------------------------------------------------------------------

def test_disposition_marks_and_clears_delete_pending(env):
    op = env.open("dir\\f.txt")
    ok(set_info(env, op, fi.FILE_DISPOSITION_INFORMATION, b"\x01"))
    assert is_delete_pending(env.server, op.file_key)
    ok(set_info(env, op, fi.FILE_DISPOSITION_INFORMATION, b"\x00"))
    assert not is_delete_pending(env.server, op.file_key)
    ok(set_info(env, op, fi.FILE_DISPOSITION_INFORMATION, b"\x01"))
    close_open(env.server, op)
    assert not (env.root / "dir" / "f.txt").exists()


def test_disposition_refusals(env):
    op = env.open("dir\\f.txt", access=FILE_WRITE_ATTRIBUTES | FILE_WRITE_DATA)
    assert set_info(env, op, fi.FILE_DISPOSITION_INFORMATION, b"\x01")[0] == \
        STATUS_ACCESS_DENIED
    d = env.open("dir")
    assert set_info(env, d, fi.FILE_DISPOSITION_INFORMATION, b"\x01")[0] == \
        STATUS_DIRECTORY_NOT_EMPTY
    assert not is_delete_pending(env.server, d.file_key)
    ok(set_info(env, env.open("empty"), fi.FILE_DISPOSITION_INFORMATION, b"\x01"))
    assert set_info(env, env.open(""), fi.FILE_DISPOSITION_INFORMATION, b"\x01")[0] == \
        STATUS_CANNOT_DELETE
    assert set_info(env, d, fi.FILE_DISPOSITION_INFORMATION, b"")[0] == \
        STATUS_INVALID_PARAMETER  # BufferLength 0


def test_disposition_read_only_file(env):
    path = env.root / "other.txt"
    os.chmod(path, 0o444)  # READONLY where no xattr says otherwise
    op = env.open("other.txt")
    assert read_meta(op.fd).attributes & 1, "READONLY should come from the mode (no xattr)"
    assert set_info(env, op, fi.FILE_DISPOSITION_INFORMATION, b"\x01")[0] == \
        STATUS_CANNOT_DELETE
    ignore = fi.FILE_DISPOSITION_DELETE | fi.FILE_DISPOSITION_IGNORE_READONLY_ATTRIBUTE
    ok(set_info(env, op, fi.FILE_DISPOSITION_INFORMATION_EX, struct.pack("<I", ignore)))
    assert is_delete_pending(env.server, op.file_key)


def test_disposition_ex_on_close_and_bad_flags(env):
    op = env.open("other.txt")
    flags = fi.FILE_DISPOSITION_DELETE | fi.FILE_DISPOSITION_ON_CLOSE
    ok(set_info(env, op, fi.FILE_DISPOSITION_INFORMATION_EX, struct.pack("<I", flags)))
    assert op.delete_on_close
    assert not is_delete_pending(env.server, op.file_key)
    assert set_info(env, op, fi.FILE_DISPOSITION_INFORMATION_EX, struct.pack("<I", 0x100))[0] \
        == STATUS_INVALID_PARAMETER
    close_open(env.server, op)
    assert not (env.root / "other.txt").exists()


# -- rename ---------------------------------------------------------------------------------------

def test_rename_in_place_and_across_directories(env):
    op = env.open("dir\\f.txt")
    peer = env.open("dir\\f.txt")
    ok(set_info(env, op, fi.FILE_RENAME_INFORMATION, rename_buffer("dir\\g.txt")))
    assert (env.root / "dir" / "g.txt").read_bytes() == b"hello world"
    assert not (env.root / "dir" / "f.txt").exists()
    for o in (op, peer):
        assert o.name == "dir\\g.txt"
        assert o.path == os.path.join(env.tree.root, "dir", "g.txt")
    ok(set_info(env, op, fi.FILE_RENAME_INFORMATION, rename_buffer("\\top.txt")))
    assert (env.root / "top.txt").exists()
    assert op.name == "top.txt"
    status, body = env.call(handle_query_info, h.QUERY_INFO,
                            query_body(FILE, fi.FILE_NAME_INFORMATION, peer))
    assert body[12:].decode("utf-16-le") == "\\top.txt"


def test_rename_collision_and_replace(env):
    op = env.open("dir\\f.txt")
    assert set_info(env, op, fi.FILE_RENAME_INFORMATION, rename_buffer("other.txt"))[0] == \
        STATUS_OBJECT_NAME_COLLISION
    assert set_info(env, op, fi.FILE_RENAME_INFORMATION, rename_buffer("OTHER.TXT"))[0] == \
        STATUS_OBJECT_NAME_COLLISION  # case-insensitive match
    ok(set_info(env, op, fi.FILE_RENAME_INFORMATION, rename_buffer("other.txt", replace=True)))
    assert (env.root / "other.txt").read_bytes() == b"hello world"
    assert not (env.root / "dir" / "f.txt").exists()


def test_rename_replace_refusals(env):
    op = env.open("dir\\f.txt")
    assert set_info(env, op, fi.FILE_RENAME_INFORMATION,
                    rename_buffer("empty", replace=True))[0] == STATUS_ACCESS_DENIED
    target = env.open("other.txt", access=FILE_READ_ATTRIBUTES)
    assert set_info(env, op, fi.FILE_RENAME_INFORMATION,
                    rename_buffer("other.txt", replace=True))[0] == STATUS_ACCESS_DENIED
    env.server.opens.remove(target)
    os.chmod(env.root / "other.txt", 0o444)
    if read_meta(str(env.root / "other.txt")).attributes & 1:
        assert set_info(env, op, fi.FILE_RENAME_INFORMATION,
                        rename_buffer("other.txt", replace=True))[0] == STATUS_ACCESS_DENIED
    assert (env.root / "other.txt").read_bytes() == b"other"
    assert (env.root / "dir" / "f.txt").exists()


def test_rename_confinement(env, tmp_path):
    op = env.open("dir\\f.txt")
    for name, status in (("..\\escape.txt", STATUS_OBJECT_PATH_SYNTAX_BAD),
                         ("dir\\..\\..\\escape.txt", STATUS_OBJECT_PATH_SYNTAX_BAD),
                         ("a/b", STATUS_OBJECT_NAME_INVALID),
                         ("missing\\x.txt", STATUS_OBJECT_PATH_NOT_FOUND),
                         ("f.txt:stream", STATUS_OBJECT_NAME_INVALID),
                         (":stream", STATUS_NOT_SUPPORTED)):
        assert set_info(env, op, fi.FILE_RENAME_INFORMATION, rename_buffer(name))[0] == status
    os.symlink(tmp_path, env.root / "out")
    assert set_info(env, op, fi.FILE_RENAME_INFORMATION,
                    rename_buffer("out\\escape.txt"))[0] == STATUS_ACCESS_DENIED
    assert not (tmp_path / "escape.txt").exists()
    assert (env.root / "dir" / "f.txt").exists()


def test_rename_lexical_dotdot_inside_share(env):
    op = env.open("dir\\f.txt")
    ok(set_info(env, op, fi.FILE_RENAME_INFORMATION, rename_buffer("dir\\..\\moved.txt")))
    assert (env.root / "moved.txt").exists()


def test_rename_parameter_checks(env):
    op = env.open("dir\\f.txt")
    assert set_info(env, op, fi.FILE_RENAME_INFORMATION, rename_buffer("x", root_dir=5))[0] == \
        STATUS_INVALID_PARAMETER
    assert set_info(env, op, fi.FILE_RENAME_INFORMATION, rename_buffer("x")[:19])[0] == \
        STATUS_INFO_LENGTH_MISMATCH
    assert set_info(env, op, fi.FILE_RENAME_INFORMATION, rename_buffer("x")[:21])[0] == \
        STATUS_INVALID_PARAMETER  # FileNameLength past the buffer
    no_delete = env.open("dir\\f.txt", access=FILE_WRITE_ATTRIBUTES | SYNCHRONIZE)
    assert set_info(env, no_delete, fi.FILE_RENAME_INFORMATION, rename_buffer("x"))[0] == \
        STATUS_ACCESS_DENIED
    assert set_info(env, env.open(""), fi.FILE_RENAME_INFORMATION, rename_buffer("x"))[0] == \
        STATUS_ACCESS_DENIED


def test_rename_case_only(env):
    op = env.open("other.txt")
    ok(set_info(env, op, fi.FILE_RENAME_INFORMATION, rename_buffer("Other.TXT")))
    assert os.listdir(env.root).count("Other.TXT") == 1
    assert "other.txt" not in os.listdir(env.root)
    assert op.name == "Other.TXT"


def test_rename_onto_itself(env):
    ok(set_info(env, env.open("other.txt"), fi.FILE_RENAME_INFORMATION,
                rename_buffer("other.txt")))
    assert (env.root / "other.txt").exists()


def test_rename_directory_with_open_child_refused(env):
    d = env.open("dir", access=DELETE | SYNCHRONIZE)
    child = env.open("dir\\f.txt")
    assert set_info(env, d, fi.FILE_RENAME_INFORMATION, rename_buffer("dir2"))[0] == \
        STATUS_ACCESS_DENIED
    env.server.opens.remove(child)
    ok(set_info(env, d, fi.FILE_RENAME_INFORMATION, rename_buffer("dir2")))
    assert (env.root / "dir2" / "f.txt").exists()
    assert d.name == "dir2"


@pytest.mark.parametrize("access,share,status", [
    (DELETE | FILE_READ_DATA, 7, STATUS_SHARING_VIOLATION),   # parent open with DELETE
    (DELETE | FILE_READ_DATA, 0, STATUS_SHARING_VIOLATION),
    (FILE_READ_DATA | FILE_WRITE_DATA, 7, STATUS_SUCCESS),    # no DELETE, shares all
    (FILE_READ_DATA | FILE_WRITE_DATA, 0, STATUS_SHARING_VIOLATION),  # denies writing
    (FILE_READ_ATTRIBUTES, 0, STATUS_SUCCESS),                # attributes only: no conflict
])
def test_rename_checks_target_parent_sharing(env, access, share, status):
    env.open("dir", access=access, share_access=share)
    op = env.open("dir\\f.txt", share_access=0)
    assert set_info(env, op, fi.FILE_RENAME_INFORMATION, rename_buffer("dir\\new.txt"))[0] == \
        status


def test_rename_vetoed_target(tmp_path):
    root = tmp_path / "s"
    root.mkdir()
    (root / "f").write_bytes(b"")
    env = Env(root, veto=("*.secret",))
    assert set_info(env, env.open("f"), fi.FILE_RENAME_INFORMATION,
                    rename_buffer("x.secret"))[0] == STATUS_ACCESS_DENIED
    env.close_all()


# -- link -----------------------------------------------------------------------------------------

def test_link(env):
    op = env.open("dir\\f.txt", access=FILE_READ_DATA | SYNCHRONIZE)
    ok(set_info(env, op, fi.FILE_LINK_INFORMATION, rename_buffer("link.txt")))
    assert os.stat(env.root / "link.txt").st_ino == os.stat(op.path).st_ino
    assert os.stat(op.path).st_nlink == 2
    assert set_info(env, op, fi.FILE_LINK_INFORMATION, rename_buffer("other.txt"))[0] == \
        STATUS_OBJECT_NAME_COLLISION
    ok(set_info(env, op, fi.FILE_LINK_INFORMATION, rename_buffer("other.txt", replace=True)))
    assert (env.root / "other.txt").read_bytes() == b"hello world"
    assert set_info(env, op, fi.FILE_LINK_INFORMATION, rename_buffer("link.txt"))[0] == \
        STATUS_OBJECT_NAME_COLLISION
    assert set_info(env, env.open("dir"), fi.FILE_LINK_INFORMATION, rename_buffer("d2"))[0] == \
        STATUS_FILE_IS_A_DIRECTORY
    assert set_info(env, op, fi.FILE_LINK_INFORMATION, rename_buffer("..\\x"))[0] == \
        STATUS_OBJECT_PATH_SYNTAX_BAD


# -- target names that are not valid UTF-16 ------------------------------------------------------

def _raw_rename_buffer(name: str, replace: bool = False) -> bytes:
    """rename_buffer for a name holding lone surrogates (encoded as they come, surrogatepass)."""
    nb = name.encode("utf-16-le", "surrogatepass")
    return struct.pack("<B7xQI", 1 if replace else 0, 0, len(nb)) + nb


# U+DC00 is the fuzzer's name (corpus b87b768258fb); U+DC80 is a name os.fsencode would take
# (surrogateescape) but CREATE never lets through either; the others: a high surrogate, a lone
# surrogate in an intermediate component (which reached os.lstat in resolve) and in a name
# that also asks for replacement.
_SURROGATE_NAMES = ["\udc00", "\udc80", "x\ud800.txt", "dir\\a\udfff\\b.txt",
                    "\\top\udbff"]


@pytest.mark.parametrize("info_class", [fi.FILE_RENAME_INFORMATION, fi.FILE_LINK_INFORMATION])
@pytest.mark.parametrize("name", _SURROGATE_NAMES)
def test_rename_and_link_target_with_lone_surrogate_is_name_invalid(env, info_class, name):
    op = env.open("dir\\f.txt")
    for replace in (False, True):
        status, body = set_info(env, op, info_class, _raw_rename_buffer(name, replace))
        assert status == STATUS_OBJECT_NAME_INVALID, hex(status)  # as CREATE answers it
    assert op.path == str(env.root / "dir" / "f.txt")
    assert (env.root / "dir" / "f.txt").read_bytes() == b"hello world"
    assert os.stat(op.path).st_nlink == 1
    assert sorted(os.listdir(env.root)) == ["dir", "empty", "other.txt"]


def test_rename_and_link_target_with_surrogate_pair_is_a_name(env):
    op = env.open("dir\\f.txt")
    ok(set_info(env, op, fi.FILE_LINK_INFORMATION, _raw_rename_buffer("l\U0001F600.txt")))
    assert os.stat(env.root / "l\U0001F600.txt").st_ino == os.stat(op.path).st_ino
    ok(set_info(env, op, fi.FILE_RENAME_INFORMATION,
                _raw_rename_buffer("\ud83d\ude00.txt")))  # the same pair, as UTF-16 units
    assert (env.root / "\U0001F600.txt").read_bytes() == b"hello world"


# -- handle state ---------------------------------------------------------------------------------

def test_position(env):
    op = env.open("dir\\f.txt")
    ok(set_info(env, op, fi.FILE_POSITION_INFORMATION, struct.pack("<q", 7)))
    assert op.position == 7
    assert set_info(env, op, fi.FILE_POSITION_INFORMATION, struct.pack("<q", -1))[0] == \
        STATUS_INVALID_PARAMETER
    op.mode = fi.FILE_NO_INTERMEDIATE_BUFFERING
    assert set_info(env, op, fi.FILE_POSITION_INFORMATION, struct.pack("<q", 7))[0] == \
        STATUS_INVALID_PARAMETER
    ok(set_info(env, op, fi.FILE_POSITION_INFORMATION, struct.pack("<q", 1024)))


def test_mode(env):
    op = env.open("dir\\f.txt")
    ok(set_info(env, op, fi.FILE_MODE_INFORMATION,
                struct.pack("<I", fi.FILE_WRITE_THROUGH | fi.FILE_SEQUENTIAL_ONLY)))
    assert op.mode == fi.FILE_WRITE_THROUGH | fi.FILE_SEQUENTIAL_ONLY
    ok(set_info(env, op, fi.FILE_MODE_INFORMATION, struct.pack("<I", 0)))
    assert op.mode == 0
    # the synchronous mode is fixed at open (MS-FSA 2.1.5.15.7)
    assert set_info(env, op, fi.FILE_MODE_INFORMATION,
                    struct.pack("<I", fi.FILE_SYNCHRONOUS_IO_NONALERT))[0] == \
        STATUS_INVALID_PARAMETER
    op.mode = fi.FILE_SYNCHRONOUS_IO_ALERT
    ok(set_info(env, op, fi.FILE_MODE_INFORMATION,
                struct.pack("<I", fi.FILE_SYNCHRONOUS_IO_NONALERT)))
    assert op.mode == fi.FILE_SYNCHRONOUS_IO_NONALERT
    assert set_info(env, op, fi.FILE_MODE_INFORMATION,
                    struct.pack("<I", fi.FILE_DELETE_ON_CLOSE))[0] == STATUS_INVALID_PARAMETER


# -- other info types -----------------------------------------------------------------------------

def test_filesystem_classes(env):
    op = env.open("")
    assert set_info(env, op, 6, bytes(48), info_type=FS)[0] == STATUS_NOT_SUPPORTED
    assert set_info(env, op, 2, bytes(8), info_type=FS)[0] == STATUS_NOT_SUPPORTED
    assert set_info(env, op, 1, bytes(8), info_type=FS)[0] == STATUS_INVALID_INFO_CLASS
    reader = env.open("", access=FILE_READ_DATA)
    assert set_info(env, reader, 8, bytes(64), info_type=FS)[0] == STATUS_ACCESS_DENIED


def test_security_and_quota(env):
    op = env.open("dir\\f.txt", access=FILE_READ_DATA)
    assert set_info(env, op, 0, bytes(20), info_type=SECURITY,
                    additional=DACL_SECURITY_INFORMATION)[0] == STATUS_ACCESS_DENIED
    op = env.open("dir\\f.txt", access=WRITE_DAC)
    # a descriptor of revision 0 is malformed (MS-FSA 2.1.5.16)
    assert set_info(env, op, 0, bytes(20), info_type=SECURITY,
                    additional=DACL_SECURITY_INFORMATION)[0] == STATUS_INVALID_SECURITY_DESCR
    assert set_info(env, op, 0, bytes(20), info_type=QUOTA)[0] == STATUS_NOT_SUPPORTED
    assert set_info(env, op, 0, bytes(20), info_type=7)[0] == STATUS_INVALID_PARAMETER

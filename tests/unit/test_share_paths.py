r"""Names and confinement (fs/share_paths.py): every way out of the share must fail."""

from __future__ import annotations

import os

import pytest

from ksmbd_embedded.config import ShareConfig
from ksmbd_embedded.fs.share_paths import (
    check_name, has_trailing_backslash, is_inside, is_vetoed, parse_name, resolve, resolve_stat,
    split_name,
)
from ksmbd_embedded.status import (
    STATUS_ACCESS_DENIED, STATUS_INVALID_PARAMETER, STATUS_OBJECT_NAME_INVALID,
    STATUS_OBJECT_PATH_NOT_FOUND, STATUS_OBJECT_PATH_SYNTAX_BAD, SmbError,
)


def w(s: str) -> memoryview:
    return memoryview(s.encode("utf-16-le"))


def status_of(fn, *args) -> int:
    with pytest.raises(SmbError) as ei:
        fn(*args)
    return ei.value.status


# -- parse_name -----------------------------------------------------------------------------------

@pytest.mark.parametrize("wire, expected", [
    ("", ""),
    ("a.txt", "a.txt"),
    ("dir\\sub\\file", "dir\\sub\\file"),
    ("dir\\", "dir"),
    (".", ""),
    ("a\\.\\b", "a\\b"),
    ("a\\..\\b", "b"),
    ("a\\b\\..\\..", ""),
    ("file::$DATA", "file"),
    ("file:$DATA", "file"),
    ("file::$data", "file"),
    ("dir\\file::$DATA", "dir\\file"),
    ("with space .txt", "with space .txt"),
    ("...", "..."),
    ("ünïcödé \U0001F600", "ünïcödé \U0001F600"),
])
def test_parse_name_valid(wire, expected):
    assert parse_name(w(wire)) == expected


@pytest.mark.parametrize("wire, status", [
    ("\\etc\\passwd", STATUS_INVALID_PARAMETER),       # absolute
    ("\\", STATUS_INVALID_PARAMETER),
    ("..", STATUS_OBJECT_PATH_SYNTAX_BAD),
    ("..\\x", STATUS_OBJECT_PATH_SYNTAX_BAD),
    ("a\\..\\..\\x", STATUS_OBJECT_PATH_SYNTAX_BAD),
    ("a\\..\\..", STATUS_OBJECT_PATH_SYNTAX_BAD),
    (".\\..", STATUS_OBJECT_PATH_SYNTAX_BAD),
    ("C:\\x", STATUS_OBJECT_NAME_INVALID),             # drive letter
    ("C:", STATUS_OBJECT_NAME_INVALID),
    ("/etc/passwd", STATUS_OBJECT_NAME_INVALID),       # POSIX separators are not separators
    ("a/../../x", STATUS_OBJECT_NAME_INVALID),
    ("a\\\\b", STATUS_OBJECT_NAME_INVALID),            # empty component
    ("a\\\\", STATUS_OBJECT_NAME_INVALID),
    ("file:stream", STATUS_OBJECT_NAME_INVALID),       # streams: not yet
    ("file:stream:$DATA", STATUS_OBJECT_NAME_INVALID),
    ("dir:x\\file", STATUS_OBJECT_NAME_INVALID),
    ("a<b", STATUS_OBJECT_NAME_INVALID),
    ("a>b", STATUS_OBJECT_NAME_INVALID),
    ('a"b', STATUS_OBJECT_NAME_INVALID),
    ("a|b", STATUS_OBJECT_NAME_INVALID),
    ("a?b", STATUS_OBJECT_NAME_INVALID),
    ("a*b", STATUS_OBJECT_NAME_INVALID),
    ("a\x00b", STATUS_OBJECT_NAME_INVALID),
    ("a\x1fb", STATUS_OBJECT_NAME_INVALID),
    ("dir\\a\nb", STATUS_OBJECT_NAME_INVALID),
    ("x" * 256, STATUS_OBJECT_NAME_INVALID),
    ("d\\" + "\U0001F600" * 128, STATUS_OBJECT_NAME_INVALID),  # 256 UTF-16 units
])
def test_parse_name_invalid(wire, status):
    assert status_of(parse_name, w(wire)) == status


def test_parse_name_component_length_limit():
    assert parse_name(w("x" * 255)) == "x" * 255
    assert parse_name(w("d\\" + "\U0001F600" * 127 + "x")) == "d\\" + "\U0001F600" * 127 + "x"


def test_parse_name_odd_length_and_bad_utf16():
    assert status_of(parse_name, memoryview(b"a\x00b")) == STATUS_INVALID_PARAMETER
    lone_surrogate = memoryview(b"a\x00\x00\xd8b\x00")
    assert status_of(parse_name, lone_surrogate) == STATUS_OBJECT_NAME_INVALID


def test_leading_backslash_allowed_on_request():
    assert parse_name(w("\\dir\\f"), leading_backslash_ok=True) == "dir\\f"
    assert check_name("\\x", True) == "x"
    assert status_of(check_name, "\\..", True) == STATUS_OBJECT_PATH_SYNTAX_BAD


def test_trailing_backslash_and_split():
    assert has_trailing_backslash(w("dir\\"))
    assert not has_trailing_backslash(w("dir"))
    assert not has_trailing_backslash(w(""))
    assert split_name("a\\b\\c") == ("a\\b", "c")
    assert split_name("c") == ("", "c")
    assert split_name("") == ("", "")


def test_is_inside():
    assert is_inside("/srv/share", "/srv/share")
    assert is_inside("/srv/share", "/srv/share/a")
    assert not is_inside("/srv/share", "/srv/share2")
    assert not is_inside("/srv/share", "/srv")
    assert is_inside("/", "/anything")


# -- resolve --------------------------------------------------------------------------------------

@pytest.fixture
def share(tmp_path):
    """A share root with some content, and an "outside" directory next to it."""
    root = tmp_path / "share"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret").write_text("secret")
    (outside / "sub").mkdir()
    (root / "Docs").mkdir()
    (root / "Docs" / "Report.TXT").write_text("r")
    (root / "file.txt").write_text("f")
    return str(root.resolve()), str(outside.resolve())


def test_resolve_plain(share):
    root, _ = share
    assert resolve(root, "") == root
    assert resolve(root, "file.txt") == root + "/file.txt"
    assert resolve(root, "Docs\\Report.TXT") == root + "/Docs/Report.TXT"
    path, st = resolve_stat(root, "missing.txt")
    assert path == root + "/missing.txt" and st is None
    path, st = resolve_stat(root, "file.txt")
    assert st is not None and st.st_size == 1


def test_resolve_case_insensitive(share):
    root, _ = share
    assert resolve(root, "docs\\report.txt") == root + "/Docs/Report.TXT"
    assert resolve(root, "DOCS") == root + "/Docs"
    assert resolve(root, "FILE.TXT") == root + "/file.txt"
    # a missing final component keeps the client's spelling
    assert resolve(root, "docs\\New.txt") == root + "/Docs/New.txt"
    # case-sensitive mode does not look around
    assert resolve_stat(root, "FILE.TXT", case_insensitive=False) == (root + "/FILE.TXT", None)
    assert status_of(resolve, root, "docs\\x", False) == STATUS_OBJECT_PATH_NOT_FOUND


def test_resolve_missing_intermediate(share):
    root, _ = share
    assert status_of(resolve, root, "nodir\\x") == STATUS_OBJECT_PATH_NOT_FOUND
    assert status_of(resolve, root, "nodir\\deeper\\x") == STATUS_OBJECT_PATH_NOT_FOUND
    # a file used as a directory
    assert status_of(resolve, root, "file.txt\\x") == STATUS_OBJECT_PATH_NOT_FOUND


def test_resolve_refuses_unparsed_components(share):
    root, _ = share
    for bad in ("..", "a\\..\\..\\x", ".", "a\\\\b", "../x", "a/b"):
        assert status_of(resolve, root, bad) == STATUS_OBJECT_NAME_INVALID


def test_symlink_to_etc_is_refused(share):
    root, _ = share
    os.symlink("/etc", os.path.join(root, "etc"))
    os.symlink("/etc/passwd", os.path.join(root, "passwd"))
    assert status_of(resolve, root, "etc") == STATUS_ACCESS_DENIED
    assert status_of(resolve, root, "etc\\passwd") == STATUS_ACCESS_DENIED
    assert status_of(resolve, root, "passwd") == STATUS_ACCESS_DENIED
    # case-insensitive lookup of the link name must not help either
    assert status_of(resolve, root, "ETC\\PASSWD") == STATUS_ACCESS_DENIED


def test_symlink_out_reveals_nothing(share):
    """Existing and missing targets outside give the same answer."""
    root, outside = share
    os.symlink(outside, os.path.join(root, "out"))
    os.symlink(os.path.join(outside, "nothing-here"), os.path.join(root, "dangling-out"))
    for name in ("out", "out\\secret", "out\\missing", "out\\sub\\x", "out\\nodir\\x",
                 "dangling-out", "dangling-out\\x"):
        assert status_of(resolve, root, name) == STATUS_ACCESS_DENIED, name


def test_symlink_chain_out_is_refused(share):
    root, outside = share
    os.symlink(outside, os.path.join(root, "hop2"))
    os.symlink("hop2", os.path.join(root, "hop1"))  # relative, inside, then out
    os.symlink(os.path.join(root, "hop1"), os.path.join(root, "Docs", "back"))
    for name in ("hop1", "hop1\\secret", "Docs\\back", "Docs\\back\\secret"):
        assert status_of(resolve, root, name) == STATUS_ACCESS_DENIED, name


def test_relative_symlink_climbing_out_is_refused(share):
    root, _ = share
    os.symlink("../../outside/secret", os.path.join(root, "Docs", "up"))
    os.symlink("../../outside", os.path.join(root, "Docs", "up2"))
    os.symlink("../outside", os.path.join(root, "Docs", "notout"))  # = <share>/outside
    assert status_of(resolve, root, "Docs\\up") == STATUS_ACCESS_DENIED
    assert status_of(resolve, root, "Docs\\up2\\secret") == STATUS_ACCESS_DENIED
    # a relative link that stays inside (dangling) resolves inside
    assert resolve(root, "Docs\\notout") == root + "/outside"


def test_symlink_inside_share_is_followed(share):
    root, _ = share
    os.symlink("Docs", os.path.join(root, "DocLink"))
    os.symlink(os.path.join(root, "file.txt"), os.path.join(root, "Docs", "filelink"))
    assert resolve(root, "DocLink") == root + "/Docs"
    assert resolve(root, "DocLink\\Report.TXT") == root + "/Docs/Report.TXT"
    assert resolve(root, "doclink\\report.txt") == root + "/Docs/Report.TXT"
    assert resolve(root, "DocLink\\new") == root + "/Docs/new"
    assert resolve(root, "Docs\\filelink") == root + "/file.txt"
    # a link to a file is no directory
    assert status_of(resolve, root, "Docs\\filelink\\x") == STATUS_OBJECT_PATH_NOT_FOUND


def test_symlink_loop(share):
    root, _ = share
    os.symlink("loop2", os.path.join(root, "loop1"))
    os.symlink("loop1", os.path.join(root, "loop2"))
    with pytest.raises(SmbError):
        resolve(root, "loop1\\x")


def test_share_root_through_symlink(tmp_path):
    """A share whose configured path is itself a symlink: roots are realpaths."""
    real = tmp_path / "real"
    real.mkdir()
    (real / "f").write_text("x")
    root = os.path.realpath(str(real))
    assert resolve(root, "f") == root + "/f"


# -- veto files ------------------------------------------------------------------------------------

def test_is_vetoed():
    share = ShareConfig(name="s", path="/x", veto_files=("*.tmp", ".DS_Store", "Thumbs.db",
                                                         "a?c"))
    assert is_vetoed(share, "x.tmp")
    assert is_vetoed(share, "X.TMP")
    assert is_vetoed(share, ".ds_store")
    assert is_vetoed(share, "dir\\thumbs.db")
    assert is_vetoed(share, "abc")
    assert not is_vetoed(share, "abcd")
    assert not is_vetoed(share, "x.tmpx")
    assert not is_vetoed(share, "file.txt")
    assert not is_vetoed(share, "")
    assert is_vetoed(share, "x.tmp\\inside")
    assert not is_vetoed(ShareConfig(name="s", path="/x"), "x.tmp")
    assert not is_vetoed(None, "x.tmp")


def test_is_vetoed_unsplit_smb_conf_form():
    share = ShareConfig(name="s", path="/x", veto_files=("/*.bak/.git/",))
    assert is_vetoed(share, "a.bak")
    assert is_vetoed(share, ".git")
    assert not is_vetoed(share, "git")

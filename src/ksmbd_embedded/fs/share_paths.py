r"""Client path names and their confinement to the share (MS-SMB2 3.3.5.9, MS-FSCC 2.1.5).

Security critical: everything a client names goes through `parse_name` (syntax) and then
`resolve` (the disk), and nothing outside the share's root may ever be opened, created,
deleted, or even probed for existence.

Decisions
---------
* Names are share-relative, separated by backslashes; "" is the share root. A leading
  backslash is STATUS_INVALID_PARAMETER (what Windows answers for CREATE names), unless the
  caller allows it (rename targets). One trailing backslash is accepted and dropped (the
  caller may ask `has_trailing_backslash` and insist on a directory).
* "." components are dropped. ".." is resolved lexically, inside the name: "a\..\b" is "b".
  A ".." that would climb above the share root is STATUS_OBJECT_PATH_SYNTAX_BAD (Windows'
  answer). Lexical resolution means ".." never walks up through a symlink, and `resolve`
  confines the result anyway.
* Empty components ("a\\b") are STATUS_OBJECT_NAME_INVALID, and so is any component holding
  `< > : " | ? * /` or a character below 0x20 (MS-FSCC 2.1.5.2; "/" would be a separator on
  the POSIX side), or longer than 255 UTF-16 code units. A name that is not valid UTF-16
  (a lone surrogate) cannot be a POSIX name either: STATUS_OBJECT_NAME_INVALID, whether
  `parse_name` decodes it or `check_name` is given it already decoded (rename/link targets).
* Streams: CREATE names go through `parse_name_stream`, which splits "name:stream[:$DATA]"
  and "name::$DATA" at the first colon (fs/streams.py `split_stream` checks the stream part)
  and validates the file part like any other name, so a stream name never becomes part of a
  path. `parse_name`/`check_name` (rename and link targets) strip "name::$DATA" and
  "name:$DATA" (any case) and refuse any other colon: STATUS_OBJECT_NAME_INVALID.
* `resolve` walks the name one component at a time from the share root (an lstat each). A
  component that does not exist exactly is looked up case-insensitively (str.casefold) in
  its parent with os.scandir; the first match wins. A missing or non-directory intermediate
  component is STATUS_OBJECT_PATH_NOT_FOUND; the final component may be missing (the caller
  creates it, or answers STATUS_OBJECT_NAME_NOT_FOUND).
* Symlinks are followed only while they stay inside the share: each symlink met on the walk
  is resolved with os.path.realpath and must land inside the root (Samba's "wide links = no").
  One that leads out, dangling or not, is STATUS_ACCESS_DENIED, decided before anything is
  looked up behind it, so the answer says nothing about what lies outside. The path returned
  contains no symlinks: later operations (open with O_NOFOLLOW, unlink, rename) act on the
  target, never on a link. The one exception is `resolve_stat(..., follow_last=False)`, for
  CREATE with FILE_OPEN_REPARSE_POINT: a final component that is a symlink comes back as
  itself (fs/reparse.py); what it points to is not looked at.
* Remaining TOCTOU window: between `resolve` and the caller's open/unlink, a *local* user of
  the router who can write inside the share could swap a checked directory for a symlink.
  The final component is covered by O_NOFOLLOW in the caller; intermediate directories are
  not (closing that needs an openat() walk per component). SMB clients cannot create
  symlinks through this server, so a remote client alone cannot use the window.
* Veto files (`is_vetoed`): "*" and "?" wildcards, case-insensitive, matched against each
  component; a vetoed name is invisible (the caller answers NOT_FOUND).
"""

from __future__ import annotations

import codecs
import functools
import os
import re
import stat as _stat
from typing import Any

from ..status import (
    STATUS_ACCESS_DENIED, STATUS_INVALID_PARAMETER, STATUS_OBJECT_NAME_INVALID,
    STATUS_OBJECT_NAME_NOT_FOUND, STATUS_OBJECT_PATH_NOT_FOUND, STATUS_OBJECT_PATH_SYNTAX_BAD,
    SmbError,
)
from .errno_status import status_from_oserror
from .streams import split_stream

MAX_COMPONENT_UNITS = 255  # UTF-16 code units per name component (MS-FSCC 2.1.5.2)

# MS-FSCC 2.1.5.2 characters no component may hold, plus "/" (a POSIX separator), plus lone
# surrogates: `_decode` never yields one (strict), but rename/link targets come decoded with
# surrogatepass (fs/file_info.py) and would reach os.* as names the file system encoding
# cannot encode (UnicodeEncodeError); to the client they are OBJECT_NAME_INVALID, as in CREATE.
_BAD_CHARS = re.compile(r'[\x00-\x1f<>:"|?*/\ud800-\udfff]')
_utf16_le_decode = codecs.utf_16_le_decode


def _utf16_units(component: str) -> int:
    n = len(component)
    if component.isascii():
        return n
    return n + sum(1 for ch in component if ord(ch) > 0xFFFF)  # surrogate pairs count twice


def parse_name(raw: Any, leading_backslash_ok: bool = False) -> str:
    """The share-relative name (backslash-separated, "" = root) of a wire UTF-16LE name.

    Raises SmbError: INVALID_PARAMETER (odd length, leading backslash), OBJECT_NAME_INVALID,
    OBJECT_PATH_SYNTAX_BAD (".." above the root). See the module docstring.
    """
    name = _decode(raw)
    return check_name(name, leading_backslash_ok) if name else ""


def _decode(raw: Any) -> str:
    if len(raw) & 1:
        raise SmbError(STATUS_INVALID_PARAMETER)  # MS-SMB2 3.3.5.9: NameLength % 2
    if not raw:
        return ""
    try:
        return _utf16_le_decode(raw, "strict", True)[0]
    except UnicodeDecodeError:
        raise SmbError(STATUS_OBJECT_NAME_INVALID) from None


def parse_name_stream(raw: Any) -> tuple[str, str | None]:
    """`parse_name` for CREATE: (share-relative name, stream). The stream is None without any
    stream syntax, "" for an explicit default stream ("f::$DATA"), else the stream name as
    the client spelled it. Raises what `parse_name` and `streams.split_stream` raise."""
    name = _decode(raw)
    if ":" not in name:
        return (check_name(name) if name else ""), None
    path, stream = split_stream(name)
    if path.endswith("\\"):
        raise SmbError(STATUS_OBJECT_NAME_INVALID)  # "dir\\:s"
    return check_name(path), stream


def has_trailing_backslash(raw: Any) -> bool:
    """Whether a wire UTF-16LE name ends in a backslash (the caller may require a directory)."""
    n = len(raw)
    return n >= 2 and raw[n - 2] == 0x5C and raw[n - 1] == 0


def check_name(name: str, leading_backslash_ok: bool = False) -> str:
    """Validate and normalise an already decoded client name; see `parse_name`."""
    if not name:
        return ""
    if name[0] == "\\":
        if not leading_backslash_ok:
            raise SmbError(STATUS_INVALID_PARAMETER)  # MS-SMB2 3.3.5.9
        name = name[1:]
    if ":" in name:
        low = name[-7:].lower()
        if low == "::$data":
            name = name[:-7]
        elif low.endswith(":$data"):
            name = name[:-6]
        # any colon left is stream syntax (or a drive letter): refused below
    if name.endswith("\\"):
        name = name[:-1]
    if not name:
        return ""
    if _BAD_CHARS.search(name) is not None:
        raise SmbError(STATUS_OBJECT_NAME_INVALID)
    parts = name.split("\\")
    if len(parts) == 1 and len(name) <= 127 and name != "." and name != "..":
        return name  # the common case: one plain component
    out: list[str] = []
    for part in parts:
        if not part:
            raise SmbError(STATUS_OBJECT_NAME_INVALID)  # "a\\b"
        if part == ".":
            continue
        if part == "..":
            if not out:
                raise SmbError(STATUS_OBJECT_PATH_SYNTAX_BAD)  # would leave the share
            out.pop()
            continue
        if len(part) > 127 and _utf16_units(part) > MAX_COMPONENT_UNITS:
            raise SmbError(STATUS_OBJECT_NAME_INVALID)
        out.append(part)
    return "\\".join(out)


def split_name(name: str) -> tuple[str, str]:
    """(parent, last component) of a parsed name; ("", "") for the root."""
    i = name.rfind("\\")
    if i < 0:
        return "", name
    return name[:i], name[i + 1:]


def is_inside(root: str, path: str) -> bool:
    """Whether `path` (a realpath) is `root` (a realpath) or below it."""
    if path == root:
        return True
    if root == "/":
        return path.startswith("/")
    return path.startswith(root) and path[len(root):len(root) + 1] == "/"


def resolve(root: str, name: str, case_insensitive: bool = True) -> str:
    """The absolute, symlink-free on-disk path of a parsed name, inside `root`.

    The final component may not exist. See `resolve_stat`.
    """
    return resolve_stat(root, name, case_insensitive)[0]


def resolve_stat(root: str, name: str, case_insensitive: bool = True,
                 follow_last: bool = True) -> tuple[str, os.stat_result | None]:
    """`resolve`, plus the stat of the final object (following an in-share symlink), or
    None when the final component does not exist.

    `follow_last=False` (CREATE with FILE_OPEN_REPARSE_POINT): a symlink as the final
    component is not followed: its own path and lstat come back, wherever it points (the
    caller opens the link itself, O_PATH | O_NOFOLLOW). Intermediate components are
    resolved and confined as always.

    `root` must be a realpath (TreeConnect.root is). Raises SmbError: ACCESS_DENIED
    (a symlink leading out of the share, or a permission problem on the walk),
    OBJECT_PATH_NOT_FOUND (a missing or non-directory intermediate component),
    OBJECT_NAME_INVALID (a component `parse_name` would not have produced).
    """
    if not name:
        try:
            return root, os.stat(root)
        except OSError as exc:
            raise SmbError(_walk_status(exc)) from None
    parts = name.split("\\")
    for part in parts:  # defence in depth: only what parse_name produces gets to the disk
        if not part or part == "." or part == ".." or "/" in part or "\x00" in part:
            raise SmbError(STATUS_OBJECT_NAME_INVALID)
    last = len(parts) - 1
    cur = root
    st: os.stat_result | None = None
    for i, part in enumerate(parts):
        path = cur + "/" + part if cur != "/" else "/" + part
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
            if case_insensitive:
                found = find_case(cur, part)
                if found is not None:
                    path = cur + "/" + found if cur != "/" else "/" + found
                    try:
                        st = os.lstat(path)
                    except FileNotFoundError:
                        st = None
                    except OSError as exc:
                        raise SmbError(_walk_status(exc)) from None
        except OSError as exc:
            raise SmbError(_walk_status(exc)) from None
        if st is None:
            if i == last:
                return path, None
            raise SmbError(STATUS_OBJECT_PATH_NOT_FOUND)
        if _stat.S_ISLNK(st.st_mode):
            if i == last and not follow_last:
                return path, st  # the link itself (fs/reparse.py)
            # Decide confinement before looking behind the link (reveal nothing outside).
            path = os.path.realpath(path)
            if not is_inside(root, path):
                raise SmbError(STATUS_ACCESS_DENIED)
            try:
                st = os.stat(path)
            except FileNotFoundError:
                st = None  # dangling, but pointing inside the share
            except OSError as exc:
                raise SmbError(_walk_status(exc)) from None
            if st is None:
                if i == last:
                    return path, None
                raise SmbError(STATUS_OBJECT_PATH_NOT_FOUND)
        if i != last and not _stat.S_ISDIR(st.st_mode):
            raise SmbError(STATUS_OBJECT_PATH_NOT_FOUND)
        cur = path
    return cur, st


def _walk_status(exc: OSError) -> int:
    status = status_from_oserror(exc)
    if status == STATUS_OBJECT_NAME_NOT_FOUND:  # mid-walk (a race): the path is gone
        return STATUS_OBJECT_PATH_NOT_FOUND
    return status


def find_case(directory: str, part: str) -> str | None:
    """The entry of `directory` equal to `part` ignoring case, or None."""
    want = part.casefold()
    try:
        with os.scandir(directory) as it:
            for entry in it:
                if entry.name.casefold() == want:
                    return entry.name
    except OSError:
        return None
    return None


# -- veto files and hidden dot files ------------------------------------------------------------

@functools.lru_cache(maxsize=64)
def _veto_regex(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    alternatives = []
    for pattern in patterns:
        for piece in pattern.split("/"):  # the smb.conf "/a/b*/" form, if given unsplit
            if not piece:
                continue
            rx = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch)
                         for ch in piece)
            alternatives.append(rx)
    if not alternatives:
        return None
    return re.compile("(?:" + "|".join(alternatives) + r")\Z", re.IGNORECASE | re.DOTALL)


def veto_matcher(share: Any):
    """A compiled matcher for the share's veto_files (None when there are none)."""
    patterns = getattr(share, "veto_files", None) if share is not None else None
    if not patterns:
        return None
    if isinstance(patterns, str):
        patterns = (patterns,)
    return _veto_regex(tuple(patterns))


def is_vetoed(share: Any, name: str) -> bool:
    """Whether any component of `name` (one entry name or a parsed path) is a veto file."""
    rx = veto_matcher(share)
    if rx is None or not name:
        return False
    if "\\" not in name:
        return rx.match(name) is not None
    return any(rx.match(part) is not None for part in name.split("\\") if part)


def hides_dot_files(share: Any) -> bool:
    """Whether names starting with "." get FILE_ATTRIBUTE_HIDDEN on this share."""
    return bool(share is not None and getattr(share, "hide_dot_files", False))

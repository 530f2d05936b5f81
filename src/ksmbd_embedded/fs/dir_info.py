"""QUERY_DIRECTORY entries (MS-FSCC 2.4) and search-pattern matching (MS-FSA 2.1.4.4).

Building a response, the caller keeps one bytearray and, per entry:

    off = (prev_end + 7) & ~7          # entries start 8-byte aligned
    n = encode_entry(cls, meta, name, buf, off, limit)
    if n is None: stop (entry does not fit; nothing was written)
    if prev_off is not None: set_next_entry_offset(buf, prev_off, off)
    prev_off, prev_end = off, off + n

encode_entry writes NextEntryOffset 0; the caller patches the previous
entry's NextEntryOffset to the aligned distance (set_next_entry_offset).  The
response ends at the last entry's unpadded end.  Alignment padding between
entries is not written by encode_entry: start from a zeroed buffer (or zero
the gap) so no stale bytes leak.  ``limit`` is an absolute offset into
``buf`` (e.g. OutputBufferLength, or the start of the entries plus it); if
``buf`` is shorter than the entry end, it is grown with zeros.

FileIndex is 0, ShortName empty (ShortNameLength 0), EaSize 0 and
ReparsePointTag 0.  128-bit FileIds are the 64-bit file_id zero-extended.
"""

from __future__ import annotations

import functools
import struct

from .dos_attrs import FileMeta

FILE_DIRECTORY_INFORMATION = 1
FILE_FULL_DIRECTORY_INFORMATION = 2
FILE_BOTH_DIRECTORY_INFORMATION = 3
FILE_NAMES_INFORMATION = 12
FILE_ID_BOTH_DIRECTORY_INFORMATION = 37
FILE_ID_FULL_DIRECTORY_INFORMATION = 38
FILE_ID_EXTD_DIRECTORY_INFORMATION = 60
FILE_ID_64_EXTD_DIRECTORY_INFORMATION = 78
FILE_ID_64_EXTD_BOTH_DIRECTORY_INFORMATION = 79
FILE_ID_ALL_EXTD_DIRECTORY_INFORMATION = 80
FILE_ID_ALL_EXTD_BOTH_DIRECTORY_INFORMATION = 81

# Common head of the detailed classes: NextEntryOffset, FileIndex,
# CreationTime, LastAccessTime, LastWriteTime, ChangeTime, EndOfFile,
# AllocationSize, FileAttributes, FileNameLength  (64 bytes)
_HEAD = "<IIQQQQQQII"
# 2.4.10 FileDirectoryInformation: head, FileName at 64
_DIRECTORY = struct.Struct(_HEAD)
# 2.4.14 FileFullDirectoryInformation: + EaSize; FileName at 68
_FULL = struct.Struct(_HEAD + "I")
# 2.4.8 FileBothDirectoryInformation: + EaSize, ShortNameLength, Reserved1,
# ShortName[24]; FileName at 94
_BOTH = struct.Struct(_HEAD + "IBx24s")
# 2.4.28 FileNamesInformation: NextEntryOffset, FileIndex, FileNameLength;
# FileName at 12
_NAMES = struct.Struct("<III")
# 2.4.24 FileIdBothDirectoryInformation: Both + Reserved2(2), FileId(8);
# FileName at 104
_ID_BOTH = struct.Struct(_HEAD + "IBx24s2xQ")
# 2.4.25 FileIdFullDirectoryInformation: Full + Reserved(4), FileId(8);
# FileName at 80
_ID_FULL = struct.Struct(_HEAD + "I4xQ")
# 2.4.22 FileIdExtdDirectoryInformation: + EaSize, ReparsePointTag,
# FileId(16); FileName at 88
_ID_EXTD = struct.Struct(_HEAD + "IIQQ")
# FileId64ExtdDirectoryInformation: + EaSize, ReparsePointTag, FileId(8);
# FileName at 80
_ID64_EXTD = struct.Struct(_HEAD + "IIQ")
# FileId64ExtdBothDirectoryInformation: + EaSize, ReparsePointTag, FileId(8),
# ShortNameLength, Reserved1, ShortName[24]; FileName at 106
_ID64_EXTD_BOTH = struct.Struct(_HEAD + "IIQBx24s")
# FileIdAllExtdDirectoryInformation: + EaSize, ReparsePointTag, FileId(8),
# FileId128(16); FileName at 96
_ID_ALL_EXTD = struct.Struct(_HEAD + "IIQQQ")
# FileIdAllExtdBothDirectoryInformation: + EaSize, ReparsePointTag,
# FileId(8), FileId128(16), ShortNameLength, Reserved1, ShortName[24];
# FileName at 122
_ID_ALL_EXTD_BOTH = struct.Struct(_HEAD + "IIQQQBx24s")

_NEXT = struct.Struct("<I")


def _w_directory(buf, off, m, n):
    _DIRECTORY.pack_into(buf, off, 0, 0, m.creation_time, m.last_access_time,
                         m.last_write_time, m.change_time, m.end_of_file,
                         m.allocation_size, m.attributes, n)


def _w_full(buf, off, m, n):
    _FULL.pack_into(buf, off, 0, 0, m.creation_time, m.last_access_time,
                    m.last_write_time, m.change_time, m.end_of_file,
                    m.allocation_size, m.attributes, n, 0)


def _w_both(buf, off, m, n):
    _BOTH.pack_into(buf, off, 0, 0, m.creation_time, m.last_access_time,
                    m.last_write_time, m.change_time, m.end_of_file,
                    m.allocation_size, m.attributes, n, 0, 0, b"")


def _w_names(buf, off, m, n):
    _NAMES.pack_into(buf, off, 0, 0, n)


def _w_id_both(buf, off, m, n):
    _ID_BOTH.pack_into(buf, off, 0, 0, m.creation_time, m.last_access_time,
                       m.last_write_time, m.change_time, m.end_of_file,
                       m.allocation_size, m.attributes, n, 0, 0, b"", m.file_id)


def _w_id_full(buf, off, m, n):
    _ID_FULL.pack_into(buf, off, 0, 0, m.creation_time, m.last_access_time,
                       m.last_write_time, m.change_time, m.end_of_file,
                       m.allocation_size, m.attributes, n, 0, m.file_id)


def _w_id_extd(buf, off, m, n):
    _ID_EXTD.pack_into(buf, off, 0, 0, m.creation_time, m.last_access_time,
                       m.last_write_time, m.change_time, m.end_of_file,
                       m.allocation_size, m.attributes, n, 0, 0, m.file_id, 0)


def _w_id64_extd(buf, off, m, n):
    _ID64_EXTD.pack_into(buf, off, 0, 0, m.creation_time, m.last_access_time,
                         m.last_write_time, m.change_time, m.end_of_file,
                         m.allocation_size, m.attributes, n, 0, 0, m.file_id)


def _w_id64_extd_both(buf, off, m, n):
    _ID64_EXTD_BOTH.pack_into(buf, off, 0, 0, m.creation_time, m.last_access_time,
                              m.last_write_time, m.change_time, m.end_of_file,
                              m.allocation_size, m.attributes, n, 0, 0, m.file_id,
                              0, b"")


def _w_id_all_extd(buf, off, m, n):
    _ID_ALL_EXTD.pack_into(buf, off, 0, 0, m.creation_time, m.last_access_time,
                           m.last_write_time, m.change_time, m.end_of_file,
                           m.allocation_size, m.attributes, n, 0, 0, m.file_id,
                           m.file_id, 0)


def _w_id_all_extd_both(buf, off, m, n):
    _ID_ALL_EXTD_BOTH.pack_into(buf, off, 0, 0, m.creation_time, m.last_access_time,
                                m.last_write_time, m.change_time, m.end_of_file,
                                m.allocation_size, m.attributes, n, 0, 0, m.file_id,
                                m.file_id, 0, 0, b"")


# info class -> (fixed size = offset of FileName, writer)
_ENTRY = {
    FILE_DIRECTORY_INFORMATION: (_DIRECTORY.size, _w_directory),
    FILE_FULL_DIRECTORY_INFORMATION: (_FULL.size, _w_full),
    FILE_BOTH_DIRECTORY_INFORMATION: (_BOTH.size, _w_both),
    FILE_NAMES_INFORMATION: (_NAMES.size, _w_names),
    FILE_ID_BOTH_DIRECTORY_INFORMATION: (_ID_BOTH.size, _w_id_both),
    FILE_ID_FULL_DIRECTORY_INFORMATION: (_ID_FULL.size, _w_id_full),
    FILE_ID_EXTD_DIRECTORY_INFORMATION: (_ID_EXTD.size, _w_id_extd),
    FILE_ID_64_EXTD_DIRECTORY_INFORMATION: (_ID64_EXTD.size, _w_id64_extd),
    FILE_ID_64_EXTD_BOTH_DIRECTORY_INFORMATION: (_ID64_EXTD_BOTH.size, _w_id64_extd_both),
    FILE_ID_ALL_EXTD_DIRECTORY_INFORMATION: (_ID_ALL_EXTD.size, _w_id_all_extd),
    FILE_ID_ALL_EXTD_BOTH_DIRECTORY_INFORMATION: (_ID_ALL_EXTD_BOTH.size, _w_id_all_extd_both),
}

DIR_INFO_CLASSES = frozenset(_ENTRY)
# Offset of FileName in each class: an OutputBufferLength below this is
# STATUS_INFO_LENGTH_MISMATCH (MS-FSA 2.1.5.6.3.x).
DIR_INFO_FIXED_SIZES = {k: v[0] for k, v in _ENTRY.items()}


def encode_entry(info_class: int, meta: FileMeta, name, buf: bytearray,
                 offset: int, limit: int) -> int | None:
    """Write one entry at ``offset`` with NextEntryOffset 0.

    Returns the entry's unpadded length, or None (buf untouched) if
    ``offset + length > limit``.  ``name`` is a str, or bytes already in
    UTF-16LE.  Raises ValueError for a class not in DIR_INFO_CLASSES.
    """
    try:
        fixed, writer = _ENTRY[info_class]
    except KeyError:
        raise ValueError(f"unsupported directory information class {info_class}") from None
    nb = name.encode("utf-16-le", "surrogatepass") if isinstance(name, str) else name
    n = len(nb)
    end = offset + fixed + n
    if end > limit:
        return None
    have = len(buf)
    if have < end:
        buf.extend(bytes(end - have))
    writer(buf, offset, meta, n)
    buf[offset + fixed:end] = nb
    return fixed + n


def set_next_entry_offset(buf: bytearray, prev_offset: int, offset: int) -> None:
    """Point the entry at ``prev_offset`` to the one at ``offset``."""
    _NEXT.pack_into(buf, prev_offset, offset - prev_offset)


# --- search patterns (MS-FSA 2.1.4.4) --------------------------------------

DOS_STAR = "<"
DOS_QM = ">"
DOS_DOT = '"'
WILDCARD_CHARS = frozenset('*?<>"')


class _Upcase(dict):
    """str.translate table: code point -> its single-character uppercase.

    Characters whose uppercase is more than one character (e.g. U+00DF)
    stay as they are, so the upcased string keeps the original's length, as
    with the per-character upcase table Windows uses.
    """

    def __missing__(self, cp: int) -> str:
        c = chr(cp)
        u = c.upper()
        r = u if len(u) == 1 else c
        if len(self) < 65536:
            self[cp] = r
        return r


_UPCASE = _Upcase()


def upcase(s: str) -> str:
    """Case-fold for name comparison: per-character uppercase, length-preserving."""
    if s.isascii():
        return s.upper()
    return s.translate(_UPCASE)


def _closure(s: int, eps: int) -> int:
    while True:
        t = s | ((s & eps) << 1)
        if t == s:
            return s
        s = t


def _compile_nfa(pattern: str):
    """Bit-parallel matcher for a pattern with wildcards: O(len(name)) steps
    of a few integer operations, whatever the pattern (no backtracking)."""
    up = upcase(pattern)
    m = len(up)
    star = dstar = anyq = dqm = ddot = 0
    lit: dict[str, int] = {}
    for p, c in enumerate(up):
        bit = 1 << p
        if c == "*":
            star |= bit
        elif c == "<":
            dstar |= bit
        elif c == "?":
            anyq |= bit
        elif c == ">":
            dqm |= bit
        elif c == '"':
            ddot |= bit
        else:
            lit[c] = lit.get(c, 0) | bit
    accept = 1 << m
    # Zero-width moves before the next name character: * and < always; > when
    # the next character is '.' or the name has ended; " only at the end.
    eps_char = star | dstar
    eps_dot = eps_char | dqm
    eps_end = eps_dot | ddot
    adv_dot = anyq | ddot       # states consuming a '.' and moving on
    adv_other = anyq | dqm      # ... consuming any other character
    stay_all = star | dstar     # states consuming a character and staying
    lit_get = lit.get

    def match(name: str) -> bool:
        if not name:
            return m == 0
        u = upcase(name)
        n = len(u)
        last_dot = u.rfind(".")
        s = _closure(1, eps_dot if u[0] == "." else eps_char)
        i = 0
        for ch in u:
            if ch == ".":
                adv = adv_dot | lit_get(ch, 0)
                # DOS_STAR consumes a '.' unless it is the name's last one.
                stay = stay_all if i != last_dot else star
            else:
                adv = adv_other | lit_get(ch, 0)
                stay = stay_all
            s = ((s & adv) << 1) | (s & stay)
            if not s:
                return False
            i += 1
            eps = eps_end if i == n else eps_dot if u[i] == "." else eps_char
            if s & eps:
                s = _closure(s, eps)
        return bool(s & accept)

    return match


def _match_any(name: str) -> bool:
    return bool(name)


@functools.lru_cache(maxsize=128)
def compile_pattern(pattern: str):
    """A function name -> bool for ``pattern``, case-insensitive (cached).

    Fast paths: "*" and "*.*" match every non-empty name; a pattern without
    wildcards is a case-insensitive equality; "*" + literal and literal + "*"
    are case-insensitive suffix and prefix tests.  An empty pattern matches only an empty
    name (the SMB2 caller substitutes "*" for an empty search pattern).
    """
    if pattern == "*" or pattern == "*.*":
        return _match_any
    if not WILDCARD_CHARS.intersection(pattern):
        up = upcase(pattern)
        n = len(up)
        return lambda name: len(name) == n and upcase(name) == up
    if pattern[0] == "*" and not WILDCARD_CHARS.intersection(pattern[1:]):
        tail = upcase(pattern[1:])
        return lambda name: upcase(name).endswith(tail)
    if pattern[-1] == "*" and not WILDCARD_CHARS.intersection(pattern[:-1]):
        head = upcase(pattern[:-1])
        return lambda name: upcase(name).startswith(head)
    return _compile_nfa(pattern)


def match_pattern(pattern: str, name: str) -> bool:
    """MS-FSA 2.1.4.4 (FsRtlIsNameInExpression, IgnoreCase TRUE).

    ``*`` any run, ``?`` one character, ``<`` (DOS_STAR) any run up to the
    name's final '.', ``>`` (DOS_QM) one character, or nothing at a '.' or
    at the end of the name, ``"`` (DOS_DOT) a '.', or nothing at the end.
    """
    return compile_pattern(pattern)(name)

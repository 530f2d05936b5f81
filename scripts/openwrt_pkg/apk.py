"""apk v3 packages (.apk) and indexes (packages.adb), as apk-tools 3 makes them for OpenWrt 25.12.

``write_package`` gives the bytes ``apk mkpkg`` (apk-tools 3.0.5) writes for the same tree,
info and scripts, and ``write_index`` the bytes of ``apk mkndx --allow-untrusted``; the tests
compare both byte for byte with files captured from the real tool.  ``read_package`` and
``read_index`` decode such files and check them (a package's file hashes against its data).
The container encoding is in adb.py; this module holds the schemas (apk_adb.h / apk_adb.c) and
what app_mkpkg.c and app_mkndx.c put in them:

* package (schema ``pckg``): root object {1 info, 2 paths, 3 scripts, 4 triggers,
  5 replaces-priority}; info is the pkginfo object below; paths an array of directories
  {1 name, 2 acl, 3 files}, files {1 name, 2 acl, 3 size, 4 mtime, 5 hash, 6 target},
  acl {1 mode, 2 user, 3 group, 4 xattrs}.  After the ADB block comes one DATA block per
  regular file with content: u32 path index, u32 file index (1-based, in the stored, sorted
  arrays), then the bytes.
* index (schema ``indx``): root {1 description, 2 packages, 3 pkgname-spec}; packages is an
  array of pkginfo objects.
* pkginfo: 1 name, 2 version, 3 hashes, 4 description, 5 arch, 6 license, 7 origin,
  8 maintainer, 9 url, 10 repo-commit, 11 build-time, 12 installed-size, 13 file-size,
  14 provider-priority, 15 depends, 16 provides, 17 replaces, 18 install-if, 19 recommends,
  20 layer, 21 tags.  A dependency is {1 name, 2 version, 3 match}.

What mkpkg does (app_mkpkg.c mkpkg_main, in this order, which fixes the heap layout):

1. the --info fields, in field-number order (assign_fields); a dependency list is split at
   spaces/newlines, each dependency object is written as parsed, then the array is sorted
   (by name, then version, then match) with exact duplicates dropped;
2. the root directory, then every directory of the tree in strcmp order of its full path
   (mkpkg_scan_dirent + apk_string_array_qsort).  For each: its files in name order, each as
   name, sha256 hash (regular files), target (symlinks: u16 S_IFLNK = 0xa000 then the link
   text), mtime, size (a symlink's size is the link length), acl {mode & 07777, "root",
   "root"} and the file object; then the directory's name (NULL for the root), acl
   (mode 0755 for directories we add), its files array (sorted by name) and the directory
   object.  Empty directories are kept (mkpkg's default --compat keeps root and dir nodes);
3. installed-size = the sum of regular file sizes (1 if that is 0 but a tree or scripts were
   given), then "hashes" as 20 zero bytes written past the dedup table (adb_w_blob_raw), the
   info object, the paths array (sorted by name), the scripts blobs and object, the root;
4. "hashes" is then filled with the first 20 bytes of sha256 over the whole ADB heap (header
   included) as it was with those zeros;
5. the ADB block and the DATA blocks go through ``ADBd`` deflate (level 9).

What mkndx does (app_mkndx.c mkndx_main, mkndx_parse_v3meta): for each package in argument
order it copies the package's info object field by field into the index heap (adb_w_copy,
which also copies the now-unused 20-byte "hashes" blob), sets file-size to the .apk's size
and "hashes" to the sha256 of the package's ADB block payload, writes the object; the array
is then sorted by every pkginfo field in order (name, version by apk version rules, ...).
"""

from __future__ import annotations

import hashlib
import stat
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import adb
from .adb import NULL, AdbError, AdbWriter, ArraySchema, ObjectSchema, Scalar

# --- versions (version.c, apk-tools 3) -------------------------------------------------------

_INITIAL_DIGIT, _DIGIT, _LETTER, _SUFFIX, _SUFFIX_NO, _COMMIT_HASH, _REVISION_NO, _END, \
    _INVALID = range(9)
# version.c DECLARE_SUFFIXES: pre-release suffixes sort below SUFFIX_NONE (5), others above.
_SUFFIX_NONE = 5
_SUFFIXES = {b"alpha": 1, b"beta": 2, b"pre": 3, b"rc": 4,
             b"cvs": 6, b"svn": 7, b"git": 8, b"hg": 9, b"p": 10}
_HEX = b"0123456789abcdef"


@dataclass
class _Token:
    kind: int = _INITIAL_DIGIT
    suffix: int = 0
    number: int = 0
    value: bytes = b""


class _Tokens:
    """token_first()/token_next() of version.c over one version string."""

    def __init__(self, ver: bytes) -> None:
        self.ver, self.pos, self.t = ver, 0, _Token()
        self._digits()

    def _span(self, allowed: bytes) -> bytes:
        start = self.pos
        while self.pos < len(self.ver) and self.ver[self.pos] in allowed:
            self.pos += 1
        return self.ver[start:self.pos]

    def _digits(self) -> None:
        self.t.value = self._span(b"0123456789")
        self.t.number = int(self.t.value) if self.t.value else 0
        if not self.t.value:
            self.t.kind = _INVALID

    def next(self) -> None:
        t, ver = self.t, self.ver
        if self.pos >= len(ver):
            t.kind = _END
            return
        ch = ver[self.pos]
        if 0x61 <= ch <= 0x7A:  # a-z
            if t.kind > _DIGIT:
                t.kind = _INVALID
                return
            t.value, t.kind = ver[self.pos:self.pos + 1], _LETTER
            self.pos += 1
        elif ch == 0x2E or 0x30 <= ch <= 0x39:  # '.' or a digit
            if ch == 0x2E:
                if t.kind > _DIGIT:
                    t.kind = _INVALID
                    return
                self.pos += 1
            if t.kind in (_INITIAL_DIGIT, _DIGIT):
                t.kind = _DIGIT
            elif t.kind == _SUFFIX:
                t.kind = _SUFFIX_NO
            else:
                t.kind = _INVALID
                return
            self._digits()
        elif ch == 0x5F:  # '_'
            if t.kind > _SUFFIX_NO:
                t.kind = _INVALID
                return
            self.pos += 1
            t.value = self._span(b"abcdefghijklmnopqrstuvwxyz")
            t.suffix = _SUFFIXES.get(t.value, 0)
            t.kind = _SUFFIX if t.suffix else _INVALID
        elif ch == 0x7E:  # '~'
            if t.kind >= _COMMIT_HASH:
                t.kind = _INVALID
                return
            self.pos += 1
            t.value = self._span(_HEX)
            t.kind = _COMMIT_HASH if t.value else _INVALID
        elif ch == 0x2D:  # '-'
            if t.kind >= _REVISION_NO or ver[self.pos:self.pos + 2] != b"-r":
                t.kind = _INVALID
                return
            self.pos += 2
            t.kind = _REVISION_NO
            self._digits()
        else:
            t.kind = _INVALID


def version_valid(ver: str | bytes) -> bool:
    """apk_version_validate(): digit{.digit}...{letter}{_suf{#}}...{~hash}{-r#}."""
    toks = _Tokens(ver.encode() if isinstance(ver, str) else ver)
    while toks.t.kind < _END:
        toks.next()
    return toks.t.kind == _END


def _token_cmp(a: _Token, b: _Token) -> int:
    if a.kind == _DIGIT and (a.value[:1] == b"0" or b.value[:1] == b"0"):
        x, y = a.value, b.value  # a leading zero compares as a string (Gentoo rule)
    elif a.kind in (_INITIAL_DIGIT, _DIGIT, _SUFFIX_NO, _REVISION_NO):
        x, y = a.number, b.number
    elif a.kind == _LETTER:
        x, y = a.value[0], b.value[0]
    elif a.kind == _SUFFIX:
        x, y = a.suffix, b.suffix
    else:
        x, y = a.value, b.value
    return (x > y) - (x < y)


def version_compare(a: str | bytes | None, b: str | bytes | None) -> int:
    """<0, 0 or >0 as apk-tools 3 orders versions (apk_version_compare).  Like the ADB
    version schema's compare, a NULL version is "equal" to anything."""
    if a is None or b is None:
        return 0
    ta = _Tokens(a.encode() if isinstance(a, str) else a)
    tb = _Tokens(b.encode() if isinstance(b, str) else b)
    while ta.t.kind == tb.t.kind and ta.t.kind < _END:
        r = _token_cmp(ta.t, tb.t)
        if r:
            return r
        ta.next()
        tb.next()
    x, y = ta.t, tb.t
    if x.kind == y.kind:
        return 0
    if x.kind == _SUFFIX and x.suffix < _SUFFIX_NONE:
        return -1
    if y.kind == _SUFFIX and y.suffix < _SUFFIX_NONE:
        return 1
    return -1 if x.kind > y.kind else (1 if y.kind > x.kind else 0)


# --- names and dependencies (ctype.c, package.c apk_dep_parse, apk_adb.c) --------------------

_ALNUM = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_PKGNAME = _ALNUM | frozenset(b"+-._")
_DEPNAME = _PKGNAME | frozenset(b",:/[]")
_DEPCOMP = frozenset(b"<=>~")
_DEPSEP = b" \n"

VERSION_EQUAL, VERSION_LESS, VERSION_GREATER, VERSION_FUZZY, VERSION_CONFLICT = 1, 2, 4, 8, 16
DEPMASK_ANY = VERSION_EQUAL | VERSION_LESS | VERSION_GREATER
DEPMASK_CHECKSUM = VERSION_LESS | VERSION_GREATER


def _check_name(name: bytes) -> bytes:
    """name_fromstring(): a package name starts alphanumeric and uses [A-Za-z0-9+._-]."""
    if not name or name[0] not in _ALNUM or not set(name) <= _PKGNAME:
        raise ValueError(f"invalid package name {name!r}")
    return name


def parse_dependency(spec: str | bytes) -> tuple[bytes, bytes | None, int]:
    """``[!]name[op version]`` -> (name, version, op mask) as apk_dep_parse() and
    dependency_fromstring() read it; the mask has VERSION_CONFLICT for ``!``."""
    raw = spec.encode() if isinstance(spec, str) else spec
    rest, op = raw, 0
    if rest.startswith(b"!"):
        rest, op = rest[1:], VERSION_CONFLICT
    cut = next((i for i, c in enumerate(rest) if c in _DEPCOMP), None)
    if cut is None:
        name, version, op = rest, None, op | DEPMASK_ANY
    else:
        name, tail = rest[:cut], rest[cut:]
        end = next((i for i, c in enumerate(tail) if c not in _DEPCOMP), None)
        if end is None:
            raise ValueError(f"dependency without a version after its operator: {spec!r}")
        for c in tail[:end]:
            op |= {0x3C: VERSION_LESS, 0x3E: VERSION_GREATER, 0x3D: VERSION_EQUAL,
                   0x7E: VERSION_FUZZY | VERSION_EQUAL}[c]
        version = tail[end:]
        if (op & DEPMASK_CHECKSUM) != DEPMASK_CHECKSUM and not version_valid(version):
            raise ValueError(f"invalid version in dependency {spec!r}")
    if not name or not set(name) <= _DEPNAME:
        raise ValueError(f"invalid dependency name in {spec!r}")
    return name, version, op


def _op_string(op: int) -> str:
    """apk_version_op_string()."""
    return {VERSION_LESS: "<", VERSION_LESS | VERSION_EQUAL: "<=",
            VERSION_LESS | VERSION_EQUAL | VERSION_FUZZY: "<~",
            VERSION_EQUAL | VERSION_FUZZY: "~", VERSION_FUZZY: "~", VERSION_EQUAL: "=",
            VERSION_GREATER | VERSION_EQUAL: ">=",
            VERSION_GREATER | VERSION_EQUAL | VERSION_FUZZY: ">~", VERSION_GREATER: ">",
            DEPMASK_CHECKSUM: "><", DEPMASK_ANY: ""}.get(op & ~VERSION_CONFLICT, "?")


def format_dependency(dep: Mapping[str, Any]) -> str:
    """dependency_tostring(): the text form of a decoded dependency object."""
    name = _text(dep.get("name", b""))
    op = dep.get("match", 0) or VERSION_EQUAL
    bang = "!" if op & VERSION_CONFLICT else ""
    if "version" not in dep:
        return bang + name
    return f"{bang}{name}{_op_string(op)}{_text(dep['version'])}"


def _split_deps(value: str | Iterable[str]) -> list[bytes]:
    """apk_dep_split(): dependencies are separated by runs of spaces/newlines."""
    text = value if isinstance(value, str) else " ".join(value)
    return text.encode().replace(b"\n", b" ").split()


# --- schemas (apk_adb.c) ---------------------------------------------------------------------

VERSION = Scalar(compare=version_compare)
DEPENDENCY = ObjectSchema((("name", adb.BLOB), ("version", VERSION), ("match", adb.INT)))
DEPENDENCY_ARRAY = ArraySchema(DEPENDENCY, sort="unique")
STRING_ARRAY = ArraySchema(adb.BLOB)

# (name, how --info reads it / how read_* shows it), in field order (ADBI_PI_*).
PKGINFO_FIELDS: tuple[tuple[str, str], ...] = (
    ("name", "name"), ("version", "version"), ("hashes", "hex"), ("description", "str"),
    ("arch", "str"), ("license", "str"), ("origin", "str"), ("maintainer", "str"),
    ("url", "str"), ("repo-commit", "hex"), ("build-time", "int"), ("installed-size", "int"),
    ("file-size", "int"), ("provider-priority", "int"), ("depends", "deps"),
    ("provides", "deps"), ("replaces", "deps"), ("install-if", "deps"),
    ("recommends", "deps"), ("layer", "int"), ("tags", "strings"))
_KIND_SCHEMA = {"name": adb.BLOB, "version": VERSION, "hex": adb.BLOB, "str": adb.BLOB,
                "int": adb.INT, "deps": DEPENDENCY_ARRAY, "strings": STRING_ARRAY}
PKGINFO = ObjectSchema(tuple((n, _KIND_SCHEMA[k]) for n, k in PKGINFO_FIELDS))
PKGINFO_ARRAY = ArraySchema(PKGINFO, sort="sort")
INDEX = ObjectSchema((("description", adb.BLOB), ("packages", PKGINFO_ARRAY),
                      ("pkgname-spec", adb.BLOB)))

ACL = ObjectSchema((("mode", adb.INT), ("user", adb.BLOB), ("group", adb.BLOB),
                    ("xattrs", ArraySchema(adb.BLOB, sort="sort"))))
FILE = ObjectSchema((("name", adb.BLOB), ("acl", ACL), ("size", adb.INT), ("mtime", adb.INT),
                     ("hash", adb.BLOB), ("target", adb.BLOB)))
FILE_ARRAY = ArraySchema(FILE, sort="sort")
DIR = ObjectSchema((("name", adb.BLOB), ("acl", ACL), ("files", FILE_ARRAY)))
DIR_ARRAY = ArraySchema(DIR, sort="sort")
SCRIPT_NAMES = ("trigger", "pre-install", "post-install", "pre-deinstall", "post-deinstall",
                "pre-upgrade", "post-upgrade")
SCRIPTS = ObjectSchema(tuple((n, adb.BLOB) for n in SCRIPT_NAMES))
PACKAGE = ObjectSchema((("info", PKGINFO), ("paths", DIR_ARRAY), ("scripts", SCRIPTS),
                        ("triggers", STRING_ARRAY), ("replaces-priority", adb.INT)))

# --info keys write_package takes: every pkginfo field mkpkg's parse_info accepts except
# hashes, installed-size and file-size (computed) and tags; plus the package-level
# replaces-priority.
INFO_KEYS = tuple(n for n, _ in PKGINFO_FIELDS
                  if n not in ("hashes", "installed-size", "file-size", "tags"))
PACKAGE_INFO_KEYS = ("replaces-priority",)

_PI = {name: i for i, (name, _) in enumerate(PKGINFO_FIELDS, 1)}
_UID_LEN = 20  # mkpkg: apk_digest_alg_len(APK_DIGEST_SHA1) bytes of sha256
_S_IFLNK_LE16 = struct.pack("<H", stat.S_IFLNK)
_S_IFREG_LE16 = struct.pack("<H", stat.S_IFREG)
_OWNER = b"root"
_DIR_MODE = 0o755


# --- writing a package -----------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    """One path of the package tree (what mkpkg would find under --files)."""

    path: str           # relative to /, no leading slash, e.g. "etc/config/ksmbd"
    kind: str           # "dir", "file" or "symlink"
    mode: int           # permission bits, e.g. 0o755
    data: bytes = b""   # file content (kind "file")
    target: str = ""    # symlink target (kind "symlink")


def _int_value(key: str, value: object) -> int:
    """int_fromstring(): a decimal number (an int is taken as is)."""
    if isinstance(value, bool):
        raise ValueError(f"info field {key!r}: not a number: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    raise ValueError(f"info field {key!r}: not a number: {value!r}")


def _write_info_field(w: AdbWriter, key: str, kind: str, value: object) -> int:
    """adb_wo_val_fromstring() for one --info field."""
    if kind == "deps":
        if not isinstance(value, (str, list, tuple)):
            raise ValueError(f"info field {key!r}: expected a list of dependencies")
        deps = []
        for spec in _split_deps(value):  # dependencies_fromstring()
            name, version, op = parse_dependency(spec)
            fields = [w.blob(name), NULL, NULL]
            if op != DEPMASK_ANY:
                fields[1] = w.blob(version or b"")
                if op != VERSION_EQUAL:
                    fields[2] = w.integer(op)
            deps.append(w.obj(fields))
        return w.array(deps, DEPENDENCY_ARRAY)
    if kind == "int":
        return w.integer(_int_value(key, value))
    if not isinstance(value, str):
        raise ValueError(f"info field {key!r}: expected a string, got {value!r}")
    raw = value.encode()
    if kind == "name":
        return w.blob(_check_name(raw))
    if kind == "version":
        if not version_valid(raw):
            raise ValueError(f"invalid version {value!r} (apk syntax: 1.2.3-r4)")
        return w.blob(raw)
    if kind == "hex":  # hexblob_fromstring()
        if len(raw) % 2 or len(raw) > 512 or not set(raw.lower()) <= set(_HEX):
            raise ValueError(f"info field {key!r}: not a hex string: {value!r}")
        return w.blob(bytes.fromhex(value))
    return w.blob(raw)


def _check_entries(entries: Iterable[Entry]) -> tuple[list[str], dict[str, int],
                                                        dict[str, list[Entry]]]:
    """The directory list in mkpkg's processing order, their modes, and each one's files."""
    explicit: dict[str, Entry] = {}
    for e in entries:
        parts = e.path.split("/")
        if not e.path or any(p in ("", ".", "..") for p in parts) or "\0" in e.path:
            raise ValueError(f"invalid entry path {e.path!r}")
        if e.path in explicit:
            raise ValueError(f"duplicate entry {e.path!r}")
        if e.kind not in ("dir", "file", "symlink"):
            raise ValueError(f"{e.path}: unknown kind {e.kind!r}")
        if not 0 <= e.mode <= 0o7777:
            raise ValueError(f"{e.path}: mode {e.mode:#o} is not permission bits")
        if e.kind != "file" and e.data:
            raise ValueError(f"{e.path}: only files have data")
        if (e.kind == "symlink") != bool(e.target):
            raise ValueError(f"{e.path}: a symlink needs a target and only a symlink has one")
        if len(e.target.encode()) > 1022:  # mkpkg's readlinkat() buffer
            raise ValueError(f"{e.path}: symlink target too long")
        explicit[e.path] = e
    dir_modes = {"": _DIR_MODE}
    dir_modes.update({p: e.mode for p, e in explicit.items() if e.kind == "dir"})
    files: dict[str, list[Entry]] = {}
    for p, e in explicit.items():
        parent = p.rpartition("/")[0]
        for i, ch in enumerate(p):
            if ch == "/":
                anc = p[:i]
                if anc in explicit and explicit[anc].kind != "dir":
                    raise ValueError(f"{p}: parent {anc!r} is not a directory")
                dir_modes.setdefault(anc, _DIR_MODE)
        if e.kind != "dir":
            files.setdefault(parent, []).append(e)
    order = [""] + sorted((d for d in dir_modes if d), key=lambda d: d.encode())
    for lst in files.values():
        lst.sort(key=lambda e: e.path.rpartition("/")[2].encode())
    return order, dir_modes, files


def _write_acl(w: AdbWriter, mode: int) -> int:
    return w.obj([w.integer(mode), w.blob(_OWNER), w.blob(_OWNER)])


def write_package(info: dict, entries: list[Entry], scripts: dict[str, bytes],
                  mtime: int) -> bytes:
    """The .apk ``apk mkpkg`` makes from ``--info`` fields, a tree, ``--script`` files.

    ``info``: name and version (required), arch (required here: mkpkg would use its own
    build arch), description, license, origin, url, maintainer, repo-commit (hex),
    build-time, provider-priority, layer, replaces-priority (ints), depends, provides,
    replaces, install-if, recommends (a list of ``[!]name[op version]``, or one
    space-separated string).  ``entries``: the tree; parent directories that are not listed
    get mode 0755, everything is owned by root:root and has mtime ``mtime``; an empty list
    is a package without ``--files``.  ``scripts``: keyed by apk's names (SCRIPT_NAMES)."""
    unknown = set(info) - set(INFO_KEYS) - set(PACKAGE_INFO_KEYS)
    if unknown:
        raise ValueError(f"unsupported info fields: {sorted(unknown)}")
    for required in ("name", "version", "arch"):
        if not info.get(required):
            raise ValueError(f"required info field {required!r} not provided")
    bad_scripts = set(scripts) - set(SCRIPT_NAMES)
    if bad_scripts:
        raise ValueError(f"invalid script types: {sorted(bad_scripts)}")
    order, dir_modes, files = _check_entries(entries)
    if not entries:
        order = []  # no --files: no paths at all, not even the root directory

    w = AdbWriter(adb.SCHEMA_PACKAGE)
    pkginfo = [NULL] * len(PKGINFO_FIELDS)
    for i, (key, kind) in enumerate(PKGINFO_FIELDS, 1):  # assign_fields(): field order
        if key in info:
            pkginfo[i - 1] = _write_info_field(w, key, kind, info[key])
    package = [NULL] * len(PACKAGE.fields)
    if "replaces-priority" in info:
        package[4] = w.integer(_int_value("replaces-priority", info["replaces-priority"]))

    installed_size = 0
    contents: dict[str, bytes] = {}
    dirs = []
    for d in order:  # mkpkg_process_directory(): root first, then strcmp order
        file_objs = []
        for e in files.get(d, []):  # mkpkg_process_dirent(), names in strcmp order
            name = w.blob(e.path.rpartition("/")[2].encode())
            digest = target = NULL
            if e.kind == "file":
                digest = w.blob(hashlib.sha256(e.data).digest())
                size = len(e.data)
                installed_size += size
                contents[e.path] = e.data
            else:
                link = e.target.encode()
                target = w.blob(_S_IFLNK_LE16 + link)
                size = len(link)
            mtime_val = w.integer(mtime)
            size_val = w.integer(size)
            acl = _write_acl(w, e.mode)
            file_objs.append(w.obj([name, acl, size_val, mtime_val, digest, target]))
        dname = w.blob(d.encode())
        acl = _write_acl(w, dir_modes[d])
        dirs.append(w.obj([dname, acl, w.array(file_objs, FILE_ARRAY)]))

    if (entries or scripts) and installed_size == 0:
        installed_size = 1
    pkginfo[_PI["installed-size"] - 1] = w.integer(installed_size)
    uid = w.blob(bytes(_UID_LEN), cache=False)  # adb_wo_blob_raw(): filled in below
    pkginfo[_PI["hashes"] - 1] = uid
    package[0] = w.obj(pkginfo)
    package[1] = w.array(dirs, DIR_ARRAY)
    if scripts:
        package[2] = w.obj([w.blob(scripts.get(n, b"")) for n in SCRIPT_NAMES])
    w.set_root(w.obj(package))

    # "fill in unique id": sha256 of the heap as it is, truncated to 20 bytes
    uid_at = w.blob_offset(uid)
    w.buf[uid_at:uid_at + _UID_LEN] = hashlib.sha256(w.buf).digest()[:_UID_LEN]

    # adb_c_adb(), then one adb_c_block_data() per regular file with content, walking the
    # paths and files arrays as stored (sorted); the indices are 1-based
    pieces = [adb.file_header(adb.SCHEMA_PACKAGE), *adb.block_pieces(adb.BLOCK_ADB, bytes(w.buf))]
    view = w.view
    for i, dval in enumerate(view.items(package[1]), 1):
        dobj = view.decode(dval, DIR)
        dname = (dobj.get("name") or b"").decode()
        for j, fobj in enumerate(dobj.get("files", []), 1):
            if "target" in fobj or not fobj.get("size"):
                continue
            path = f"{dname}/{fobj['name'].decode()}" if dname else fobj["name"].decode()
            pieces += adb.block_pieces(adb.BLOCK_DATA, struct.pack("<II", i, j), contents[path])
    return adb.deflate(pieces)


# --- writing an index ------------------------------------------------------------------------

def write_index(packages: list[bytes]) -> bytes:
    """The unsigned packages.adb ``apk mkndx --allow-untrusted`` writes for these .apk files."""
    w = AdbWriter(adb.SCHEMA_INDEX)
    infos = []
    for data in packages:
        read_package(data)  # the package must be sound
        view, _ = adb.read_adb(data, adb.SCHEMA_PACKAGE, allow_data=True)
        src = view.items(view.root())
        if not src or adb.value_type(src[0]) not in (adb.TYPE_OBJECT, adb.TYPE_ARRAY):
            raise AdbError("package without an info object")
        fields = view.items(src[0])
        if len(fields) > len(PKGINFO_FIELDS):
            raise AdbError("package info has fields this writer does not know")
        copied = [w.copy(view, v) for v in fields]  # adb_wo_copyobj()
        copied += [NULL] * (len(PKGINFO_FIELDS) - len(copied))
        copied[_PI["file-size"] - 1] = w.integer(len(data))
        copied[_PI["hashes"] - 1] = w.blob(hashlib.sha256(view.adb).digest())
        infos.append(w.obj(copied))
    w.set_root(w.obj([NULL, w.array(infos, PKGINFO_ARRAY)]))
    return adb.deflate([adb.file_header(adb.SCHEMA_INDEX),
                        *adb.block_pieces(adb.BLOCK_ADB, bytes(w.buf))])


# --- reading ---------------------------------------------------------------------------------

def _text(value: Any) -> str:
    if not isinstance(value, bytes):
        raise AdbError(f"expected a string, got {value!r}")
    return value.decode()  # UnicodeDecodeError is a ValueError


def _format_info(raw: Any) -> dict[str, Any]:
    """A decoded pkginfo object as adbdump spells it: strings, hex for hashes and
    repo-commit, ints, dependencies in their ``[!]name[op version]`` text form."""
    if not isinstance(raw, dict):
        raise AdbError("missing package info")
    out: dict[str, Any] = {}
    for key, kind in PKGINFO_FIELDS:
        if key not in raw:
            continue
        value = raw[key]
        if kind == "hex":
            out[key] = value.hex()
        elif kind == "int":
            out[key] = value
        elif kind == "deps":
            out[key] = [format_dependency(d) for d in value]
        elif kind == "strings":
            out[key] = [_text(s) for s in value]
        else:
            out[key] = _text(value)
    return out


def _owner(acl: dict[str, Any]) -> dict[str, Any]:
    return {"mode": acl.get("mode", 0), "user": _text(acl.get("user", b"")),
            "group": _text(acl.get("group", b""))}


def _read_file(f: dict[str, Any]) -> dict[str, Any]:
    """One decoded file object as read_package() shows it (without its data yet)."""
    acl = f.get("acl", {})
    name = _text(f.get("name", b""))
    item: dict[str, Any] = {"name": name, "kind": "file", **_owner(acl),
                            "size": f.get("size", 0), "mtime": f.get("mtime", 0), "data": b""}
    if "xattrs" in acl:
        item["xattrs"] = {k.decode(): v for k, _, v in (x.partition(b"\0") for x in acl["xattrs"])}
    if "hash" in f:
        item["hash"] = f["hash"].hex()
    if "target" in f:  # u16 file type, then what it points at
        target = f["target"]
        if len(target) < 2:
            raise AdbError(f"{name}: truncated target")
        if target[:2] == _S_IFLNK_LE16:
            item["kind"], item["target"] = "symlink", _text(target[2:])
        elif target[:2] == _S_IFREG_LE16:
            item["kind"], item["target"] = "hardlink", _text(target[2:])
        else:
            item["kind"], item["target"] = "special", target.hex()
    elif "hash" not in f:
        raise AdbError(f"{name}: regular file without a hash")
    return item


def _hash_of(digest: bytes, data: bytes) -> bytes:
    algs = {20: hashlib.sha1, 32: hashlib.sha256, 64: hashlib.sha512}
    if len(digest) not in algs:
        raise AdbError(f"file hash of unknown length {len(digest)}")
    return algs[len(digest)](data).digest()


def _attach_data(paths: list[dict[str, Any]], blocks: list[adb.Block]) -> None:
    """Give each regular file the content of its DATA block, checked against size and hash."""
    filled: set[tuple[int, int]] = set()
    for blk in blocks:
        if blk.type != adb.BLOCK_DATA:
            continue
        if len(blk.payload) < 8:
            raise AdbError("truncated data block header")
        i, j = struct.unpack_from("<II", blk.payload)  # struct adb_data_package
        if not (1 <= i <= len(paths) and 1 <= j <= len(paths[i - 1]["files"])):
            raise AdbError(f"data block for unknown file {i}/{j}")
        if (i, j) in filled:
            raise AdbError(f"second data block for file {i}/{j}")
        filled.add((i, j))
        item = paths[i - 1]["files"][j - 1]
        content = blk.payload[8:]
        if item["kind"] != "file":
            raise AdbError(f"{item['name']}: data block for a {item['kind']}")
        if len(content) != item["size"]:
            raise AdbError(f"{item['name']}: data block of {len(content)} bytes, "
                           f"size {item['size']}")
        if _hash_of(bytes.fromhex(item["hash"]), content).hex() != item["hash"]:
            raise AdbError(f"{item['name']}: data does not match its hash")
        item["data"] = content
    for i, p in enumerate(paths, 1):
        for j, item in enumerate(p["files"], 1):
            if item["kind"] == "file" and item["size"] and (i, j) not in filled:
                raise AdbError(f"{item['name']}: missing data block")


def _resolve_hardlinks(paths: list[dict[str, Any]]) -> None:
    """A hardlink (target = u16 S_IFREG + path) shares the data of the file it names."""
    by_path = {f"{d['name']}/{f['name']}" if d["name"] else f["name"]: f
               for d in paths for f in d["files"]}
    for item in by_path.values():
        if item["kind"] == "hardlink":
            first = by_path.get(item["target"])
            if first is None or first["kind"] != "file":
                raise AdbError(f"{item['name']}: hardlink to unknown file")
            if "hash" in item and item["hash"] != first["hash"]:
                raise AdbError(f"{item['name']}: hardlink hash differs from its target")
            item["data"] = first["data"]


def read_package(data: bytes) -> dict[str, Any]:
    """Decode a .apk v3: {"info", "paths", "scripts"} (plus "triggers" and
    "replaces-priority" when set).  Each path is {"name" ("" for /), "mode", "user",
    "group", "files"}; each file {"name", "kind" ("file", "symlink", "hardlink",
    "special"), "mode", "user", "group", "size", "mtime", "hash" (hex, regular files),
    "target" (symlink/hardlink path; hex for device nodes), "data"}.  Every DATA block is
    matched to its file and checked against the file's size and hash; ValueError on
    anything malformed."""
    view, blocks = adb.read_adb(data, adb.SCHEMA_PACKAGE, allow_data=True)
    root = view.decode(view.root(), PACKAGE)
    if not isinstance(root, dict):
        raise AdbError("package root is not an object")
    paths = [{"name": _text(d.get("name", b"")), **_owner(d.get("acl", {})),
              "files": [_read_file(f) for f in d.get("files", [])]}
             for d in root.get("paths", [])]
    _attach_data(paths, blocks)
    _resolve_hardlinks(paths)
    out: dict[str, Any] = {"info": _format_info(root.get("info")), "paths": paths,
                           "scripts": dict(root.get("scripts", {}))}
    if root.get("triggers"):
        out["triggers"] = [_text(t) for t in root["triggers"]]
    if "replaces-priority" in root:
        out["replaces-priority"] = root["replaces-priority"]
    return out


def read_index(data: bytes) -> list[dict[str, Any]]:
    """The packages of a packages.adb, each as read_package()'s "info" (with file-size)."""
    view, _ = adb.read_adb(data, adb.SCHEMA_INDEX, allow_data=False)
    root = view.decode(view.root(), INDEX)
    if not isinstance(root, dict):
        raise AdbError("index root is not an object")
    return [_format_info(p) for p in root.get("packages", [])]

"""The apk v3 writer and reader (scripts/openwrt_pkg/apk.py) against packages made by the real
apk-tools 3.0.5 (tests/vectors/apk/): the same inputs give the same bytes, both decode to what
`apk adbdump` showed, and damaged files are refused with ValueError."""

from __future__ import annotations

import hashlib
import random
import re
import shlex
import struct
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO / "tests" / "vectors" / "apk"
INPUT = VECTORS / "input"
if str(REPO / "scripts") not in sys.path:
    sys.path.insert(0, str(REPO / "scripts"))

from openwrt_pkg import adb, apk  # noqa: E402

MTIME = 1767225600  # SOURCE_DATE_EPOCH of the capture


# --- the inputs of input/command.sh ------------------------------------------------------------

def manifest_entries() -> list[apk.Entry]:
    """The stage tree with the kinds, modes and link target recorded in input/manifest.txt."""
    entries = []
    for line in (INPUT / "manifest.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        mode, kind, path, *target = line.split()
        if kind == "dir":
            entries.append(apk.Entry(path, "dir", int(mode, 8)))
        elif kind == "file":
            entries.append(apk.Entry(path, "file", int(mode, 8),
                                     data=(INPUT / "stage" / path).read_bytes()))
        else:
            entries.append(apk.Entry(path, "symlink", int(mode, 8), target=target[0]))
    return entries


def mkpkg_commands() -> dict[str, dict]:
    """The `apk mkpkg` calls of command.sh by output name: info, scripts, files flag."""
    text = (INPUT / "command.sh").read_text().replace("\\\n", " ")
    commands = {}
    for line in text.splitlines():
        args = shlex.split(line, comments=True)
        if args[:2] != ["apk", "mkpkg"]:
            continue
        info: dict[str, str] = {}
        scripts: dict[str, bytes] = {}
        files, output = False, ""
        for opt, value in zip(args[2::2], args[3::2]):
            if opt == "--info":
                key, _, val = value.partition(":")
                info[key] = val
            elif opt == "--script":
                kind, _, path = value.partition(":")
                scripts[kind] = (INPUT / path).read_bytes()
            elif opt == "--files":
                files = value == "stage"
            elif opt == "--output":
                output = Path(value).name
        commands[output] = {"info": info, "scripts": scripts, "files": files}
    return commands


def build(output: str) -> bytes:
    cmd = mkpkg_commands()[output]
    return apk.write_package(cmd["info"], manifest_entries() if cmd["files"] else [],
                             cmd["scripts"], mtime=MTIME)


@pytest.fixture(scope="module")
def demo() -> bytes:
    return build("demo-1.2.3-r4.apk")


@pytest.fixture(scope="module")
def libc() -> bytes:
    return build("libc-0-r0.apk")


def vector(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


# --- `apk adbdump` output (a small YAML subset) --------------------------------------------------

def parse_adbdump(text: str) -> dict:
    """Mappings, `- ` sequences, `|` block scalars and quoted scalars, as adbdump writes them;
    scalars stay strings.  Comment lines are skipped (outside block scalars)."""
    lines = text.splitlines()
    pos = 0

    def skip() -> None:
        nonlocal pos
        while pos < len(lines) and (not lines[pos].strip() or lines[pos].lstrip().startswith("#")):
            pos += 1

    def indent_of(line: str) -> int:
        return len(line) - len(line.lstrip(" "))

    def scalar(raw: str) -> str:
        raw = re.sub(r"\s+#.*$", "", raw).strip()
        if raw.startswith("'") and raw.endswith("'"):
            return raw[1:-1].replace("''", "'")
        return raw

    def block(parent: int) -> str:
        nonlocal pos
        out = []
        while pos < len(lines) and (not lines[pos].strip() or indent_of(lines[pos]) > parent):
            out.append(lines[pos])
            pos += 1
        width = min(indent_of(line) for line in out if line.strip())
        return "".join(line[width:] + "\n" for line in out)

    def node(indent: int, first: str | None = None) -> object:
        nonlocal pos
        skip()
        line = first if first is not None else lines[pos]
        if line.lstrip().startswith("- "):
            return sequence(indent_of(line))
        return mapping(indent_of(line), first)

    def sequence(indent: int) -> list:
        nonlocal pos
        items = []
        while True:
            skip()
            if pos >= len(lines) or indent_of(lines[pos]) != indent \
                    or not lines[pos].lstrip().startswith("- "):
                return items
            rest = lines[pos].lstrip()[2:]
            if re.match(r"^[\w-]+:", rest):
                lines[pos] = " " * (indent + 2) + rest
                items.append(mapping(indent + 2))
            else:
                items.append(scalar(rest))
                pos += 1

    def mapping(indent: int, first: str | None = None) -> dict:
        nonlocal pos
        out: dict[str, object] = {}
        while True:
            skip()
            if pos >= len(lines) or indent_of(lines[pos]) != indent \
                    or lines[pos].lstrip().startswith("- "):
                return out
            key, _, rest = lines[pos].strip().partition(":")
            pos += 1
            rest = re.sub(r"^\s*#.*$", "", rest).strip()
            if rest == "|":
                out[key] = block(indent)
            elif rest:
                out[key] = scalar(rest)
            else:
                skip()
                out[key] = node(indent_of(lines[pos]))

    return mapping(0)


def data_block_sizes(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"^# data block, size: (\d+)$", text, re.M)]


def adb_block_size(text: str) -> int:
    return int(re.search(r"^# ADB block, size: (\d+),", text, re.M).group(1))


def package_as_dump(pkg: dict) -> dict:
    """read_package() output in adbdump's shape and spelling."""
    def acl(item: dict) -> dict:
        return {"mode": f"{item['mode']:04o}", "user": item["user"], "group": item["group"]}

    info = {k: (v if isinstance(v, list) else str(v)) for k, v in pkg["info"].items()}
    paths = []
    for d in pkg["paths"]:
        out: dict[str, object] = {"name": d["name"]} if d["name"] else {}
        out["acl"] = acl(d)
        files = []
        for f in d["files"]:
            fo = {"name": f["name"], "acl": acl(f), "size": str(f["size"]),
                  "mtime": str(f["mtime"])}
            if "hash" in f:
                fo["hash"] = f["hash"]
            if f["kind"] == "symlink":
                fo["target"] = (struct.pack("<H", 0o120000) + f["target"].encode()).hex() + "\n"
            files.append(fo)
        if files:
            out["files"] = files
        paths.append(out)
    return {"info": info, "paths": paths,
            "scripts": {k: v.decode() for k, v in pkg["scripts"].items()}}


# --- the vectors themselves --------------------------------------------------------------------

def test_vectors_match_their_checksums():
    for line in (VECTORS / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256(vector(name)).hexdigest() == digest, name


def test_manifest_describes_every_stage_path():
    stage = INPUT / "stage"
    on_disk = {p.relative_to(stage).as_posix() for p in stage.rglob("*")}
    entries = manifest_entries()
    assert {e.path for e in entries} == on_disk
    for e in entries:
        if e.kind == "symlink":  # the copy holds the link text
            assert (stage / e.path).read_text() == e.target
        assert (e.kind == "dir") == (stage / e.path).is_dir()


# --- (a) byte for byte ---------------------------------------------------------------------------

def test_demo_package_is_byte_exact(demo):
    assert demo == vector("demo-1.2.3-r4.apk")


def test_empty_package_is_byte_exact(libc):
    assert libc == vector("libc-0-r0.apk")


def test_index_is_byte_exact(demo, libc):
    assert apk.write_index([demo, libc]) == vector("packages.adb")
    assert apk.write_index([vector("demo-1.2.3-r4.apk"), vector("libc-0-r0.apk")]) \
        == vector("packages.adb")


def test_implied_parent_directories_equal_listed_ones(demo):
    """Directories left out of the entry list are added with mode 0755, as the tree walk did."""
    files_only = [e for e in manifest_entries() if e.kind != "dir"]
    cmd = mkpkg_commands()["demo-1.2.3-r4.apk"]
    assert apk.write_package(cmd["info"], files_only, cmd["scripts"], mtime=MTIME) == demo


def test_entry_order_and_list_form_do_not_matter(demo):
    """Entries in any order, dependencies as a list instead of one string: same bytes."""
    cmd = mkpkg_commands()["demo-1.2.3-r4.apk"]
    info = dict(cmd["info"], depends=cmd["info"]["depends"].split(), provides=["demo-any"])
    shuffled = manifest_entries()
    random.Random(4).shuffle(shuffled)
    assert apk.write_package(info, shuffled, cmd["scripts"], mtime=MTIME) == demo


# --- (b) decoding --------------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["vector", "ours"])
def test_read_package_gives_the_adbdump_fields(source, demo):
    data = vector("demo-1.2.3-r4.apk") if source == "vector" else demo
    text = (VECTORS / "demo-1.2.3-r4.adbdump.yaml").read_text()
    assert text.startswith(f"#%SCHEMA: {adb.SCHEMA_PACKAGE:08X}\n")
    pkg = apk.read_package(data)
    assert package_as_dump(pkg) == parse_adbdump(text)
    # the block sizes adbdump printed: the ADB heap, then "index header + content" per file
    _, blocks = adb.parse_blocks(adb.decompress(data))
    assert len(blocks[0].payload) == adb_block_size(text)
    with_data = [f for d in pkg["paths"] for f in d["files"] if f["kind"] == "file" and f["size"]]
    assert [8 + len(f["data"]) for f in with_data] == data_block_sizes(text)


def test_read_package_gives_the_stage_contents(demo):
    pkg = apk.read_package(demo)
    found = {}
    for d in pkg["paths"]:
        found[d["name"]] = ("dir", d["mode"], b"", "")
        for f in d["files"]:
            path = f"{d['name']}/{f['name']}" if d["name"] else f["name"]
            found[path] = (f["kind"], f["mode"], f["data"], f.get("target", ""))
            assert (f["user"], f["group"], f["mtime"]) == ("root", "root", MTIME)
    assert found.pop("") == ("dir", 0o755, b"", "")
    assert found == {e.path: (e.kind, e.mode, e.data, e.target) for e in manifest_entries()}
    assert pkg["info"]["installed-size"] == sum(len(e.data) for e in manifest_entries())


def test_read_empty_package(libc):
    pkg = apk.read_package(libc)
    assert pkg == {"info": {"name": "libc", "version": "0-r0", "description": "stub",
                            "arch": "noarch", "installed-size": 0,
                            "hashes": "4f5a6182f4b84e96adcb070b4a2c765c92d6f39a"},
                   "paths": [], "scripts": {}}


@pytest.mark.parametrize("name", ["demo-1.2.3-r4.apk", "libc-0-r0.apk"])
def test_package_hash_is_sha256_of_its_heap(name):
    """info.hashes: sha256 over the ADB heap with those 20 bytes still zero, cut to 20."""
    data = vector(name)
    heap = bytearray(adb.parse_blocks(adb.decompress(data))[1][0].payload)
    uid = bytes.fromhex(apk.read_package(data)["info"]["hashes"])
    at = heap.find(bytes([len(uid)]) + uid) + 1
    heap[at:at + len(uid)] = bytes(len(uid))
    assert hashlib.sha256(heap).digest()[:20] == uid


@pytest.mark.parametrize("source", ["vector", "ours"])
def test_read_index_gives_the_adbdump_fields(source, demo, libc):
    data = vector("packages.adb") if source == "vector" else apk.write_index([demo, libc])
    text = (VECTORS / "packages.adbdump.yaml").read_text()
    assert text.startswith(f"#%SCHEMA: {adb.SCHEMA_INDEX:08X}\n")
    packages = apk.read_index(data)
    as_dump = [{k: (v if isinstance(v, list) else str(v)) for k, v in p.items()}
               for p in packages]
    assert {"packages": as_dump} == parse_adbdump(text)
    # file-size is the .apk's size, hashes the sha256 of its ADB block
    for p, raw in zip(packages, (demo, libc)):
        _, blocks = adb.parse_blocks(adb.decompress(raw))
        assert p["file-size"] == len(raw)
        assert p["hashes"] == hashlib.sha256(blocks[0].payload).hexdigest()


def test_index_sorts_by_name_then_version(demo, libc):
    assert [p["name"] for p in apk.read_index(apk.write_index([libc, demo]))] == ["demo", "libc"]
    old = apk.write_package({"name": "libc", "version": "0.9_rc1-r0", "arch": "noarch"}, [], {}, 0)
    new = apk.write_package({"name": "libc", "version": "0.10-r0", "arch": "noarch"}, [], {}, 0)
    listed = apk.read_index(apk.write_index([new, libc, old]))
    assert [p["version"] for p in listed] == ["0-r0", "0.9_rc1-r0", "0.10-r0"]


@pytest.mark.parametrize("a, b, expected", [
    ("1.2.3-r4", "1.2.3-r3", 1), ("1.0", "1.0.1", -1), ("1.0_rc1", "1.0", -1),
    ("1.0_p1", "1.0", 1), ("1.0a", "1.0", 1), ("1.10", "1.9", 1), ("1.01", "1.1", -1),
    ("2.0~abc1", "2.0", 1), ("1.0-r0", "1.0-r0", 0)])
def test_version_compare(a, b, expected):
    assert apk.version_compare(a, b) == expected
    assert apk.version_compare(b, a) == -expected


def test_dependencies_parse_like_apk():
    assert apk.parse_dependency("!ksmbd-server") == (b"ksmbd-server", None, 16 | 7)
    assert apk.parse_dependency("python3-cryptography>=42.0") == (b"python3-cryptography",
                                                                  b"42.0", 4 | 1)
    assert apk.parse_dependency("so:libc.so.6") == (b"so:libc.so.6", None, 7)
    for bad in ("foo>=", "foo>=1.2.3-4", "fo o", ">=1", ""):
        with pytest.raises(ValueError):
            apk.parse_dependency(bad)


# --- (c) refusing bad input ----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["demo-1.2.3-r4.apk", "libc-0-r0.apk"])
def test_every_truncation_of_a_package_is_refused(name):
    data = vector(name)
    for n in range(len(data)):
        with pytest.raises(ValueError):
            apk.read_package(data[:n])


def test_every_truncation_of_an_index_is_refused():
    data = vector("packages.adb")
    for n in range(len(data)):
        with pytest.raises(ValueError):
            apk.read_index(data[:n])


@pytest.mark.parametrize("magic", [b"ADBx", b"XDBd", b"\x1f\x8b\x08\x00", b"PK\x03\x04"])
def test_wrong_magic_is_refused(magic):
    with pytest.raises(ValueError, match="magic"):
        apk.read_package(magic + vector("demo-1.2.3-r4.apk")[4:])


def test_wrong_schema_is_refused():
    with pytest.raises(ValueError, match="schema"):
        apk.read_index(vector("demo-1.2.3-r4.apk"))
    with pytest.raises(ValueError, match="schema"):
        apk.read_package(vector("packages.adb"))


def rebuilt(data: bytes, edit) -> bytes:
    """The package with its plain blocks edited (edit(list of [type, payload])) and re-deflated."""
    schema, blocks = adb.parse_blocks(adb.decompress(data))
    items = [[b.type, b.payload] for b in blocks]
    edit(items)
    pieces = [adb.file_header(schema)]
    for type_, payload in items:
        pieces += adb.block_pieces(type_, payload)
    return adb.deflate(pieces)


def test_rebuilding_unchanged_blocks_gives_the_same_file():
    data = vector("demo-1.2.3-r4.apk")
    assert rebuilt(data, lambda items: None) == data


def test_data_not_matching_its_hash_is_refused():
    def flip(items):
        items[1][1] = items[1][1][:-1] + bytes([items[1][1][-1] ^ 1])
    with pytest.raises(ValueError, match="hash"):
        apk.read_package(rebuilt(vector("demo-1.2.3-r4.apk"), flip))


@pytest.mark.parametrize("edit, message", [
    (lambda items: items.pop(3), "missing data"),
    (lambda items: items.append(list(items[1])), "second data block"),
    (lambda items: items.__setitem__(1, [2, struct.pack("<II", 3, 2) + items[1][1][8:]]),
     "unknown file"),
    (lambda items: items.__setitem__(1, [2, struct.pack("<II", 4, 1) + items[1][1][8:]]),
     "data block of"),
    (lambda items: items.__setitem__(1, [2, struct.pack("<II", 12, 1)]), "symlink"),
    (lambda items: items.__setitem__(1, [2, b"\1\0\0"]), "truncated data block"),
    (lambda items: items.insert(1, [adb.BLOCK_ADB, items[0][1]]), "unexpected block"),
    (lambda items: items.insert(2, [1, b"\0" * 20]), "unexpected block"),
    (lambda items: items.__setitem__(0, [0, b"\1" + items[0][1][1:]]), "compat"),
    (lambda items: items.__setitem__(0, [0, items[0][1][:6]]), "shorter"),
    (lambda items: items.__setitem__(0, [0, items[0][1][:4] + b"\0\0\0\x70"]), "not an object"),
])
def test_inconsistent_packages_are_refused(edit, message):
    with pytest.raises(ValueError, match=message):
        apk.read_package(rebuilt(vector("demo-1.2.3-r4.apk"), edit))


def test_trailing_garbage_is_refused():
    with pytest.raises(ValueError, match="after the end"):
        apk.read_package(vector("demo-1.2.3-r4.apk") + b"\0")


def test_damaged_heaps_raise_only_value_error():
    """Random byte changes in the ADB heap and in the deflate stream: the reader either
    decodes something or raises ValueError, never another exception."""
    rng = random.Random(1363)
    pkg, ndx = vector("demo-1.2.3-r4.apk"), vector("packages.adb")
    for data, reader in ((pkg, apk.read_package), (ndx, apk.read_index)):
        for _ in range(400):
            def damage(items):
                heap = bytearray(items[0][1])
                for _ in range(rng.randint(1, 4)):
                    heap[rng.randrange(8, len(heap))] = rng.randrange(256)
                items[0][1] = bytes(heap)
            try:
                reader(rebuilt(data, damage))
            except ValueError:
                pass
            raw = bytearray(data)
            raw[rng.randrange(4, len(raw))] ^= 1 << rng.randrange(8)
            try:
                reader(bytes(raw))
            except ValueError:
                pass


# --- the writer refuses what mkpkg refuses -------------------------------------------------------

BASE = {"name": "demo", "version": "1.2.3-r4", "arch": "noarch"}


@pytest.mark.parametrize("info", [
    {"name": "demo", "arch": "noarch"}, {"version": "1-r0", "arch": "noarch"},
    dict(BASE, version="1.2.3-4"), dict(BASE, name="-demo"), dict(BASE, depends=["foo>="]),
    dict(BASE, depends=["foo>=1.2.3-4"]), dict(BASE, unknown="x"),
    dict(BASE, **{"installed-size": "1"}), dict(BASE, **{"build-time": "soon"}),
    dict(BASE, **{"repo-commit": "xyz"}),
])
def test_bad_info_is_refused(info):
    with pytest.raises(ValueError):
        apk.write_package(info, [], {}, MTIME)


@pytest.mark.parametrize("entries", [
    [apk.Entry("/etc", "dir", 0o755)], [apk.Entry("etc/../x", "file", 0o644)],
    [apk.Entry("etc", "dir", 0o755), apk.Entry("etc", "dir", 0o700)],
    [apk.Entry("a", "file", 0o644), apk.Entry("a/b", "file", 0o644)],
    [apk.Entry("a", "symlink", 0o777)], [apk.Entry("a", "fifo", 0o644)],
    [apk.Entry("a", "file", 0o100644)], [apk.Entry("a", "dir", 0o755, data=b"x")],
])
def test_bad_entries_are_refused(entries):
    with pytest.raises(ValueError):
        apk.write_package(BASE, entries, {}, MTIME)


def test_bad_script_name_is_refused():
    with pytest.raises(ValueError):
        apk.write_package(BASE, [], {"postinst": b"#!/bin/sh\n"}, MTIME)


def test_large_values_round_trip():
    """Blobs past 255 and 65535 bytes (BLOB_16/BLOB_32), big integers (INT_32/INT_64)."""
    big = bytes(range(256)) * 300
    entries = [apk.Entry("usr/share/big", "file", 0o644, data=big),
               apk.Entry("usr/share/empty", "file", 0o644),
               apk.Entry("usr/share/mid", "file", 0o644, data=b"m" * 1000)]
    info = dict(BASE, description="d" * 300, **{"build-time": 1 << 40, "provider-priority": 7})
    data = apk.write_package(info, entries, {"post-install": b"x" * 70000}, mtime=1 << 33)
    pkg = apk.read_package(data)
    files = {f["name"]: f for d in pkg["paths"] for f in d["files"]}
    assert files["big"]["data"] == big and files["mid"]["data"] == b"m" * 1000
    assert files["empty"]["data"] == b"" and files["empty"]["size"] == 0
    assert files["big"]["mtime"] == 1 << 33
    assert pkg["info"]["build-time"] == 1 << 40 and pkg["info"]["description"] == "d" * 300
    assert pkg["info"]["installed-size"] == len(big) + 1000
    assert pkg["scripts"] == {"post-install": b"x" * 70000}
    assert [d["name"] for d in pkg["paths"]] == ["", "usr", "usr/share"]

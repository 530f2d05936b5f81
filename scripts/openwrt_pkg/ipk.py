"""The .ipk writer (opkg, OpenWrt up to 24.10) and its feed index, in the layout OpenWrt's
ipkg-build and ipkg-make-index produce (docs/notes/ubus-uci-opkg.md C2/C3, C7).

An .ipk is a gzip'd tar of ./debian-binary, ./data.tar.gz, ./control.tar.gz (GNU tar, owner
0/0, entries sorted by name, every mtime SOURCE_DATE_EPOCH; gzip -n).  The control file's
fields are package-pack.mk's; ``conffiles`` lists only the declared paths the package
installs as regular files (ipkg-build: opkg hashes each one, and a missing one is an error
at every install).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import tarfile
from pathlib import Path

from .description import Package
from .maintainer_scripts import ipk_scripts


def ipk_version(pkg: Package) -> str:
    return f"{pkg.version}-{pkg.release}"


def file_name(pkg: Package) -> str:
    return f"{pkg.name}_{ipk_version(pkg)}_all.ipk"


def _tarinfo(name: str, mtime: int, mode: int, kind: bytes = tarfile.REGTYPE,
             size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.mtime = kind, mode, size, mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def tar_tree(root: Path, mtime: int) -> bytes:
    """Uncompressed GNU tar of ``root`` as ``./...``, names sorted within each directory."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        def add(path: Path, name: str) -> None:
            st = path.lstat()
            if path.is_symlink():
                info = _tarinfo(name, mtime, 0o777, tarfile.SYMTYPE)
                info.linkname = os.readlink(path)
                tar.addfile(info)
            elif path.is_dir():
                tar.addfile(_tarinfo(name + "/", mtime, st.st_mode & 0o7777, tarfile.DIRTYPE))
                for child in sorted(path.iterdir(), key=lambda p: p.name):
                    add(child, f"{name}/{child.name}")
            else:
                data = path.read_bytes()
                tar.addfile(_tarinfo(name, mtime, st.st_mode & 0o7777, size=len(data)),
                            io.BytesIO(data))
        add(root, ".")
    return buf.getvalue()


def tar_files(files: dict[str, tuple[bytes, int]], mtime: int) -> bytes:
    """Uncompressed GNU tar of ``./`` and the named files (name -> (data, mode)), sorted."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(_tarinfo("./", mtime, 0o755, tarfile.DIRTYPE))
        for name in sorted(files):
            data, mode = files[name]
            tar.addfile(_tarinfo(f"./{name}", mtime, mode, size=len(data)), io.BytesIO(data))
    return buf.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="", compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def control_text(fields: list[tuple[str, str]], description: str) -> str:
    lines = [f"{k}: {v}" for k, v in fields if v]
    desc = [line.strip() for line in description.strip().splitlines()] or [""]
    lines.append("Description:  " + desc[0])
    lines += [" " + line if line else " ." for line in desc[1:]]
    return "\n".join(lines) + "\n"


def write(pkg: Package, out: Path, mtime: int) -> Path:
    """Write `pkg` as an .ipk into `out`; its path."""
    data_tar = tar_tree(pkg.stage, mtime)
    depends = pkg.depends + [f"{name} (= {ipk_version(pkg)})" for name in pkg.pinned]
    control = control_text([
        ("Package", pkg.name), ("Version", ipk_version(pkg)), ("Depends", ", ".join(depends)),
        ("Conflicts", ", ".join(pkg.conflicts)), ("Source", pkg.source),
        ("SourceName", pkg.name), ("License", pkg.license), ("Section", pkg.section),
        ("SourceDateEpoch", str(mtime)), ("URL", pkg.url), ("Maintainer", pkg.maintainer),
        ("Architecture", "all"), ("Installed-Size", str(len(data_tar))),
    ], pkg.description)
    files = {"control": (control.encode(), 0o644)}
    conffiles = pkg.shipped_conffiles()
    if conffiles:
        files["conffiles"] = ("".join(p + "\n" for p in conffiles).encode(), 0o644)
    for name, text in ipk_scripts(pkg.postinst, pkg.prerm).items():
        files[name] = (text.encode(), 0o755)
    members = [("./debian-binary", b"2.0\n"), ("./data.tar.gz", gzip_bytes(data_tar)),
               ("./control.tar.gz", gzip_bytes(tar_files(files, mtime)))]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members:
            tar.addfile(_tarinfo(name, mtime, 0o644, size=len(data)), io.BytesIO(data))
    target = out / file_name(pkg)
    target.write_bytes(gzip_bytes(buf.getvalue()))
    return target


def write_index(out: Path, ipks: list[Path]) -> None:
    """What ipkg-make-index writes: per .ipk (sorted by file name) its control file with
    Filename, Size and SHA256sum inserted before Description, then an empty line.  opkg reads
    a package's paragraph up to that empty line: without one after the last package, that
    package comes out without its Description."""
    stanzas = []
    for ipk in sorted(ipks, key=lambda p: p.name):
        with tarfile.open(ipk, "r:gz") as outer:
            inner = outer.extractfile("./control.tar.gz").read()
        with tarfile.open(fileobj=io.BytesIO(inner), mode="r:gz") as tar:
            control = tar.extractfile("./control").read().decode()
        data = ipk.read_bytes()
        control = re.sub(r"^Description:", lambda _: (
            f"Filename: {ipk.name}\nSize: {len(data)}\n"
            f"SHA256sum: {hashlib.sha256(data).hexdigest()}\nDescription:"), control,
            count=1, flags=re.M)
        stanzas.append(control if control.endswith("\n") else control + "\n")
    text = "".join(stanza + "\n" for stanza in stanzas)
    (out / "Packages").write_text(text)
    (out / "Packages.gz").write_bytes(gzip_bytes(text.encode()))

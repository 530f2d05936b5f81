"""`make ipk` (scripts/build-ipk): the .ipk format, control fields, file list, maintainer
scripts, and an install into a scratch root checked the way OpenWrt would use it."""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from openwrt_pkg import makefile, python_deps

from .conftest import BUILD_IPK, LUCI_IPK, REPO, SERVER_IPK, SRC_IPK, VERSION, Ipk, OpenWrtRoot

def test_outer_container(out):
    ipk = Ipk(out / SERVER_IPK)
    assert [m.name for m in ipk.members] == ["./debian-binary", "./data.tar.gz",
                                             "./control.tar.gz"]
    assert ipk.files["./debian-binary"] == b"2.0\n"
    assert all(m.uid == 0 and m.gid == 0 and m.mtime == 1700000000 for m in ipk.members)
    # gzip -n: no file name, no time stamp
    for blob in (ipk.raw, ipk.files["./data.tar.gz"], ipk.files["./control.tar.gz"]):
        assert blob[:2] == b"\x1f\x8b" and blob[3] & 0x08 == 0 and blob[4:8] == b"\0\0\0\0"


def test_control_fields(out):
    ipk = Ipk(out / SERVER_IPK)
    f = ipk.fields()
    assert list(f)[:2] == ["Package", "Version"]
    assert f["Package"] == "ksmbd-embedded" and f["Version"] == f"{VERSION}-1"
    assert f["Architecture"] == "all"
    depends = f["Depends"].split(", ")
    for dep in ("python3-light", "python3-cryptography", "python3-logging"):
        assert dep in depends
    assert "ksmbd-server" in f["Conflicts"].split(", ")
    assert int(f["Installed-Size"]) == len(ipk.data_raw)
    assert f["Description"].startswith(" An SMB") and "\n" in f["Description"]
    assert f["License"] == "GPL-2.0-or-later"
    # only what the package installs (tests/openwrt/test_ipk_opkg_rules.py)
    assert ipk.control_file("conffiles").splitlines() == ["/etc/config/ksmbd"]
    names = [m.name for m in ipk.control_tar.getmembers()]
    assert names == [".", "./conffiles", "./control", "./postinst", "./postinst-pkg",
                     "./prerm", "./prerm-pkg"]  # "./" read back
    for script in ("./postinst", "./postinst-pkg", "./prerm", "./prerm-pkg"):
        assert ipk.control_tar.getmember(script).mode == 0o755


def test_makefile_matches_the_project():
    variables, blocks = makefile.read_makefile(REPO / "package/ksmbd-embedded/Makefile")
    assert variables["PKG_VERSION"] == VERSION
    fields = makefile.block_fields(blocks["Package/ksmbd-embedded"])
    assert fields["PKGARCH"] == "all"
    assert "ksmbd-server" in fields["CONFLICTS"].split()
    # an SDK apk build drops CONFLICTS: each conflict is also a configuration-time depend
    for conflict in fields["CONFLICTS"].split():
        assert f"@!PACKAGE_{conflict}" in fields["DEPENDS"].split()
    text = (REPO / "package/ksmbd-embedded/Makefile").read_text()
    assert "python3-package.mk" in text and "$(eval $(call BuildPackage,ksmbd-embedded))" in text
    assert "$(eval $(call BuildPackage,ksmbd-embedded-src))" in text  # Py3Package's -src
    # versions both managers accept: apk's is PKG_VERSION-rPKG_RELEASE
    assert re.fullmatch(r"\d+(\.\d+)*", variables["PKG_VERSION"])
    assert re.fullmatch(r"\d+", variables["PKG_RELEASE"])


def test_data_file_list(out):
    data = Ipk(out / SERVER_IPK).data()
    expected = {
        "./etc/config/ksmbd": 0o600, "./etc/init.d/ksmbd": 0o755,
        "./etc/hotplug.d/mount/60-ksmbd": 0o644, "./usr/sbin/ksmbd-embedded": 0o755,
        "./usr/sbin/ksmbd.adduser": 0o755, "./usr/sbin/ksmbd.control": 0o755,
        "./usr/sbin/ksmbd.mountd": 0o755,
        "./usr/lib/ksmbd-embedded/ksmbd_embedded/__init__.pyc": 0o644,
        "./usr/lib/ksmbd-embedded/ksmbd_embedded/ksmbd_conf.pyc": 0o644,
        "./usr/lib/ksmbd-embedded/ksmbd_embedded/tools/control.pyc": 0o644,
    }
    for name, mode in expected.items():
        assert name in data, name
        assert data[name].mode == mode, (name, oct(data[name].mode))
    names = list(data)
    assert names[0] == "."  # the "./" entry, as Python's tarfile reads it back
    assert all(m.uid == 0 and m.gid == 0 and m.uname == "" for m in data.values())
    # byte-compiled modules only, beside where the sources were (compileall -b)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".py")]
    assert all(n.startswith(("./etc", "./usr", "./lib/upgrade/keep.d"))
               or n in (".", "./lib", "./lib/upgrade") for n in names)
    # Entries sorted by name within each directory (tar --sort=name).
    for parent in {n.rsplit("/", 1)[0] for n in names if n != "."}:
        children = [n.rsplit("/", 1)[1] for n in names
                    if n != "." and n.rsplit("/", 1)[0] == parent]
        assert children == sorted(children), parent
    # nothing from the build machine: no bundled third-party module today
    libdir = [n for n in names if n.count("/") == 4 and n.startswith("./usr/lib/ksmbd-embedded/")]
    assert libdir == ["./usr/lib/ksmbd-embedded/ksmbd_embedded"]


def test_build_is_reproducible(out, tmp_path):
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}
    subprocess.run([sys.executable, str(BUILD_IPK), "--out", str(tmp_path)], env=env,
                   check=True, capture_output=True)
    assert (tmp_path / SERVER_IPK).read_bytes() == (out / SERVER_IPK).read_bytes()


def test_feed_index(out):
    text = (out / "Packages").read_text()
    assert gzip.decompress((out / "Packages.gz").read_bytes()).decode() == text
    stanzas = text.split("\n\n")
    assert stanzas.pop() == ""  # the last stanza is followed by its empty line too
    assert len(stanzas) == 3
    for stanza, name in zip(stanzas, (SRC_IPK, SERVER_IPK, LUCI_IPK)):
        fields = dict(l.split(": ", 1) for l in stanza.splitlines() if ": " in l)
        data = (out / name).read_bytes()
        assert fields["Filename"] == name and int(fields["Size"]) == len(data)
        assert fields["SHA256sum"] == hashlib.sha256(data).hexdigest()


def test_luci_package(out):
    ipk = Ipk(out / LUCI_IPK)
    assert [m.name for m in ipk.members] == ["./debian-binary", "./data.tar.gz",
                                             "./control.tar.gz"]
    f = ipk.fields()
    assert f["Package"] == "luci-app-ksmbd-embedded" and f["Architecture"] == "all"
    assert "luci-base" in f["Depends"]
    assert int(f["Installed-Size"]) == len(ipk.data_raw)
    names = set(ipk.data())
    # whatever luci-app/ holds is packed where LuCI expects it
    src = REPO / "luci-app"
    for path in src.rglob("*"):
        if path.is_file() and path.relative_to(src).parts[0] in ("htdocs", "root"):
            rel = path.relative_to(src)
            prefix = "./www/" if rel.parts[0] == "htdocs" else "./"
            assert prefix + "/".join(rel.parts[1:]) in names
    assert all(n == "." or n.startswith(("./www", "./usr", "./etc")) for n in names), names
    assert ipk.control_tar.getmember("./postinst").mode == 0o755


# --- installing into a scratch root -------------------------------------------------------------

def install(ipk_path: Path, root: Path) -> list[str]:
    """What opkg does with data.tar.gz: unpack under root (no absolute or .. paths)."""
    ipk = Ipk(ipk_path)
    members = ipk.data_tar.getmembers()
    for m in members:
        assert m.name == "." or m.name.startswith("./"), m.name
        assert ".." not in m.name.split("/"), m.name
        assert m.isdir() or m.isfile(), m.name
    ipk.data_tar.extractall(root, filter="data")
    return [m.name[1:] for m in members if m.isfile()]


@pytest.fixture(scope="module")
def installed(out, tmp_path_factory):
    root = tmp_path_factory.mktemp("rootfs")
    files = install(out / SERVER_IPK, root)
    install(out / LUCI_IPK, root)
    return root, files


def test_installed_layout(installed):
    root, files = installed
    assert (root / "etc/init.d/ksmbd").read_text().startswith("#!/bin/sh /etc/rc.common")
    assert os.access(root / "etc/init.d/ksmbd", os.X_OK)
    uci = (root / "etc/config/ksmbd").read_text()
    assert "config globals" in uci and "option workgroup 'WORKGROUP'" in uci
    assert "config share" not in uci
    for tool in ("ksmbd-embedded", "ksmbd.adduser", "ksmbd.control", "ksmbd.mountd"):
        path = root / "usr/sbin" / tool
        assert os.access(path, os.X_OK) and path.read_text().startswith("#!/usr/bin/python3\n")
    assert "/etc/hotplug.d/mount/60-ksmbd" in files


def _run_installed(root, tool, *args):
    env = {**os.environ, "PYTHONPATH": str(root / "usr/lib/ksmbd-embedded"),
           "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([sys.executable, "-s", str(root / "usr/sbin" / tool),
                           *args], env=env, capture_output=True, text=True, cwd=root)


def test_installed_entry_points_run_from_the_package(installed):
    root, _ = installed
    proc = _run_installed(root, "ksmbd.mountd", "-V")
    assert proc.returncode == 0 and proc.stdout == f"ksmbd-tools version : {VERSION}\n"
    probe = subprocess.run(
        [sys.executable, "-s", "-c", "import ksmbd_embedded; print(ksmbd_embedded.__file__)"],
        env={"PYTHONPATH": str(root / "usr/lib/ksmbd-embedded"), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, cwd="/")
    assert probe.stdout.startswith(str(root)), probe.stdout + probe.stderr
    proc = _run_installed(root, "ksmbd-embedded", "check-config", "--config",
                          str(root / "etc/config/ksmbd"))
    assert proc.returncode == 0, proc.stderr
    assert "OK, 0 share(s)" in proc.stdout
    db = root / "etc/ksmbd/ksmbdpwd.db"
    proc = _run_installed(root, "ksmbd.adduser", "-P", str(db), "-a", "-p", "pw", "alice",
                          "--pid-file", str(root / "var/run/ksmbd.lock"))
    assert proc.returncode == 0, proc.stderr
    assert db.read_text().startswith("alice:")


def test_installed_init_script_starts_the_installed_server(installed, tmp_path):
    root, files = installed
    owrt = OpenWrtRoot(tmp_path, files=root)
    owrt.init("start", env={"FAKE_NET_UP": "lan", "FAKE_NET_lan_IP4": "192.168.1.1"})
    calls = owrt.procd_calls()
    command = [c for c in calls if c[:2] == ["procd_set_param", "command"]][0][2:]
    assert command[0] in files  # the program procd runs is in the package
    assert ["procd_add_mdns", "smb", "tcp", "445", "daemon=ksmbd"] in calls


# --- Python dependencies ------------------------------------------------------------------------

def test_dependencies_follow_the_imports(tmp_path):
    variables, blocks = makefile.read_makefile(REPO / "package/ksmbd-embedded/Makefile")
    depends = makefile.package_list(makefile.block_fields(blocks["Package/ksmbd-embedded"])
                                    ["DEPENDS"])
    # our code: nothing to bundle (own NTLM acceptor: pyspnego is not imported)
    assert python_deps.python_dependencies(REPO / "src/ksmbd_embedded", depends) == []
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "m.py").write_text("import logging\nimport spnego\nfrom xml import dom\n")
    with pytest.raises(python_deps.DependencyError, match="python3-xml"):
        python_deps.python_dependencies(pkg, depends)
    assert python_deps.python_dependencies(pkg, depends + ["python3-xml"]) == ["spnego"]
    lib = tmp_path / "lib"
    lib.mkdir()
    python_deps.bundle("spnego", lib)  # from this (the build) environment
    assert (lib / "spnego/__init__.py").is_file()
    assert not list(lib.rglob("__pycache__"))
    with pytest.raises(python_deps.DependencyError):
        python_deps.bundle("no_such_module_xyz", lib)

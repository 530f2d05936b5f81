"""`make packages` (scripts/build-packages): one description of each package, two formats.

The .apk files (OpenWrt 25.12, apk-tools 3) are decoded with the project's reader and every
field, path, mode, owner and hash checked; both formats carry the same files, depends,
conflicts and version; the modules ship byte-compiled for each target's Python (3.11 for
the .ipk, 3.13 for the .apk) with the sources in a -src package; and the installed .apk
runs on Python 3.13."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from openwrt_pkg import apk, pyc

from .conftest import (BUILD_PACKAGES, LUCI_APK, LUCI_IPK, SERVER_APK, SERVER_IPK, SRC_APK,
                       SRC_IPK, VERSION, Ipk)

PAIRS = [(SERVER_IPK, SERVER_APK), (SRC_IPK, SRC_APK), (LUCI_IPK, LUCI_APK)]
LIB = "usr/lib/ksmbd-embedded"


def _apk(apk_out: Path, name: str) -> dict:
    return apk.read_package((apk_out / name).read_bytes())


def _apk_files(pkg: dict) -> dict[str, dict]:
    """path -> file record, for every file and symlink of a decoded .apk."""
    out = {}
    for directory in pkg["paths"]:
        for f in directory.get("files", []):
            path = f"{directory['name']}/{f['name']}" if directory.get("name") else f["name"]
            out[path] = f
    return out


def _ipk_files(ipk: Ipk) -> dict[str, object]:
    return {m.name[2:]: m for m in ipk.data_tar.getmembers() if m.isfile() or m.issym()}


# -- one description, both formats ----------------------------------------------------------

@pytest.mark.parametrize("ipk_name, apk_name", PAIRS)
def test_both_formats_carry_the_same_package(out, apk_out, ipk_name, apk_name):
    ipk, pkg = Ipk(out / ipk_name), _apk(apk_out, apk_name)
    fields, info = ipk.fields(), pkg["info"]
    assert info["name"] == fields["Package"]
    # versions: opkg's X.Y.Z-N is apk's X.Y.Z-rN
    assert fields["Version"] == f"{VERSION}-1" and info["version"] == f"{VERSION}-r1"
    assert apk.version_valid(info["version"])
    # depends: the same names; apk writes each conflict as a !name depend, and the -src
    # package's pinned depend as name=version
    ipk_depends = {re.sub(r" \(= .*\)$", "", d) for d in fields["Depends"].split(", ")}
    apk_depends = {re.sub(r"=.*$", "", d) for d in info["depends"] if not d.startswith("!")}
    assert ipk_depends == apk_depends
    conflicts = set(fields.get("Conflicts", "").split(", ")) - {""}
    assert {d[1:] for d in info["depends"] if d.startswith("!")} == conflicts
    assert " ".join(fields["Description"].split()) == info["description"]
    assert info["license"] == fields["License"] and info["maintainer"] == fields["Maintainer"]
    assert info["origin"] == fields["Source"] and info["arch"] == "noarch"
    # files: the same paths and modes; contents too, but for the bytecode (another Python)
    ipk_files, apk_files = _ipk_files(ipk), _apk_files(pkg)
    ours = {p for p in apk_files if not p.startswith("lib/apk/packages/")}
    assert ours == set(ipk_files)
    for path in ours:
        member, f = ipk_files[path], apk_files[path]
        assert f["mode"] == (0o777 if member.issym() else member.mode), path
        assert (f["user"], f["group"]) == ("root", "root")
        if not path.endswith(".pyc") and member.isfile():
            assert f["data"] == ipk.data_tar.extractfile(member).read(), path
    # the files' hashes and installed-size are what the data says
    for path, f in apk_files.items():
        if f.get("data") is not None and f["kind"] == "file":
            assert f["size"] == len(f["data"])
            assert f["hash"] == hashlib.sha256(f["data"]).hexdigest(), path
            assert f["mtime"] == 1700000000
    total = sum(f["size"] for f in apk_files.values() if f["kind"] == "file")
    assert info["installed-size"] == (total or 1)


def test_apk_fields_as_openwrt_writes_them(apk_out):
    server = _apk(apk_out, SERVER_APK)["info"]
    assert server["provides"] == ["ksmbd-embedded-any"]  # package.mk's virtual @NAME-any
    assert {"!ksmbd-server", "!ksmbd-hotplug", "python3-light",
            "python3-cryptography"} <= set(server["depends"])
    luci = _apk(apk_out, LUCI_APK)["info"]
    assert luci["provides"] == ["luci-app-ksmbd-embedded-any"]
    assert {"!luci-app-ksmbd", "luci-base", "ksmbd-embedded"} <= set(luci["depends"])
    source = _apk(apk_out, SRC_APK)["info"]
    assert f"ksmbd-embedded={VERSION}-r1" in source["depends"]


def test_apk_metadata_files_list_conffiles_and_checksums(apk_out):
    files = _apk_files(_apk(apk_out, SERVER_APK))
    meta = "lib/apk/packages/ksmbd-embedded"
    listing = files[f"{meta}.list"]["data"].decode().splitlines()
    assert "/etc/init.d/ksmbd" in listing  # what default_postinst/default_prerm act on
    assert listing == sorted(listing)
    assert set(listing) == {"/" + p for p in files if not p.startswith("lib/apk/packages/")}
    assert files[f"{meta}.conffiles"]["data"].decode().split() == \
        ["/etc/config/ksmbd", "/etc/ksmbd/ksmbdpwd.db", "/etc/ksmbd/ksmbd.conf"]
    static = files[f"{meta}.conffiles_static"]["data"].decode().splitlines()
    config = files["etc/config/ksmbd"]["data"]
    assert static == [f"/etc/config/ksmbd {hashlib.sha256(config).hexdigest()}"]
    assert files["etc/config/ksmbd"]["mode"] == 0o600
    # the ones created on the router: kept by sysupgrade
    keep = files["lib/upgrade/keep.d/ksmbd-embedded"]["data"].decode().split()
    assert keep == ["/etc/ksmbd/ksmbdpwd.db", "/etc/ksmbd/ksmbd.conf"]


def test_apk_scripts_are_openwrts(apk_out):
    scripts = _apk(apk_out, SERVER_APK)["scripts"]
    assert set(scripts) == {"post-install", "post-upgrade", "pre-deinstall"}
    install = scripts["post-install"].decode()
    assert 'export pkgname="ksmbd-embedded"' in install and "default_postinst\n" in install
    assert scripts["post-upgrade"].decode().startswith("#!/bin/sh\nexport PKG_UPGRADE=1\n")
    assert "default_prerm\n" in scripts["pre-deinstall"].decode()
    assert all('"$1"' not in s.decode() for s in scripts.values())  # apk passes versions


def test_packages_adb_indexes_the_three_packages(apk_out):
    index = apk.read_index((apk_out / "packages.adb").read_bytes())
    by_name = {p["name"]: p for p in index}
    assert set(by_name) == {"ksmbd-embedded", "ksmbd-embedded-src", "luci-app-ksmbd-embedded"}
    for name, file in (("ksmbd-embedded", SERVER_APK), ("ksmbd-embedded-src", SRC_APK),
                       ("luci-app-ksmbd-embedded", LUCI_APK)):
        entry = by_name[name]
        assert entry["file-size"] == (apk_out / file).stat().st_size
        assert entry["version"] == f"{VERSION}-r1"
        assert entry["depends"] == _apk(apk_out, file)["info"]["depends"]


def test_apk_build_is_reproducible(apk_out, tmp_path):
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}
    subprocess.run([sys.executable, str(BUILD_PACKAGES), "--format", "apk", "--flat", "--out",
                    str(tmp_path)], env=env, check=True, capture_output=True)
    for name in (SERVER_APK, SRC_APK, LUCI_APK, "packages.adb"):
        assert (tmp_path / name).read_bytes() == (apk_out / name).read_bytes(), name


# -- byte-compiled modules, sources apart -------------------------------------------------------

def test_modules_ship_byte_compiled_for_each_targets_python(out, apk_out):
    for main, source, fmt in ((SERVER_IPK, SRC_IPK, "ipk"), (SERVER_APK, SRC_APK, "apk")):
        if fmt == "ipk":
            files = {p: Ipk(out / main).data_tar.extractfile(m).read()
                     for p, m in _ipk_files(Ipk(out / main)).items() if m.isfile()}
            sources = set(_ipk_files(Ipk(out / source)))
        else:
            files = {p: f["data"] for p, f in _apk_files(_apk(apk_out, main)).items()}
            sources = set(_apk_files(_apk(apk_out, source)))
        modules = {p for p in files if p.startswith(LIB)}
        assert modules and all(p.endswith(".pyc") for p in modules), fmt
        assert {p[:-1] for p in modules} == {p for p in sources if p.startswith(LIB)}, fmt
        python = pyc.interpreter(pyc.TARGETS[fmt])
        assert pyc.magic_version(files[f"{LIB}/ksmbd_embedded/cli.pyc"], python), fmt


def test_installed_apk_runs_on_python_3_13(apk_out, tmp_path):
    root = tmp_path / "root"
    for name in (SERVER_APK,):
        for path, f in _apk_files(_apk(apk_out, name)).items():
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(f["data"])
            target.chmod(f["mode"])
    python = pyc.interpreter("3.13")
    env = {"PYTHONPATH": str(root / LIB), "PATH": "/usr/bin:/bin",
           "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([python, "-s", str(root / "usr/sbin/ksmbd.mountd"), "-V"], env=env,
                          capture_output=True, text=True, cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"ksmbd-tools version : {VERSION}\n"
    probe = subprocess.run([python, "-s", "-c", "import ksmbd_embedded.cli as m; print(m.__file__)"],
                           env=env, capture_output=True, text=True, cwd="/")
    assert probe.stdout.strip() == str(root / LIB / "ksmbd_embedded/cli.pyc"), probe.stderr

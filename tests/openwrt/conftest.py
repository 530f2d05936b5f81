"""A scratch OpenWrt root for the init and hotplug scripts: the package's files (files/ as /,
init.d/ksmbd as /etc/init.d/ksmbd), the stand-ins from harness/ (rc.common, functions.sh,
procd.sh, network.sh) and fake tools on PATH (fakes.py).  ``OpenWrtRoot.run(...)`` runs a
script with IPKG_INSTROOT set to the root; what it asked procd for is in ``procd_calls()``,
tool calls in ``tool_calls()``.  Also the .ipk build (``out``) and a reader (``Ipk``) for
test_ipk.py and test_ipk_opkg_rules.py."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest

from .fakes import install_fakes

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))  # the package builders: openwrt_pkg
FILES = REPO / "files"  # installed as /
INIT = REPO / "init.d" / "ksmbd"  # installed as /etc/init.d/ksmbd
HARNESS = Path(__file__).resolve().parent / "harness"
BUILD_IPK = REPO / "scripts/build-ipk"
BUILD_PACKAGES = REPO / "scripts/build-packages"
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
SERVER_IPK = f"ksmbd-embedded_{VERSION}-1_all.ipk"
SRC_IPK = f"ksmbd-embedded-src_{VERSION}-1_all.ipk"
LUCI_IPK = f"luci-app-ksmbd-embedded_{VERSION}-1_all.ipk"
SERVER_APK = f"ksmbd-embedded-{VERSION}-r1.apk"
SRC_APK = f"ksmbd-embedded-src-{VERSION}-r1.apk"
LUCI_APK = f"luci-app-ksmbd-embedded-{VERSION}-r1.apk"


@pytest.fixture(scope="session")
def out(tmp_path_factory):
    """The directory `scripts/build-ipk --out` wrote: both .ipk files and the feed index."""
    out = tmp_path_factory.mktemp("ipk")
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}
    proc = subprocess.run([sys.executable, str(BUILD_IPK), "--out", str(out)], env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="session")
def apk_out(tmp_path_factory):
    """The directory `scripts/build-packages --format apk` wrote: the .apk files and
    packages.adb."""
    out = tmp_path_factory.mktemp("apk")
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}
    proc = subprocess.run([sys.executable, str(BUILD_PACKAGES), "--format", "apk", "--flat",
                           "--out", str(out)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out


class Ipk:
    def __init__(self, path: Path) -> None:
        self.raw = path.read_bytes()
        with tarfile.open(fileobj=io.BytesIO(self.raw), mode="r:gz") as outer:
            self.members = outer.getmembers()
            self.files = {m.name: outer.extractfile(m).read() for m in self.members}
        self.control_tar = tarfile.open(fileobj=io.BytesIO(self.files["./control.tar.gz"]),
                                        mode="r:gz")
        self.data_raw = gzip.decompress(self.files["./data.tar.gz"])
        self.data_tar = tarfile.open(fileobj=io.BytesIO(self.data_raw), mode="r:")

    def control_file(self, name: str) -> str:
        return self.control_tar.extractfile(f"./{name}").read().decode()

    def fields(self) -> dict[str, str]:
        fields, key = {}, None
        for line in self.control_file("control").splitlines():
            if line.startswith(" ") and key:
                fields[key] += "\n" + line[1:]
            else:
                key, _, value = line.partition(": ")
                fields[key] = value
        return fields

    def data(self) -> dict[str, tarfile.TarInfo]:
        return {m.name: m for m in self.data_tar.getmembers()}


class OpenWrtRoot:
    def __init__(self, base: Path, files: Path | None = None) -> None:
        """``files``: the tree to start from: a root an .ipk was installed into, or by default
        the repository's files/ and init.d/ksmbd where the package puts them."""
        self.path = base / "root"
        self.bin = base / "bin"
        self.procd_log = base / "procd.log"
        self.tool_log = base / "tools.log"
        self.ubus_dir = base / "ubus"
        if files is None:
            shutil.copytree(FILES, self.path, symlinks=True)
            (self.path / "etc/init.d").mkdir(parents=True, exist_ok=True)
            shutil.copy2(INIT, self.path / "etc/init.d/ksmbd")
        else:
            shutil.copytree(files, self.path, symlinks=True)
        shutil.copytree(HARNESS, self.path, dirs_exist_ok=True)
        for d in ("var/run", "var/etc", "tmp"):
            (self.path / d).mkdir(parents=True, exist_ok=True)
        self.ubus_dir.mkdir()
        install_fakes(self.bin, self.tool_log)
        self.procd_log.touch()
        self.tool_log.touch()
        self.env: dict[str, str] = {}

    def file(self, rel: str) -> Path:
        return self.path / rel.lstrip("/")

    def run(self, *argv: str, env: dict[str, str] | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
        full_env = {"PATH": f"{self.bin}:/usr/bin:/bin", "IPKG_INSTROOT": str(self.path),
                    "PROCD_LOG": str(self.procd_log), "FAKE_LOG": str(self.tool_log),
                    "FAKE_UBUS_DIR": str(self.ubus_dir), **self.env, **(env or {})}
        proc = subprocess.run(["sh", *argv], env=full_env, capture_output=True, text=True,
                              timeout=60)
        if check:
            assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
        return proc

    def init(self, action: str, **kw) -> subprocess.CompletedProcess:
        return self.run(str(self.file("etc/rc.common")), str(self.file("etc/init.d/ksmbd")),
                        action, **kw)

    def procd_calls(self) -> list[list[str]]:
        calls = [line.split("\t") for line in self.procd_log.read_text().splitlines()]
        self.procd_log.write_text("")
        return calls

    def tool_calls(self, tool: str | None = None) -> list[list[str]]:
        calls = [line.split("\t") for line in self.tool_log.read_text().splitlines()]
        return [c for c in calls if tool is None or c[0] == tool]


@pytest.fixture
def owrt(tmp_path) -> OpenWrtRoot:
    return OpenWrtRoot(tmp_path)


def shellcheck() -> str:
    path = shutil.which("shellcheck")
    assert path, "shellcheck is missing: run scripts/install-test-deps"
    return path


def alive_pid() -> int:
    return os.getpid()

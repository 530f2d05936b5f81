"""A scratch OpenWrt root for the init and hotplug scripts: the package's files from
openwrt/files, the stand-ins from harness/ (rc.common, functions.sh, procd.sh, network.sh) and
fake tools on PATH (fakes.py).  ``OpenWrtRoot.run(...)`` runs a script with IPKG_INSTROOT set
to the root; what it asked procd for is in ``procd_calls()``, tool calls in ``tool_calls()``."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .fakes import install_fakes

REPO = Path(__file__).resolve().parents[2]
FILES = REPO / "openwrt" / "files"
HARNESS = Path(__file__).resolve().parent / "harness"


class OpenWrtRoot:
    def __init__(self, base: Path, files: Path = FILES) -> None:
        """``files``: the tree to start from (the repository's openwrt/files, or a root
        an .ipk was installed into)."""
        self.path = base / "root"
        self.bin = base / "bin"
        self.procd_log = base / "procd.log"
        self.tool_log = base / "tools.log"
        self.ubus_dir = base / "ubus"
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

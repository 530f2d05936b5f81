"""The maintainer scripts of the built packages, run the way each package manager runs them
(docs/notes/ubus-uci-opkg.md C5; apk: scripts get versions as arguments, pre-deinstall runs
only on removal, an upgrade runs only the new post-upgrade) on a live system whose / is a
scratch root: /lib/functions.sh is the harness stand-in of base-files' default_postinst /
default_prerm, /etc/init.d/ksmbd a recorder.  Install, upgrade and removal must do the same
under opkg and apk: enable + start; (re)start, never disable; stop + disable."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from openwrt_pkg import apk

from .conftest import HARNESS, LUCI_APK, LUCI_IPK, SERVER_APK, SERVER_IPK, VERSION, Ipk

NAME = "ksmbd-embedded"


class LiveRoot:
    """A scratch / with the package's file list and /etc/init.d/ksmbd recording its calls."""

    def __init__(self, base: Path, manager: str, files: list[str],
                 control: dict[str, str] | None = None) -> None:
        self.root = base / "root"
        self.calls = base / "calls"
        self.enabled = base / "enabled"
        init = self.root / "etc/init.d/ksmbd"
        init.parent.mkdir(parents=True)
        # enable/disable really enable/disable here, so that `enabled` answers as on a router
        init.write_text(f"#!/bin/sh\necho \"init $*\" >> {self.calls}\n"
                        f"case \"$1\" in enable) touch {self.enabled};; "
                        f"disable) rm -f {self.enabled};; "
                        f"enabled) [ -e {self.enabled} ];; esac\n")
        init.chmod(0o755)
        self.bin = base / "bin"
        self.bin.mkdir()
        (self.bin / "find").write_text(f"#!/bin/sh\necho \"find $*\" >> {self.calls}\n")
        (self.bin / "find").chmod(0o755)
        if manager == "opkg":
            info = self.root / "usr/lib/opkg/info"
            info.mkdir(parents=True)
            (info / f"{NAME}.list").write_text("".join(f + "\n" for f in files))
            for name, text in (control or {}).items():
                (info / f"{NAME}.{name}").write_text(self.live(text))
                (info / f"{NAME}.{name}").chmod(0o755)
        else:
            meta = self.root / "lib/apk/packages"
            meta.mkdir(parents=True)
            (meta / f"{NAME}.list").write_text("".join(f + "\n" for f in files))

    def live(self, text: str) -> str:
        """A script as it would act on this root: its absolute init script path moved in."""
        return text.replace("/etc/init.d/ksmbd", f"{self.root}/etc/init.d/ksmbd")

    def run(self, name: str, text: str, *args: str, upgrade: bool | None = None) -> list[str]:
        """Run script `text` as the manager does (opkg: /usr/lib/opkg/info/NAME.SCRIPT with
        PKG_UPGRADE set; apk: a temporary file, no PKG_UPGRADE); the init calls it made."""
        text = self.live(text).replace("${IPKG_INSTROOT}/lib/functions.sh",
                                       str(HARNESS / "lib/functions.sh"))
        script = self.root / "usr/lib/opkg/info" / f"{NAME}.{name}" if upgrade is not None \
            else self.root.parent / f"apk-{name}"
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(text)
        env = {"PATH": f"{self.bin}:/usr/bin:/bin", "FAKE_ROOT": str(self.root)}
        if upgrade is not None:
            env["PKG_UPGRADE"] = "1" if upgrade else "0"
        self.calls.unlink(missing_ok=True)
        proc = subprocess.run(["sh", str(script), *args], env=env, capture_output=True,
                              text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        return [line.replace(str(self.root), "") for line in
                (self.calls.read_text().splitlines() if self.calls.exists() else [])]


def _ipk_root(out: Path, tmp_path: Path) -> tuple[LiveRoot, Ipk]:
    ipk = Ipk(out / SERVER_IPK)
    files = [m.name[1:] for m in ipk.data_tar.getmembers() if m.isfile() or m.issym()]
    control = {n: ipk.control_file(n) for n in ("postinst-pkg", "prerm-pkg")}
    return LiveRoot(tmp_path, "opkg", files, control), ipk


def _apk_root(apk_out: Path, tmp_path: Path) -> tuple[LiveRoot, dict]:
    pkg = apk.read_package((apk_out / SERVER_APK).read_bytes())
    listing = next(f["data"] for p in pkg["paths"] if p["name"] == "lib/apk/packages"
                   for f in p["files"] if f["name"] == f"{NAME}.list").decode()
    return LiveRoot(tmp_path, "apk", listing.split()), pkg["scripts"]


def test_opkg_install_upgrade_remove(out, tmp_path):
    root, ipk = _ipk_root(out, tmp_path)
    postinst, prerm = ipk.control_file("postinst"), ipk.control_file("prerm")
    # install: postinst configure
    assert root.run("postinst", postinst, "configure", upgrade=False) == \
        ["init enable", "init start"]
    # upgrade (opkg: old prerm upgrade NEW, new postinst configure, PKG_UPGRADE=1)
    assert root.run("prerm", prerm, "upgrade", f"{VERSION}-2", upgrade=True) == \
        ["find /usr/lib/ksmbd-embedded -name __pycache__ -type d -exec rm -rf {} +",
         "init stop"]
    assert root.run("postinst", postinst, "configure", upgrade=True) == \
        ["init enabled", "init restart", "init start"]
    # remove
    assert root.run("prerm", prerm, "remove", upgrade=False)[1:] == \
        ["init disable", "init stop"]
    assert not root.enabled.exists()


def test_opkg_upgrade_keeps_a_disabled_service_disabled(out, tmp_path):
    root, ipk = _ipk_root(out, tmp_path)
    calls = root.run("postinst", ipk.control_file("postinst"), "configure", upgrade=True)
    assert "init enable" not in calls and "init restart" not in calls
    assert not root.enabled.exists()


def test_apk_add_upgrade_del(apk_out, tmp_path):
    root, scripts = _apk_root(apk_out, tmp_path)
    new, old = f"{VERSION}-r2", f"{VERSION}-r1"
    # apk add: post-install NEW
    assert root.run("post-install", scripts["post-install"].decode(), old) == \
        ["init enable", "init start"]
    # apk upgrade: only post-upgrade NEW OLD (no pre-deinstall): the running server is
    # restarted, never disabled
    assert root.run("post-upgrade", scripts["post-upgrade"].decode(), new, old) == \
        ["init start", "init enabled", "init restart"]
    assert root.enabled.exists()
    # apk del: pre-deinstall VERSION (not "remove": the old `$1 = remove` test never held)
    assert root.run("pre-deinstall", scripts["pre-deinstall"].decode(), new) == \
        ["init disable", "init stop",
         "find /usr/lib/ksmbd-embedded -name __pycache__ -type d -exec rm -rf {} +"]
    assert not root.enabled.exists()


def test_apk_upgrade_keeps_a_disabled_service_disabled(apk_out, tmp_path):
    root, scripts = _apk_root(apk_out, tmp_path)
    calls = root.run("post-upgrade", scripts["post-upgrade"].decode(), "0.2.0-r1", "0.1.0-r1")
    assert "init enable" not in calls and "init restart" not in calls
    assert not root.enabled.exists()


@pytest.mark.parametrize("manager", ["opkg", "apk"])
def test_scripts_do_nothing_to_the_build_host_in_an_image_build(out, apk_out, tmp_path,
                                                                manager):
    """With IPKG_INSTROOT set (an image build) the packages' own code does nothing: no
    restart, no find on the build host."""
    if manager == "opkg":
        texts = [Ipk(out / name).control_file(n) for name in (SERVER_IPK, LUCI_IPK)
                 for n in ("postinst-pkg", "prerm-pkg")
                 if f"./{n}" in Ipk(out / name).control_tar.getnames()]
    else:
        texts = [t.decode() for name in (SERVER_APK, LUCI_APK)
                 for t in apk.read_package((apk_out / name).read_bytes())["scripts"].values()]
    for text in texts:
        body = text.replace("${IPKG_INSTROOT}/lib/functions.sh",
                            str(HARNESS / "lib/functions.sh"))
        script = tmp_path / "script"
        script.write_text(body)
        calls = tmp_path / "calls"
        (tmp_path / "bin").mkdir(exist_ok=True)
        for tool in ("find", "rm"):
            (tmp_path / "bin" / tool).write_text(f"#!/bin/sh\necho {tool} >> {calls}\n")
            (tmp_path / "bin" / tool).chmod(0o755)
        proc = subprocess.run(["sh", str(script), "1.0-r1"], capture_output=True, text=True,
                              env={"PATH": f"{tmp_path / 'bin'}:/usr/bin:/bin",
                                   "IPKG_INSTROOT": str(tmp_path / "rootfs"),
                                   "FAKE_ROOT": str(tmp_path / "empty")})
        assert proc.returncode == 0, proc.stderr
        assert not calls.exists(), text

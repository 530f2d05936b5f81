"""/etc/hotplug.d/mount/60-ksmbd with fake ubus/jsonfilter/uci/logger and a recording init
script: runtime shares in /var/run/config/ksmbd, then a reload of a running service."""

from __future__ import annotations

import json
import subprocess

from ksmbd_embedded.config import load_config

from .conftest import FILES, shellcheck

HOTPLUG = FILES / "etc/hotplug.d/mount/60-ksmbd"


def _setup(owrt, tmp_path, devices, running=True):
    (owrt.ubus_dir / "block.info").write_text(json.dumps({"devices": devices}, indent=1))
    init = owrt.file("etc/init.d/ksmbd")
    init.write_text(f"#!/bin/sh\nprintf 'init\\t%s\\n' \"$1\" >> '{owrt.tool_log}'\n"
                    f"[ \"$1\" != running ] || exit {0 if running else 1}\n")
    init.chmod(0o755)


def _hotplug(owrt, action, device, check=True):
    return owrt.run(str(owrt.file("etc/hotplug.d/mount/60-ksmbd")),
                    env={"ACTION": action, "DEVICE": device}, check=check)


def _init_calls(owrt):
    return [c[1] for c in owrt.tool_calls("init")]


def test_shellcheck():
    proc = subprocess.run([shellcheck(), str(HOTPLUG)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_add_shares_the_mount_read_only_for_guests(owrt, tmp_path):
    mnt = tmp_path / "mnt" / "sda1"
    mnt.mkdir(parents=True)
    _setup(owrt, tmp_path, [
        {"device": "sdb1", "type": "ext4", "mount": "/mnt/other", "label": "Other"},
        {"device": "sda1", "type": "vfat", "mount": str(mnt), "label": "USB STICK"}])
    _hotplug(owrt, "add", "sda1")
    runtime = owrt.file("var/run/config/ksmbd")
    config = load_config(owrt.file("etc/config/ksmbd"), [runtime])
    assert [s.name for s in config.shares] == ["USB STICK"]
    share = config.shares[0]
    assert share.path == str(mnt) and share.read_only and share.guest_ok and share.browseable
    assert "config share 'sda1'" in runtime.read_text()
    assert _init_calls(owrt) == ["running", "reload"]
    # its own uci save dir, never the default /tmp/.uci shared with /etc/config changes
    for call in owrt.tool_calls("uci"):
        if call[-1].startswith("ksmbd.sda1"):
            assert call[1:6] == ["-q", "-c", str(owrt.file("var/run/config")), "-t",
                                 str(owrt.file("var/run/ksmbd-hotplug"))]


def test_add_without_label_uses_the_device_name(owrt, tmp_path):
    _setup(owrt, tmp_path, [{"device": "sdc1", "mount": "/mnt/sdc1"}])
    _hotplug(owrt, "add", "sdc1")
    text = owrt.file("var/run/config/ksmbd").read_text()
    assert "option name 'sdc1'" in text and "option path '/mnt/sdc1'" in text


def test_label_is_made_a_valid_share_name(owrt, tmp_path):
    _setup(owrt, tmp_path, [{"device": "sda1", "mount": "/mnt/sda1", "label": "a/b:c*d'e"}])
    _hotplug(owrt, "add", "sda1")
    assert "option name 'a_b_c_d_e'" in owrt.file("var/run/config/ksmbd").read_text()


def test_label_taken_by_a_configured_share_gets_the_device_appended(owrt, tmp_path):
    owrt.file("etc/config/ksmbd").write_text(
        "config globals\n\nconfig share\n\toption name 'usb'\n\toption path '/srv'\n")
    _setup(owrt, tmp_path, [{"device": "sda1", "mount": "/mnt/sda1", "label": "USB"}])
    _hotplug(owrt, "add", "sda1")
    assert "option name 'USB_sda1'" in owrt.file("var/run/config/ksmbd").read_text()


def test_stopped_service_is_not_started(owrt, tmp_path):
    _setup(owrt, tmp_path, [{"device": "sda1", "mount": "/mnt/sda1"}], running=False)
    _hotplug(owrt, "add", "sda1")
    assert "sda1" in owrt.file("var/run/config/ksmbd").read_text()
    assert _init_calls(owrt) == ["running"]


def test_unmounted_device_adds_nothing(owrt, tmp_path):
    _setup(owrt, tmp_path, [{"device": "sda1", "type": "swap"}])
    _hotplug(owrt, "add", "sda1")
    assert owrt.file("var/run/config/ksmbd").read_text() == ""
    assert _init_calls(owrt) == []


def test_remove_deletes_the_share_and_reloads(owrt, tmp_path):
    _setup(owrt, tmp_path, [{"device": "sda1", "mount": "/mnt/sda1"},
                            {"device": "sdb1", "mount": "/mnt/sdb1"}])
    _hotplug(owrt, "add", "sda1")
    _hotplug(owrt, "add", "sdb1")
    _hotplug(owrt, "remove", "sda1")
    text = owrt.file("var/run/config/ksmbd").read_text()
    assert "sda1" not in text and "'sdb1'" in text
    assert _init_calls(owrt) == ["running", "reload"] * 3


def test_remove_of_an_unknown_device_does_not_reload(owrt, tmp_path):
    _setup(owrt, tmp_path, [])
    _hotplug(owrt, "remove", "sdz9")
    assert _init_calls(owrt) == []


def test_blockd_missing_is_logged(owrt, tmp_path):
    _setup(owrt, tmp_path, [])
    (owrt.ubus_dir / "block.info").unlink()
    proc = _hotplug(owrt, "add", "sda1", check=False)
    assert proc.returncode == 1
    assert ["logger", "-t", "ksmbd-hotplug", "Failed to get sda1 info from blockd"] in \
        owrt.tool_calls("logger")

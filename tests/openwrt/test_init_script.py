"""/etc/init.d/ksmbd under a stand-in rc.common/procd: what it asks procd for."""

from __future__ import annotations

import os
import subprocess

from ksmbd_embedded import cli

from .conftest import INIT, shellcheck
BASE_CMD = ["/usr/sbin/ksmbd-embedded", "serve", "--config", "/etc/config/ksmbd",
            "--config-extra", "/var/run/config/ksmbd", "--ksmbd-conf", "/etc/ksmbd/ksmbd.conf",
            "--write-ksmbd-conf", "/var/etc/ksmbd/ksmbd.conf",
            "--pwddb", "/etc/ksmbd/ksmbdpwd.db", "--pid-file", "/var/run/ksmbd.lock"]
LAN_UP = {"FAKE_NET_UP": "lan", "FAKE_NET_lan_IP4": "192.168.1.1",
          "FAKE_NET_lan_IP6": "fd00:1::1"}


def _by_name(calls, name):
    return [c[1:] for c in calls if c[0] == name]


def _command(calls):
    cmds = [c[1:] for c in calls if c[:2] == ["procd_set_param", "command"]]
    assert len(cmds) == 1, calls
    return cmds[0][1:]


def test_header_and_shellcheck():
    text = INIT.read_text()
    assert text.startswith("#!/bin/sh /etc/rc.common\n")
    for line in ("START=98", "STOP=05", "USE_PROCD=1"):
        assert f"\n{line}\n" in text
    assert os.access(INIT, os.X_OK)
    proc = subprocess.run([shellcheck(), str(INIT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_start_with_default_config(owrt):
    owrt.init("start", env=LAN_UP)
    calls = owrt.procd_calls()
    names = [c[0] for c in calls]
    assert names[0] == "procd_open_service" and calls[0][1] == "ksmbd"
    assert names.count("procd_open_instance") == 1  # `/etc/init.d/ksmbd running` for wsdd2
    assert names[-1] == "procd_close_service"
    assert _command(calls) == BASE_CMD + ["--listen", "192.168.1.1", "--listen", "fd00:1::1",
                                          "--port", "445"]
    params = {c[1]: c[2:] for c in calls if c[0] == "procd_set_param"}
    assert params["respawn"] == []
    assert params["limits"] == ["nofile=16384"]
    assert params["file"] == ["/etc/config/ksmbd"]
    assert params["stderr"] == ["1"]
    assert _by_name(calls, "procd_add_mdns") == [["smb", "tcp", "445", "daemon=ksmbd"]]
    # mDNS belongs to the instance: between open and close
    i_open, i_close = names.index("procd_open_instance"), names.index("procd_close_instance")
    assert i_open < names.index("procd_add_mdns") < i_close
    assert _by_name(calls, "procd_add_reload_trigger") == [["ksmbd", "system", "dhcp"]]
    assert _by_name(calls, "procd_add_reload_interface_trigger") == [["lan"]]
    assert owrt.file("var/run/ksmbd.cmdline").read_text().split() == _command(calls)
    for d in ("var/etc/ksmbd", "var/run/config", "etc/ksmbd"):
        assert owrt.file(d).is_dir()


def test_command_line_is_accepted_by_the_server_cli(owrt):
    owrt.init("start", env=LAN_UP)
    argv = _command(owrt.procd_calls())
    args = cli._parser().parse_args(argv[1:])
    assert args.command == "serve" and args.pid_file == "/var/run/ksmbd.lock"
    assert args.listen == ["192.168.1.1", "fd00:1::1"] and args.port == 445
    assert args.config_extra == ["/var/run/config/ksmbd"]


def test_interface_not_up_is_skipped_and_retried(owrt):
    owrt.file("etc/config/ksmbd").write_text(
        "config globals\n\toption interface 'lan guest'\n\toption port '4450'\n")
    owrt.init("start", env=LAN_UP)
    calls = owrt.procd_calls()
    assert _command(calls)[-5:] == ["192.168.1.1", "--listen", "fd00:1::1", "--port", "4450"]
    assert _by_name(calls, "procd_add_mdns") == [["smb", "tcp", "4450", "daemon=ksmbd"]]
    assert _by_name(calls, "procd_add_reload_interface_trigger") == [["lan"], ["guest"]]
    logs = [" ".join(c) for c in owrt.tool_calls("logger")]
    assert any("'guest' is not up yet" in line for line in logs), logs

    # guest comes up: the interface trigger runs reload, the command changes -> new instance
    owrt.file("var/run/ksmbd.lock").write_text(f"{os.getpid()}\n")
    env = {**LAN_UP, "FAKE_NET_UP": "lan guest", "FAKE_NET_guest_IP4": "192.168.2.1"}
    owrt.init("reload", env=env)
    calls = owrt.procd_calls()
    assert "--listen" in _command(calls) and "192.168.2.1" in _command(calls)
    assert not _by_name(calls, "procd_send_signal")


def test_no_interface_up_waits_without_error(owrt):
    proc = owrt.init("start", env={"FAKE_NET_UP": ""})
    assert proc.returncode == 0
    calls = owrt.procd_calls()
    names = [c[0] for c in calls]
    assert "procd_open_instance" not in names
    assert _by_name(calls, "procd_add_reload_interface_trigger") == [["lan"]]
    assert not owrt.file("var/run/ksmbd.cmdline").exists()
    logs = [" ".join(c) for c in owrt.tool_calls("logger")]
    assert any("waiting for one" in line for line in logs), logs
    # lan comes up: reload (from the interface trigger) starts the instance
    owrt.init("reload", env=LAN_UP)
    assert "procd_open_instance" in [c[0] for c in owrt.procd_calls()]


def test_reload_signals_the_running_server(owrt):
    owrt.init("start", env=LAN_UP)
    owrt.procd_calls()
    owrt.file("var/run/ksmbd.lock").write_text(f"{os.getpid()}\n")  # a live pid
    owrt.init("reload", env=LAN_UP)
    calls = owrt.procd_calls()
    assert calls == [["procd_send_signal", "ksmbd", "*", "HUP"]]


def test_reload_restarts_when_the_port_changes(owrt):
    owrt.init("start", env=LAN_UP)
    owrt.procd_calls()
    owrt.file("var/run/ksmbd.lock").write_text(f"{os.getpid()}\n")
    owrt.file("etc/config/ksmbd").write_text("config globals\n\toption port '4451'\n")
    owrt.init("reload", env=LAN_UP)
    calls = owrt.procd_calls()
    assert _command(calls)[-2:] == ["--port", "4451"]
    assert not _by_name(calls, "procd_send_signal")


def test_reload_starts_a_dead_server(owrt):
    owrt.init("start", env=LAN_UP)
    owrt.procd_calls()
    owrt.init("reload", env=LAN_UP)  # no pid file: the server is not running
    calls = owrt.procd_calls()
    assert [c[0] for c in calls].count("procd_open_instance") == 1
    assert not _by_name(calls, "procd_send_signal")


def test_listen_option_overrides_interfaces(owrt):
    owrt.file("etc/config/ksmbd").write_text(
        "config globals\n\tlist listen '10.0.0.1'\n\tlist listen '::1'\n")
    owrt.init("start", env={"FAKE_NET_UP": ""})
    assert _command(owrt.procd_calls())[len(BASE_CMD):] == [
        "--listen", "10.0.0.1", "--listen", "::1", "--port", "445"]


def test_custom_ksmbd_conf_is_used_instead_of_uci(owrt):
    owrt.file("etc/ksmbd").mkdir(parents=True, exist_ok=True)
    owrt.file("etc/ksmbd/ksmbd.conf").write_text(
        "[global]\n\t; tcp port = 1\n\ttcp port = 4452\n\ttcp port = 4453\n")
    owrt.init("start", env={"FAKE_NET_UP": ""})
    calls = owrt.procd_calls()
    assert _command(calls) == BASE_CMD  # the server listens where the file says
    assert _by_name(calls, "procd_add_mdns") == [["smb", "tcp", "4452", "daemon=ksmbd"]]
    assert ["file", "/etc/config/ksmbd", "/etc/ksmbd/ksmbd.conf"] in \
        _by_name(calls, "procd_set_param")
    logs = [" ".join(c) for c in owrt.tool_calls("logger")]
    assert any("daemon.warn" in line and "UCI and LuCI settings are ignored" in line
               for line in logs), logs


def test_symlinked_ksmbd_conf_means_uci(owrt):
    owrt.file("etc/ksmbd").mkdir(parents=True, exist_ok=True)
    owrt.file("var/etc/ksmbd").mkdir(parents=True, exist_ok=True)
    owrt.file("var/etc/ksmbd/ksmbd.conf").write_text("[global]\n\ttcp port = 9999\n")
    os.symlink(owrt.file("var/etc/ksmbd/ksmbd.conf"), owrt.file("etc/ksmbd/ksmbd.conf"))
    owrt.init("start", env=LAN_UP)
    calls = owrt.procd_calls()
    assert _by_name(calls, "procd_add_mdns") == [["smb", "tcp", "445", "daemon=ksmbd"]]
    assert "--listen" in _command(calls)


def test_stop(owrt):
    owrt.init("start", env=LAN_UP)
    owrt.procd_calls()
    owrt.init("stop", env=LAN_UP)
    assert owrt.procd_calls() == [["procd_kill", "ksmbd"]]
    assert not owrt.file("var/run/ksmbd.cmdline").exists()

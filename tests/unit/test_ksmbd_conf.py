"""ksmbd_conf.py: the ksmbd.conf(5) reader and writer and the OpenWrt file layout."""

from __future__ import annotations

import logging
import os

import pytest

from ksmbd_embedded.config import ConfigError, config_from_text
from ksmbd_embedded.ksmbd_conf import (
    ConfigSources, config_from_ksmbd_conf, ensure_symlink, parse, parse_number, render,
    write_generated)
from ksmbd_embedded.server import ServerState
from ksmbd_embedded.pwddb import PasswordDb


def conf(text, tmp_path, **kw):
    return config_from_ksmbd_conf(text, "ksmbd.conf", hostname="router.lan",
                                  mem_total_kb=512 * 1024, **kw)


@pytest.mark.parametrize("text,value", [
    ("65536", 65536), ("64K", 65536), ("64k", 65536), ("4MB", 4 << 20), ("1g", 1 << 30),
    ("0x10", 16), ("010", 8), ("0", 0), (" 8M ", 8 << 20), ("2T", 2 << 40), ("abc", None),
    ("", None), ("-1", None)])
def test_parse_number(text, value):
    assert parse_number(text) == value


def test_parse_rules():
    c = parse("""\
; a comment
# another
ignored before any section = 1
[Global]
	Workgroup = FIRST
	workgroup = second
	netbios   name=  BOX
	server string = ; unset, the next one counts
	SERVER STRING = Files
[Data]
	path = /srv/a
	comment =
[data]
	path = /srv/b
	comment = kept
	read only
""")
    assert c.global_.get("workgroup") == "FIRST"
    assert c.global_.get("netbios name") == "BOX"
    assert c.global_.get("server string") == "Files"
    assert list(c.shares) == ["data"]
    data = c.shares["data"]
    assert data.name == "Data"  # the first spelling
    assert data.get("path") == "/srv/a" and data.get("comment") == "kept"
    assert data.get("read only") is None  # no '=': skipped
    assert data.values["path"][1] == 11  # line of the value that counts


def test_mapping_onto_server_config(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    config = conf(f"""\
[global]
	netbios name = NAS
	workgroup = HOME
	server string = My files
	tcp port = 4450
	map to guest = Bad User
	server signing = mandatory
	smb3 encryption = enabled
	server min protocol = NT1
	smb2 max read = 1M
	smb2 max write = 64M
	guest ok = yes
	read only = no
	bind interfaces only = yes
	some future key = 1
[a]
	path = {tmp_path}/a
	valid users = alice, bob carol
	invalid users = bob
	writeable = no
	create mask = 0664
	veto files = /*.tmp/.DS_Store/
[b]
	path = {tmp_path}/b
	force user = root
	guest ok = no
	browseable = no
	hide dot files = 0
[IPC$]
	comment = skipped
""", tmp_path)
    g = config.globals
    assert (g.netbios_name, g.workgroup, g.description, g.port) == ("NAS", "HOME", "My files",
                                                                    4450)
    assert g.map_to_guest == "bad_user" and g.server_signing == "mandatory"
    assert g.smb3_encryption == "auto" and g.server_min_protocol == "SMB2_02"
    assert g.smb2_max_read == 1 << 20 and g.smb2_max_write == 8 << 20  # clamped
    assert g.allow_guest_ipc
    a, b = config.shares
    assert a.name == "a" and a.users == ("alice", "carol")
    assert a.guest_ok  # [global] guest ok is every share's default
    assert a.read_only is False  # [global] read only = no beats the share's writeable = no
    assert a.create_mask == 0o664 and a.veto_files == ("*.tmp", ".DS_Store")
    assert b.force_root and not b.guest_ok and not b.browseable and not b.hide_dot_files
    text = "\n".join(config.warnings)
    assert "NT1" in text and "64M" in text and "'some future key'" in text
    assert "bind interfaces only" not in text


def test_netbios_name_defaults_to_the_hostname(tmp_path):
    assert conf("[global]\n", tmp_path).globals.netbios_name == "router"


@pytest.mark.parametrize("text,line,words", [
    ("[global]\n[s]\n\tpath = /proc/version\n", 3, "not a directory"),
    ("[s]\n\tpath = /\n\tcreate mask = 0999\n", 3, "bad octal"),
    ("[s]\n\tpath = /\n\tforce user = alice\n", 3, "force user = root"),
    ("[s]\n\tpath = /\n\tinvalid users = bob\n", 3, "valid users"),
    ("[s]\n\tcomment = no path\n", 1, "no 'path'"),
    ("[bad:name]\n\tpath = /\n", 1, "bad share name"),
])
def test_errors_name_file_and_line(tmp_path, text, line, words):
    with pytest.raises(ConfigError) as err:
        conf(text, tmp_path)
    assert err.value.filename == "ksmbd.conf" and err.value.line == line
    assert words in str(err.value)


UCI = """\
config globals
	option workgroup 'OFFICE'
	option description 'Router files'
	option port '4455'
	option server_signing 'mandatory'
	option smb3_encryption 'disabled'
	option server_min_protocol 'SMB3_00'
	option smb2_max_read '1M'
	option smb2_max_credits '512'
	option map_to_guest 'never'
	option allow_guest_ipc '1'

config share
	option name 'media'
	option path '{path}'
	option comment 'Films and music'
	list users 'alice'
	list users 'bob'
	option create_mask '0644'
	option dir_mask '0755'
	option force_create_mode '0600'
	option force_directory_mode '0700'
	option browseable 'no'
	option read_only 'no'
	option guest_ok 'no'
	option inherit_owner 'yes'
	option write_list 'alice'
	option read_list 'bob'
	option hide_dot_files 'no'
	option veto_files '/*.part/'
	option smb3_encryption 'mandatory'

config share
	option name 'root'
	option path '{path}'
	option force_root '1'
	option guest_ok 'yes'
"""


def test_render_then_parse_gives_the_same_configuration(tmp_path):
    uci = config_from_text(UCI.format(path=tmp_path), hostname="gw.example.org",
                           mem_total_kb=1 << 20)
    text = render(uci)
    assert "\tnetbios name = gw\n" in text and "\tworkgroup = OFFICE\n" in text
    assert "\tserver string = Router files\n" in text
    assert "[media]\n\tpath = " in text
    back = config_from_ksmbd_conf(text, "gen.conf", hostname="other", mem_total_kb=1 << 20)
    assert back.globals == uci.globals
    assert back.shares == uci.shares
    assert back.warnings == ()


def test_render_defaults_and_no_newlines_in_values(tmp_path):
    text = config_from_text(f"config globals\n\toption description 'a\nb'\n"
                            f"config share\n\toption name 's'\n\toption path '{tmp_path}'\n",
                            hostname="h", mem_total_kb=1 << 20)
    out = render(text)
    assert "\tserver string = a b\n" in out
    assert "smb2 max read" not in out  # only what was set
    assert "guest ok = yes" not in out.split("[s]")[0]


def test_write_generated_is_atomic_and_skips_unchanged(tmp_path):
    config = config_from_text("config globals\n", hostname="h", mem_total_kb=1 << 20)
    target = tmp_path / "var/etc/ksmbd/ksmbd.conf"
    assert write_generated(config, target) is True
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    mtime = target.stat().st_mtime_ns
    assert write_generated(config, target) is False
    assert target.stat().st_mtime_ns == mtime
    assert [p.name for p in target.parent.iterdir()] == ["ksmbd.conf"]


def test_ensure_symlink_leaves_existing_files(tmp_path):
    link, target = tmp_path / "etc/ksmbd/ksmbd.conf", tmp_path / "gen.conf"
    assert ensure_symlink(link, target) is True
    assert os.readlink(link) == str(target)
    assert ensure_symlink(link, tmp_path / "other") is False
    link.unlink()
    link.write_text("[global]\n")
    assert ensure_symlink(link, target) is False and not link.is_symlink()


def _layout(tmp_path, uci_text="config globals\n\toption workgroup 'UCIGROUP'\n"):
    (tmp_path / "etc/config").mkdir(parents=True)
    (tmp_path / "etc/config/ksmbd").write_text(uci_text)
    return ConfigSources(str(tmp_path / "etc/config/ksmbd"),
                         (str(tmp_path / "var/run/config/ksmbd"),),
                         str(tmp_path / "etc/ksmbd/ksmbd.conf"),
                         str(tmp_path / "var/etc/ksmbd/ksmbd.conf"))


def test_sources_uci_mode_generates_and_links(tmp_path):
    sources = _layout(tmp_path)
    runtime = tmp_path / "var/run/config/ksmbd"
    runtime.parent.mkdir(parents=True)
    runtime.write_text(f"config share 'sda1'\n\toption name 'usb'\n\toption path '{tmp_path}'\n"
                       "\toption read_only 'yes'\n\toption guest_ok 'yes'\n")
    config = sources.load()
    assert config.globals.workgroup == "UCIGROUP" and [s.name for s in config.shares] == ["usb"]
    link = tmp_path / "etc/ksmbd/ksmbd.conf"
    assert link.is_symlink() and os.readlink(link) == sources.generated
    text = link.read_text()
    assert "workgroup = UCIGROUP" in text and "[usb]" in text and "netbios name = " in text


def test_sources_user_file_replaces_uci(tmp_path, caplog):
    sources = _layout(tmp_path)
    user = tmp_path / "etc/ksmbd/ksmbd.conf"
    user.parent.mkdir(parents=True)
    user.write_text(f"[global]\n\tworkgroup = MINE\n[own]\n\tpath = {tmp_path}\n")
    with caplog.at_level(logging.WARNING, "ksmbd.conf"):
        config = sources.load()
    assert config.globals.workgroup == "MINE" and [s.name for s in config.shares] == ["own"]
    assert "UCI settings" in caplog.text and "ignored" in caplog.text
    assert not (tmp_path / "var/etc/ksmbd/ksmbd.conf").exists()
    assert not user.is_symlink()


def test_server_reload_goes_through_the_sources(tmp_path):
    sources = _layout(tmp_path)
    state = ServerState(sources.load(), PasswordDb(), None, [sources.uci])
    state.config_loader = sources.load
    (tmp_path / "etc/config/ksmbd").write_text(
        f"config globals\n\toption workgroup 'NEW'\nconfig share\n\toption name 'x'\n"
        f"\toption path '{tmp_path}'\n")
    state.reload()
    assert state.config.globals.workgroup == "NEW" and "x" in state.share_roots
    assert "workgroup = NEW" in (tmp_path / "var/etc/ksmbd/ksmbd.conf").read_text()


def test_memory_limit_read_and_written():
    """`memory limit` (ours) maps onto UCI's memory_limit both ways."""
    from ksmbd_embedded.config import config_from_text
    from ksmbd_embedded.ksmbd_conf import config_from_ksmbd_conf, render
    cfg = config_from_ksmbd_conf("[global]\n\tmemory limit = 24M\n", "ksmbd.conf",
                                 check_paths=False, hostname="h", mem_total_kb=1 << 17)
    assert cfg.globals.memory_limit == 24 << 20
    uci = config_from_text("config globals\n\toption memory_limit '8M'\n", "ksmbd", False,
                           hostname="h", mem_total_kb=1 << 17)
    text = render(uci)
    assert f"memory limit = {8 << 20}" in text
    again = config_from_ksmbd_conf(text, "ksmbd.conf", check_paths=False, hostname="h",
                                   mem_total_kb=1 << 17)
    assert again.globals.memory_limit == 8 << 20

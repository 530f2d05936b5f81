"""UCI -> ServerConfig: defaults, validation errors with lines, warnings, merging."""

import dataclasses
from pathlib import Path

import pytest

from ksmbd_embedded import config as config_mod
from ksmbd_embedded.config import (ConfigError, GlobalConfig, ServerConfig, ShareConfig,
                                   config_from_text, default_max_io, load_config,
                                   netbios_name_from_hostname)

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "uci"


def cfg(text, check_paths=False, **kw):
    kw.setdefault("hostname", "router.lan")
    kw.setdefault("mem_total_kb", 1 << 20)
    return config_from_text(text, "ksmbd", check_paths, **kw)


def error(text, check_paths=False):
    with pytest.raises(ConfigError) as info:
        cfg(text, check_paths)
    return info.value


def test_option_tables_match_dataclasses():
    share_fields = {f.name for f in dataclasses.fields(ShareConfig)}
    global_fields = {f.name for f in dataclasses.fields(GlobalConfig)}
    assert set(config_mod._SHARE_OPTIONS) - {"name"} <= share_fields
    assert set(config_mod._GLOBAL_OPTIONS) <= global_fields


def test_empty_config_defaults():
    c = cfg("")
    g = c.globals
    assert c.shares == () and c.warnings == ()
    assert (g.workgroup, g.description, g.interface) == ("WORKGROUP", "Ksmbd on OpenWrt",
                                                         ("lan",))
    assert (g.port, g.listen) == (445, ("0.0.0.0", "::"))
    assert (g.server_signing, g.smb3_encryption) == ("auto", "auto")
    assert (g.server_min_protocol, g.server_max_protocol) == ("SMB2_02", "SMB3_11")
    assert (g.smb2_max_read, g.smb2_max_write, g.smb2_max_trans) == (None, None, None)
    assert (g.smb2_max_credits, g.map_to_guest, g.guest_account) == (8192, "bad_user",
                                                                     "nobody")
    assert not g.allow_legacy_protocols and not g.allow_guest_ipc
    assert g.netbios_name == "router"


def test_share_defaults():
    s = cfg("config share\n\toption name 'x'\n\toption path '/srv'\n").share("X")
    assert s == ShareConfig(name="x", path="/srv")
    assert s.browseable and s.read_only and not s.writable and s.hide_dot_files
    assert not s.guest_ok and not s.inherit_owner and not s.force_root
    assert s.create_mask is None and s.smb3_encryption is None and s.writeable is None


def test_objects_are_frozen():
    c = cfg("config share 'a'\n\toption path '/srv'\n")
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.shares[0].path = "/etc"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.globals.port = 1  # type: ignore[misc]
    assert not hasattr(c.shares[0], "__dict__")


def test_openwrt_session_file(tmp_path):
    c = load_config(VECTORS / "ksmbd-session" / "02-file-after-commit.txt",
                    check_paths=False, hostname="OpenWrt", mem_total_kb=120_000)
    public, private = c.shares
    assert (public.name, public.path, public.guest_ok, public.read_only) == \
        ("public", "/mnt/sda1", True, False)
    assert (public.create_mask, public.dir_mask) == (0o666, 0o777)
    assert private.users == ("alice", "bob") and private.write_list == ("alice", "bob")
    assert private.read_only and private.writable_for("Alice")
    assert private.user_allowed("BOB") and not private.user_allowed("eve")
    assert c.share("PUBLIC") is public and c.share("ipc$") is None
    assert c.max_read == c.max_write == c.max_trans == 128 * 1024


def test_anonymous_and_named_share_names():
    c = cfg("config share 'media'\n\toption path '/m'\n"
            "config share 'other'\n\toption name 'Films'\n\toption path '/f'\n")
    assert [s.name for s in c.shares] == ["media", "Films"]


@pytest.mark.parametrize("value,expected", [
    ("yes", True), ("No", False), ("1", True), ("0", False), ("TRUE", True),
    ("false", False), ("on", True), ("Off", False)])
def test_flags(value, expected):
    s = cfg(f"config share 'a'\n\toption path '/x'\n\toption guest_ok '{value}'\n").shares[0]
    assert s.guest_ok is expected


@pytest.mark.parametrize("read_only,writeable,expected", [
    (None, None, True), ("no", None, False), ("yes", None, True),
    (None, "yes", False), (None, "no", True), ("no", "no", False), ("yes", "yes", True)])
def test_read_only_writeable(read_only, writeable, expected):
    text = "config share 'a'\n\toption path '/x'\n"
    if read_only:
        text += f"\toption read_only '{read_only}'\n"
    if writeable:
        text += f"\toption writeable '{writeable}'\n"
    c = cfg(text)
    assert c.shares[0].read_only is expected
    assert c.shares[0].writable is not expected
    conflict = read_only and writeable and (read_only == writeable)
    assert bool(c.warnings) == bool(conflict)


def test_read_and_write_lists():
    s = cfg("config share 'a'\n\toption path '/x'\n\toption read_only 'no'\n"
            "\toption read_list 'guest,eve'\n\tlist write_list 'eve'\n").shares[0]
    assert s.read_list == ("guest", "eve")
    assert not s.writable_for("EVE") and s.writable_for("bob")


def test_octal_masks():
    s = cfg("config share 'a'\n\toption path '/x'\n\toption create_mask '0644'\n"
            "\toption dir_mask '755'\n\toption force_create_mode '0o600'\n"
            "\toption force_directory_mode '0'\n").shares[0]
    assert (s.create_mask, s.dir_mask, s.force_create_mode, s.force_directory_mode) == \
        (0o644, 0o755, 0o600, 0)


def test_lists_and_veto():
    c = cfg("config globals\n\toption interface 'lan guest'\n"
            "\tlist listen '192.168.1.1'\n\tlist listen 'fd00::1'\n"
            "config share 'a'\n\toption path '/x'\n\toption users 'alice, bob\tcarol'\n"
            "\toption veto_files '/*.tmp/.DS_Store/Thumbs.db/'\n")
    assert c.globals.interface == ("lan", "guest")
    assert c.globals.listen == ("192.168.1.1", "fd00::1")
    assert c.shares[0].users == ("alice", "bob", "carol")
    assert c.shares[0].veto_files == ("*.tmp", ".DS_Store", "Thumbs.db")


def test_force_root_drops_users():
    c = cfg("config share 'a'\n\toption path '/x'\n\toption force_root '1'\n"
            "\toption users 'alice'\n")
    assert c.shares[0].force_root and c.shares[0].users == ()
    assert c.warnings == ("ksmbd:4: share 'a': users ignored because force_root is set",)


def test_global_extensions():
    g = cfg("config globals\n\toption port 4445\n\toption server_signing 'Mandatory'\n"
            "\toption smb3_encryption disabled\n\toption server_min_protocol smb3_00\n"
            "\toption server_max_protocol 'SMB3_02'\n\toption smb2_max_read 64K\n"
            "\toption smb2_max_write 2M\n\toption smb2_max_trans 1048576\n"
            "\toption smb2_max_credits 512\n\toption map_to_guest 'Bad User'\n"
            "\toption guest_account 'guest'\n\toption allow_guest_ipc 1\n").globals
    assert (g.port, g.server_signing, g.smb3_encryption) == (4445, "mandatory", "disabled")
    assert (g.server_min_protocol, g.server_max_protocol) == ("SMB3_00", "SMB3_02")
    assert (g.smb2_max_read, g.smb2_max_write, g.smb2_max_trans) == \
        (65536, 2 << 20, 1 << 20)
    assert (g.smb2_max_credits, g.map_to_guest, g.guest_account) == (512, "bad_user",
                                                                     "guest")
    assert g.allow_guest_ipc


@pytest.mark.parametrize("text,size", [("64k", 65536), ("128K", 131072), ("1m", 1 << 20),
                                       ("4MB", 4 << 20), ("4MiB", 4 << 20),
                                       ("8M", 8 << 20), ("65536", 65536)])
def test_size_suffixes(text, size):
    assert cfg(f"config globals\n\toption smb2_max_read '{text}'\n").max_read == size


@pytest.mark.parametrize("kb,size", [
    (1, 64 << 10), (65536, 64 << 10), (65537, 128 << 10), (134072, 128 << 10),
    (134073, 1 << 20), (262145, 1 << 20), (262146, 4 << 20), (None, 4 << 20)])
def test_default_max_io(kb, size):
    assert default_max_io(kb) == size


def test_ram_defaults_resolved():
    small = cfg("", mem_total_kb=60_000)
    assert (small.max_read, small.max_write, small.max_trans) == (65536,) * 3
    big = cfg("", mem_total_kb=1_000_000)
    assert (big.max_read, big.max_write, big.max_trans) == (4 << 20, 4 << 20, 1 << 20)
    assert ServerConfig().max_read == 4 << 20  # unknown RAM: ksmbd defaults
    mixed = cfg("config globals\n\toption smb2_max_write '256K'\n", mem_total_kb=60_000)
    assert (mixed.max_read, mixed.max_write) == (65536, 256 << 10)


def test_legacy_protocols_maps_to_smb2_02():
    c = cfg("config globals\n\toption allow_legacy_protocols '1'\n")
    assert c.globals.server_min_protocol == "SMB2_02"
    assert c.warnings and "SMB1 is not supported" in c.warnings[0]
    c = cfg("config globals\n\toption allow_legacy_protocols '1'\n"
            "\toption server_min_protocol 'SMB3_00'\n")
    assert c.globals.server_min_protocol == "SMB3_00"


def test_last_globals_wins():
    c = cfg("config globals\n\toption workgroup 'A'\n\toption port 1445\n"
            "config globals 'g'\n\toption workgroup 'B'\n")
    assert c.globals.workgroup == "B" and c.globals.port == 445
    assert c.warnings == ("ksmbd:1: globals section ignored: a later globals section "
                          "(ksmbd:4) replaces it",)


def test_unknown_options_warn():
    c = cfg("config globals\n\toption foo 'x'\n"
            "config share\n\toption name 'data'\n\toption path '/x'\n"
            "\toption writable 'yes'\n\toption zzz 'q'\n")
    assert c.warnings == (
        "ksmbd:2: unknown option 'foo' in globals",
        "ksmbd:6: unknown option 'writable' in share 'data' (did you mean 'writeable'?)",
        "ksmbd:7: unknown option 'zzz' in share 'data'",
    )
    assert c.shares[0].read_only  # the misspelt option did nothing


@pytest.mark.parametrize("text,line,words", [
    ("config foo\n", 1, "unknown section type 'foo'"),
    ("config globals\nconfig share\n\toption path '/x'\n", 2, "no 'name'"),
    ("\nconfig share\n\toption name 'a'\n", 2, "share 'a' has no 'path'"),
    ("config share 'a'\n\toption path '/x'\n\toption create_mask '0999'\n", 3,
     "bad octal mask"),
    ("config share 'a'\n\toption path '/x'\n\toption dir_mask '17777'\n", 3,
     "bad octal mask"),
    ("config share 'a'\n\toption path '/x'\n\toption guest_ok 'maybe'\n", 3, "bad flag"),
    ("config share 'a'\n\toption path '/x'\n\tlist guest_ok 'yes'\n", 3, "not a list"),
    ("config share 'a'\n\toption path '/x'\n\toption smb3_encryption 'on'\n", 3,
     "bad value 'on'"),
    ("config share 'a'\n\toption path '/x'\nconfig share\n\toption name 'A'\n"
     "\toption path '/y'\n", 4, "duplicate share name 'A'"),
    ("config share\n\toption name 'IPC$'\n\toption path '/x'\n", 2, "IPC$ is reserved"),
    ("config share\n\toption name 'ipc$'\n\toption path '/x'\n", 2, "IPC$ is reserved"),
    ("config share\n\toption name 'a/b'\n\toption path '/x'\n", 2, "bad share name"),
    ("config share\n\toption name '" + "x" * 64 + "'\n\toption path '/x'\n", 2,
     "longer than 63"),
    ("config globals\n\toption server_signing 'required'\n", 2, "bad value"),
    ("config globals\n\toption server_min_protocol 'NT1'\n", 2, "SMB2_02"),
    ("config globals\n\toption server_min_protocol 'SMB3_11'\n"
     "\toption server_max_protocol 'SMB2_10'\n", 2, "above"),
    ("config globals\n\toption port '0'\n", 2, "bad number"),
    ("config globals\n\toption port 'http'\n", 2, "bad number"),
    ("config globals\n\toption smb2_max_read '4G'\n", 2, "out of range"),
    ("config globals\n\toption smb2_max_read '1K'\n", 2, "out of range"),
    ("config globals\n\toption smb2_max_read 'lots'\n", 2, "bad size"),
    ("config globals\n\toption smb2_max_credits '0'\n", 2, "bad number"),
    ("config globals\n\toption map_to_guest 'bad password'\n", 2, "bad value"),
    ("config globals\n\toption listen '10.0.0.300'\n", 2, "bad listen address"),
    ("config globals\n\toption workgroup 'a'\n\tlist workgroup 'b'\n", 3, "not a list"),
    ("config share 'a'\n\toption path 'x\n", 2, "parse error: EOF with unterminated '"),
])
def test_errors(text, line, words):
    err = error(text)
    assert err.line == line and err.filename == "ksmbd"
    assert words in err.message
    assert str(err) == f"ksmbd:{line}: {err.message}"


def test_path_checks(tmp_path):
    (tmp_path / "file").write_text("x")
    ok = cfg(f"config share 'a'\n\toption path '{tmp_path}'\n", check_paths=True)
    assert ok.shares[0].path == str(tmp_path)
    # a missing path (a disk not mounted yet) skips the share with a warning
    skipped = cfg(f"config share 'a'\n\n\toption path '{tmp_path}/missing'\n"
                  f"config share 'b'\n\toption path '{tmp_path}'\n", check_paths=True)
    assert [sh.name for sh in skipped.shares] == ["b"]
    assert any(":3:" in w and "does not exist" in w for w in map(str, skipped.warnings))
    err = error(f"config share 'a'\n\toption path '{tmp_path}/file'\n", True)
    assert err.line == 2 and "is not a directory" in err.message
    # without check_paths nothing is looked at
    assert cfg(f"config share 'a'\n\toption path '{tmp_path}/missing'\n").shares


def test_relative_path_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    c = cfg("config share 'a'\n\toption path 'data/'\n", check_paths=True)
    assert c.shares[0].path == str(tmp_path / "data")


def test_load_config_merges_extra(tmp_path):
    main = tmp_path / "ksmbd"
    runtime = tmp_path / "run" / "ksmbd"
    runtime.parent.mkdir()
    main.write_text("config globals\n\toption workgroup 'HOME'\n"
                    f"config share\n\toption name 'a'\n\toption path '{tmp_path}'\n")
    runtime.write_text(f"\nconfig share 'sda1'\n\toption name 'USB'\n"
                       f"\toption path '{tmp_path}'\n\toption browseable 'yes'\n"
                       "\toption read_only 'yes'\n\toption guest_ok 'yes'\n")
    c = load_config(main, [runtime, tmp_path / "absent"], hostname="h", mem_total_kb=None)
    assert [s.name for s in c.shares] == ["a", "USB"]
    assert c.globals.workgroup == "HOME" and c.share("usb").guest_ok
    # errors in the extra file name that file and its line
    runtime.write_text(f"config share 'sda1'\n\toption name 'A'\n\toption path '{tmp_path}'\n")
    with pytest.raises(ConfigError) as info:
        load_config(main, [runtime])
    assert (info.value.filename, info.value.line) == (str(runtime), 2)
    runtime.write_text("config share 'x'\n\toption bad-name 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(main, [runtime])
    assert (info.value.filename, info.value.line) == (str(runtime), 2)


def test_load_config_missing_main(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope")
    assert info.value.line is None
    assert str(info.value) == f"{tmp_path / 'nope'}: config file not found"


@pytest.mark.parametrize("hostname,name", [
    ("OpenWrt\n", "OpenWrt"), ("nas.lan", "nas"), ("we{ir}d;%?=#", "weird"),
    ("", "KSMBD SERVER"), (".lan", "KSMBD SERVER")])
def test_netbios_name(hostname, name):
    assert netbios_name_from_hostname(hostname) == name
    assert cfg("", hostname=hostname).globals.netbios_name == name

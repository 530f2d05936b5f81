"""ksmbd-tools' ``ksmbd.conf`` (ksmbd.conf(5)): reader, writer, and the OpenWrt file layout.

OpenWrt's ksmbd-server generates ``/var/etc/ksmbd/ksmbd.conf`` from UCI and makes
``/etc/ksmbd/ksmbd.conf`` a symlink to it; a user who replaces the symlink with a regular file
opts out of UCI (docs/notes/openwrt-ksmbd.md 1.4).  ``wsdd2`` greps ``netbios name`` and
``workgroup`` out of that file.  This module keeps both behaviours:

* ``render``/``write_generated`` turn a ServerConfig into ksmbd.conf text (atomically written);
* ``parse``/``config_from_ksmbd_conf`` read a user's file with ksmbd-tools' rules — ``[name]``
  sections (a repeated one continues), case-insensitive keys, ``;``/``#`` comment lines, the
  *first* non-empty value of a key wins, a value starting with ``;``/``#`` is unset, share
  parameters under ``[global]`` are defaults for every share, booleans ``yes/1/true/enable``,
  numbers with K/M/G/T/P/E suffixes (powers of 1024) — and map it onto the UCI option names so
  that config.py validates it exactly like ``/etc/config/ksmbd`` (same errors, with the
  ksmbd.conf file and line);
* ``ConfigSources.load`` is what the server calls at start and on every reload.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .atomic_file import replace_file
from .config import DIALECTS, ConfigError, ServerConfig, ShareConfig, load_config
from .config import _build as _build_config  # the one validator for UCI and ksmbd.conf
from .uci import UciPackage, UciSection

__all__ = ["KsmbdConf", "ConfSection", "parse", "parse_number", "config_from_ksmbd_conf",
           "load_ksmbd_conf", "render", "write_generated", "ensure_symlink", "is_user_file",
           "ConfigSources", "UCI_CONF", "RUNTIME_UCI_CONF", "USER_CONF", "GENERATED_CONF",
           "openwrt_sources"]

log = logging.getLogger("ksmbd.conf")

# OpenWrt's file layout (ksmbd-server's init script and hotplug package).
UCI_CONF = "/etc/config/ksmbd"
RUNTIME_UCI_CONF = "/var/run/config/ksmbd"  # shares added by /etc/hotplug.d/mount/60-ksmbd
USER_CONF = "/etc/ksmbd/ksmbd.conf"
GENERATED_CONF = "/var/etc/ksmbd/ksmbd.conf"

_KIB = 1024
_IO_MIN, _IO_MAX = 64 * _KIB, 8 * _KIB * _KIB
_SUFFIX = {"k": 1, "m": 2, "g": 3, "t": 4, "p": 5, "e": 6}
_TRUE = ("yes", "1", "true", "enable")


# --- reading ------------------------------------------------------------------------------

@dataclass(slots=True)
class ConfSection:
    """One ``[name]`` section: keys lower-cased, blanks squeezed, value and line of the first
    non-empty occurrence."""

    name: str
    line: int
    values: dict[str, tuple[str, int]] = dataclasses.field(default_factory=dict)

    def get(self, key: str) -> str | None:
        item = self.values.get(key)
        return item[0] if item else None


@dataclass(slots=True)
class KsmbdConf:
    """A parsed ksmbd.conf: ``[global]`` and the shares, in file order (keys casefolded)."""

    filename: str
    global_: ConfSection
    shares: dict[str, ConfSection]


def parse(text: str, filename: str = "<string>") -> KsmbdConf:
    """Parse ksmbd.conf text; never raises (ksmbd-tools skips lines it cannot read)."""
    global_ = ConfSection("global", 0)
    shares: dict[str, ConfSection] = {}
    current: ConfSection | None = None  # parameters before any section header are dropped
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in ";#":
            continue
        if line.startswith("["):
            name = line[1:line.index("]")] if "]" in line else line[1:]
            name = name.strip()
            folded = name.casefold()
            if folded == "global":
                current = global_
                global_.line = global_.line or number
            else:
                current = shares.setdefault(folded, ConfSection(name, number))
            continue
        key, sep, value = line.partition("=")
        if not sep or current is None:
            continue
        key = " ".join(key.split()).lower()
        value = value.strip()
        if not value or value[0] in ";#" or key in current.values:
            continue  # unset, or a later duplicate: the first non-empty value wins
        current.values[key] = (value, number)
    return KsmbdConf(filename, global_, shares)


def parse_number(text: str) -> int | None:
    """ksmbd-tools' numbers: strtoull base 0 (``0x`` hex, leading ``0`` octal), then an
    optional K/M/G/T/P/E suffix in either case; characters after it are ignored (``4MB``)."""
    m = re.match(r"\s*(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)\s*([kKmMgGtTpPeE]?)", text)
    if not m:
        return None
    number = int(m.group(1), 0) if not re.fullmatch(r"0[0-7]+", m.group(1)) \
        else int(m.group(1), 8)
    return number * _KIB ** _SUFFIX.get(m.group(2).lower(), 0)


def _bool(value: str) -> str:
    return "yes" if value.strip().lower() in _TRUE else "no"


def _tristate(value: str) -> str:
    """ksmbd tri-state: enabled/auto -> auto, mandatory, anything else disabled."""
    text = value.strip().lower()
    return "mandatory" if text == "mandatory" else "auto" if text in ("auto", "enabled") \
        else "disabled"


_LEGACY_DIALECTS = ("NT1", "SMB1", "LANMAN1", "LANMAN2", "CORE", "COREPLUS")


class _Mapper:
    """Turns one KsmbdConf into UCI-shaped sections plus warnings."""

    def __init__(self, conf: KsmbdConf) -> None:
        self.conf = conf
        self.warnings: list[str] = []

    def warn(self, line: int, message: str) -> None:
        self.warnings.append(f"{self.conf.filename}:{line}: {message}")

    # global options: ksmbd key -> function(value, line) -> (uci option, uci value) or None
    def _dialect(self, option: str) -> Callable[[str, int], tuple[str, str] | None]:
        def convert(value: str, line: int) -> tuple[str, str] | None:
            text = value.strip().upper()
            low = option == "server_min_protocol"
            if text in _LEGACY_DIALECTS:
                self.warn(line, f"{text}: SMB1 is not supported; using SMB2_02")
                return option, "SMB2_02"
            aliases = {"SMB2": "SMB2_02" if low else "SMB2_10",
                       "SMB3": "SMB3_00" if low else "SMB3_11"}
            text = aliases.get(text, text)
            if text not in DIALECTS:
                self.warn(line, f"unknown dialect {value!r} ignored")
                return None
            return option, text
        return convert

    def _size(self, option: str) -> Callable[[str, int], tuple[str, str] | None]:
        def convert(value: str, line: int) -> tuple[str, str] | None:
            size = parse_number(value)
            if size is None:
                self.warn(line, f"bad size {value!r} ignored")
                return None
            clamped = min(max(size, _IO_MIN), _IO_MAX)
            if clamped != size:
                self.warn(line, f"{value!r} is outside 64K..8M; using {clamped}")
            return option, str(clamped)
        return convert

    def _number(self, option: str, low: int, high: int) -> Callable[[str, int], tuple[str, str] | None]:
        def convert(value: str, line: int) -> tuple[str, str] | None:
            number = parse_number(value)
            if number is None or not low <= number <= high:
                self.warn(line, f"bad number {value!r} ignored (expected {low} to {high})")
                return None
            return option, str(number)
        return convert

    def _map_to_guest(self, value: str, line: int) -> tuple[str, str]:
        text = " ".join(value.lower().split())
        if text not in ("bad user", "never"):
            self.warn(line, f"map to guest = {value!r} is not supported; using 'never'")
            return "map_to_guest", "never"
        return "map_to_guest", text.replace(" ", "_")

    def global_table(self) -> dict[str, Callable[[str, int], tuple[str, str] | None]]:
        plain = lambda opt: (lambda v, n: (opt, v))  # noqa: E731
        return {
            "workgroup": plain("workgroup"),
            "server string": plain("description"),
            "guest account": plain("guest_account"),
            "tcp port": self._number("port", 1, 65535),
            "server signing": lambda v, n: ("server_signing", _tristate(v)),
            "smb3 encryption": lambda v, n: ("smb3_encryption", _tristate(v)),
            "server min protocol": self._dialect("server_min_protocol"),
            "server max protocol": self._dialect("server_max_protocol"),
            "smb2 max read": self._size("smb2_max_read"),
            "smb2 max write": self._size("smb2_max_write"),
            "smb2 max trans": self._size("smb2_max_trans"),
            "smb2 max credits": self._number("smb2_max_credits", 1, 65535),
            "map to guest": self._map_to_guest,
            "max connections": self._number("max_connections", 0, 65536),
            "max ip connections": self._number("max_ip_connections", 0, 65536),
            "deadtime": self._number("deadtime", 0, 65535),
            # ours (ksmbd has no such keys)
            "logon timeout": self._number("logon_timeout", 0, 3600),
            "frame timeout": self._number("frame_timeout", 0, 3600),
            "oplock break wait": self._number("oplock_break_wait", 1, 3600),
            "memory limit": self._number("memory_limit", 4 << 20, 4 << 30),
        }

    def share_options(self, sec: ConfSection, defaults: ConfSection) -> UciSection:
        """The share's own values first, then the ``[global]`` defaults (first one wins)."""
        def get(key: str) -> tuple[str, int] | None:
            return sec.values.get(key) or defaults.values.get(key)

        out = UciSection("share", None, line=sec.line)

        def put(option: str, value: str | list[str], line: int) -> None:
            out.options[option] = value
            out.option_lines[option] = line

        put("name", sec.name, sec.line)
        for key, option in (("path", "path"), ("comment", "comment")):
            if (item := get(key)) is not None:
                put(option, item[0], item[1])
        root = defaults.get("root directory")
        if root and "path" in out.options:
            out.options["path"] = root.rstrip("/") + "/" + str(out.options["path"]).lstrip("/")
        for key, option in (("browseable", "browseable"), ("read only", "read_only"),
                            ("guest ok", "guest_ok"), ("inherit owner", "inherit_owner"),
                            ("hide dot files", "hide_dot_files"), ("oplocks", "oplocks")):
            if (item := get(key)) is not None:
                put(option, _bool(item[0]), item[1])
        for key in ("writable", "writeable", "write ok"):  # ksmbd: writable beats the rest
            if (item := get(key)) is not None:
                put("writeable", _bool(item[0]), item[1])
                break
        for key, option in (("create mask", "create_mask"), ("directory mask", "dir_mask"),
                            ("force create mode", "force_create_mode"),
                            ("force directory mode", "force_directory_mode")):
            if (item := get(key)) is not None:
                put(option, item[0], item[1])
        for key, option in (("write list", "write_list"), ("read list", "read_list"),
                            ("veto files", "veto_files")):
            if (item := get(key)) is not None:
                put(option, item[0], item[1])
        # Our per-share extension; under [global] the key is the global setting, no default.
        if (item := sec.values.get("smb3 encryption")) is not None:
            put("smb3_encryption", _tristate(item[0]), item[1])
        # The share's own lists only: the [global] ones are checked for every share anyway.
        for option, keys in _HOST_KEYS.items():
            found = [sec.values[key] for key in keys if key in sec.values]
            if found:  # an alias too: the first in the file wins
                put(option, *min(found, key=lambda item: item[1]))
        self._users(get, put, sec)
        return out

    def _users(self, get, put, sec: ConfSection) -> None:
        force = get("force user")
        group = get("force group")
        if force is not None:
            if force[0].strip() == "root":
                put("force_root", "yes", force[1])
            else:
                raise ConfigError(self.conf.filename, force[1], f"share {sec.name!r}: only "
                                  "'force user = root' is supported")
        if group is not None and group[0].strip() != "root":
            raise ConfigError(self.conf.filename, group[1], f"share {sec.name!r}: only "
                              "'force group = root' is supported")
        valid = get("valid users")
        invalid = get("invalid users")
        users = re.split(r"[,\s]+", valid[0].strip()) if valid else []
        if invalid is not None:
            if not users:
                # "everyone except" cannot be expressed: refuse rather than let them in.
                raise ConfigError(self.conf.filename, invalid[1], f"share {sec.name!r}: "
                                  "'invalid users' needs a 'valid users' list here")
            banned = {u.casefold() for u in re.split(r"[,\s]+", invalid[0].strip()) if u}
            users = [u for u in users if u.casefold() not in banned]
            if not users:
                raise ConfigError(self.conf.filename, invalid[1],
                                  f"share {sec.name!r}: no valid user is left")
        if valid is not None and users and force is None:
            put("users", [u for u in users if u], valid[1])


# Keys ksmbd-tools knows that change nothing here (tuning, kernel or Kerberos settings).
_NO_EFFECT = {
    "bind interfaces only", "ipc timeout", "max active sessions",
    "max open files", "share:fake_fscaps", "smbd max io size",
    "server multi channel support", "durable handles", "smb2 leases", "kerberos support",
    "kerberos keytab file", "kerberos service name", "cache read buffers",
    "cache trans buffers", "restrict anonymous", "netbios name", "root directory",
    "store dos attributes", "crossmnt", "follow symlinks", "vfs objects",
    "invalid users", "valid users", "force user", "force group",
}
# smb.conf's names and synonyms of the host lists (host_access.py)
_HOST_KEYS = {"hosts_allow": ("hosts allow", "allow hosts"),
              "hosts_deny": ("hosts deny", "deny hosts")}
_SHARE_KEYS = {
    "hosts allow", "allow hosts", "hosts deny", "deny hosts",
    "path", "comment", "browseable", "read only", "guest ok", "inherit owner",
    "hide dot files", "writable", "writeable", "write ok", "create mask", "directory mask",
    "force create mode", "force directory mode", "write list", "read list", "veto files",
    "smb3 encryption", "valid users", "invalid users", "force user", "force group",
    "guest account", "oplocks", "store dos attributes", "crossmnt", "follow symlinks",
    "vfs objects", "max connections",
}


def config_from_ksmbd_conf(text: str, filename: str = "<string>", check_paths: bool = True, *,
                           hostname: str | None = None,
                           mem_total_kb: int | None = None) -> ServerConfig:
    """A ServerConfig from ksmbd.conf text, validated by config.py like a UCI file."""
    conf = parse(text, filename)
    mapper = _Mapper(conf)
    table = mapper.global_table()
    globals_sec = UciSection("globals", None, line=conf.global_.line)
    for key, (value, line) in conf.global_.values.items():
        convert = table.get(key)
        if convert is not None:
            result = convert(value, line)
            if result is not None:
                globals_sec.options[result[0]] = result[1]
                globals_sec.option_lines[result[0]] = line
        elif (option := next((o for o, keys in _HOST_KEYS.items() if key in keys), None)):
            if option not in globals_sec.options:  # a synonym too: the first one wins
                globals_sec.options[option] = value
                globals_sec.option_lines[option] = line
        elif key == "guest ok":
            globals_sec.options["allow_guest_ipc"] = _bool(value)  # also a share default
            globals_sec.option_lines["allow_guest_ipc"] = line
        elif key == "interfaces":
            mapper.warn(line, "'interfaces' is not used: the listen addresses come from "
                        "the command line (the init script) or all addresses")
        elif key not in _NO_EFFECT and key not in _SHARE_KEYS:
            mapper.warn(line, f"unknown key {key!r} ignored")
    pkg = UciPackage("ksmbd", [globals_sec])
    errors: list[ConfigError] = []  # every bad share is reported (with config.py's errors)
    for folded, sec in conf.shares.items():
        if folded == "ipc$":
            continue
        if "path" not in sec.values and "path" not in conf.global_.values:
            errors.append(ConfigError(filename, sec.line, f"share {sec.name!r} has no 'path'"))
            continue
        for key, (_, line) in sec.values.items():
            if key not in _SHARE_KEYS and key not in _NO_EFFECT:
                mapper.warn(line, f"unknown share key {key!r} ignored")
        try:
            pkg.sections.append(mapper.share_options(sec, conf.global_))
        except ConfigError as exc:
            errors.append(exc)
    config = _build_config([(filename, pkg)], check_paths, hostname, mem_total_kb, errors)
    netbios = conf.global_.get("netbios name")
    glob = config.globals
    if netbios:
        glob = dataclasses.replace(glob, netbios_name=netbios.strip())
    return dataclasses.replace(config, globals=glob,
                               warnings=tuple(mapper.warnings) + config.warnings)


def load_ksmbd_conf(path: str | os.PathLike[str], check_paths: bool = True, *,
                    hostname: str | None = None,
                    mem_total_kb: int | None = None) -> ServerConfig:
    filename = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(filename, None, "config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(filename, None, f"cannot read config: {exc}") from None
    return config_from_ksmbd_conf(text, filename, check_paths, hostname=hostname,
                                  mem_total_kb=mem_total_kb)


# --- writing ------------------------------------------------------------------------------

_HEADER = """\
# Generated by ksmbd-embedded from /etc/config/ksmbd and /var/run/config/ksmbd.
# Changes here are overwritten. To configure by hand, replace the /etc/ksmbd/ksmbd.conf
# symlink with a regular file: it is then read instead of UCI.
"""


def _clean(value: str) -> str:
    return " ".join(str(value).splitlines()).strip()


def _yn(flag: bool) -> str:
    return "yes" if flag else "no"


def _mask(value: int | None) -> str | None:
    return None if value is None else f"{value:04o}"


def render(config: ServerConfig) -> str:
    """ksmbd.conf text for ``config``; ``parse`` of it gives back the same configuration."""
    g = config.globals
    lines = [_HEADER, "[global]"]
    pairs: list[tuple[str, str | None]] = [
        ("netbios name", g.netbios_name), ("server string", g.description),
        ("workgroup", g.workgroup), ("tcp port", str(g.port)),
        ("map to guest", "bad user" if g.map_to_guest == "bad_user" else "never"),
        ("guest account", g.guest_account), ("server signing", g.server_signing),
        ("smb3 encryption", g.smb3_encryption), ("server min protocol", g.server_min_protocol),
        ("server max protocol", g.server_max_protocol),
        ("smb2 max read", str(g.smb2_max_read) if g.smb2_max_read else None),
        ("smb2 max write", str(g.smb2_max_write) if g.smb2_max_write else None),
        ("smb2 max trans", str(g.smb2_max_trans) if g.smb2_max_trans else None),
        ("smb2 max credits", str(g.smb2_max_credits)),
        ("guest ok", "yes" if g.allow_guest_ipc else None),  # every share sets its own
        ("hosts allow", str(g.hosts_allow) or None), ("hosts deny", str(g.hosts_deny) or None),
        ("max connections", str(g.max_connections)),
        ("max ip connections", str(g.max_ip_connections)),
        ("deadtime", str(g.deadtime)),
        ("logon timeout", str(g.logon_timeout)), ("frame timeout", str(g.frame_timeout)),
        ("oplock break wait", str(g.oplock_break_wait) if g.oplock_break_wait != 35 else None),
        ("memory limit", str(g.memory_limit) if g.memory_limit else None),
    ]
    lines += [f"\t{key} = {_clean(value)}" for key, value in pairs if value]
    for share in config.shares:
        lines += ["", f"[{_clean(share.name)}]", *_share_lines(share)]
    return "\n".join(lines) + "\n"


def _share_lines(s: ShareConfig) -> list[str]:
    pairs: list[tuple[str, str | None]] = [("path", s.path), ("comment", s.comment or None)]
    if s.force_root:
        pairs += [("force user", "root"), ("force group", "root")]
    elif s.users:
        pairs.append(("valid users", " ".join(s.users)))
    pairs += [
        ("create mask", _mask(s.create_mask)), ("directory mask", _mask(s.dir_mask)),
        ("force create mode", _mask(s.force_create_mode)),
        ("force directory mode", _mask(s.force_directory_mode)),
        ("browseable", _yn(s.browseable)), ("read only", _yn(s.read_only)),
        ("guest ok", _yn(s.guest_ok)), ("inherit owner", _yn(s.inherit_owner)),
        ("write list", " ".join(s.write_list) or None),
        ("read list", " ".join(s.read_list) or None),
        ("hide dot files", _yn(s.hide_dot_files)),
        ("oplocks", None if s.oplocks else "no"),
        ("veto files", "/" + "/".join(s.veto_files) + "/" if s.veto_files else None),
        ("smb3 encryption", s.smb3_encryption),
        ("hosts allow", str(s.hosts_allow) or None), ("hosts deny", str(s.hosts_deny) or None),
    ]
    return [f"\t{key} = {_clean(value)}" for key, value in pairs if value]


def write_generated(config: ServerConfig, path: str | os.PathLike[str]) -> bool:
    """Write ``render(config)`` to ``path`` atomically (mode 0644); False if unchanged."""
    target = Path(path)
    text = render(config)
    try:
        if target.read_text(encoding="utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    replace_file(target, text.encode("utf-8"), 0o644)
    return True


def is_user_file(path: str | os.PathLike[str]) -> bool:
    """A user's own ksmbd.conf: a regular file, not our symlink."""
    return os.path.isfile(path) and not os.path.islink(path)


def ensure_symlink(link: str | os.PathLike[str], target: str | os.PathLike[str]) -> bool:
    """Make ``link`` a symlink to ``target`` when nothing is there (as OpenWrt's init script
    does); an existing symlink or regular file is left alone.  True if one was created."""
    if os.path.lexists(link):
        return False
    Path(link).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, link)
    return True


@dataclass(frozen=True, slots=True)
class ConfigSources:
    """Where the server's configuration comes from; ``load()`` at start and on each reload.

    ``user_conf`` (``/etc/ksmbd/ksmbd.conf``): when it is a regular file it is read instead of
    UCI.  Otherwise UCI (``uci`` plus the ``extra`` runtime files) is read, rendered to
    ``generated`` (``/var/etc/ksmbd/ksmbd.conf``) and ``user_conf`` made a symlink to it."""

    uci: str
    extra: tuple[str, ...] = ()
    user_conf: str | None = None
    generated: str | None = None

    def load(self, check_paths: bool = True) -> ServerConfig:
        if self.user_conf and is_user_file(self.user_conf):
            log.warning("custom %s found: the UCI settings (%s) and LuCI are ignored",
                        self.user_conf, self.uci)
            return load_ksmbd_conf(self.user_conf, check_paths)
        config = load_config(self.uci, self.extra, check_paths)
        if self.generated:
            try:
                write_generated(config, self.generated)
                if self.user_conf and ensure_symlink(self.user_conf, self.generated):
                    log.info("%s -> %s", self.user_conf, self.generated)
            except OSError as exc:  # wsdd2 loses the names; serving files is unaffected
                log.warning("cannot write %s: %s", self.generated, exc)
        return config


def openwrt_sources(user_conf: str = USER_CONF) -> ConfigSources:
    """The sources the init script gives the server on OpenWrt."""
    return ConfigSources(UCI_CONF, (RUNTIME_UCI_CONF,), user_conf, GENERATED_CONF)

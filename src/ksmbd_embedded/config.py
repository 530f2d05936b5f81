"""Typed, immutable server configuration built from OpenWrt's `/etc/config/ksmbd`.

The schema is OpenWrt's ksmbd one (sections ``globals`` and ``share``, same option names,
docs/notes/openwrt-ksmbd.md 1.3), read with ksmbd.conf(5) semantics for the defaults, plus our own
global extensions (port, listen, signing, encryption, dialect range, I/O sizes, credits,
guest mapping) and a per-share ``smb3_encryption``.  Where OpenWrt silently skips a bad
share, we report a ConfigError with file and line (every error of the files in one go, not
just the first); unknown options are only warnings.
Runtime shares (``/var/run/config/ksmbd``, written by the hotplug script) come in as extra
files whose sections are appended, like the init script's CONFIG_APPEND.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .host_access import EMPTY as _NO_HOSTS
from .host_access import HostList, parse_hosts
from .uci import UciError, UciPackage, UciSection, parse_uci

__all__ = ["ConfigError", "ShareConfig", "GlobalConfig", "ServerConfig", "load_config",
           "config_from_text", "default_max_io", "default_memory_limit",
           "netbios_name_from_hostname",
           "DIALECTS"]

DIALECTS = ("SMB2_02", "SMB2_10", "SMB3_00", "SMB3_02", "SMB3_11")
# Samba's floor since 4.11: SMB 2.0.2 is not SMB1, and clients that speak nothing newer
# (embedded libraries, scan-to-folder printers, older media players) are common.
DEFAULT_MIN_PROTOCOL = "SMB2_02"
_TRISTATE = ("auto", "mandatory", "disabled")
_FLAGS = {"yes": True, "1": True, "true": True, "on": True,
          "no": False, "0": False, "false": False, "off": False}
_KIB, _MIB = 1024, 1024 * 1024
_IO_MIN, _IO_MAX = 64 * _KIB, 8 * _MIB
_BAD_SHARE_CHARS = set('\\/:*?"<>|[]')


class ConfigError(Exception):
    """A configuration error at ``filename``:``line`` (line None: the file as a whole).

    Loading reports every error it finds, not just the first: ``errors`` lists them all in
    file and line order (a single error lists itself), ``str()`` is one
    ``file:line: message`` line per error, and ``filename``/``line``/``message`` are the
    first one's.  ``warnings`` are the warnings found alongside."""

    def __init__(self, filename: str, line: int | None, message: str) -> None:
        where = f"{filename}:{line}" if line is not None else filename
        super().__init__(f"{where}: {message}")
        self.filename = filename
        self.line = line
        self.message = message
        self.errors: tuple[ConfigError, ...] = (self,)
        self.warnings: tuple[str, ...] = ()

    @classmethod
    def collect(cls, errors: Sequence[ConfigError], warnings: Sequence[str] = ()) -> ConfigError:
        """One exception carrying every error of ``errors`` (at least one)."""
        flat = [single for error in errors for single in error.errors]
        first = flat[0]
        exc = cls(first.filename, first.line, first.message)
        exc.args = ("\n".join(str(single) for single in flat),)
        exc.errors = tuple(flat)
        exc.warnings = tuple(warnings)
        return exc


@dataclass(frozen=True, slots=True)
class ShareConfig:
    """One ``config share``.  Masks are None when unset (ksmbd then uses 0744/0755 and
    0000); ``writeable`` is the raw option (None if unset), folded into ``read_only``
    (ksmbd: ``read only`` beats ``writeable``); ``smb3_encryption`` None inherits."""

    name: str
    path: str
    comment: str = ""
    users: tuple[str, ...] = ()
    force_root: bool = False
    create_mask: int | None = None
    dir_mask: int | None = None
    force_create_mode: int | None = None
    force_directory_mode: int | None = None
    browseable: bool = True
    read_only: bool = True
    writeable: bool | None = None
    guest_ok: bool = False
    inherit_owner: bool = False
    write_list: tuple[str, ...] = ()
    read_list: tuple[str, ...] = ()
    hide_dot_files: bool = True
    veto_files: tuple[str, ...] = ()
    smb3_encryption: str | None = None
    hosts_allow: HostList = _NO_HOSTS  # host_access.py; empty: no restriction
    hosts_deny: HostList = _NO_HOSTS
    oplocks: bool = True  # grant oplocks on this share (handlers/oplock_break.py)

    @property
    def writable(self) -> bool:
        return not self.read_only

    def user_allowed(self, user: str) -> bool:
        """ksmbd ``valid users``: an empty list lets everyone in (names compared
        case-insensitively; ``@group`` entries are not expanded here)."""
        return not self.users or _in(user, self.users)

    def writable_for(self, user: str) -> bool:
        """ksmbd precedence: ``read list`` beats ``write list``, which beats read only."""
        if _in(user, self.read_list):
            return False
        return _in(user, self.write_list) or self.writable


def _in(user: str, names: tuple[str, ...]) -> bool:
    folded = user.casefold()
    return any(n.casefold() == folded for n in names)


@dataclass(frozen=True, slots=True)
class GlobalConfig:
    """The (last) ``config globals``.  ``smb2_max_*`` None means "choose from RAM"
    (see ServerConfig.max_read); ``netbios_name`` comes from the hostname, not UCI."""

    workgroup: str = "WORKGROUP"
    description: str = "Ksmbd on OpenWrt"
    interface: tuple[str, ...] = ("lan",)
    allow_legacy_protocols: bool = False
    allow_guest_ipc: bool = False
    port: int = 445
    listen: tuple[str, ...] = ("0.0.0.0", "::")
    server_signing: str = "auto"
    smb3_encryption: str = "auto"
    server_min_protocol: str = DEFAULT_MIN_PROTOCOL
    server_max_protocol: str = "SMB3_11"
    smb2_max_read: int | None = None
    smb2_max_write: int | None = None
    smb2_max_trans: int | None = None
    smb2_max_credits: int = 8192
    memory_limit: int | None = None  # bytes of I/O buffers (io_budget.py); None: from RAM
    map_to_guest: str = "bad_user"
    guest_account: str = "nobody"
    hosts_allow: HostList = _NO_HOSTS  # checked at accept and TREE_CONNECT (host_access.py)
    hosts_deny: HostList = _NO_HOSTS
    netbios_name: str = "KSMBD SERVER"
    ubus_socket: str = "/var/run/ubus/ubus.sock"  # "" = no ubus object
    # Connection limits and timers (conn_limits.py, conn_timeouts.py)
    max_connections: int = 256  # all clients; 0 means 65536, as in ksmbd
    max_ip_connections: int = 32  # one client address; 0 means 65536
    deadtime: int = 0  # minutes idle without open files before a close; 0 = never
    logon_timeout: int = 20  # seconds to a valid session; 0 = no limit
    frame_timeout: int = 30  # seconds for a frame to arrive whole; 0 = no limit
    oplock_break_wait: int = 35  # seconds an oplock break waits for its acknowledgment


def default_max_io(mem_total_kb: int | None) -> int:
    """OpenWrt's RAM-based `smb2 max read/write` (init script, MemTotal in kB):
    below 65537 kB 64 KiB, below 134073 kB 128 KiB, below 262146 kB 1 MiB, else ksmbd's
    default 4 MiB.  Unknown RAM (None) gets the ksmbd default."""
    if mem_total_kb is None:
        return 4 * _MIB
    if mem_total_kb < 65537:
        return 64 * _KIB
    if mem_total_kb < 134073:
        return 128 * _KIB
    if mem_total_kb < 262146:
        return _MIB
    return 4 * _MIB


def default_memory_limit(mem_total_kb: int | None) -> int:
    """The I/O buffers' budget (io_budget.py) when `memory_limit` is not set: about an
    eighth of RAM, with default_max_io's RAM steps: 8 MiB below 64 MB, 16 MiB below 128 MB,
    32 MiB below 256 MB, then RAM/8 up to 256 MiB; unknown RAM 64 MiB."""
    if mem_total_kb is None:
        return 64 * _MIB
    for below, limit in ((65537, 8), (134073, 16), (262146, 32)):
        if mem_total_kb < below:
            return limit * _MIB
    return max(32 * _MIB, min(mem_total_kb // 8 // 1024 * _MIB, 256 * _MIB))


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything the server needs; build it with load_config() or config_from_text()."""

    globals: GlobalConfig = field(default_factory=GlobalConfig)
    shares: tuple[ShareConfig, ...] = ()
    warnings: tuple[str, ...] = ()
    mem_total_kb: int | None = None

    def share(self, name: str) -> ShareConfig | None:
        """Case-insensitive share lookup."""
        folded = name.casefold()
        for share in self.shares:
            if share.name.casefold() == folded:
                return share
        return None

    @property
    def max_read(self) -> int:
        return self.globals.smb2_max_read or default_max_io(self.mem_total_kb)

    @property
    def max_write(self) -> int:
        return self.globals.smb2_max_write or default_max_io(self.mem_total_kb)

    @property
    def max_trans(self) -> int:
        """Like read/write, but never above ksmbd's 1 MiB trans default."""
        return self.globals.smb2_max_trans or min(default_max_io(self.mem_total_kb), _MIB)

    @property
    def memory_limit(self) -> int:
        return self.globals.memory_limit or default_memory_limit(self.mem_total_kb)


# --- value parsers: each takes the raw UCI value and raises ValueError -----------------

def _single(value: str | list[str]) -> str:
    if isinstance(value, list):
        raise ValueError("expected a single value, not a list")
    return value


def _string(value: str | list[str]) -> str:
    return _single(value)


def _flag(value: str | list[str]) -> bool:
    text = _single(value).strip().lower()
    if text not in _FLAGS:
        raise ValueError(f"bad flag value {text!r} (use yes/no, 1/0, true/false, on/off)")
    return _FLAGS[text]


def _octal(value: str | list[str]) -> int:
    text = _single(value).strip()
    if not re.fullmatch(r"(0o)?[0-7]{1,5}", text) or int(text.removeprefix("0o"), 8) > 0o7777:
        raise ValueError(f"bad octal mask {text!r} (expected e.g. 0644)")
    return int(text.removeprefix("0o"), 8)


def _words(value: str | list[str]) -> tuple[str, ...]:
    """ksmbd list syntax: items separated by commas, spaces or tabs (UCI lists too)."""
    items = value if isinstance(value, list) else [value]
    return tuple(w for item in items for w in re.split(r"[,\s]+", item) if w)


def _veto(value: str | list[str]) -> tuple[str, ...]:
    """ksmbd ``veto files``: ``/pattern/pattern/``."""
    items = value if isinstance(value, list) else [value]
    return tuple(p for item in items for p in item.split("/") if p)


def _choice(options: Sequence[str], upper: bool = False) -> Callable[[Any], str]:
    def parse(value: str | list[str]) -> str:
        text = _single(value).strip()
        text = text.upper() if upper else text.lower().replace(" ", "_")
        if text not in options:
            raise ValueError(f"bad value {text!r} (expected one of {', '.join(options)})")
        return text
    return parse


def _int_range(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: str | list[str]) -> int:
        text = _single(value).strip()
        if not text.isdigit() or not low <= int(text) <= high:
            raise ValueError(f"bad number {text!r} (expected {low} to {high})")
        return int(text)
    return parse


def _size_range(low: int, high: int, low_text: str, high_text: str):
    """A parser of bytes with an optional K/M/G suffix (powers of 1024: `4M`, `4MB`, `4MiB`)
    from `low` to `high`."""
    def parse(value: str | list[str]) -> int:
        text = _single(value).strip()
        m = re.fullmatch(r"(\d+)\s*([kmg]?)(i?b)?", text, re.IGNORECASE)
        if not m:
            raise ValueError(f"bad size {text!r} (expected bytes or e.g. {low_text}, 16M)")
        size = int(m.group(1)) * {"": 1, "k": _KIB, "m": _MIB,
                                  "g": 1024 * _MIB}[m.group(2).lower()]
        if not low <= size <= high:
            raise ValueError(f"size {text!r} out of range ({low_text} to {high_text})")
        return size
    return parse


_size = _size_range(_IO_MIN, _IO_MAX, "64K", "8M")  # smb2_max_read/write/trans
_memory_size = _size_range(4 * _MIB, 4096 * _MIB, "4M", "4G")  # memory_limit


def _addresses(value: str | list[str]) -> tuple[str, ...]:
    out = []
    for word in _words(value):
        try:
            out.append(str(ipaddress.ip_address(word)))
        except ValueError:
            raise ValueError(f"bad listen address {word!r}") from None
    return tuple(out)


_SHARE_OPTIONS: dict[str, Callable[[Any], Any]] = {
    "name": _string, "path": _string, "comment": _string, "users": _words,
    "force_root": _flag, "create_mask": _octal, "dir_mask": _octal,
    "force_create_mode": _octal, "force_directory_mode": _octal, "browseable": _flag,
    "read_only": _flag, "writeable": _flag, "guest_ok": _flag, "inherit_owner": _flag,
    "write_list": _words, "read_list": _words, "hide_dot_files": _flag, "veto_files": _veto,
    "smb3_encryption": _choice(_TRISTATE),
    "hosts_allow": parse_hosts, "hosts_deny": parse_hosts, "oplocks": _flag,
}
_GLOBAL_OPTIONS: dict[str, Callable[[Any], Any]] = {
    "workgroup": _string, "description": _string, "interface": _words,
    "allow_legacy_protocols": _flag, "allow_guest_ipc": _flag,
    "port": _int_range(1, 65535), "listen": _addresses,
    "server_signing": _choice(_TRISTATE), "smb3_encryption": _choice(_TRISTATE),
    "server_min_protocol": _choice(DIALECTS, upper=True),
    "server_max_protocol": _choice(DIALECTS, upper=True),
    "smb2_max_read": _size, "smb2_max_write": _size, "smb2_max_trans": _size,
    "memory_limit": _memory_size,
    "smb2_max_credits": _int_range(1, 65535),
    "map_to_guest": _choice(("never", "bad_user")), "guest_account": _string,
    "ubus_socket": _string, "hosts_allow": parse_hosts, "hosts_deny": parse_hosts,
    "max_connections": _int_range(0, 65536), "max_ip_connections": _int_range(0, 65536),
    "deadtime": _int_range(0, 65535), "logon_timeout": _int_range(0, 3600),
    "frame_timeout": _int_range(0, 3600), "oplock_break_wait": _int_range(1, 3600),
}


# --- building ---------------------------------------------------------------------------

class _Builder:
    """Turns UCI sections from one or more files into a ServerConfig."""

    __slots__ = ("check_paths", "warnings", "errors", "globals", "globals_at", "shares",
                 "seen")

    def __init__(self, check_paths: bool) -> None:
        self.check_paths = check_paths
        self.warnings: list[str] = []
        self.errors: list[ConfigError] = []  # every error, raised together by result()
        self.globals: dict[str, Any] = {}
        self.globals_at: tuple[str, int] | None = None
        self.shares: list[ShareConfig] = []
        self.seen: dict[str, tuple[str, int]] = {}

    def warn(self, filename: str, line: int, message: str) -> None:
        self.warnings.append(f"{filename}:{line}: {message}")

    def _values(self, filename: str, sec: UciSection, table: dict[str, Callable[[Any], Any]],
                where: str) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for opt, raw in sec.options.items():
            line = sec.option_lines.get(opt, sec.line)
            parse = table.get(opt)
            if parse is None:
                import difflib  # only for a misspelt option (issue 11: idle memory)

                hint = difflib.get_close_matches(opt, table, n=1)
                more = f" (did you mean {hint[0]!r}?)" if hint else ""
                self.warn(filename, line, f"unknown option {opt!r} in {where}{more}")
                continue
            try:
                values[opt] = parse(raw)
            except ValueError as exc:  # reported; the other options are still checked
                # one error per bad item, at its own line (host lists: HostListError)
                items = sec.item_lines.get(opt, ())
                for index, message in getattr(exc, "problems", None) or [(None, exc)]:
                    at = items[index] if index is not None and index < len(items) else line
                    self.errors.append(ConfigError(filename, at,
                                                   f"option {opt!r} in {where}: {message}"))
        return values

    def add_section(self, filename: str, sec: UciSection) -> None:
        if sec.type == "globals":
            self.add_globals(filename, sec)
        elif sec.type == "share":
            self.add_share(filename, sec)
        else:
            raise ConfigError(filename, sec.line, f"unknown section type {sec.type!r} "
                              "(expected 'globals' or 'share')")

    def add_globals(self, filename: str, sec: UciSection) -> None:
        """Every globals section is checked; the last one wins (as in OpenWrt)."""
        values = self._values(filename, sec, _GLOBAL_OPTIONS, "globals")
        if self.globals_at is not None:
            self.warn(*self.globals_at, "globals section ignored: a later globals "
                      f"section ({filename}:{sec.line}) replaces it")
        self.globals_at = (filename, sec.line)
        lo = values.get("server_min_protocol")
        hi = values.get("server_max_protocol", "SMB3_11")
        if values.get("allow_legacy_protocols") and lo is None:
            lo = values["server_min_protocol"] = "SMB2_02"
            self.warn(filename, sec.option_lines["allow_legacy_protocols"],
                      "allow_legacy_protocols: SMB1 is not supported; allowing SMB2_02")
        if DIALECTS.index(lo or DEFAULT_MIN_PROTOCOL) > DIALECTS.index(hi):
            opt = "server_min_protocol" if "server_min_protocol" in sec.options \
                else "server_max_protocol"
            raise ConfigError(filename, sec.option_lines.get(opt, sec.line),
                              f"server_min_protocol {lo or DEFAULT_MIN_PROTOCOL} is above "
                              f"server_max_protocol {hi}")
        self.globals = values

    def add_share(self, filename: str, sec: UciSection) -> None:
        label = repr(sec.options.get("name") or sec.name or "@share")
        values = self._values(filename, sec, _SHARE_OPTIONS, f"share {label}")
        name = values.pop("name", None) or sec.name
        line_of = lambda opt: sec.option_lines.get(opt, sec.line)  # noqa: E731
        if not name:
            if "name" in sec.options:  # a bad value, already reported
                return
            raise ConfigError(filename, sec.line, "share section has no 'name' option")
        problem = _check_share_name(name)
        if problem:
            raise ConfigError(filename, line_of("name"), f"bad share name {name!r}: {problem}")
        if name.casefold() in self.seen:
            first = "%s:%d" % self.seen[name.casefold()]
            raise ConfigError(filename, line_of("name"),
                              f"duplicate share name {name!r} (first defined at {first})")
        self.seen[name.casefold()] = (filename, sec.line)
        path = values.get("path")
        if not path:
            if "path" in sec.options:  # a bad value, already reported
                return
            raise ConfigError(filename, sec.line, f"share {name!r} has no 'path' option")
        values["path"] = os.path.abspath(path)
        if self.check_paths and not os.path.isdir(values["path"]):
            if os.path.exists(values["path"]):
                raise ConfigError(filename, line_of("path"),
                                  f"share {name!r}: path {path!r} is not a directory")
            # A USB disk not mounted yet (at boot, or unplugged): the rest of the shares are
            # served, and the reload that the mount hotplug sends brings this one back.
            self.warn(filename, line_of("path"), f"share {name!r}: path {path!r} does not "
                      "exist (yet); the share is not served until a reload finds it")
            return
        writeable = values.get("writeable")
        if "read_only" in values:
            if writeable is not None and writeable == values["read_only"]:
                self.warn(filename, line_of("writeable"), f"share {name!r}: read_only and "
                          "writeable disagree; read_only wins")
        else:
            values["read_only"] = not writeable if writeable is not None else True
        if values.get("force_root") and values.get("users"):
            self.warn(filename, line_of("users"),
                      f"share {name!r}: users ignored because force_root is set")
            values["users"] = ()
        self.shares.append(ShareConfig(name=name, **values))

    def result(self, hostname: str | None, mem_total_kb: int | None) -> ServerConfig:
        netbios = netbios_name_from_hostname(_hostname() if hostname is None else hostname)
        return ServerConfig(GlobalConfig(**self.globals, netbios_name=netbios),
                            tuple(self.shares), tuple(self.warnings), mem_total_kb)


def _check_share_name(name: str) -> str | None:
    if len(name.encode("utf-8", "surrogatepass")) > 63:
        return "longer than 63 bytes"
    if name.casefold() == "ipc$":
        return "IPC$ is reserved"
    if any(c in _BAD_SHARE_CHARS or ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return 'contains one of \\ / : * ? " < > | [ ] or a control character'
    return None


def netbios_name_from_hostname(hostname: str) -> str:
    """OpenWrt: the hostname cut at the first dot, without ``{};%?=#`` and newlines;
    ksmbd's own default when nothing is left."""
    name = hostname.split(".", 1)[0]
    name = "".join(c for c in name if c not in "{};%?=#\n")
    return name.strip() or "KSMBD SERVER"


def _hostname() -> str:
    try:
        return Path("/proc/sys/kernel/hostname").read_text()
    except OSError:
        return socket.gethostname()


def _mem_total_kb() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _parse(text: str, filename: str) -> UciPackage:
    try:
        return parse_uci(text, "ksmbd", filename)
    except UciError as exc:
        raise ConfigError(exc.filename, exc.line, f"parse error: {exc.message}") from None


def _build(packages: list[tuple[str, UciPackage]], check_paths: bool,
           hostname: str | None, mem_total_kb: int | None,
           errors: Sequence[ConfigError] = (), files: Sequence[str] = ()) -> ServerConfig:
    """Validate every section of every package; raise one ConfigError listing every error
    (``errors`` found before, e.g. parse errors of other files, included), sorted by file
    (the order of ``files``, then of ``packages``) and line."""
    builder = _Builder(check_paths)
    builder.errors.extend(errors)
    for filename, pkg in packages:
        for sec in pkg.sections:
            try:
                builder.add_section(filename, sec)
            except ConfigError as exc:  # this section is done; the next ones are checked
                builder.errors.append(exc)
    if builder.errors:
        rank: dict[str, int] = {}
        for name in [*files, *(f for f, _ in packages)]:
            rank.setdefault(name, len(rank))
        ordered = sorted(builder.errors,
                         key=lambda e: (rank.get(e.filename, len(rank)), e.line or 0))
        raise ConfigError.collect(ordered, builder.warnings)
    if mem_total_kb is None:
        mem_total_kb = _mem_total_kb()
    return builder.result(hostname, mem_total_kb)


def config_from_text(text: str, filename: str = "<string>", check_paths: bool = True, *,
                     hostname: str | None = None,
                     mem_total_kb: int | None = None) -> ServerConfig:
    """Build a ServerConfig from UCI text (hostname and RAM are read from /proc if None)."""
    return _build([(filename, _parse(text, filename))], check_paths, hostname, mem_total_kb)


def load_config(path: str | os.PathLike[str],
                extra: Sequence[str | os.PathLike[str]] = (), check_paths: bool = True, *,
                hostname: str | None = None,
                mem_total_kb: int | None = None) -> ServerConfig:
    """Load ``path`` plus the sections of each existing ``extra`` file, appended."""
    packages = []
    errors: list[ConfigError] = []  # a file that cannot be parsed: the others are still checked
    files = [os.fspath(file) for file in [path, *extra]]
    for i, (file, filename) in enumerate(zip([path, *extra], files)):
        try:
            text = Path(file).read_text(encoding="utf-8")
        except FileNotFoundError:
            if i == 0:
                raise ConfigError(filename, None, "config file not found") from None
            continue  # a runtime file that does not exist yet adds nothing
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(ConfigError(filename, None, f"cannot read config: {exc}"))
            continue
        try:
            packages.append((filename, _parse(text, filename)))
        except ConfigError as exc:
            errors.append(exc)
    return _build(packages, check_paths, hostname, mem_total_kb, errors, files)

"""Server-wide state (MS-SMB2 3.3.1.1 Global) and the entry point that runs the loop."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Sequence

from .config import ServerConfig, load_config
from .fs.dos_attrs import filetime_now
from .host_access import Refusals
from .opens import OpenTable
from .pwddb import PasswordDb

log = logging.getLogger("ksmbd.server")

def _random_bits(n: int) -> int:
    """``secrets.randbits(n)`` without importing secrets (hmac, hashlib, libcrypto: ~4 MB
    of an idle server, issue 11)."""
    return int.from_bytes(os.urandom((n + 7) // 8), "big") >> (-n % 8)


def _random_guid() -> bytes:
    """``uuid.uuid4().bytes_le`` without importing uuid (and platform) at start."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40  # version 4
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    return bytes(b[3::-1] + b[5:3:-1] + b[7:5:-1] + b[8:])


class ServerState:
    """What all connections share: config, users, sessions, opens, counters."""

    def __init__(self, config: ServerConfig, pwddb: PasswordDb, pwddb_path: str | None = None,
                 config_paths: Sequence[str] = ()) -> None:
        self.config = config
        self.pwddb = pwddb
        self.pwddb_path = pwddb_path
        self.config_paths = tuple(config_paths)
        # run_server sets this to ConfigSources.load: ksmbd.conf override, generated file.
        self.config_loader: Any = None
        self.server_guid = _random_guid()
        self.start_filetime = filetime_now()
        self.start_monotonic = time.monotonic()
        self.opens = OpenTable()
        self.sessions: dict[int, Any] = {}  # session id -> Session, across connections
        self.connections: set[Any] = set()
        self._session_counter = _random_bits(24) << 8
        self.now = time.monotonic
        self.bytes_read = 0
        self.bytes_written = 0
        self.refusals = Refusals()  # refused connections/tree connects by rule, log throttle
        self.share_roots: dict[str, str] = {}
        # Connections with output queued outside their own read path (async completions);
        # the loop sends it after each round of events.
        self.flush_pending: set[Any] = set()
        # Services living in the same loop (ubus object, change notify) hook in here:
        # startup hooks get the Loop once it is bound; shutdown hooks run before it closes.
        self.loop: Any = None
        self.startup_hooks: list[Any] = []
        self.shutdown_hooks: list[Any] = []
        self._index_shares()

    def _index_shares(self) -> None:
        self.share_roots = {s.name.lower(): os.path.realpath(s.path) for s in self.config.shares}

    def new_session_id(self) -> int:
        """A fresh non-zero 64-bit SessionId, never reused while the server runs."""
        self._session_counter += 1
        return (self._session_counter << 16) | _random_bits(16) | 1

    def reload(self) -> None:
        """SIGHUP: re-read config and users; keep connections; new trees see the new shares."""
        if self.config_loader is not None:
            self.config = self.config_loader()
            self._index_shares()
        elif self.config_paths:
            self.config = load_config(self.config_paths[0], self.config_paths[1:])
            self._index_shares()
        if self.pwddb_path:
            self.pwddb = PasswordDb.load(self.pwddb_path)
        log.info("configuration reloaded: %d shares, %d users", len(self.config.shares),
                 len(self.pwddb.names()))


def _load_users(path: str) -> PasswordDb:
    """The password database at start: a missing one is a warning (a fresh router has none
    until the first `ksmbd.adduser`), an unreadable one a StartupError."""
    from .loop import StartupError
    try:
        pwddb = PasswordDb.load(path)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise StartupError(f"cannot read the password database {path}: "
                           f"{reason[:1].lower() + reason[1:]}") from None
    if not os.path.exists(path):
        log.warning("no users: %s does not exist; only guest logons", path)
    for warning in pwddb.warnings:
        log.warning("%s", warning)
    return pwddb


def _print_ready(message: str) -> None:
    try:
        print(message, flush=True)
    except (OSError, ValueError):  # stdout closed: nobody to tell
        pass


def run_server(config_path: str, extra_paths: Sequence[str], pwddb_path: str,
               listen: list[str] | None = None, port: int | None = None,
               ubus_socket: str | None = None, user_conf: str | None = None,
               generated_conf: str | None = None, pid_file: str | None = None,
               ready_message: str | None = None) -> int:
    """Load config and users, bind, and serve until SIGTERM/SIGINT. Returns an exit code.
    `ubus_socket` overrides the config's ubus_socket ("" = no ubus object).
    `user_conf`/`generated_conf`: ksmbd.conf override and generated copy (ksmbd_conf.py);
    `pid_file` is written once signals are handled and removed at exit; `ready_message` is
    printed on stdout once every address listens. Raises loop.StartupError (an address that
    cannot be listened on, an unreadable password database) before anything listens."""
    from .ksmbd_conf import ConfigSources
    from .loop import serve_forever
    sources = ConfigSources(config_path, tuple(extra_paths), user_conf, generated_conf)
    config = sources.load()
    for warning in config.warnings:
        log.warning("%s", warning)
    pwddb = _load_users(pwddb_path)
    state = ServerState(config, pwddb, pwddb_path, [config_path, *extra_paths])
    state.config_loader = sources.load
    if pid_file:
        from .tools.pid_file import remove_pid_file, write_pid_file
        state.startup_hooks.append(lambda loop: write_pid_file(pid_file))
        state.shutdown_hooks.append(lambda: remove_pid_file(pid_file))
    ubus_path = config.globals.ubus_socket if ubus_socket is None else ubus_socket
    if ubus_path:
        from .ubus.client import install as install_ubus
        install_ubus(state, ubus_path)
    from .heap import release_startup_memory  # once everything start-up loads is loaded
    state.startup_hooks.append(lambda loop: release_startup_memory())
    if ready_message is not None:  # the last startup hook: after the pid file and ubus
        state.startup_hooks.append(lambda loop: _print_ready(ready_message))
    addresses = listen or list(config.globals.listen)
    return serve_forever(state, addresses, port if port is not None else config.globals.port)


def default_paths() -> tuple[Path, Path]:
    return Path("/etc/config/ksmbd"), Path("/etc/ksmbd/ksmbdpwd.db")

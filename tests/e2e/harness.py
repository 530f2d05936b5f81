"""Start and stop a real ksmbd-embedded server process for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ksmbd_embedded.pwddb import PasswordDb, nt_hash

USERS = {"alice": "alice-pw", "bob": "bob-pw"}
_next_port = [4450 + (os.getpid() % 50) * 10]


def free_port() -> int:
    """A free 127.0.0.1 port at 4450 or above (the project's test range)."""
    for _ in range(500):
        port = _next_port[0]
        _next_port[0] = 4450 + (port - 4450 + 1) % 5000
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in the test range")


@dataclass
class ServerProcess:
    root: Path
    port: int
    proc: subprocess.Popen
    log_path: Path
    shares: dict[str, Path] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_for_log(self, text: str, timeout: float = 10) -> bool:
        """Whether `text` appears in the log within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True


DEFAULT_GLOBALS = """
config globals
\toption workgroup 'TESTGROUP'
\toption map_to_guest 'bad_user'
\toption server_min_protocol 'SMB2_02'
"""


def share_block(name: str, path: Path, **options: str | list[str]) -> str:
    lines = ["", "config share", f"\toption name '{name}'", f"\toption path '{path}'"]
    for key, value in options.items():
        if isinstance(value, list):
            lines += [f"\tlist {key} '{v}'" for v in value]
        else:
            lines.append(f"\toption {key} '{value}'")
    return "\n".join(lines) + "\n"


def start_server(tmp: Path, config_text: str | None = None, extra_globals: str = "",
                 shares: dict[str, dict] | None = None, log_level: str = "info",
                 extra_args: list[str] | tuple[str, ...] = ()) -> ServerProcess:
    """Write a config and a user db under `tmp`, start the server, wait until it accepts.
    `extra_args` are added to the `serve` command line (e.g. --ubus-socket PATH)."""
    tmp.mkdir(parents=True, exist_ok=True)
    share_paths: dict[str, Path] = {}
    if config_text is None:
        if shares is None:
            shares = {
                "share": {"read_only": "no", "users": ["alice", "bob"]},
                "public": {"read_only": "no", "guest_ok": "yes"},
                "readonly": {"read_only": "yes", "guest_ok": "yes"},
            }
        config_text = DEFAULT_GLOBALS + extra_globals
        for name, opts in shares.items():
            opts = dict(opts)
            explicit = opts.pop("path", None)  # a given directory (e.g. a mounted file system)
            path = Path(explicit) if explicit is not None else tmp / "shares" / name
            path.mkdir(parents=True, exist_ok=True)
            share_paths[name] = path
            config_text += share_block(name, path, **opts)
    config = tmp / "ksmbd.uci"
    config.write_text(config_text)
    db = PasswordDb.load(tmp / "ksmbdpwd.db")
    for user, password in USERS.items():
        db.set(user, nt_hash(password))
    db.save(tmp / "ksmbdpwd.db")
    port = free_port()
    log_path = tmp / "server.log"
    logf = open(log_path, "wb")
    # Ready when *this* process says it listens (--ready-message): a connect alone could reach
    # another test run's server that took the same port first.
    ready = f"harness: {os.getpid()} ready on {port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ksmbd_embedded", "serve", "--config", str(config),
         "--pwddb", str(tmp / "ksmbdpwd.db"), "--listen", "127.0.0.1", "--port", str(port),
         "--log-level", log_level, "--ready-message", ready, *extra_args],
        stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    logf.close()
    server = ServerProcess(tmp, port, proc, log_path, share_paths)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{server.log()}")
        if ready in server.log():
            return server
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"server did not start listening:\n{server.log()}")

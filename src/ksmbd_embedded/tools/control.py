"""``ksmbd.control``: ksmbd-tools' control tool for the running ksmbd-embedded server.

    ksmbd.control [-v] [-V] [-h] -s | -r | -l | -d COMPONENT | -c

The server is found through its pid file (``/var/run/ksmbd.lock``, written by ``serve
--pid-file`` once it handles signals):

* ``-r`` reload: SIGHUP — config and users are re-read in place, connections stay.
* ``-s`` shutdown: under procd (``/etc/init.d/ksmbd`` exists) ``/etc/init.d/ksmbd stop``, since
  procd would respawn a server that merely exited; then SIGTERM if it still runs.
* ``-l`` list the shares: from the running server's ubus object (``ubus call ksmbd shares``)
  when the ``ubus`` tool answers, else from the configuration files the server reads.
* ``-c`` the server version (ksmbd-tools prints the kernel module's).
* ``-d`` toggles kernel debug components in ksmbd-tools; there is no kernel part here.

Exit 0 on success, 1 on failure (no server running, nothing to do).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

from .. import __version__
from ..config import ConfigError
from ..ksmbd_conf import RUNTIME_UCI_CONF, UCI_CONF, USER_CONF, ConfigSources
from .pid_file import DEFAULT_PID_FILE, read_pid

__all__ = ["main"]

INIT_SCRIPT = "/etc/init.d/ksmbd"
# What the server reads (without writing the generated copy): the fallback for --list.
CONFIG_SOURCES = ConfigSources(UCI_CONF, (RUNTIME_UCI_CONF,), USER_CONF)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ksmbd.control", description="Control the SMB server.")
    p.add_argument("-V", "--version", action="version",
                   version=f"ksmbd-tools version : {__version__}")
    p.add_argument("-v", "--verbose", action="store_true")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("-s", "--shutdown", dest="action", action="store_const", const="shutdown")
    what.add_argument("-r", "--reload", dest="action", action="store_const", const="reload")
    what.add_argument("-l", "--list", dest="action", action="store_const", const="list")
    what.add_argument("-d", "--debug", metavar="COMPONENT")
    what.add_argument("-c", "--ksmbd-version", dest="action", action="store_const",
                      const="version")
    p.add_argument("--pid-file", default=DEFAULT_PID_FILE, help=argparse.SUPPRESS)
    p.add_argument("--init-script", default=INIT_SCRIPT, help=argparse.SUPPRESS)
    return p


def _gone(pid: int) -> bool:
    """The process has exited (a zombie waiting for its parent counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rpartition(")")[2].split()[0] in ("Z", "X")
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return False


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.05)
    return False


def _shutdown(args: argparse.Namespace) -> int:
    pid = read_pid(args.pid_file)
    if os.access(args.init_script, os.X_OK):
        subprocess.run([args.init_script, "stop"], check=False)
        if pid is None or _wait_gone(pid, 5.0):
            return 0
    if pid is None:
        print("ksmbd.control: server is not running", file=sys.stderr)
        return 1
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return 0
    if not _wait_gone(pid, 10.0):
        print(f"ksmbd.control: server (pid {pid}) did not stop", file=sys.stderr)
        return 1
    return 0


def _reload(args: argparse.Namespace) -> int:
    pid = read_pid(args.pid_file)
    if pid is None:
        print("ksmbd.control: server is not running", file=sys.stderr)
        return 1
    os.kill(pid, signal.SIGHUP)
    return 0


def _shares_from_ubus() -> list[str] | None:
    ubus = shutil.which("ubus")
    if ubus is None:
        return None
    names: list[str] = []
    try:
        # The reply is paged (offset/limit, with the total): ask until every share is read,
        # at most 1,000 calls.
        for _ in range(1000):
            out = subprocess.run([ubus, "call", "ksmbd", "shares",
                                  json.dumps({"offset": len(names)})], capture_output=True,
                                 text=True, timeout=5, check=True).stdout
            reply = json.loads(out)
            page = [str(s["name"]) for s in reply["shares"]]
            names += page
            if not page or len(names) >= int(reply.get("total", len(names))):
                break
        return names
    except (OSError, subprocess.SubprocessError, ValueError, KeyError, TypeError):
        return None


def _list(args: argparse.Namespace) -> int:
    names = _shares_from_ubus()
    if names is None:
        try:
            config = CONFIG_SOURCES.load(check_paths=False)
        except ConfigError as exc:
            print(f"ksmbd.control: {exc}", file=sys.stderr)
            return 1
        if args.verbose:
            print("(shares from the configuration files; the server's ubus object did not "
                  "answer)", file=sys.stderr)
        names = [s.name for s in config.shares]
    for name in names:
        print(name)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.debug is not None:
        print("ksmbd.control: debug components belong to the kernel ksmbd; run the server "
              "with --log-level debug instead", file=sys.stderr)
        return 1
    if args.action == "version":
        print(f"ksmbd version : {__version__}")
        return 0
    return {"shutdown": _shutdown, "reload": _reload, "list": _list}[args.action](args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

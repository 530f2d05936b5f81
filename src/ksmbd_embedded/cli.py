"""The `ksmbd-embedded` console command: serve, user management, config check.

Exit codes: 0 success, 1 failure (as ksmbd-tools), 2 configuration or usage error.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
from collections.abc import Sequence

from . import __version__
from .config import ConfigError, ServerConfig, load_config
from .ksmbd_conf import is_user_file, load_ksmbd_conf
from .pwddb import DEFAULT_PATH, PasswordDb, nt_hash, validate_password, validate_user_name

__all__ = ["main"]

DEFAULT_CONFIG = "/etc/config/ksmbd"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ksmbd-embedded",
                                description="SMB2/3 file server for OpenWrt")
    p.add_argument("-V", "--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def config_args(cmd: argparse.ArgumentParser) -> None:
        cmd.add_argument("--config", default=DEFAULT_CONFIG, metavar="FILE",
                         help=f"UCI config file (default {DEFAULT_CONFIG})")
        cmd.add_argument("--config-extra", action="append", default=[], metavar="FILE",
                         help="extra UCI file whose sections are appended, e.g. "
                              "/var/run/config/ksmbd (may repeat; missing files are skipped)")
        cmd.add_argument("--ksmbd-conf", metavar="FILE",
                         help="ksmbd.conf(5) file read instead of UCI when it is a regular "
                              "file, not a symlink (OpenWrt: /etc/ksmbd/ksmbd.conf)")

    serve = sub.add_parser("serve", help="run the server")
    config_args(serve)
    serve.add_argument("--pwddb", default=DEFAULT_PATH, metavar="FILE")
    serve.add_argument("--listen", action="append", metavar="ADDR",
                       help="address to listen on (may repeat; overrides the config)")
    serve.add_argument("--port", type=int, metavar="N", help="TCP port (overrides the config)")
    serve.add_argument("--ubus-socket", metavar="PATH",
                       help="ubusd socket for the 'ksmbd' object (default: the config's "
                            "ubus_socket, else /var/run/ubus/ubus.sock; '' disables)")
    serve.add_argument("--write-ksmbd-conf", metavar="FILE",
                       help="write the UCI configuration as ksmbd.conf here (OpenWrt: "
                            "/var/etc/ksmbd/ksmbd.conf, for wsdd2); --ksmbd-conf, when "
                            "missing, becomes a symlink to it")
    serve.add_argument("--pid-file", metavar="FILE",
                       help="write the server's pid here (ksmbd.control; OpenWrt: "
                            "/var/run/ksmbd.lock)")
    serve.add_argument("--log-level", default="info",
                       choices=("debug", "info", "warning", "error"))

    user = sub.add_parser("user", help="manage users in the password database")
    user.add_argument("action", choices=("add", "update", "del", "list"))
    user.add_argument("name", nargs="?")
    user.add_argument("--pwddb", default=DEFAULT_PATH, metavar="FILE",
                      help=f"password database (default {DEFAULT_PATH})")
    pw = user.add_mutually_exclusive_group()
    pw.add_argument("--password-stdin", action="store_true",
                    help="read the password from the first line of stdin")
    pw.add_argument("--password", metavar="PWD", help="the password (visible to ps!)")

    check = sub.add_parser("check-config", help="validate the configuration")
    config_args(check)
    check.add_argument("--no-check-paths", dest="check_paths", action="store_false",
                       help="do not check that share paths exist")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "user":
        return _user(args)
    return _check_config(args)


def _load(args: argparse.Namespace, check_paths: bool = True) -> ServerConfig | None:
    try:
        if args.ksmbd_conf and is_user_file(args.ksmbd_conf):
            return load_ksmbd_conf(args.ksmbd_conf, check_paths)
        return load_config(args.config, args.config_extra, check_paths)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def _serve(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return 2
    logging.basicConfig(format=LOG_FORMAT, stream=sys.stderr)
    logging.getLogger().setLevel(args.log_level.upper())
    # Config warnings are left to run_server, which loads (and reloads) the config itself.
    from .server import run_server  # imported late: it pulls in the whole server

    # scripts/bench sets KSMBD_EMBEDDED_TRACEMALLOC=1 to measure the Python heap peak.
    trace = os.environ.get("KSMBD_EMBEDDED_TRACEMALLOC") == "1"
    if trace:
        import tracemalloc

        tracemalloc.start()
    rc = run_server(config_path=args.config, extra_paths=list(args.config_extra),
                    pwddb_path=args.pwddb, listen=args.listen or None, port=args.port,
                    ubus_socket=args.ubus_socket, user_conf=args.ksmbd_conf,
                    generated_conf=args.write_ksmbd_conf, pid_file=args.pid_file)
    if trace:
        print(f"tracemalloc peak {tracemalloc.get_traced_memory()[1]}", file=sys.stderr, flush=True)
    return rc


def _check_config(args: argparse.Namespace) -> int:
    config = _load(args, args.check_paths)
    if config is None:
        return 2
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{args.config}: OK, {len(config.shares)} share(s)")
    return 0


def _read_password(args: argparse.Namespace) -> str:
    """The new password from --password, stdin, or two getpass prompts."""
    if args.password is not None:
        return args.password
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("New SMB password: ")
    if getpass.getpass("Retype new SMB password: ") != first:
        raise ValueError("passwords do not match")
    return first


def _user(args: argparse.Namespace) -> int:
    db = PasswordDb.load(args.pwddb)
    for warning in db.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.action == "list":
        for name in db.names():
            print(name)
        return 0
    name = args.name
    if not name:
        print(f"error: user {args.action} needs a user name", file=sys.stderr)
        return 2
    try:
        if args.action == "del":
            if not db.delete(name):
                raise ValueError(f"user {name!r} does not exist")
        else:
            validate_user_name(name)
            if args.action == "add" and name in db:
                raise ValueError(f"user {name!r} already exists")
            if args.action == "update":
                stored = [n for n in db.names() if n.casefold() == name.casefold()]
                if not stored:
                    raise ValueError(f"user {name!r} does not exist")
                name = stored[0]  # keep the spelling already in the database
            password = _read_password(args)
            validate_password(password)
            db.set(name, nt_hash(password))
        db.save(args.pwddb)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    verb = {"add": "added", "update": "updated", "del": "deleted"}[args.action]
    print(f"user {name!r} {verb}")
    return 0

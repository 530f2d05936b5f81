"""The `ksmbd-embedded` console command: serve, user management, config check.

Exit codes: 0 success, 1 failure (as ksmbd-tools), 2 configuration or usage error.  A user's
mistake (a bad config, a port in use, no password) is told in ``error: ...`` lines on stderr,
never as a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import ipaddress
import logging
import os
import sys
from collections.abc import Sequence

from . import __version__
from .config import ConfigError, ServerConfig, load_config
from .ksmbd_conf import is_user_file, load_ksmbd_conf
from .pwddb import (DEFAULT_PATH, PasswordDb, nt_hash, read_new_password, user_name_warning,
                    validate_password, validate_user_name)

__all__ = ["main"]

DEFAULT_CONFIG = "/etc/config/ksmbd"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _address(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad address {text!r} (expected an IPv4 or IPv6 "
                                         "address, e.g. 0.0.0.0 or ::)") from None


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"bad port {text!r} (expected 1 to 65535)")
    return int(text)


def _reason(exc: OSError) -> str:
    """``permission denied`` from ``[Errno 13] Permission denied: 'x'``."""
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


def _terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``, which argparse's formatter asks for."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter without its ``import shutil`` (which loads zlib, bz2 and lzma:
    ~1.5 MB of a server that never prints help; issue 11). argparse makes one for every
    add_argument, so the default one would import it on every start."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        if width is None:
            width = _terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ksmbd-embedded", formatter_class=_HelpFormatter,
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

    serve = sub.add_parser(
        "serve", help="run the server", formatter_class=_HelpFormatter,
        description="Run the server until SIGTERM or Ctrl-C (SIGHUP reloads the configuration "
                    "and users). Every configuration error is listed as 'error: FILE:LINE: "
                    "...' (exit 2); an address that cannot be listened on is one 'error: "
                    "cannot listen on ADDR:PORT: reason' line (exit 1), before anything "
                    "listens.")
    config_args(serve)
    serve.add_argument("--pwddb", default=DEFAULT_PATH, metavar="FILE",
                       help=f"password database (default {DEFAULT_PATH}); a missing one is "
                            "a warning: no users, only guest logons")
    serve.add_argument("--listen", action="append", metavar="ADDR", type=_address,
                       help="address to listen on (may repeat; overrides the config)")
    serve.add_argument("--port", type=_port, metavar="N",
                       help="TCP port (overrides the config)")
    serve.add_argument("--ready-message", action="append", metavar="TEXT",
                       help="print TEXT on stdout once the server listens on every address "
                            "(may repeat: one line each); `make run` prints its hints so")
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

    user = sub.add_parser(
        "user", help="manage users in the password database", formatter_class=_HelpFormatter,
        description="Add, update, delete or list SMB users. A user name is 1 to 47 bytes of "
                    "UTF-8 without ':' or control characters (ksmbd-tools' rules); the "
                    "password 1 to 128 bytes. Without --password or --password-stdin the "
                    "password is asked twice at a terminal, or read from a pipe: its first "
                    "line, and a second line, if any, must repeat it. A missing directory "
                    "of the database is created, and said so.")
    user.add_argument("action", choices=("add", "update", "del", "list"))
    user.add_argument("name", nargs="?")
    user.add_argument("--pwddb", default=DEFAULT_PATH, metavar="FILE",
                      help=f"password database (default {DEFAULT_PATH})")
    pw = user.add_mutually_exclusive_group()
    pw.add_argument("--password-stdin", action="store_true",
                    help="read the password from the first line of stdin (only that line)")
    pw.add_argument("--password", metavar="PWD", help="the password (visible to ps!)")

    check = sub.add_parser("check-config", help="validate the configuration",
                           formatter_class=_HelpFormatter,
                           description="Check the configuration and list every error as "
                                       "'error: FILE:LINE: message' (exit 2), or say OK.")
    config_args(check)
    check.add_argument("--no-check-paths", dest="check_paths", action="store_false",
                       help="do not check that share paths exist")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "user":
            return _user(args)
        return _check_config(args)
    except KeyboardInterrupt:
        # Ctrl-C before the server's own SIGINT handler is in place (start-up) or in a
        # command without one: stop quietly, with the shell's status for SIGINT.
        print(file=sys.stderr)
        return 130


def _load(args: argparse.Namespace, check_paths: bool = True) -> ServerConfig | None:
    try:
        if args.ksmbd_conf and is_user_file(args.ksmbd_conf):
            return load_ksmbd_conf(args.ksmbd_conf, check_paths)
        return load_config(args.config, args.config_extra, check_paths)
    except ConfigError as exc:
        for warning in exc.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        for error in exc.errors:
            print(f"error: {error}", file=sys.stderr)
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
    options = dict(config_path=args.config, extra_paths=list(args.config_extra),
                   pwddb_path=args.pwddb, listen=args.listen or None, port=args.port,
                   ubus_socket=args.ubus_socket, user_conf=args.ksmbd_conf,
                   generated_conf=args.write_ksmbd_conf, pid_file=args.pid_file)
    if args.ready_message:
        options["ready_message"] = "\n".join(args.ready_message)
    from .loop import StartupError
    try:
        rc = run_server(**options)
    except StartupError as exc:  # a port in use, an unreadable password database
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ConfigError as exc:  # the files changed since _load read them
        for error in exc.errors:
            print(f"error: {error}", file=sys.stderr)
        return 2
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
    """The new password from --password, stdin, or two getpass prompts (pwddb.py)."""
    if args.password is not None:
        password = args.password
    elif args.password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise ValueError("no password given: standard input is empty")
        password = line.rstrip("\r\n")
    else:
        password = read_new_password(("New SMB password: ", "Retype new SMB password: "),
                                     getpass.getpass)
    if not password:
        raise ValueError("empty password; an SMB user needs one (for access without a "
                         "password, set guest_ok on the share instead)")
    return password


def _user(args: argparse.Namespace) -> int:
    try:
        db = PasswordDb.load(args.pwddb)
    except OSError as exc:
        print(f"error: cannot read {args.pwddb}: {_reason(exc)}", file=sys.stderr)
        return 1
    for warning in db.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.action == "list":
        if not os.path.exists(args.pwddb):
            # Not an error: a fresh install has no database until the first user is added.
            print(f"warning: {args.pwddb} does not exist: no users", file=sys.stderr)
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
            warning = user_name_warning(name)
            if warning:
                print(f"warning: {warning}", file=sys.stderr)
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
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    directory = os.path.dirname(os.path.abspath(args.pwddb))
    missing = not os.path.isdir(directory)
    try:
        db.save(args.pwddb)
    except OSError as exc:
        print(f"error: cannot write {args.pwddb}: {_reason(exc)}", file=sys.stderr)
        return 1
    if missing:  # say it: a mistyped --pwddb must not go unnoticed
        print(f"created directory {directory}")
    verb = {"add": "added", "update": "updated", "del": "deleted"}[args.action]
    print(f"user {name!r} {verb}")
    return 0

"""``ksmbd.adduser``: ksmbd-tools' user database tool, on ksmbd-embedded's pwddb.py.

    ksmbd.adduser [-v] [-V] [-h] [-P PWDDB] [-C CONF] [-a | -u | -d] [-p PWD] USER

``-a`` adds (fails if the user exists), ``-u`` updates (fails if not), ``-d`` deletes; none of
the three adds or updates.  Without ``-p`` the password is prompted for twice at a terminal, or
read from a pipe (first line; a second line, if any, must repeat it), as ksmbd-tools reads two
lines; Ctrl-D/Ctrl-C at a prompt ends with one error line.  An empty password is accepted with
a notice, as in ksmbd-tools (``ksmbd-embedded user`` refuses it).  After a change
the running server is told to reload (SIGHUP to the pid in ``/var/run/ksmbd.lock``); as in
ksmbd-tools, a failed notification does not change the exit code (0 success, 1 failure).
``-C`` is accepted for compatibility; ksmbd-tools reads it only to protect users a share
depends on, which is not done here.
"""

from __future__ import annotations

import argparse
import getpass
import os
import signal
import sys
from collections.abc import Sequence

from .. import __version__
from ..pwddb import (DEFAULT_PATH, PasswordDb, nt_hash, read_new_password, user_name_warning,
                     validate_password, validate_user_name)
from .pid_file import DEFAULT_PID_FILE, read_pid

__all__ = ["main", "notify_server"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ksmbd.adduser",
                                description="Add, update or delete an SMB user.")
    p.add_argument("-V", "--version", action="version",
                   version=f"ksmbd-tools version : {__version__}")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("-P", "--pwddb", default=DEFAULT_PATH, metavar="PWDDB",
                   help=f"user database (default {DEFAULT_PATH})")
    p.add_argument("-C", "--config", metavar="CONF", help="accepted for compatibility")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("-a", "--add", dest="mode", action="store_const", const="add")
    mode.add_argument("-u", "--update", dest="mode", action="store_const", const="update")
    mode.add_argument("-d", "--delete", dest="mode", action="store_const", const="delete")
    p.add_argument("-p", "--password", metavar="PWD")
    p.add_argument("--pid-file", default=DEFAULT_PID_FILE, help=argparse.SUPPRESS)
    p.add_argument("user", metavar="USER")
    return p


def notify_server(pid_file: str, verbose: bool = False) -> bool:
    """SIGHUP the running server so that it re-reads users; False if none was reached."""
    pid = read_pid(pid_file)
    if pid is None:
        if verbose:
            print("server not running; the change applies at its next start", file=sys.stderr)
        return False
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError as exc:
        print(f"warning: cannot notify the server (pid {pid}): {exc}", file=sys.stderr)
        return False
    return True


def _password(args: argparse.Namespace) -> str:
    if args.password is not None:
        password = args.password
    else:
        password = read_new_password(("New password: ", "Retype new password: "),
                                     getpass.getpass)
    if not password:
        print("ksmbd.adduser: empty password given", file=sys.stderr)
    return password


def _reason(exc: OSError) -> str:
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        try:
            db = PasswordDb.load(args.pwddb)
        except OSError as exc:
            raise ValueError(f"cannot read {args.pwddb}: {_reason(exc)}") from None
        for warning in db.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        name = args.user
        if args.mode == "delete":
            if not db.delete(name):
                raise ValueError(f"user '{name}' does not exist")
            verb = "Deleted"
        else:
            validate_user_name(name)
            warning = user_name_warning(name)
            if warning:
                print(f"warning: {warning}", file=sys.stderr)
            exists = name in db
            if args.mode == "add" and exists:
                raise ValueError(f"user '{name}' already exists")
            if args.mode == "update" and not exists:
                raise ValueError(f"user '{name}' does not exist")
            if exists:  # keep the spelling already in the database
                name = next(n for n in db.names() if n.casefold() == name.casefold())
            password = _password(args)
            validate_password(password)
            db.set(name, nt_hash(password))
            verb = "Updated" if exists else "Added"
        directory = os.path.dirname(os.path.abspath(args.pwddb))
        missing = not os.path.isdir(directory)
        try:
            db.save(args.pwddb)
        except OSError as exc:
            raise ValueError(f"cannot write {args.pwddb}: {_reason(exc)}") from None
    except ValueError as exc:
        print(f"ksmbd.adduser: {exc}", file=sys.stderr)
        return 1
    if missing:  # e.g. /etc/ksmbd before the service first ran; said, never silent
        print(f"Created directory {directory}")
    print(f"{verb} user '{name}'")
    notify_server(args.pid_file, args.verbose)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

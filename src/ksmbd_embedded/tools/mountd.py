"""``ksmbd.mountd``: ksmbd-tools' daemon name, running ksmbd-embedded's server.

    ksmbd.mountd [-v] [-V] [-h] [-p PORT] [-n[WAY]] [-C CONF] [-P PWDDB]

``-V`` prints ``ksmbd-tools version : <version>`` (OpenWrt's old LuCI page parses it).
Otherwise the server runs in the foreground with OpenWrt's layout (``ksmbd_conf.py``):
``/etc/config/ksmbd`` plus the runtime shares, or the user's own ``-C`` file
(``/etc/ksmbd/ksmbd.conf``) when it is a regular file; pid in ``/var/run/ksmbd.lock``.
There is no kernel half to start and no detaching: ``-n0`` is refused.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from ..ksmbd_conf import GENERATED_CONF, RUNTIME_UCI_CONF, UCI_CONF, USER_CONF
from ..pwddb import DEFAULT_PATH
from .pid_file import DEFAULT_PID_FILE

__all__ = ["main", "version_line"]


def version_line() -> str:
    return f"ksmbd-tools version : {__version__}"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ksmbd.mountd", description="Run the SMB server.")
    p.add_argument("-V", "--version", action="version", version=version_line())
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("-p", "--port", type=int, metavar="PORT")
    p.add_argument("-n", "--nodetach", nargs="?", const="1", default="1", metavar="WAY")
    p.add_argument("-C", "--config", default=USER_CONF, metavar="CONF",
                   help=f"ksmbd.conf read instead of UCI when it is a regular file "
                        f"(default {USER_CONF})")
    p.add_argument("-P", "--pwddb", default=DEFAULT_PATH, metavar="PWDDB")
    return p


def serve_argv(args: argparse.Namespace) -> list[str]:
    """The ``ksmbd-embedded serve`` arguments this invocation stands for."""
    argv = ["serve", "--config", UCI_CONF, "--config-extra", RUNTIME_UCI_CONF,
            "--ksmbd-conf", args.config, "--write-ksmbd-conf", GENERATED_CONF,
            "--pwddb", args.pwddb, "--pid-file", DEFAULT_PID_FILE]
    if args.port is not None:
        argv += ["--port", str(args.port)]
    if args.verbose:
        argv += ["--log-level", "debug"]
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.nodetach == "0":
        print("ksmbd.mountd: detaching is not supported; run it under procd (-n)",
              file=sys.stderr)
        return 1
    from ..cli import main as cli_main
    return cli_main(serve_argv(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

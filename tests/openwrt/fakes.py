"""Stand-ins for OpenWrt tools the init and hotplug scripts call: `uci`, `ubus`, `jsonfilter`,
`logger`.  ``install_fakes(bin_dir, log)`` writes one small wrapper per tool into ``bin_dir``
(put it first on PATH); each call is appended to ``log`` as a tab-separated line.

* uci: ``-q``, ``-c CONFDIR``, ``-t SAVEDIR`` (accepted), ``-n``; ``export``/``show``/``get``/
  ``set``/``delete``/``commit``, on the project's own UCI parser and printer.  Changes are
  written to the file at once (no staging); ``commit`` only records the call.
* ubus: ``call OBJECT METHOD``: prints ``$FAKE_UBUS_DIR/OBJECT.METHOD`` or fails (exit 4).
* jsonfilter: ``-s TEXT``/``-i FILE`` and ``-e EXPR`` for expressions built from ``.key``,
  ``[N]`` and ``[@.key="value"]``; one result per line, exit 1 when nothing matches.
* logger: records only.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

TOOLS = ("uci", "ubus", "jsonfilter", "logger")


def install_fakes(bin_dir: Path, log: Path) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    src = Path(__file__).resolve().parents[2] / "src"
    for tool in TOOLS:
        wrapper = bin_dir / tool
        wrapper.write_text(f"#!/bin/sh\nPYTHONPATH='{src}' FAKE_LOG='{log}' exec "
                           f"'{sys.executable}' '{Path(__file__).resolve()}' {tool} \"$@\"\n")
        wrapper.chmod(0o755)


def _record(tool: str, args: list[str]) -> None:
    with open(os.environ["FAKE_LOG"], "a", encoding="utf-8") as f:
        f.write("\t".join([tool, *args]) + "\n")


# --- uci ------------------------------------------------------------------------------------

def _uci(args: list[str]) -> int:
    from ksmbd_embedded.uci import UciSection, export, parse_uci, section_names, show
    confdir, quiet, cfg_names = "/etc/config", False, False
    while args and args[0].startswith("-"):
        opt = args.pop(0)
        if opt in ("-c", "-t", "-P"):
            value = args.pop(0)
            if opt == "-c":
                confdir = value
        elif opt == "-q":
            quiet = True
        elif opt == "-n":
            cfg_names = True
    if not args:
        return 1
    command, rest = args[0], args[1:]

    def fail(message: str) -> int:
        if not quiet:
            print(f"uci: {message}", file=sys.stderr)
        return 1

    def load(pkg_name: str):
        path = Path(confdir) / pkg_name
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        return path, parse_uci(text, pkg_name, str(path))

    def find(pkg, name: str):
        names = section_names(pkg, extended=False)
        for sec, sname in zip(pkg.sections, names):
            if sname == name:
                return sec
        return None

    if command == "commit":
        return 0
    if command in ("export", "show"):
        path, pkg = load(rest[0])
        if not path.exists():
            return fail("Entry not found")
        if command == "show":
            sys.stdout.write(show(pkg))
            return 0
        if cfg_names:
            for sec, sname in zip(pkg.sections, section_names(pkg, extended=False)):
                sec.name = sname
        sys.stdout.write(export(pkg))
        return 0
    if command in ("get", "delete", "set"):
        target, _, value = rest[0].partition("=")
        parts = target.split(".")
        path, pkg = load(parts[0])
        sec = find(pkg, parts[1]) if len(parts) > 1 else None
        if command == "get":
            if sec is None:
                return fail("Entry not found")
            if len(parts) == 2:
                print(sec.type)
                return 0
            opt = sec.options.get(parts[2])
            if opt is None:
                return fail("Entry not found")
            print(opt if isinstance(opt, str) else " ".join(opt))
            return 0
        if command == "delete":
            if sec is None:
                return fail("Entry not found")
            if len(parts) == 2:
                pkg.sections.remove(sec)
            else:
                sec.options.pop(parts[2], None)
        else:  # set
            if len(parts) == 2:
                if sec is None:
                    pkg.sections.append(UciSection(value, parts[1]))
                else:
                    sec.type = value
            else:
                if sec is None:
                    return fail("Invalid argument")
                sec.options[parts[2]] = value
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(export(pkg).split("\n", 1)[1], encoding="utf-8")
        return 0
    return fail(f"unsupported command {command}")


# --- jsonfilter -----------------------------------------------------------------------------

_STEP = re.compile(r"""\.(\w+)|\[(\d+)\]|\[@\.(\w+)=(?:"([^"]*)"|'([^']*)')\]""")


def _jsonfilter(args: list[str]) -> int:
    data, exprs = None, []
    while args:
        opt = args.pop(0)
        if opt == "-s":
            data = json.loads(args.pop(0))
        elif opt == "-i":
            data = json.loads(Path(args.pop(0)).read_text())
        elif opt == "-e":
            exprs.append(args.pop(0))
    found = False
    for expr in exprs:
        if not expr.startswith("@"):
            return 2
        nodes, pos = [data], 1
        while pos < len(expr):
            m = _STEP.match(expr, pos)
            if not m:
                print(f"Syntax error: {expr}", file=sys.stderr)
                return 2
            pos = m.end()
            key, index, fkey = m.group(1), m.group(2), m.group(3)
            fval = m.group(4) if m.group(4) is not None else m.group(5)
            out = []
            for node in nodes:
                if key is not None and isinstance(node, dict) and key in node:
                    out.append(node[key])
                elif index is not None and isinstance(node, list) and int(index) < len(node):
                    out.append(node[int(index)])
                elif fkey is not None and isinstance(node, list):
                    out += [n for n in node if isinstance(n, dict) and str(n.get(fkey)) == fval]
            nodes = out
        for node in nodes:
            found = True
            print(node if isinstance(node, str) else json.dumps(node))
    return 0 if found else 1


# --- ubus, logger ---------------------------------------------------------------------------

def _ubus(args: list[str]) -> int:
    if len(args) >= 3 and args[0] == "call":
        reply = Path(os.environ.get("FAKE_UBUS_DIR", "/nonexistent")) / f"{args[1]}.{args[2]}"
        if reply.exists():
            sys.stdout.write(reply.read_text())
            return 0
    return 4  # UBUS_STATUS_NOT_FOUND


def main() -> int:
    tool, args = sys.argv[1], sys.argv[2:]
    _record(tool, args)
    if tool == "uci":
        return _uci(list(args))
    if tool == "jsonfilter":
        return _jsonfilter(list(args))
    if tool == "ubus":
        return _ubus(list(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())

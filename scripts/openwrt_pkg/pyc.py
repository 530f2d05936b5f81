"""Byte-compiling the server's modules for the router's Python, as OpenWrt's Py3Package
does: each ``module.py`` becomes ``module.pyc`` beside it (``compileall -b``, the legacy
layout a sourceless import reads; no ``__pycache__``), and the main package ships only the
``.pyc`` files, the ``-src`` package the sources.

A ``.pyc`` only loads on the Python version that wrote it (the magic number in its first 4
bytes), so each package format gets its target's interpreter: OpenWrt 24.10 (opkg, .ipk)
has Python 3.11, 25.12 (apk) Python 3.13.  The build looks for those interpreters on this
machine (``interpreter``) and fails with one line when one is missing.

Reproducible: ``--invalidation-mode unchecked-hash`` (no source mtime in the file; a
sourceless .pyc is never checked against a source anyway), PYTHONHASHSEED=0 (stable
ordering of frozensets in constants), ``-d`` the path on the router (what tracebacks show).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

# The Python of each OpenWrt release we build for: (package format, major.minor).
TARGETS = {"ipk": "3.11", "apk": "3.13"}


class CompileError(Exception):
    pass


def interpreter(version: str, override: str | None = None) -> str:
    """A python<version> on this machine: `override` if given, this interpreter when it is
    that version, then ``python<version>`` on PATH, then pyenv's versions."""
    if override:
        return override
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    # (a pyenv shim on PATH fails for a version that is not selected: tried, not trusted)
    candidates = [shutil.which(f"python{version}")] + sorted(
        glob.glob(f"{root}/versions/{version}.*/bin/python{version}"), reverse=True)
    for path in candidates:
        if path and os.access(path, os.X_OK) and _reports(path, version):
            return path
    raise CompileError(f"no python{version} found (needed to byte-compile for the router's "
                       f"Python {version}): install it or give its path")


def _reports(python: str, version: str) -> bool:
    try:
        proc = subprocess.run([python, "-I", "-c", "import sys; print('%d.%d' % "
                               "sys.version_info[:2])"], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and proc.stdout.strip() == version


def compile_tree(tree: Path, installed_as: str, python: str) -> list[Path]:
    """Compile every .py under `tree` (installed at `installed_as` on the router) to a .pyc
    beside it with `python`; return the sources, which the caller moves or drops."""
    sources = sorted(tree.rglob("*.py"))
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("SOURCE_DATE_EPOCH", None)  # (it would force checked-hash)
    proc = subprocess.run(
        [python, "-I", "-m", "compileall", "-q", "-b", "-f", "-d", installed_as,
         "--invalidation-mode", "unchecked-hash", str(tree)],
        env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise CompileError(f"{python} could not compile {installed_as}: "
                           f"{(proc.stdout + proc.stderr).strip()}")
    missing = [s for s in sources if not s.with_suffix(".pyc").is_file()]
    if missing:
        raise CompileError(f"{python} wrote no .pyc for {missing[0]}")
    return sources


def magic_version(pyc: bytes, python: str) -> bool:
    """Whether `pyc` was written by `python`'s version (its magic number)."""
    proc = subprocess.run([python, "-I", "-c",
                           "import importlib.util,sys;"
                           "sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())"],
                          capture_output=True, text=True, check=True)
    return pyc[:4].hex() == proc.stdout

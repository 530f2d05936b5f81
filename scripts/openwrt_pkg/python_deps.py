"""Which OpenWrt packages the server's imports need, and bundling what OpenWrt lacks.

Third-party imports that OpenWrt packages are Depends; any other is copied from the build's
Python environment next to the server's modules (bundled, pure Python only); stdlib modules
that OpenWrt splits out of python3-light must be listed in DEPENDS."""

from __future__ import annotations

import ast
import importlib.util
import shutil
import sys
from pathlib import Path

# Third-party imports OpenWrt has packages for.
OPENWRT_PROVIDES = {"cryptography": "python3-cryptography"}
# Stdlib modules that are not in python3-light (OpenWrt's lang/python/python3 split).
STDLIB_SPLIT = {
    "asyncio": "python3-asyncio", "cgi": "python3-cgi", "cgitb": "python3-cgitb",
    "ctypes": "python3-ctypes", "dbm": "python3-dbm", "decimal": "python3-decimal",
    "email": "python3-email", "logging": "python3-logging", "lzma": "python3-lzma",
    "multiprocessing": "python3-multiprocessing", "curses": "python3-ncurses",
    "ssl": "python3-openssl", "pydoc": "python3-pydoc", "readline": "python3-readline",
    "sqlite3": "python3-sqlite3", "unittest": "python3-unittest", "urllib": "python3-urllib",
    "uuid": "python3-uuid", "venv": "python3-venv", "xml": "python3-xml",
    "webbrowser": "python3-webbrowser",
}


class DependencyError(Exception):
    pass


def imported_top_level(package_dir: Path) -> set[str]:
    names = set()
    for path in package_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def python_dependencies(package_dir: Path, depends: list[str]) -> list[str]:
    """Check DEPENDS against the imports; return the third-party modules to bundle."""
    imports = imported_top_level(package_dir)
    missing = sorted({pkg for mod, pkg in {**STDLIB_SPLIT, **OPENWRT_PROVIDES}.items()
                      if mod in imports and pkg not in depends})
    if missing:
        raise DependencyError(f"the code imports modules from {', '.join(missing)}: add them "
                              "to DEPENDS in package/ksmbd-embedded/Makefile")
    return sorted(m for m in imports - set(sys.stdlib_module_names) - set(OPENWRT_PROVIDES)
                  if m not in ("ksmbd_embedded", "__future__"))


def bundle(module: str, lib_dir: Path) -> None:
    """Copy a pure-Python module or package from this Python's environment into `lib_dir`
    (sources; the build compiles them with the server's)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise DependencyError(f"cannot bundle {module!r}: not installed in {sys.prefix}")
    origin = Path(spec.origin)
    if spec.submodule_search_locations:
        src = origin.parent
        if any(p.suffix in (".so", ".pyd") for p in src.rglob("*")):
            raise DependencyError(f"cannot bundle {module!r}: it has compiled parts")
        shutil.copytree(src, lib_dir / module,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"))
    elif origin.suffix == ".py":
        shutil.copyfile(origin, lib_dir / origin.name)
    else:
        raise DependencyError(f"cannot bundle {module!r}: {origin} is not Python source")

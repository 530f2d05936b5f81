"""A package description (description.py) as an apk v3 package (apk.py), the way OpenWrt
25.12's include/package-pack.mk calls ``apk mkpkg``:

- info: name, version ``X.Y.Z-rN``, the description with its whitespace collapsed (make's
  $(strip)), ``arch:noarch`` (PKGARCH all), license, origin, url, maintainer, the virtual
  provide ``NAME-any`` (package.mk adds ``@NAME-any``; virtual provides carry no version),
  and depends separated by spaces, where each CONFLICTS entry is a ``!name`` depend;
- in the tree, /lib/apk/packages/NAME.list (every file and symlink of the package, ``/``
  paths, sorted; default_postinst / default_prerm read its /etc/init.d/ entries), then
  NAME.conffiles (the declared conffiles) and NAME.conffiles_static (``path sha256`` of
  each one the package installs), which sysupgrade reads;
- post-install, post-upgrade and pre-deinstall in OpenWrt's form (maintainer_scripts.py).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from . import apk
from .description import Package
from .maintainer_scripts import apk_scripts


def apk_version(pkg: Package) -> str:
    return f"{pkg.version}-r{pkg.release}"


def file_name(pkg: Package) -> str:
    return f"{pkg.name}-{apk_version(pkg)}.apk"


def _files_and_links(stage: Path) -> list[str]:
    return sorted(("/" + p.relative_to(stage).as_posix() for p in stage.rglob("*")
                   if p.is_symlink() or p.is_file()), key=str.encode)


def add_metadata(pkg: Package) -> None:
    """Write /lib/apk/packages/NAME.{list,conffiles,conffiles_static} into the stage, in
    package-pack.mk's order (the list is taken before the conffiles files are added)."""
    meta = pkg.stage / "lib/apk/packages"
    listing = _files_and_links(pkg.stage)
    meta.mkdir(parents=True, exist_ok=True)
    for d in (pkg.stage / "lib", pkg.stage / "lib/apk", meta):
        d.chmod(0o755)
    written = {f"{pkg.name}.list": "".join(p + "\n" for p in listing)}
    if pkg.conffiles:
        written[f"{pkg.name}.conffiles"] = "".join(p + "\n" for p in pkg.conffiles)
        static = ""
        for path in pkg.conffiles:
            target = pkg.stage / path.lstrip("/")
            if target.is_file():
                static += f"{path} {hashlib.sha256(target.read_bytes()).hexdigest()}\n"
        if static:
            written[f"{pkg.name}.conffiles_static"] = static
    for name, text in written.items():
        (meta / name).write_text(text)
        (meta / name).chmod(0o644)


def entries(stage: Path) -> list[apk.Entry]:
    out = []
    for path in sorted(stage.rglob("*")):
        rel = path.relative_to(stage).as_posix()
        mode = path.lstat().st_mode & 0o7777
        if path.is_symlink():
            out.append(apk.Entry(rel, "symlink", 0o777, target=str(path.readlink())))
        elif path.is_dir():
            out.append(apk.Entry(rel, "dir", mode))
        else:
            out.append(apk.Entry(rel, "file", mode, data=path.read_bytes()))
    return out


def info(pkg: Package) -> dict:
    depends = pkg.depends + [f"{name}={apk_version(pkg)}" for name in pkg.pinned] \
        + [f"!{name}" for name in pkg.conflicts]
    fields = {"name": pkg.name, "version": apk_version(pkg),
              "description": " ".join(pkg.description.split()), "arch": "noarch",
              "license": pkg.license, "origin": pkg.source, "url": pkg.url,
              "maintainer": pkg.maintainer, "provides": [f"{pkg.name}-any"],
              "depends": depends}
    return {k: v for k, v in fields.items() if v}


def write(pkg: Package, out: Path, mtime: int) -> Path:
    """Write `pkg` as an .apk into `out` (adds the apk metadata files to its stage)."""
    add_metadata(pkg)
    scripts = {name: text.encode()
               for name, text in apk_scripts(pkg.name, pkg.postinst, pkg.prerm).items()}
    target = out / file_name(pkg)
    target.write_bytes(apk.write_package(info(pkg), entries(pkg.stage), scripts, mtime))
    return target


def write_index(out: Path, apks: list[Path]) -> Path:
    """packages.adb of the packages, unsigned (install with --allow-untrusted, or sign it)."""
    target = out / "packages.adb"
    target.write_bytes(apk.write_index([p.read_bytes() for p in sorted(apks)]))
    return target

"""One description of each package, read from its feed Makefile and the repository, that
both writers (ipk.py for opkg, apk.py for apk) turn into a package file: no second list of
files, depends, scripts or conffiles to keep in step.

Packages (version and release from package/ksmbd-embedded/Makefile):

``ksmbd-embedded``      files/ (as /), init.d/ksmbd (as /etc/init.d/ksmbd), and the server's
                        modules under /usr/lib/ksmbd-embedded byte-compiled for the target's
                        Python (pyc.py): ``.pyc`` only, as OpenWrt's Py3Package ships them
``ksmbd-embedded-src``  the modules' sources (``.py``), pinned to the same version
``luci-app-ksmbd-embedded``  luci-app/htdocs (as /www) and luci-app/root (as /), with
                        package/luci-app-ksmbd-embedded/Makefile's LUCI_* variables read
                        with luci.mk's meaning

Install modes are OpenWrt's: /etc/config files 0600, executables 0755, others 0644,
directories 0755.  Conffiles as the SDK handles them: the declared paths the package does
not install go to /lib/upgrade/keep.d/NAME (package-pack.mk), which sysupgrade keeps; each
writer records the others its own way.
"""

from __future__ import annotations

import os
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from . import pyc
from .makefile import block_fields, expand, package_list, read_makefile
from .python_deps import bundle, python_dependencies

REPO = Path(__file__).resolve().parents[2]
LIB_DIR = "usr/lib/ksmbd-embedded"
SERVER = "ksmbd-embedded"
LUCI = "luci-app-ksmbd-embedded"
# The server package's files: repository path -> path on the router.
SERVER_FILES = {"files": "/", "init.d/ksmbd": "/etc/init.d/ksmbd"}
# luci.mk's defaults for what a LuCI application's Makefile does not set.
LUCI_MK_MAINTAINER = "OpenWrt LuCI community"
LUCI_POSTINST = """\
#!/bin/sh
[ -n "${IPKG_INSTROOT}" ] && exit 0
# New menu entry and ACL: drop LuCI's caches, let rpcd read the ACL.
rm -f /tmp/luci-indexcache /tmp/luci-indexcache.*
rm -rf /tmp/luci-modulecache/
/etc/init.d/rpcd reload 2>/dev/null
exit 0
"""


class BuildError(Exception):
    pass


@dataclass
class Package:
    """What both writers need of one package. `stage` holds its files as installed under /
    (modes set); `postinst` / `prerm` are the package's own code (maintainer_scripts.py
    wraps them in OpenWrt's form for each manager)."""

    name: str
    version: str  # PKG_VERSION
    release: str  # PKG_RELEASE
    description: str
    stage: Path
    depends: list[str] = field(default_factory=list)
    # depends on packages of this build at exactly this version (the -src package's)
    pinned: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    license: str = ""
    section: str = ""
    maintainer: str = ""
    url: str = ""
    conffiles: list[str] = field(default_factory=list)  # as declared
    postinst: str = ""
    prerm: str = ""

    @property
    def source(self) -> str:
        return f"package/{self.name}"

    def shipped_conffiles(self) -> list[str]:
        """The declared conffiles the package installs as regular files (a directory stands
        for the regular files under it), sorted bytewise (ipkg-build's list)."""
        out: set[str] = set()
        for path in self.conffiles:
            target = self.stage / path.lstrip("/")
            if target.is_symlink():
                continue
            if target.is_file():
                out.add(path)
            elif target.is_dir():
                out |= {"/" + below.relative_to(self.stage).as_posix()
                        for below in target.rglob("*")
                        if below.is_file() and not below.is_symlink()}
        return sorted(out, key=lambda p: p.encode())


# --- files with OpenWrt's install modes ---------------------------------------------------------

def is_uci_config(router_path: str) -> bool:
    return router_path.startswith("/etc/config/")


def copy_file(path: Path, target: Path, config: bool = False) -> None:
    """Copy one file with OpenWrt's install modes: /etc/config 0600, executables 0755, 0644;
    directories it creates 0755."""
    missing = [d for d in [target.parent, *target.parent.parents] if not d.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    for d in missing:
        d.chmod(0o755)
    shutil.copyfile(path, target)
    if config:
        mode = 0o600
    elif os.access(path, os.X_OK):
        mode = 0o755
    else:
        mode = 0o644
    target.chmod(mode)


def copy_tree(src: Path, dst: Path, installed_as: str = "/") -> None:
    """Copy a tree with OpenWrt's install modes (see copy_file); ``dst`` is the directory
    ``src`` becomes, ``installed_as`` its path on the router. Bytecode is not copied."""
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        target = dst / rel
        if "__pycache__" in rel.parts or path.suffix in (".pyc", ".pyo"):
            continue
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        router_path = f"{installed_as.rstrip('/')}/{rel.as_posix()}"
        copy_file(path, target, config=is_uci_config(router_path))
    for d in [dst, *dst.rglob("*")]:
        if d.is_dir():
            d.chmod(0o755)


def write_keep_d(pkg: Package) -> None:
    """package-pack.mk: declared conffiles that are not files of the package are listed in
    /lib/upgrade/keep.d/NAME, which sysupgrade keeps."""
    keep = [p for p in pkg.conffiles if not (pkg.stage / p.lstrip("/")).is_file()]
    if not keep:
        return
    keep_file = pkg.stage / "lib/upgrade/keep.d" / pkg.name
    keep_file.parent.mkdir(parents=True, exist_ok=True)
    keep_file.write_text("".join(p + "\n" for p in keep))
    keep_file.chmod(0o644)
    for d in (pkg.stage / "lib", pkg.stage / "lib/upgrade", keep_file.parent):
        d.chmod(0o755)


# --- the packages -------------------------------------------------------------------------------

def project_version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def server_makefile() -> tuple[dict[str, str], dict[str, str]]:
    return read_makefile(REPO / "package" / SERVER / "Makefile")


def server_packages(work: Path, python: str) -> tuple[Package, Package]:
    """(ksmbd-embedded, ksmbd-embedded-src), staged under `work`, the modules compiled by
    `python` (the target's interpreter)."""
    makefile = REPO / "package" / SERVER / "Makefile"
    variables, blocks = server_makefile()
    if variables["PKG_VERSION"] != project_version():
        raise BuildError(f"{makefile}: PKG_VERSION {variables['PKG_VERSION']} differs from "
                         f"pyproject.toml's version {project_version()}")
    fields = block_fields(blocks[f"Package/{SERVER}"])
    depends = package_list(fields.get("DEPENDS", ""))
    common = dict(version=variables["PKG_VERSION"], release=variables["PKG_RELEASE"],
                  license=variables.get("PKG_LICENSE", ""), section=fields.get("SECTION", ""),
                  maintainer=variables.get("PKG_MAINTAINER", ""),
                  url=variables.get("PKG_URL", ""))

    stage = work / SERVER
    for src, dst in SERVER_FILES.items():
        if (REPO / src).is_dir():
            copy_tree(REPO / src, stage / dst.lstrip("/"), dst)
        else:
            copy_file(REPO / src, stage / dst.lstrip("/"), is_uci_config(dst))
    lib = stage / LIB_DIR
    copy_tree(REPO / "src/ksmbd_embedded", lib / "ksmbd_embedded", f"/{LIB_DIR}/ksmbd_embedded")
    try:
        for module in python_dependencies(REPO / "src/ksmbd_embedded", depends):
            bundle(module, lib)
    except Exception as exc:  # DependencyError, with its own message
        raise BuildError(str(exc)) from None

    # The modules: .pyc in the main package, the sources moved to the -src package.
    src_stage = work / f"{SERVER}-src"
    try:
        sources = pyc.compile_tree(lib, f"/{LIB_DIR}", python)
    except pyc.CompileError as exc:
        raise BuildError(str(exc)) from None
    for source in sources:
        rel = source.relative_to(stage)
        copy_file(source, src_stage / rel)
        source.unlink()
        source.with_suffix(".pyc").chmod(0o644)
    for d in [src_stage, *src_stage.rglob("*")]:
        if d.is_dir():
            d.chmod(0o755)

    server = Package(name=SERVER, stage=stage, depends=depends,
                     conflicts=package_list(fields.get("CONFLICTS", "")),
                     description=_description(blocks, SERVER, fields),
                     conffiles=blocks.get(f"Package/{SERVER}/conffiles", "").split(),
                     postinst=blocks.get(f"Package/{SERVER}/postinst", ""),
                     prerm=blocks.get(f"Package/{SERVER}/prerm", ""), **common)
    write_keep_d(server)
    src_fields = block_fields(blocks.get(f"Package/{SERVER}-src", ""))
    source_pkg = Package(
        name=f"{SERVER}-src", stage=src_stage, pinned=[SERVER],
        description=_description(blocks, f"{SERVER}-src", src_fields) or
        f"The Python sources of {SERVER} (the main package ships them byte-compiled).",
        prerm=blocks.get(f"Package/{SERVER}/prerm", ""),
        **{**common, "section": src_fields.get("SECTION", common["section"])})
    return server, source_pkg


def _description(blocks: dict[str, str], name: str, fields: dict[str, str]) -> str:
    return blocks.get(f"Package/{name}/description", fields.get("TITLE", "")).strip("\n")


def luci_package(work: Path) -> Package:
    """luci-app-ksmbd-embedded, staged under `work`."""
    makefile = REPO / "package" / LUCI / "Makefile"
    variables, blocks = read_makefile(makefile) if makefile.exists() else ({}, {})
    server_vars, _ = server_makefile()
    title = variables.get("LUCI_TITLE", "LuCI support for ksmbd-embedded")
    # luci.mk: the description is $(strip $(LUCI_DESCRIPTION)) when that is set (else the
    # Makefile's own define, else package.mk's default, the TITLE); MAINTAINER:=
    # $(LUCI_MAINTAINER), which defaults to the LuCI community, not to PKG_MAINTAINER.
    description = " ".join(expand(variables.get("LUCI_DESCRIPTION", ""), variables).split()) \
        or blocks.get(f"Package/{LUCI}/description", title)
    stage = work / LUCI
    stage.mkdir(parents=True)
    stage.chmod(0o755)
    src = REPO / "luci-app"
    if (src / "htdocs").is_dir():
        copy_tree(src / "htdocs", stage / "www", "/www")
    if (src / "root").is_dir():
        copy_tree(src / "root", stage)
    return Package(
        name=LUCI, stage=stage, description=description,
        version=variables.get("PKG_VERSION", server_vars["PKG_VERSION"]),
        release=variables.get("PKG_RELEASE", server_vars["PKG_RELEASE"]),
        depends=package_list(variables.get("LUCI_DEPENDS", "+luci-base +ksmbd-embedded")),
        conflicts=package_list(variables.get("LUCI_CONFLICTS", "luci-app-ksmbd")),
        license=variables.get("PKG_LICENSE", "GPL-2.0-or-later"),
        section=variables.get("LUCI_SECTION", "luci"),
        maintainer=expand(variables.get("LUCI_MAINTAINER", LUCI_MK_MAINTAINER), variables),
        url=expand(variables.get("LUCI_URL", ""), variables),
        postinst=blocks.get(f"Package/{LUCI}/postinst", LUCI_POSTINST))

"""What the real opkg and OpenWrt's SDK do with our packages (issue 10, point 5).

- ipkg-build keeps a conffiles line only for a regular file the package installs (a directory
  stands for the files under it; the result sorted), so opkg never hashes a file it did not
  unpack; the SDK (package-pack.mk) writes the declared conffiles the package does not install
  into /lib/upgrade/keep.d/<package>, so sysupgrade keeps them.
- ipkg-make-index ends every stanza of `Packages` with a blank line; opkg only takes a
  paragraph that a blank line ends (without it the last package loses its Description).
- luci.mk: TITLE from LUCI_TITLE, the description from LUCI_DESCRIPTION, Maintainer from
  LUCI_MAINTAINER (default "OpenWrt LuCI community", PKG_MAINTAINER is not used).
- The repository layout of the product card: files/ (installed as /), init.d/ksmbd.
"""

from __future__ import annotations

import re

from openwrt_pkg.makefile import expand, read_makefile

from .conftest import LUCI_IPK, REPO, SERVER_IPK, SRC_IPK, Ipk

SERVER_MAKEFILE = REPO / "package/ksmbd-embedded/Makefile"
LUCI_MAKEFILE = REPO / "package/luci-app-ksmbd-embedded/Makefile"


def _declared_conffiles() -> list[str]:
    _, blocks = read_makefile(SERVER_MAKEFILE)
    return blocks["Package/ksmbd-embedded/conffiles"].split()


# --- conffiles --------------------------------------------------------------------------------

def test_every_conffile_is_a_file_of_the_package(out):
    ipk = Ipk(out / SERVER_IPK)
    data = ipk.data()
    conffiles = ipk.control_file("conffiles").splitlines()
    assert conffiles, "the default /etc/config/ksmbd is a conffile"
    for path in conffiles:
        member = data.get("." + path)
        assert member is not None and member.isfile(), \
            f"conffile {path} is not in data.tar.gz: opkg prints file_sha256sum_alloc errors"
    assert conffiles == sorted(conffiles)  # ipkg-build: LC_ALL=C sort
    assert conffiles == ["/etc/config/ksmbd"]


def test_declared_conffiles_not_shipped_go_to_keep_d(out):
    """/etc/ksmbd/ksmbdpwd.db and ksmbd.conf stay declared in the Makefile (as in OpenWrt's
    ksmbd-server); the SDK turns the ones the package does not install into keep.d lines."""
    ipk = Ipk(out / SERVER_IPK)
    data = ipk.data()
    declared = _declared_conffiles()
    assert "/etc/ksmbd/ksmbdpwd.db" in declared
    missing = [p for p in declared if "." + p not in data]
    keep = data.get("./lib/upgrade/keep.d/ksmbd-embedded")
    assert keep is not None and keep.isfile(), "no /lib/upgrade/keep.d/ksmbd-embedded"
    text = ipk.data_tar.extractfile(keep).read().decode()
    assert text.splitlines() == missing
    assert "/etc/ksmbd/ksmbdpwd.db" in text.splitlines()
    assert keep.mode == 0o644


# --- the feed index, read the way opkg reads it -----------------------------------------------

def opkg_paragraphs(text: str) -> tuple[list[dict[str, str]], list[str]]:
    """Paragraphs a blank line ends, as field -> value (continuation lines, which start with a
    space, appended after a newline); and the lines of an unterminated last paragraph."""
    paragraphs: list[dict[str, str]] = []
    current: dict[str, str] = {}
    pending: list[str] = []
    key = None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # what follows the last newline is no line
    for line in lines:
        if line == "":
            if current:
                paragraphs.append(current)
            current, pending, key = {}, [], None
            continue
        pending.append(line)
        if line.startswith(" ") and key:
            current[key] += "\n" + line[1:]
        else:
            key, sep, value = line.partition(":")
            assert sep and not key.startswith(" "), f"not a field: {line!r}"
            current[key] = value.strip()
    return paragraphs, pending


def test_packages_index_ends_every_paragraph_with_a_blank_line(out):
    text = (out / "Packages").read_text()
    assert text.endswith("\n\n") and not text.endswith("\n\n\n")
    assert "\n\n\n" not in text
    _, unterminated = opkg_paragraphs(text)
    assert unterminated == []


def test_packages_index_gives_opkg_every_field(out):
    paragraphs, _ = opkg_paragraphs((out / "Packages").read_text())
    by_name = {p.get("Package"): p for p in paragraphs}
    assert set(by_name) == {"ksmbd-embedded", "ksmbd-embedded-src", "luci-app-ksmbd-embedded"}
    for name, ipk_name in (("ksmbd-embedded", SERVER_IPK), ("ksmbd-embedded-src", SRC_IPK),
                           ("luci-app-ksmbd-embedded", LUCI_IPK)):
        fields = by_name[name]
        for field in ("Version", "Depends", "Section", "Maintainer", "Architecture",
                      "Installed-Size", "Filename", "Size", "SHA256sum", "Description"):
            assert fields.get(field), (name, field)
        control = Ipk(out / ipk_name).fields()
        assert fields["Description"] == control["Description"].strip()
        assert fields["Maintainer"] == control["Maintainer"]
        # Filename, Size, SHA256sum go right before Description, as ipkg-make-index puts them
        keys = list(fields)
        assert keys[-4:] == ["Filename", "Size", "SHA256sum", "Description"], keys


# --- the LuCI package as luci.mk builds it ----------------------------------------------------

def test_luci_makefile_has_what_luci_mk_reads():
    variables, _ = read_makefile(LUCI_MAKEFILE)
    server, _ = read_makefile(SERVER_MAKEFILE)
    assert variables.get("LUCI_TITLE") and len(variables["LUCI_TITLE"]) <= 60
    assert variables.get("LUCI_DESCRIPTION")
    assert variables.get("PKG_MAINTAINER") == server["PKG_MAINTAINER"]
    # luci.mk sets MAINTAINER:=$(LUCI_MAINTAINER), "OpenWrt LuCI community" unless given
    assert "LUCI_MAINTAINER" in variables
    assert expand(variables["LUCI_MAINTAINER"], variables) == server["PKG_MAINTAINER"]


def test_luci_control_carries_description_and_maintainer(out):
    variables, _ = read_makefile(LUCI_MAKEFILE)
    server, _ = read_makefile(SERVER_MAKEFILE)
    f = Ipk(out / LUCI_IPK).fields()
    assert f["Description"] == " " + variables["LUCI_DESCRIPTION"]  # "Description:  text"
    assert f["Description"].strip() != variables["LUCI_TITLE"]
    assert f["Maintainer"] == server["PKG_MAINTAINER"]
    assert f["Section"] == "luci"
    # the field order of package-pack.mk
    order = ["Package", "Version", "Depends", "Conflicts", "Source", "SourceName", "License",
             "Section", "SourceDateEpoch", "URL", "Maintainer", "Architecture",
             "Installed-Size", "Description"]
    assert [k for k in order if k in f] == [k for k in f if k in order]


# --- repository layout (product card) ---------------------------------------------------------

def test_repository_layout_matches_the_product_card():
    for path in ("Makefile", "package", "files/etc/config/ksmbd", "src/ksmbd_embedded",
                 "luci-app", "init.d/ksmbd", "tests", "scripts",
                 "files/etc/hotplug.d/mount/60-ksmbd", "files/usr/sbin/ksmbd-embedded",
                 "files/usr/sbin/ksmbd.adduser", "files/usr/sbin/ksmbd.control",
                 "files/usr/sbin/ksmbd.mountd"):
        assert (REPO / path).exists(), path
    assert not (REPO / "openwrt").exists()
    assert not (REPO / "files/etc/init.d").exists()  # one init script: init.d/ksmbd


def test_sdk_makefile_installs_from_the_new_layout():
    text = SERVER_MAKEFILE.read_text()
    assert re.search(r"^FILES_DIR:=\$\(REPO_DIR\)/files$", text, re.M)
    assert re.search(r"\$\(INSTALL_BIN\) \$\(REPO_DIR\)/init\.d/ksmbd \$\(1\)/etc/init\.d/ksmbd",
                     text)
    # every source file the install recipe names exists
    repo_dir, files_dir = str(REPO), str(REPO / "files")
    for src in re.findall(r"\$\(INSTALL_(?:BIN|CONF|DATA)\) (\S+)", text):
        path = src.replace("$(FILES_DIR)", files_dir).replace("$(REPO_DIR)", repo_dir)
        if path.endswith("/*"):
            assert any((REPO / path[len(repo_dir) + 1:-2]).iterdir()), src
        else:
            assert (REPO / path[len(repo_dir) + 1:]).is_file(), src


def test_ipk_installs_the_router_paths_from_the_new_layout(out):
    ipk = Ipk(out / SERVER_IPK)
    data = ipk.data()
    for installed, source, mode in (
            ("./etc/init.d/ksmbd", "init.d/ksmbd", 0o755),
            ("./etc/config/ksmbd", "files/etc/config/ksmbd", 0o600),
            ("./etc/hotplug.d/mount/60-ksmbd", "files/etc/hotplug.d/mount/60-ksmbd", 0o644),
            ("./usr/sbin/ksmbd.mountd", "files/usr/sbin/ksmbd.mountd", 0o755)):
        assert installed in data and data[installed].mode == mode, installed
        assert ipk.data_tar.extractfile(data[installed]).read() == \
            (REPO / source).read_bytes(), installed
    # nothing of the repository's own directory names leaks into the package
    assert not [n for n in data if n.startswith(("./files", "./init.d", "./openwrt"))]

"""Maintainer scripts in the form OpenWrt's include/package-pack.mk writes them, for opkg
(.ipk) and for apk (.apk).  The package's own code (``define Package/NAME/postinst`` /
``prerm`` in its Makefile) is the ``-pkg`` part; OpenWrt wraps it:

opkg: ``postinst`` / ``prerm`` are fixed wrappers that source /lib/functions.sh and call
  ``default_postinst $0 $@`` / ``default_prerm $0 $@``; the package's code ships as the
  control files ``postinst-pkg`` / ``prerm-pkg``, which those functions source (from
  /usr/lib/opkg/info/NAME.*-pkg).
apk: ``post-install`` calls ``default_postinst`` with ``pkgname`` exported, then runs the
  package's code (its ``#!`` lines removed); ``post-upgrade`` is the same with
  ``PKG_UPGRADE=1`` exported first; ``pre-deinstall`` calls ``default_prerm`` then the
  package's prerm code.  apk runs pre-deinstall only on removal, and passes versions as
  arguments (never opkg's "remove"/"upgrade").

default_postinst / default_prerm (base-files' /lib/functions.sh) find the package's init
scripts in its file list (/usr/lib/opkg/info/NAME.list or /lib/apk/packages/NAME.list):
postinst enables them (unless PKG_UPGRADE=1) and starts them; prerm stops them and disables
them unless PKG_UPGRADE=1 — which opkg sets during an upgrade, so the package's own code
never needs to look at $1.
"""

from __future__ import annotations

import re

_SOURCE_FUNCTIONS = ('[ -s ${IPKG_INSTROOT}/lib/functions.sh ] || exit 0\n'
                     '. ${IPKG_INSTROOT}/lib/functions.sh\n')

IPK_POSTINST = ('#!/bin/sh\n'
                '[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0\n'
                + _SOURCE_FUNCTIONS +
                'default_postinst $0 $@\n')
IPK_PRERM = ('#!/bin/sh\n'
             + _SOURCE_FUNCTIONS +
             'default_prerm $0 $@\n')


def _body(code: str) -> str:
    """The package's code without its ``#!`` lines (package-pack.mk: sed '/^\\s*#!/d')."""
    if not code.strip():
        return ""
    lines = [line for line in code.strip("\n").split("\n") if not re.match(r"\s*#!", line)]
    return "\n".join(lines) + "\n"


def _with_shebang(code: str) -> str:
    code = code.strip("\n") + "\n"
    return code if code.startswith("#!") else "#!/bin/sh\n" + code


def ipk_scripts(postinst_pkg: str, prerm_pkg: str) -> dict[str, str]:
    """The control files of an .ipk: the wrappers and the package's own parts."""
    scripts = {"postinst": IPK_POSTINST, "prerm": IPK_PRERM}
    if postinst_pkg.strip():
        scripts["postinst-pkg"] = _with_shebang(postinst_pkg)
    if prerm_pkg.strip():
        scripts["prerm-pkg"] = _with_shebang(prerm_pkg)
    return scripts


def apk_scripts(name: str, postinst_pkg: str, prerm_pkg: str) -> dict[str, str]:
    """apk's scripts for package `name`, keyed by apk's names."""
    post_install = ('#!/bin/sh\n'
                    '[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0\n'
                    + _SOURCE_FUNCTIONS +
                    'export root="${IPKG_INSTROOT}"\n'
                    f'export pkgname="{name}"\n'
                    'add_group_and_user\n'
                    'default_postinst\n'
                    + _body(postinst_pkg))
    post_upgrade = '#!/bin/sh\nexport PKG_UPGRADE=1\n' + _body(post_install)
    pre_deinstall = ('#!/bin/sh\n'
                     + _SOURCE_FUNCTIONS +
                     'export root="${IPKG_INSTROOT}"\n'
                     f'export pkgname="{name}"\n'
                     'default_prerm\n'
                     + _body(prerm_pkg))
    return {"post-install": post_install, "post-upgrade": post_upgrade,
            "pre-deinstall": pre_deinstall}

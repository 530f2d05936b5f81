"""The LuCI app's files agree with each other and with the server: the ACL grants exactly the
ubus methods the view declares (reads under read, changes under write), the menu points at the
view, the view edits only options the server's config reads, and the feed Makefile."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ksmbd_embedded import config
from ksmbd_embedded.ubus.ksmbd_object import KsmbdObject

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "luci-app"
VIEW = APP / "htdocs" / "luci-static" / "resources" / "view" / "ksmbd.js"
ACL = APP / "root" / "usr" / "share" / "rpcd" / "acl.d" / "luci-app-ksmbd-embedded.json"
MENU = APP / "root" / "usr" / "share" / "luci" / "menu.d" / "luci-app-ksmbd-embedded.json"
MAKEFILE = REPO / "package" / "luci-app-ksmbd-embedded" / "Makefile"

READS = {"status", "sessions", "open_files", "shares", "users"}
WRITES = {"disconnect", "close_file", "reload", "user_add", "user_del", "user_passwd"}
DECLARE = re.compile(r"rpc\.declare\(\{(.*)\}\);$", re.MULTILINE)  # one declaration a line


def declared() -> dict[tuple[str, str], tuple[list[str], str]]:
    """(object, method) -> (params, the whole declaration)."""
    out = {}
    for body in DECLARE.findall(VIEW.read_text()):
        obj = re.search(r"object:\s*'(\w+)'", body).group(1)
        method = re.search(r"method:\s*'(\w+)'", body).group(1)
        params = re.search(r"params:\s*\[([^\]]*)\]", body)
        out[(obj, method)] = (re.findall(r"'(\w+)'", params.group(1)) if params else [], body)
    return out


def test_acl_grants_exactly_what_the_view_calls():
    acl = json.loads(ACL.read_text())
    assert list(acl) == ["luci-app-ksmbd-embedded"]
    group = acl["luci-app-ksmbd-embedded"]
    assert set(group) == {"description", "read", "write"}
    for mode, methods in (("read", READS), ("write", WRITES)):
        assert set(group[mode]) == {"ubus", "uci"}, mode  # no file access, no other object
        assert group[mode]["uci"] == ["ksmbd"]
        assert list(group[mode]["ubus"]) == ["ksmbd"]
        assert sorted(group[mode]["ubus"]["ksmbd"]) == sorted(methods), mode

    calls = declared()
    assert {obj for obj, _ in calls} == {"ksmbd"}
    assert {method for _, method in calls} == READS | WRITES
    for (_, method), (params, rest) in calls.items():
        assert method in KsmbdObject.SIGNATURES
        assert set(params) == set(KsmbdObject.SIGNATURES[method]), method
        # changes reject on a ubus error so the page can say so; reads fall back to defaults
        assert ("reject: true" in rest) == (method in WRITES), method


def test_menu_entry_points_at_the_view():
    menu = json.loads(MENU.read_text())
    assert list(menu) == ["admin/services/ksmbd"]
    node = menu["admin/services/ksmbd"]
    assert node["title"] == "Network Shares"
    assert node["action"] == {"type": "view", "path": "ksmbd"}
    assert (APP / "htdocs" / "luci-static" / "resources" / "view" / "ksmbd.js").is_file()
    assert node["depends"] == {"acl": ["luci-app-ksmbd-embedded"], "uci": {"ksmbd": True}}


def _options(text: str) -> set[str]:
    names = set(re.findall(
        r"s\.(?:tab)?option\((?:'\w+',\s*)?(?:form|widgets)\.\w+,\s*'(\w+)'", text))
    return names | set(re.findall(r"\[\s*'(\w+_mask)'", text))


def test_view_edits_the_old_pages_options_and_ours():
    text = VIEW.read_text()
    globals_part, shares_part = text.split("m.section(form.TableSection, 'share'", 1)
    globals_part = globals_part.split("m.section(form.TypedSection, 'globals'", 1)[1]
    # luci-app-ksmbd's globals, plus signing, encryption and the protocol range
    assert _options(globals_part) == {
        "interface", "workgroup", "description", "allow_legacy_protocols", "allow_guest_ipc",
        "server_signing", "smb3_encryption", "server_min_protocol", "server_max_protocol",
        "hosts_allow", "hosts_deny", "max_connections", "max_ip_connections", "deadtime",
        "logon_timeout", "frame_timeout", "memory_limit"}
    assert _options(globals_part) <= set(config._GLOBAL_OPTIONS)
    # luci-app-ksmbd's share table
    assert _options(shares_part) == {
        "name", "path", "browseable", "read_only", "force_root", "users", "guest_ok",
        "inherit_owner", "hide_dot_files", "create_mask", "dir_mask", "hosts_allow",
        "hosts_deny", "oplocks"}
    assert _options(shares_part) <= set(config._SHARE_OPTIONS)
    # the help of "Allowed users" and "Allow guests" says that a users list keeps guests out
    users = re.search(r"form\.Value, 'users', _\('Allowed users'\),\s*_\('([^']*)'", text)
    guests = re.search(r"form\.Flag, 'guest_ok', _\('Allow guests'\),\s*_\('([^']*)'", text)
    assert users and "guests are then refused too" in users.group(1)
    assert guests and "unless \"Allowed users\" names its users" in guests.group(1)
    dialects = re.search(r"var DIALECTS = \[([^\]]*)\]", text).group(1)
    assert tuple(re.findall(r"'(\w+)'", dialects)) == config.DIALECTS


def test_feed_makefile():
    text = MAKEFILE.read_text()
    assert text.count("include $(TOPDIR)/rules.mk") == 1
    values = dict(re.findall(r"^(\w+):=(.*)$", text, re.MULTILINE))
    assert values["LUCI_TITLE"]
    assert values["LUCI_DEPENDS"].split() == ["+luci-base", "+ksmbd-embedded"]
    assert values["LUCI_CONFLICTS"] == "luci-app-ksmbd"
    assert re.search(r"^include .*luci\.mk", text, re.MULTILINE)
    pkg = MAKEFILE.parent
    assert (pkg / "htdocs").resolve() == (APP / "htdocs").resolve()
    assert (pkg / "root").resolve() == (APP / "root").resolve()

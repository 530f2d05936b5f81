"""hosts allow / hosts deny (host_access.py): parsing, matching, deny wins unless allow is more specific, the
loopback rule, config errors at their lines, ksmbd.conf, the log throttle and ubus counters."""

from __future__ import annotations

import ipaddress
import logging

import pytest

from ksmbd_embedded import host_access
from ksmbd_embedded.config import ConfigError, config_from_text
from ksmbd_embedded.host_access import (
    HostListError, Refusals, decide, parse_hosts, peer_address,
)
from ksmbd_embedded.ksmbd_conf import config_from_ksmbd_conf, render
from ksmbd_embedded.pwddb import PasswordDb
from ksmbd_embedded.server import ServerState
from ksmbd_embedded.ubus.ksmbd_object import KsmbdObject


def ip(text):
    return ipaddress.ip_address(text)


def matches(entries, address):
    return parse_hosts(entries).matches(ip(address))


def cfg(text):
    return config_from_text(text, "ksmbd", False, hostname="router", mem_total_kb=1 << 20)


# -- parsing and matching ----------------------------------------------------------------

@pytest.mark.parametrize("entry,inside,outside", [
    ("192.168.1.5", ["192.168.1.5"], ["192.168.1.50", "192.168.1.4"]),
    ("192.168.1.", ["192.168.1.0", "192.168.1.255"], ["192.168.2.1", "192.168.10.1"]),
    ("150.203.", ["150.203.0.1", "150.203.255.9"], ["150.204.0.1"]),
    ("10.", ["10.255.0.1"], ["11.0.0.1"]),
    ("10.0.0.0/8", ["10.1.2.3"], ["11.0.0.0"]),
    ("10.1.2.3/8", ["10.200.0.1"], ["9.255.255.255"]),  # host bits are ignored
    ("192.168.1.0/255.255.255.0", ["192.168.1.77"], ["192.168.0.77"]),
    ("192.168.4.0/255.255.252.0", ["192.168.7.1"], ["192.168.8.1"]),
    ("fd00::/8", ["fd12:3456::1"], ["fe80::1", "2001:db8::1"]),
    ("[fd00::]/8", ["fdff::1"], ["fc00::1"]),
    ("2001:db8::1", ["2001:db8::1"], ["2001:db8::2"]),
    ("[2001:db8::1]", ["2001:db8::1"], ["2001:db8::2"]),
    ("ALL", ["1.2.3.4", "::1", "fe80::1"], []),
    ("all", ["8.8.8.8"], []),
    ("0.0.0.0/0", ["8.8.8.8"], ["2001:db8::1"]),  # an IPv4 rule says nothing about IPv6
])
def test_entry_forms(entry, inside, outside):
    for address in inside:
        assert matches(entry, address), (entry, address)
    for address in outside:
        assert not matches(entry, address), (entry, address)


def test_ipv4_mapped_peers_match_ipv4_rules_and_mapped_rules_match_ipv4():
    assert matches("192.168.1.", "::ffff:192.168.1.5")
    assert matches("192.168.1.0/24", "::ffff:192.168.1.5")
    assert not matches("192.168.1.0/24", "::ffff:192.168.2.5")
    assert matches("::ffff:192.168.1.0/120", "192.168.1.9")
    assert matches("::ffff:192.168.1.9", "::ffff:192.168.1.9")
    assert not matches("fd00::/8", "::ffff:192.168.1.5")


def test_lists_split_at_spaces_and_commas_and_keep_what_was_written():
    hosts = parse_hosts(["192.168.1.  10.0.0.0/8,fd00::/8", "all"])
    assert hosts.entries == ("192.168.1.", "10.0.0.0/8", "fd00::/8", "ALL")
    assert str(hosts) == "192.168.1. 10.0.0.0/8 fd00::/8 ALL"
    assert hosts == parse_hosts(str(hosts))
    assert not parse_hosts("") and not parse_hosts([]) and not parse_hosts(" , ")
    assert parse_hosts("10.") and not parse_hosts("10.").matches(ip("::1"))


def test_except():
    hosts = parse_hosts("150.203. EXCEPT 150.203.6.66")
    assert hosts.matches(ip("150.203.6.65")) and not hosts.matches(ip("150.203.6.66"))
    assert not hosts.matches(ip("10.0.0.1"))
    nested = parse_hosts("ALL EXCEPT 10. EXCEPT 10.1.")  # ALL EXCEPT (10. EXCEPT 10.1.)
    assert nested.matches(ip("8.8.8.8")) and not nested.matches(ip("10.2.0.1"))
    assert nested.matches(ip("10.1.0.1"))


@pytest.mark.parametrize("entry,words", [
    ("192.168.1", "prefix ends with a dot"),
    ("192.168.1.*", "instead of '*'"),
    ("nas.lan", "host names are not supported"),
    ("@netgroup", "netgroups are not supported"),
    ("300.1.", "octet above 255"),
    ("10.0.0.0/33", "expected an IP address"),
    ("10.0.0.0/255.0.255.0", "expected an IP address"),  # not a netmask
    ("10.0.0.0/0.255.255.255", "expected an IP address"),  # a host mask
    ("fe80:", "expected an IP address"),
    ("[fd00::1", "expected an IP address"),
    ("EXCEPT 10.0.0.1", "EXCEPT needs entries"),
    ("10. EXCEPT", "EXCEPT needs entries"),
])
def test_bad_entries(entry, words):
    with pytest.raises(HostListError) as info:
        parse_hosts(entry)
    assert words in str(info.value)


def test_every_bad_entry_is_named_with_its_item():
    with pytest.raises(HostListError) as info:
        parse_hosts(["10.0.0.1", "bad1 10.", "192.168.1.2", "bad2"])
    assert [index for index, _ in info.value.problems] == [1, 3]
    assert "'bad1'" in info.value.problems[0][1] and "'bad2'" in info.value.problems[1][1]


def test_peer_address():
    assert peer_address("192.0.2.7:50000") == ip("192.0.2.7")
    assert peer_address("[fd00::1]:445") == ip("fd00::1")
    assert peer_address("[fe80::1%eth0]:445") == ip("fe80::1")
    assert peer_address("::ffff:127.0.0.2") == ip("::ffff:127.0.0.2")
    assert peer_address("fe80::1%br-lan") == ip("fe80::1")
    assert peer_address("10.0.0.1") == ip("10.0.0.1")
    assert peer_address("/run/socket") is None and peer_address("") is None


# -- precedence: deny wins unless allow is more specific ---------------------------------------------------------

NONE = parse_hosts("")


def test_no_lists_admit_everyone():
    assert decide(NONE, NONE, ip("203.0.113.9")) is None


def test_allow_only_admits_only_listed():
    allow = parse_hosts("192.168.1.")
    assert decide(allow, NONE, ip("192.168.1.9")) is None
    assert decide(allow, NONE, ip("192.168.2.9")) == "hosts_allow"
    assert decide(allow, NONE, ip("::ffff:192.168.2.9")) == "hosts_allow"


def test_deny_only_refuses_only_listed():
    deny = parse_hosts("192.168.1.66 fd00::/8")
    assert decide(NONE, deny, ip("192.168.1.66")) == "hosts_deny"
    assert decide(NONE, deny, ip("::ffff:192.168.1.66")) == "hosts_deny"
    assert decide(NONE, deny, ip("fd00::5")) == "hosts_deny"
    assert decide(NONE, deny, ip("192.168.1.67")) is None


def test_both_lists_deny_wins_unless_allow_is_more_specific():
    """Deny wins a conflict (an address in both lists, or denied by a network as long as
    the allowed one); an allow entry more specific than the deny match wins; with an allow
    list, an address in neither list is refused."""
    allow = parse_hosts("192.168.1.0/24")
    deny = parse_hosts("192.168.1.66 10.")
    assert decide(allow, deny, ip("192.168.1.66")) == "hosts_deny"  # in both: deny wins
    assert decide(allow, deny, ip("192.168.1.67")) is None
    assert decide(allow, deny, ip("10.0.0.1")) == "hosts_deny"      # deny only
    assert decide(allow, deny, ip("172.16.0.1")) == "hosts_allow"   # in neither
    same = parse_hosts("192.168.1.")                                # equally specific: deny
    assert decide(allow, same, ip("192.168.1.5")) == "hosts_deny"
    assert decide(parse_hosts("ALL"), parse_hosts("ALL"), ip("192.168.1.5")) == "hosts_deny"
    # an allowed host inside a denied network: the more specific entry decides
    assert decide(parse_hosts("10.1.2.3"), parse_hosts("10.0.0.0/8"), ip("10.1.2.3")) is None
    assert decide(parse_hosts("10.1.2.3"), parse_hosts("10.0.0.0/8"),
                  ip("10.1.2.4")) == "hosts_deny"
    # smb.conf's way to refuse all but some: deny ALL (/0), allow the few
    deny_all = parse_hosts("ALL")
    assert decide(allow, deny_all, ip("172.16.0.1")) == "hosts_deny"
    assert decide(allow, deny_all, ip("192.168.1.5")) is None
    assert decide(parse_hosts("fd00::/8"), deny_all, ip("fd00::7")) is None
    # EXCEPT takes the matching network's length, and never matches what it excepts
    except_one = parse_hosts("192.168.1. EXCEPT 192.168.1.66")
    assert decide(except_one, NONE, ip("192.168.1.66")) == "hosts_allow"
    assert decide(except_one, deny_all, ip("192.168.1.65")) is None
    assert decide(except_one, deny_all, ip("192.168.1.66")) == "hosts_deny"


def test_best_match_is_the_longest_network():
    hosts = parse_hosts("ALL 10. 10.1.0.0/16 10.1.2.3 fd00::/8")
    assert hosts.best(ip("10.1.2.3")) == 32
    assert hosts.best(ip("::ffff:10.1.2.3")) == 32
    assert hosts.best(ip("10.1.9.9")) == 16
    assert hosts.best(ip("10.9.9.9")) == 8
    assert hosts.best(ip("8.8.8.8")) == 0
    assert hosts.best(ip("fd00::1")) == 8
    assert parse_hosts("10.").best(ip("11.0.0.1")) is None


@pytest.mark.parametrize("loopback", ["127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"])
def test_loopback_is_admitted_unless_denied(loopback):
    address = ip(loopback)
    assert decide(parse_hosts("192.168.1."), NONE, address) is None
    assert decide(NONE, parse_hosts("10."), address) is None
    assert decide(NONE, parse_hosts(loopback), address) == "hosts_deny"
    assert decide(parse_hosts("192.168.1."), parse_hosts("ALL"), address) == "hosts_deny"
    assert decide(parse_hosts(loopback), parse_hosts("ALL"), address) is None


# -- configuration -----------------------------------------------------------------------

def test_uci_lists_options_and_defaults(tmp_path):
    c = cfg(f"""config globals
\tlist hosts_allow '192.168.1.'
\tlist hosts_allow '10.0.0.0/8 fd00::/8'
\toption hosts_deny '192.168.1.66, 10.9.'

config share
\toption name 'a'
\toption path '{tmp_path}'
\toption hosts_deny '127.0.0.2'

config share
\toption name 'b'
\toption path '{tmp_path}'
""")
    g = c.globals
    assert g.hosts_allow.entries == ("192.168.1.", "10.0.0.0/8", "fd00::/8")
    assert g.hosts_deny.entries == ("192.168.1.66", "10.9.")
    assert c.share("a").hosts_deny.entries == ("127.0.0.2",) and not c.share("a").hosts_allow
    assert not c.share("b").hosts_allow and not c.share("b").hosts_deny
    assert not cfg("").globals.hosts_allow and not cfg("").globals.hosts_deny


def test_config_errors_name_each_bad_entry_at_its_line(tmp_path):
    text = f"""config globals
\tlist hosts_allow '192.168.1.'
\tlist hosts_allow 'nas.lan'
\tlist hosts_allow '10.0.0.0/8'
\tlist hosts_allow '192.168.7'
\toption hosts_deny '10.0.0.0/40'
\toption port 'x'

config share
\toption name 'a'
\toption path '{tmp_path}'
\toption hosts_allow '192.168.1.1 192.168.1.*'
"""
    with pytest.raises(ConfigError) as info:
        cfg(text)
    errors = [(e.line, e.message) for e in info.value.errors]
    assert [line for line, _ in errors] == [3, 5, 6, 7, 12], errors
    assert "option 'hosts_allow' in globals" in errors[0][1] and "'nas.lan'" in errors[0][1]
    assert "host names are not supported" in errors[0][1]
    assert "'192.168.7'" in errors[1][1] and "'10.0.0.0/40'" in errors[2][1]
    assert "option 'hosts_allow' in share 'a'" in errors[4][1] and "'192.168.1.*'" in errors[4][1]


def test_ksmbd_conf_keys_aliases_and_render_round_trip(tmp_path):
    text = f"""[global]
\thosts allow = 192.168.1. 10.0.0.0/255.0.0.0
\tdeny hosts = 192.168.1.66
\tallow hosts = 172.16.
[a]
\tpath = {tmp_path}
\tallow hosts = fd00::/8, 127.0.0.1
\thosts deny = ALL
[b]
\tpath = {tmp_path}
"""
    c = config_from_ksmbd_conf(text, "ksmbd.conf", hostname="r", mem_total_kb=1 << 20)
    assert c.warnings == ()
    assert c.globals.hosts_allow.entries == ("192.168.1.", "10.0.0.0/255.0.0.0")  # first wins
    assert c.globals.hosts_deny.entries == ("192.168.1.66",)
    a, b = c.share("a"), c.share("b")
    assert a.hosts_allow.entries == ("fd00::/8", "127.0.0.1") and a.hosts_deny.entries == ("ALL",)
    assert not b.hosts_allow and not b.hosts_deny  # the [global] lists are not copied
    out = render(c)
    assert "\thosts allow = 192.168.1. 10.0.0.0/255.0.0.0\n" in out
    assert "\thosts deny = 192.168.1.66\n" in out
    assert "[a]\n" in out and "\thosts allow = fd00::/8 127.0.0.1\n" in out
    assert out.split("[b]")[1].count("hosts") == 0
    back = config_from_ksmbd_conf(out, "gen.conf", hostname="r", mem_total_kb=1 << 20)
    assert back.globals == c.globals and back.shares == c.shares
    assert "hosts" not in render(cfg(""))


def test_ksmbd_conf_bad_entry_is_an_error_at_its_line(tmp_path):
    text = f"[global]\n\tworkgroup = W\n\thosts deny = 10.0.0.0/99\n[a]\n\tpath = {tmp_path}\n" \
           "\thosts allow = printer.lan\n"
    with pytest.raises(ConfigError) as info:
        config_from_ksmbd_conf(text, "ksmbd.conf", hostname="r", mem_total_kb=1 << 20)
    assert [(e.filename, e.line) for e in info.value.errors] == [("ksmbd.conf", 3),
                                                                 ("ksmbd.conf", 6)]


# -- refusals: counted, logged once per address per interval -------------------------------

def test_log_throttle_once_per_address_per_interval(caplog):
    caplog.set_level(logging.INFO, "ksmbd.access")
    r = Refusals()
    logged = [r.record("hosts_deny", "192.0.2.1", t, "%s: refused", "192.0.2.1")
              for t in (0.0, 1.0, 30.0, 59.0)]
    assert logged == [True, False, False, False]
    assert r.record("hosts_deny", "192.0.2.2", 59.5, "%s: refused", "192.0.2.2")  # another
    assert r.record("hosts_deny", "192.0.2.1", 60.5, "%s: refused", "192.0.2.1")
    assert r.counts == {"hosts_deny": 6}
    lines = [rec.getMessage() for rec in caplog.records]
    assert lines == ["192.0.2.1: refused", "192.0.2.2: refused",
                     "192.0.2.1: refused (3 more since the last report)"]


def test_log_throttle_bounds_lines_from_many_addresses(caplog):
    caplog.set_level(logging.INFO, "ksmbd.access")
    r = Refusals()
    logged = sum(r.record("hosts_allow", f"10.0.{i // 256}.{i % 256}", 1.0 + i / 1000,
                          "%s", "x") for i in range(1000))
    assert logged == Refusals.MAX_LINES and r.counts == {"hosts_allow": 1000}
    assert "no more refusals logged for 60 s" in caplog.records[-1].getMessage()
    assert r.record("hosts_allow", "10.9.9.9", 70.0, "%s", "x")  # the next interval
    assert len(r._last) <= Refusals.MAX_TRACKED


def state_with(text, tmp_path):
    st = ServerState(cfg(text.format(path=tmp_path)), PasswordDb())
    clock = [100.0]
    st.now = lambda: clock[0]
    return st, clock


def test_admit_connection_counts_and_ubus_status_shows_them(tmp_path, caplog):
    caplog.set_level(logging.INFO, "ksmbd.access")
    st, clock = state_with("config globals\n\tlist hosts_deny '127.0.0.2'\n", tmp_path)
    assert host_access.admit_connection(st, "127.0.0.1")
    assert host_access.admit_connection(st, "192.168.1.20")
    assert not host_access.admit_connection(st, "127.0.0.2")
    assert not host_access.admit_connection(st, "::ffff:127.0.0.2")  # same peer, dual stack
    clock[0] += 61
    assert not host_access.admit_connection(st, "127.0.0.2")
    assert st.refusals.counts == {"hosts_deny": 3}
    assert [r.getMessage() for r in caplog.records] == [
        "127.0.0.2: connection refused by hosts deny",
        "127.0.0.2: connection refused by hosts deny (1 more since the last report)"]
    status, reply = KsmbdObject(st).call("status", {})
    assert status == 0 and reply["refused"]["hosts_deny"] == 3

    allow, _ = state_with("config globals\n\tlist hosts_allow '192.168.1.'\n", tmp_path)
    assert host_access.admit_connection(allow, "192.168.1.20")
    assert host_access.admit_connection(allow, "127.0.0.1")  # loopback: unless denied
    assert not host_access.admit_connection(allow, "192.168.2.20")
    assert not host_access.admit_connection(allow, "fd00::1")
    assert allow.refusals.counts == {"hosts_allow": 2}
    assert KsmbdObject(allow).call("status", {})[1]["refused"]["hosts_allow"] == 2
    none, _ = state_with("", tmp_path)
    refused = KsmbdObject(none).call("status", {})[1]["refused"]
    assert not any(refused.get(rule) for rule in ("hosts_allow", "hosts_deny"))


def test_tree_refusal_checks_global_then_share_lists(tmp_path):
    st, _ = state_with("""config globals
\toption hosts_deny '10.'

config share
\toption name 'private'
\toption path '{path}'
\toption hosts_deny '127.0.0.2'

config share
\toption name 'lan'
\toption path '{path}'
\toption hosts_allow '192.168.1.'
""", tmp_path)
    private, lan = st.config.share("private"), st.config.share("lan")
    assert host_access.tree_refusal(st, private, "127.0.0.1:5000") is None
    assert host_access.tree_refusal(st, private, "127.0.0.2:5000") == "share_hosts_deny"
    assert host_access.tree_refusal(st, lan, "127.0.0.2:5000") is None  # loopback rule
    assert host_access.tree_refusal(st, lan, "192.168.2.1:5000") == "share_hosts_allow"
    assert host_access.tree_refusal(st, lan, "10.0.0.1:5000") == "hosts_deny"  # global first
    assert host_access.tree_refusal(st, None, "10.0.0.1:5000") == "hosts_deny"  # IPC$ too
    assert host_access.tree_refusal(st, None, "127.0.0.2:5000") is None
    assert st.refusals.counts == {"share_hosts_deny": 1, "share_hosts_allow": 1,
                                  "hosts_deny": 2}

"""``hosts allow`` / ``hosts deny`` (smb.conf(5)): which client addresses may connect at all
(the ``globals`` lists, checked when a connection is accepted and again at each TREE_CONNECT,
so a reload applies to new tree connects) and which may use a share (a share's own lists,
checked at TREE_CONNECT).

Entries, separated by spaces or commas (UCI lists, or one option), as smb.conf documents them:

=========================  ==============================================================
``192.168.1.5``, ``::1``   one address (IPv6 also in brackets, ``[fd00::1]``)
``192.168.1.``             a prefix of 1 to 3 whole octets and a dot (here 192.168.1.0/24)
``10.0.0.0/8``             a network, CIDR (IPv4 and IPv6: ``fd00::/8``, ``[fd00::]/8``)
``10.0.0.0/255.0.0.0``     a network/netmask pair
``ALL``                    every address
``A EXCEPT B``             what matches A unless it matches B (B may hold EXCEPT again)
=========================  ==============================================================

Host and netgroup names are not supported (no name lookups here): they are config errors,
like any entry that does not parse.  Rules written for IPv4 also match IPv4-mapped IPv6
peers (``::ffff:192.168.1.5``, what a dual-stack listener reports), and ``::ffff:a.b.c.d``
rules match the IPv4 address.

Which list wins: **deny wins**, unless an allow entry is more specific.  Each list's
best match is its longest matching network (``ALL`` is /0, ``192.168.1.`` is /24, an address
/32 or /128; for ``A EXCEPT B`` the matching network of A).  So, for one pair of lists (the
globals, or a share's own):

* neither list set: admitted;
* ``hosts deny`` matches and ``hosts allow`` has no match at least as specific: refused
  (an address listed in both, or denied by a network as long as the allowed one, is refused:
  ``hosts allow = 192.168.1.0/24`` with ``hosts deny = 192.168.1.66`` keeps .66 out);
* else, ``hosts allow`` set and not matching: refused (with an allow list, only what it lists
  gets in, whatever the deny list holds);
* else admitted.  smb.conf's idiom to refuse all but some still works: ``hosts deny = ALL``
  (/0) loses to any allow entry (``hosts allow = 192.168.1.``, /24).
* loopback (127.0.0.0/8, ::1) is admitted when only ``hosts allow`` would refuse it: it is
  refused only when ``hosts deny`` matches it (``ALL`` does) as above.

Samba differs in two corners (its code lets the allow list win every conflict, and with
both lists set admits an address in neither); the issue that specified this asked for deny
to win, and an admin who names a host in ``hosts deny`` means it.

A share is used only when both pairs admit the client: a global ``hosts deny`` is not undone
by a share's ``hosts allow`` (smb.conf: the [global] lists apply "regardless of whether the
individual service has a different setting").  Everything is parsed once, when the
configuration is loaded; matching is integer masks over a few networks.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["HostList", "HostListError", "EMPTY", "parse_hosts", "decide", "peer_address",
           "shown", "Refusals", "admit_connection", "tree_refusal"]

log = logging.getLogger("ksmbd.access")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_PREFIX = re.compile(r"(?:\d{1,3}\.){1,3}")  # "192.168.1.": whole octets and a final dot
_IPV4_ALL = (1 << 32) - 1
_EXPECTED = ("expected an IP address, a prefix such as 192.168.1., a network such as "
             "10.0.0.0/8, fd00::/8 or 192.168.1.0/255.255.255.0, ALL, or EXCEPT")


class HostListError(ValueError):
    """Entries that do not parse: ``problems`` is (index of the item, message) per entry,
    the index counting the items as given (a UCI list item may hold several entries)."""

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        super().__init__("; ".join(message for _, message in problems))
        self.problems = tuple(problems)


@dataclass(frozen=True, slots=True)
class _Pattern:
    """Networks as (version, network as int, mask as int); ``exclude``: the EXCEPT part."""

    networks: tuple[tuple[int, int, int], ...]
    exclude: _Pattern | None = None

    def matches(self, version: int, value: int) -> bool:
        return self.best(version, value) is not None

    def best(self, version: int, value: int) -> int | None:
        """The prefix length of the longest network that matches (None: no match)."""
        longest = None
        for net_version, net, mask in self.networks:
            if net_version == version and value & mask == net:
                length = mask.bit_count()
                if longest is None or length > longest:
                    longest = length
        if longest is not None and self.exclude is not None \
                and self.exclude.matches(version, value):
            return None
        return longest


_NOTHING = _Pattern(())


@dataclass(frozen=True, slots=True)
class HostList:
    """One ``hosts allow`` or ``hosts deny`` value: ``entries`` as written (what the
    generated ksmbd.conf and the page show), ``pattern`` compiled from them.  False when
    empty (no restriction)."""

    entries: tuple[str, ...] = ()
    pattern: _Pattern = field(default=_NOTHING, compare=False, repr=False)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def __str__(self) -> str:
        return " ".join(self.entries)

    def matches(self, address: IPAddress) -> bool:
        return self.best(address) is not None

    def best(self, address: IPAddress) -> int | None:
        """The prefix length of this list's most specific match, None when none matches."""
        version, value = _key(address)
        return self.pattern.best(version, value)


def _key(address: IPAddress) -> tuple[int, int]:
    """(4, int) for IPv4 and IPv4-mapped IPv6 addresses, else (6, int)."""
    if address.version == 6 and address.ipv4_mapped is not None:
        return 4, int(address.ipv4_mapped)
    return address.version, int(address)


def _network(word: str) -> tuple[int, int, int]:
    """One entry (no keyword) as (version, network, mask); ValueError with the reason."""
    if _PREFIX.fullmatch(word):
        octets = [int(part) for part in word[:-1].split(".")]
        if any(octet > 255 for octet in octets):
            raise ValueError(f"bad host entry {word!r}: an octet above 255")
        bits = 8 * len(octets)
        value = int.from_bytes(bytes(octets + [0] * (4 - len(octets))), "big")
        return 4, value, _IPV4_ALL ^ ((1 << (32 - bits)) - 1)
    text = word
    if text.startswith("["):  # hosts_access(5)'s bracketed IPv6: [fd00::]/8, [fd00::1]
        end = text.find("]")
        if end < 0 or (end + 1 < len(text) and text[end + 1] != "/"):
            raise ValueError(f"bad host entry {word!r}: {_EXPECTED}")
        text = text[1:end] + text[end + 1:]
    try:
        net = ipaddress.ip_network(text, strict=False)
        mask = text.partition("/")[2]
        if "." in mask and int(ipaddress.IPv4Address(mask)) != int(net.netmask):
            raise ValueError  # a host mask (0.0.0.255), which Python would take
    except ValueError:
        raise ValueError(f"bad host entry {word!r}: {_hint(word)}") from None
    mapped = net.network_address.ipv4_mapped if net.version == 6 else None
    if mapped is not None and net.prefixlen >= 96:  # ::ffff:192.168.1.0/120
        net = ipaddress.IPv4Network((mapped, net.prefixlen - 96), strict=False)
    return net.version, int(net.network_address), int(net.netmask)


def _hint(word: str) -> str:
    if re.fullmatch(r"(?:\d{1,3}\.){1,3}\d{1,3}", word) and word.count(".") < 3:
        return f"a prefix ends with a dot ({word}.) and an address has four octets"
    if word.startswith("@"):
        return "netgroups are not supported: use an address or network"
    if re.fullmatch(r"[\d.]*\*[\d.*]*", word):
        return f"write a prefix ({word.split('*')[0]}) or a network instead of '*'"
    if re.search(r"[g-zG-Z]", word.split("/")[0]) and ":" not in word:
        return "host names are not supported (no name lookups): use an address or network"
    return _EXPECTED


def parse_hosts(items: str | list[str] | tuple[str, ...]) -> HostList:
    """Parse a UCI value (one string or a list) or a ksmbd.conf value: entries separated by
    spaces, tabs or commas.  Raises HostListError naming every bad entry."""
    if isinstance(items, str):
        items = [items]
    words: list[tuple[int, str]] = [(index, word) for index, item in enumerate(items)
                                    for word in re.split(r"[,\s]+", item) if word]
    problems: list[tuple[int, str]] = []
    groups: list[list[tuple[int, int, int]]] = [[]]  # split at each EXCEPT
    for position, (index, word) in enumerate(words):
        keyword = word.upper()
        if keyword == "EXCEPT":
            if not groups[-1] or position == len(words) - 1:
                problems.append((index, "EXCEPT needs entries before and after it"))
            groups.append([])
        elif keyword == "ALL":
            groups[-1] += [(4, 0, 0), (6, 0, 0)]
        else:
            try:
                groups[-1].append(_network(word))
            except ValueError as exc:
                problems.append((index, str(exc)))
    if problems:
        raise HostListError(problems)
    pattern: _Pattern | None = None
    for group in reversed(groups):  # A EXCEPT B EXCEPT C = A EXCEPT (B EXCEPT C)
        pattern = _Pattern(tuple(group), pattern)
    entries = tuple(word.upper() if word.upper() in ("ALL", "EXCEPT") else word
                    for _, word in words)
    return HostList(entries, pattern or _NOTHING)


EMPTY = HostList()


def decide(allow: HostList, deny: HostList, address: IPAddress) -> str | None:
    """None when one pair of lists admits ``address``, else the rule that refuses it:
    ``"hosts_deny"`` (a deny entry matches, no allow entry is more specific) or
    ``"hosts_allow"`` (an allow list that does not match).  See the module docstring."""
    allowed = allow.best(address) if allow else None
    denied = deny.best(address) if deny else None
    if denied is not None and (allowed is None or denied >= allowed):
        return "hosts_deny"
    if allow and allowed is None and not address.is_loopback and not _mapped_loopback(address):
        return "hosts_allow"
    return None


def _mapped_loopback(address: IPAddress) -> bool:
    return address.version == 6 and address.ipv4_mapped is not None \
        and address.ipv4_mapped.is_loopback


def shown(address: IPAddress) -> IPAddress:
    """An IPv4-mapped address as the IPv4 address it is (for logs and throttling)."""
    return (address.ipv4_mapped or address) if address.version == 6 else address


def peer_address(peer: str) -> IPAddress | None:
    """The address of a socket address or of a connection's ``peer`` text (``1.2.3.4:445``,
    ``[fd00::1]:445``, a bare address); a scope (``%eth0``) is dropped.  None if unparsable."""
    text = peer
    if text.startswith("["):
        text = text[1:text.find("]")] if "]" in text else text[1:]
    elif text.count(":") == 1:
        text = text.rsplit(":", 1)[0]
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


class Refusals:
    """Refusals by rule (``counts``, shown by ubus ``status`` as ``refused``) and a log
    throttle: one line per address and rule per ``INTERVAL`` seconds (saying how many were
    not logged since), and at most ``MAX_LINES`` such lines per interval in all, so a scan
    from many addresses cannot flood the log either."""

    INTERVAL = 60.0
    MAX_LINES = 64
    MAX_TRACKED = 4096

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._last: dict[tuple[str, str], tuple[float, int]] = {}  # key -> (logged at, since)
        self._window = (-1e18, 0)  # (start, lines logged in it)

    def record(self, rule: str, key: str, now: float, message: str, *args: Any) -> bool:
        """Count a refusal by ``rule``; log ``message % args`` unless ``key`` (an address,
        or an address and share) was logged less than INTERVAL ago.  True if logged."""
        self.counts[rule] = self.counts.get(rule, 0) + 1
        slot = (rule, key)
        last = self._last.get(slot)
        if last is not None and now - last[0] < self.INTERVAL:
            self._last[slot] = (last[0], last[1] + 1)
            return False
        start, lines = self._window
        if now - start >= self.INTERVAL:
            start, lines = now, 0
            if len(self._last) >= self.MAX_TRACKED:
                self._last = {k: v for k, v in self._last.items()
                              if now - v[0] < self.INTERVAL}
        if lines >= self.MAX_LINES or len(self._last) >= self.MAX_TRACKED:
            self._window = (start, lines)
            return False  # counted, not logged: the ubus counters still show it
        self._window = (start, lines + 1)
        self._last[slot] = (now, 0)
        if last is not None and last[1]:
            message += " (%d more since the last report)"
            args += (last[1],)
        if lines + 1 == self.MAX_LINES:
            message += "; no more refusals logged for %d s"
            args += (int(self.INTERVAL),)
        log.warning(message, *args)
        return True


def admit_connection(state: Any, host: str) -> bool:
    """At accept: whether the global lists admit the peer ``host`` (the address part of the
    socket address).  A refusal is counted and logged (throttled); the caller closes."""
    g = state.config.globals
    if not (g.hosts_allow or g.hosts_deny):
        return True
    address = peer_address(host)
    if address is None:
        return True  # not an IP socket: the lists say nothing about it
    rule = decide(g.hosts_allow, g.hosts_deny, address)
    if rule is None:
        return True
    who = shown(address)
    state.refusals.record(rule, str(who), state.now(),
                          "%s: connection refused by %s", who, rule.replace("_", " "))
    return False


def tree_refusal(state: Any, share: Any, peer: str) -> str | None:
    """At TREE_CONNECT: None if the global lists and the share's own (``share`` None: IPC$)
    admit ``peer`` (a connection's peer text), else the refusing rule, counted and logged
    (``share_hosts_deny`` etc. for a share's own lists)."""
    g = state.config.globals
    own = share is not None and (share.hosts_allow or share.hosts_deny)
    if not (own or g.hosts_allow or g.hosts_deny):
        return None
    address = peer_address(peer)
    if address is None:
        return None
    rule = decide(g.hosts_allow, g.hosts_deny, address)
    if rule is None and own:
        rule = decide(share.hosts_allow, share.hosts_deny, address)
        rule = rule and "share_" + rule
    if rule is not None:
        name = "IPC$" if share is None else share.name
        who = shown(address)
        state.refusals.record(rule, f"{who} {name}", state.now(),
                              "%s: tree connect to %r refused by %s", who, name,
                              rule.replace("share_", "the share's ").replace("_", " "))
    return rule

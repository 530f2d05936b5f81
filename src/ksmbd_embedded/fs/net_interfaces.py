"""The server's network interfaces for FSCTL_QUERY_NETWORK_INTERFACE_INFO
(MS-SMB2 2.2.32.5, 2.2.32.5.1, 3.3.5.15.11).

Addresses come from libc getifaddrs(3) through ctypes (Python has no binding; struct ifaddrs
has the same layout in glibc and musl). Listed: interfaces that are up and not loopback, with
an IfIndex (never 0, 3.3.5.15.11), IPv4 and IPv6 addresses except IPv6 link-local ones (a
client could not use them without a scope), and only addresses the server listens on (all of
a family when it listens on the wildcard 0.0.0.0 / ::). LinkSpeed is /sys/class/net/NAME/speed
(Mbit/s) in bit/s, 0 where the driver does not know it; Capability is 0: no RSS, no RDMA.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass

IFF_UP = 0x1
IFF_LOOPBACK = 0x8

RSS_CAPABLE = 0x00000001
RDMA_CAPABLE = 0x00000002

# 2.2.32.5 NETWORK_INTERFACE_INFO: Next, IfIndex, Capability, Reserved, LinkSpeed,
# SockAddr_Storage (128)
_ENTRY = struct.Struct("<IIIIQ128s")
ENTRY_SIZE = _ENTRY.size  # 152


@dataclass(frozen=True)
class Interface:
    name: str
    index: int
    family: int
    address: bytes  # 4 or 16 bytes, network order
    speed: int  # bit/s, 0 when unknown


def list_addresses() -> list[tuple[str, int, int, bytes]]:
    """(interface name, flags, family, packed address) of every IPv4/IPv6 address."""
    import ctypes

    class Sockaddr(ctypes.Structure):
        _fields_ = [("family", ctypes.c_ushort), ("data", ctypes.c_ubyte * 26)]

    class Ifaddrs(ctypes.Structure):
        pass

    Ifaddrs._fields_ = [
        ("next", ctypes.POINTER(Ifaddrs)), ("name", ctypes.c_char_p),
        ("flags", ctypes.c_uint), ("addr", ctypes.POINTER(Sockaddr)),
        ("netmask", ctypes.c_void_p), ("ifu", ctypes.c_void_p), ("data", ctypes.c_void_p),
    ]
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        getifaddrs, freeifaddrs = libc.getifaddrs, libc.freeifaddrs
    except (OSError, AttributeError):
        return []
    head = ctypes.POINTER(Ifaddrs)()
    if getifaddrs(ctypes.byref(head)) != 0:
        return []
    out = []
    try:
        node = head
        while node:
            ifa = node.contents
            if ifa.addr:
                family = ifa.addr.contents.family
                raw = bytes(ifa.addr.contents.data)
                if family == socket.AF_INET:
                    out.append((ifa.name.decode(errors="replace"), ifa.flags, family,
                                raw[2:6]))  # sin_port, sin_addr
                elif family == socket.AF_INET6:
                    # sockaddr_in6 is 28 bytes: port, flowinfo, then the 16-byte address
                    full = ctypes.string_at(ctypes.addressof(ifa.addr.contents), 28)
                    out.append((ifa.name.decode(errors="replace"), ifa.flags, family,
                                full[8:24]))
            node = ifa.next
    finally:
        freeifaddrs(head)
    return out


def link_speed(name: str, sys_net: str = "/sys/class/net") -> int:
    """Link speed in bit/s from sysfs (Mbit/s there), 0 when unknown."""
    try:
        with open(os.path.join(sys_net, name, "speed"), encoding="ascii") as f:
            mbps = int(f.read().strip())
    except (OSError, ValueError):
        return 0
    return mbps * 1_000_000 if mbps > 0 else 0


def served_interfaces(listen: tuple[str, ...], addresses=None, speed=link_speed,
                      index=socket.if_nametoindex) -> list[Interface]:
    """The interfaces and addresses the server can be reached on (see the module docstring).
    `addresses`, `speed` and `index` replace the system's (tests)."""
    wanted4 = "0.0.0.0" in listen
    wanted6 = "::" in listen
    exact = set()
    for addr in listen:
        for family in (socket.AF_INET, socket.AF_INET6):
            try:
                exact.add((family, socket.inet_pton(family, addr)))
            except OSError:
                pass
    result = []
    for name, flags, family, packed in (list_addresses() if addresses is None else addresses):
        if not flags & IFF_UP or flags & IFF_LOOPBACK:
            continue
        if family == socket.AF_INET6 and packed[:2] == b"\xfe\x80":
            continue  # link-local
        if not ((family == socket.AF_INET and wanted4) or (family == socket.AF_INET6 and wanted6)
                or (family, packed) in exact):
            continue
        try:
            ifindex = index(name)
        except OSError:
            continue
        if ifindex == 0:
            continue
        result.append(Interface(name, ifindex, family, packed, speed(name)))
    return result


def encode(interfaces: list[Interface]) -> bytes:
    """NETWORK_INTERFACE_INFO entries, chained by Next (0 in the last)."""
    out = bytearray()
    for i, iface in enumerate(interfaces):
        if iface.family == socket.AF_INET:
            # 2.2.32.5.1.1 SOCKADDR_IN: Port, IPv4Address, Reserved (8)
            sockaddr = struct.pack("<HH4s8x", socket.AF_INET, 0, iface.address)
        else:
            # 2.2.32.5.1.2 SOCKADDR_IN6: Port, FlowInfo, IPv6Address, ScopeId
            sockaddr = struct.pack("<HHI16sI", 23, 0, 0, iface.address, 0)
        last = i == len(interfaces) - 1
        out += _ENTRY.pack(0 if last else ENTRY_SIZE, iface.index, 0, 0, iface.speed, sockaddr)
    return bytes(out)

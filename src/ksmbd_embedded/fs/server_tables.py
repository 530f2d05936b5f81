"""Per-server tables of the fs modules (delete-pending keys, deferred sizes, byte-range
locks, file ids, stream opens, the resume-key secret).

A `PerServer` keeps one value per server object in an attribute of that object, so a table
lives exactly as long as its server, like a WeakKeyDictionary, at the cost of a dict lookup:
CREATE and CLOSE consult several of these on every call.
"""

from __future__ import annotations

from typing import Any


class PerServer:
    """A mapping server -> value with the part of the dict interface the fs modules use."""

    __slots__ = ("attr",)

    def __init__(self, name: str) -> None:
        self.attr = "_fs_table_" + name

    def get(self, server: Any, default: Any = None) -> Any:
        return server.__dict__.get(self.attr, default)

    def __getitem__(self, server: Any) -> Any:
        return server.__dict__[self.attr]

    def __setitem__(self, server: Any, value: Any) -> None:
        server.__dict__[self.attr] = value

    def setdefault(self, server: Any, value: Any) -> Any:
        return server.__dict__.setdefault(self.attr, value)

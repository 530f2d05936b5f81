"""Reading an OpenWrt package Makefile (feed style) the way the packages need it: simple
``VAR:=value`` assignments, ``define NAME ... endef`` blocks, ``$(VAR)`` references to the
Makefile's own variables, and DEPENDS / CONFLICTS words."""

from __future__ import annotations

import re
from pathlib import Path


def read_makefile(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(simple ``VAR:=value`` assignments, ``define NAME`` blocks) with make's ``$$`` -> ``$``."""
    variables: dict[str, str] = {}
    blocks: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"define\s+(\S+)\s*$", line)
        if m:
            body = []
            i += 1
            while i < len(lines) and lines[i].strip() != "endef":
                body.append(lines[i].replace("$$", "$"))
                i += 1
            blocks[m.group(1)] = "\n".join(body)
        else:
            m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\s*:?=\s*(.*)$", line)
            if m:
                variables[m.group(1)] = m.group(2).strip()
        i += 1
    return variables, blocks


def expand(value: str, variables: dict[str, str], _seen: frozenset[str] = frozenset()) -> str:
    """``$(VAR)`` references to the Makefile's own simple variables (others left as they are)."""
    def ref(m: re.Match) -> str:
        name = m.group(1)
        if name not in variables or name in _seen:
            return m.group(0)
        return expand(variables[name], variables, _seen | {name})
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", ref, value)


def block_fields(block: str) -> dict[str, str]:
    """The ``FIELD:=value`` / ``FIELD+=value`` lines of a ``define Package/NAME`` block."""
    fields: dict[str, str] = {}
    for line in block.splitlines():
        m = re.match(r"\s*([A-Z_]+)\s*(\+?):=\s*(.*)$", line)
        if m:
            fields[m.group(1)] = (fields.get(m.group(1), "") + " " if m.group(2) else "") \
                + m.group(3).strip()
    return fields


def package_list(value: str) -> list[str]:
    """OpenWrt DEPENDS/CONFLICTS words -> package names (``+pkg`` kept, ``@SYMBOL`` and
    conditional ``+SYMBOL:pkg`` dropped)."""
    out = []
    for word in value.split():
        if word.startswith("@") or ":" in word or "$(" in word:
            continue
        out.append(word.lstrip("+"))
    return out

"""8.3 alternate names (MS-FSCC 2.1.5.2.1 "8.3 filename"), for FileAlternateNameInformation.

A name that is already a valid 8.3 name is its own short name (upper-cased). Any other name gets
a generated one, like Samba's hashed mangling: up to four legal characters of the base, `~`, three
characters of a hash of the whole long name, and up to three characters of the extension. The
result is stable for a name (nothing is stored), so it is the same on every query.
"""

import zlib

_LEGAL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789$%'-_@~`!(){}^#&")
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _legal(part: str) -> str:
    return "".join(c for c in part.upper() if c in _LEGAL)


def is_8dot3(name: str) -> bool:
    """True if `name` already fits 8.3: base 1-8 legal chars, optional 1-3 char extension."""
    if name in (".", ".."):
        return True
    base, dot, ext = name.partition(".")
    if "." in ext or not base or len(base) > 8 or len(ext) > 3 or (dot and not ext):
        return False
    return all(c.upper() in _LEGAL for c in base + ext)


def short_name(name: str) -> str:
    """The 8.3 alternate name of a long name."""
    if is_8dot3(name):
        return name.upper()
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    base = _legal(stem.lstrip("."))[:4] or "_"
    ext = _legal(ext)[:3]
    h = zlib.crc32(name.upper().encode("utf-16-le", "surrogatepass"))
    tag = "".join(_BASE36[(h // 36 ** i) % 36] for i in range(3))
    return f"{base}~{tag}" + (f".{ext}" if ext else "")

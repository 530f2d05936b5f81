"""The ksmbd-tools user database `/etc/ksmbd/ksmbdpwd.db` (ksmbdpwd.db(5)).

One user per line, ``name:base64(NT hash)``, where the NT hash is MD4 of the UTF-16LE
password (MS-NLMP 3.3.1 NTOWFv1) and the Base64 is standard and padded (24 characters).
Names are UTF-8, 1 to 47 bytes, without ``:`` or control characters (bytes below 0x20 and
0x7F); passwords are at most 128 UTF-8 bytes.  These are ksmbd-tools' rules (ksmbd.adduser
--help: "USER must be UTF-8 and [1, 48) bytes", "cannot contain colon"; its name check also
refuses unprintable bytes).  Spaces and commas are allowed, as there, but such a name cannot be
listed in a share's ``users``/``write_list``/``read_list`` (see user_name_warning).  Names are
looked up case-insensitively.

New passwords come from read_new_password: two prompts at a terminal, else the lines piped in.
"""

from __future__ import annotations

import base64
import binascii
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from .atomic_file import replace_file
from .md4 import md4

__all__ = ["DEFAULT_PATH", "PasswordDb", "nt_hash", "validate_user_name",
           "validate_password", "user_name_warning", "read_new_password"]

DEFAULT_PATH = "/etc/ksmbd/ksmbdpwd.db"
MAX_NAME_BYTES = 47
MAX_PASSWORD_BYTES = 128


def nt_hash(password: str) -> bytes:
    """NTOWFv1: MD4 of the UTF-16LE encoding of the password."""
    return md4(password.encode("utf-16-le"))


def validate_user_name(name: str) -> None:
    """Raise ValueError unless ``name`` is a valid ksmbdpwd.db user name."""
    size = len(name.encode("utf-8", "surrogatepass"))
    if not 1 <= size <= MAX_NAME_BYTES:
        raise ValueError(f"user name must be 1 to {MAX_NAME_BYTES} bytes of UTF-8")
    if ":" in name:
        raise ValueError("user name must not contain ':'")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise ValueError("user name must not contain control characters")


def validate_password(password: str) -> None:
    """Raise ValueError if the password is longer than ksmbd-tools accepts."""
    if len(password.encode("utf-8", "surrogatepass")) > MAX_PASSWORD_BYTES:
        raise ValueError(f"password must be at most {MAX_PASSWORD_BYTES} bytes of UTF-8")


def user_name_warning(name: str) -> str | None:
    """Why a valid name may still surprise: share user lists are split at spaces and commas
    (ksmbd's ``valid users`` too), so such a user can log on but cannot be listed."""
    if any(c in name for c in " ,"):
        return (f"user name {name!r} contains a space or comma: the user can log on, but "
                "cannot be named in a share's users, write_list or read_list (their "
                "entries are separated by spaces and commas)")
    return None


def _is_terminal(stream: TextIO) -> bool:
    """True for a terminal, and for a stdin with no file descriptor (nothing to read:
    prompting through getpass, which uses /dev/tty, is all that is left)."""
    try:
        return os.isatty(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return True


def read_new_password(prompts: tuple[str, str], ask: Callable[[str], str],
                      stdin: TextIO | None = None) -> str:
    """A new password, raising ValueError with a one-line reason when there is none.

    At a terminal: ``ask`` (getpass.getpass) prompts twice and both must match; Ctrl-D or
    Ctrl-C at a prompt is "no password given".  From a pipe or file: the first line is the
    password; a second line, if one comes before the end of the input, must repeat it (the
    confirmation that ksmbd.adduser's and smbpasswd's prompts read from a pipe), so both
    ``echo PW | ...`` and ``printf 'PW\\nPW\\n' | ...`` work; later lines are ignored."""
    stdin = sys.stdin if stdin is None else stdin
    if stdin is None:
        raise ValueError("no password given (no terminal and no standard input)")
    if not _is_terminal(stdin):
        first = stdin.readline()
        if not first:
            raise ValueError("no password given: standard input is empty")
        password = first.rstrip("\r\n")
        second = stdin.readline()
        if second and second.rstrip("\r\n") != password:
            raise ValueError("passwords do not match (lines 1 and 2 of the input differ)")
        return password
    try:
        first = ask(prompts[0])
        second = ask(prompts[1])
    except (EOFError, KeyboardInterrupt):
        print(file=sys.stderr)  # the prompt's line is still open
        raise ValueError("no password given") from None
    if first != second:
        raise ValueError("passwords do not match")
    return first


class PasswordDb:
    """The users of one ksmbdpwd.db, in file order; ``warnings`` lists skipped lines."""

    __slots__ = ("_users", "warnings")

    def __init__(self) -> None:
        self._users: dict[str, tuple[str, bytes]] = {}  # casefolded name -> (name, hash)
        self.warnings: list[str] = []

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> PasswordDb:
        """Read ``path``; a missing file is an empty database."""
        db = cls()
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            return db
        for number, raw in enumerate(data.split(b"\n"), 1):
            line = raw.rstrip(b"\r")
            if not line.strip():
                continue
            problem = db._load_line(line)
            if problem:
                db.warnings.append(f"{path}:{number}: {problem}; line skipped")
        return db

    def _load_line(self, line: bytes) -> str | None:
        """Add one ``name:hash`` line; return why it was refused, or None."""
        name_b, sep, hash_b = line.rpartition(b":")
        if not sep:
            return "no ':' separator"
        try:
            name = name_b.decode("utf-8")
            validate_user_name(name)
        except (UnicodeDecodeError, ValueError) as exc:
            return f"bad user name ({exc})"
        try:
            digest = base64.b64decode(hash_b.strip(), validate=True)
        except (binascii.Error, ValueError):
            return f"bad base64 password hash for user {name!r}"
        if len(digest) != 16:
            return f"password hash for user {name!r} is not 16 bytes"
        if name.casefold() in self._users:
            return f"duplicate user {name!r}"
        self._users[name.casefold()] = (name, digest)
        return None

    def __len__(self) -> int:
        return len(self._users)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.casefold() in self._users

    def get(self, name: str) -> bytes | None:
        """The NT hash of ``name`` (any case), or None."""
        entry = self._users.get(name.casefold())
        return entry[1] if entry else None

    def names(self) -> list[str]:
        """User names as stored, in file order."""
        return [name for name, _ in self._users.values()]

    def set(self, name: str, hash_: bytes) -> None:
        """Add or replace a user (a replaced user takes the new spelling)."""
        validate_user_name(name)
        if len(hash_) != 16:
            raise ValueError("NT hash must be 16 bytes")
        self._users[name.casefold()] = (name, bytes(hash_))

    def delete(self, name: str) -> bool:
        """Remove ``name``; return False if it was not there."""
        return self._users.pop(name.casefold(), None) is not None

    def dumps(self) -> str:
        """The file text."""
        return "".join(f"{name}:{base64.b64encode(digest).decode()}\n"
                       for name, digest in self._users.values())

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically (temp file in the same directory, fsync, rename), mode 0600."""
        replace_file(path, self.dumps().encode("utf-8"), 0o600, durable=True)

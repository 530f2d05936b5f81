"""A READ payload that stays on disk until the socket takes it (zero copy with os.sendfile).

A handler returns `FileRange(fd, offset, length)` as the last part of its response body. The
connection sends it with `os.sendfile` when the response goes out alone, unsigned and
unencrypted; otherwise (signing, encryption, compounds) it is read into memory with `read()`.
For sendfile the range is `pin()`-ned: it holds its own duplicate of the descriptor, so a CLOSE
handled before the socket drains cannot pull the file away; `release()` closes it.
"""

import os


class FileRange:
    __slots__ = ("fd", "offset", "length", "pinned")

    def __init__(self, fd: int, offset: int, length: int) -> None:
        self.fd = fd
        self.offset = offset
        self.length = length
        self.pinned = False

    def __len__(self) -> int:
        return self.length

    def read(self) -> bytes:
        """The bytes now, exactly `length` of them (zeros stand in if the file shrank since)."""
        parts = []
        got = 0
        while got < self.length:
            chunk = os.pread(self.fd, self.length - got, self.offset + got)
            if not chunk:
                parts.append(bytes(self.length - got))
                break
            parts.append(chunk)
            got += len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def pin(self) -> None:
        if not self.pinned:
            self.fd = os.dup(self.fd)
            self.pinned = True

    def advance(self, n: int) -> None:
        self.offset += n
        self.length -= n

    def release(self) -> None:
        if self.pinned:
            self.pinned = False
            try:
                os.close(self.fd)
            except OSError:
                pass

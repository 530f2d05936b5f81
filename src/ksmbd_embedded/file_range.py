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

    def read_after(self, head: bytes | bytearray) -> bytearray:
        """A new buffer: `head` followed by the range, read by the kernel straight into it
        (no intermediate bytes object); zeros stand in if the file shrank."""
        start = len(head)
        buf = bytearray(start + self.length)
        buf[:start] = head
        view = memoryview(buf)
        got = 0
        try:
            while got < self.length:
                n = os.preadv(self.fd, [view[start + got:]], self.offset + got)
                if n <= 0:
                    break  # the rest stays zero
                got += n
        finally:
            view.release()
        return buf

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

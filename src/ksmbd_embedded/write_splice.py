"""WRITE payloads spliced from the socket to the file (issue 11; handlers/read_write.py
`SpliceWrite`): the WRITE's 112 bytes go through the protocol core, the payload socket →
the loop's one pipe → the file with os.splice, across poll rounds as it arrives.
`SplicingMixin` is a part of `loop.Loop`: its methods use the loop's scratch buffer, pipe,
`_flush` and `_drop`.
"""

from __future__ import annotations

import errno
import fcntl
import os

from . import io_budget
from .fs.errno_status import oserror_to_status
from .handlers.read_write import finish_splice
from .status import STATUS_SUCCESS
from .transport import _Client

SCRATCH_SIZE = io_budget.SCRATCH_SIZE

PIPE_SIZE = 1024 * 1024  # the splice pipe (F_SETPIPE_SZ; the kernel may give less)
_F_SETPIPE_SZ, _F_GETPIPE_SZ = 1031, 1032
_SPLICE = getattr(os, "splice", None)  # Linux, Python 3.10+
_SPLICE_FLAGS = getattr(os, "SPLICE_F_MOVE", 1) | getattr(os, "SPLICE_F_NONBLOCK", 2)


class SplicingMixin:
    """Loop methods for a spliced WRITE payload (`_Client.splice`)."""

    def _splice_pipe(self) -> tuple[int, int] | None:
        """The loop's one pipe for os.splice (empty between steps), made on first use."""
        if self._pipe is None:
            try:
                r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError:
                return None
            try:
                fcntl.fcntl(w, _F_SETPIPE_SZ, PIPE_SIZE)
            except OSError:
                pass  # (over /proc/sys/fs/pipe-max-size: the default size still works)
            try:
                self._pipe_size = fcntl.fcntl(w, _F_GETPIPE_SZ)
            except OSError:
                self._pipe_size = 65536
            self._pipe = (r, w)
        return self._pipe

    def _splice_start(self, client: _Client, sw, data_at: int, have: int) -> None:
        """Run the WRITE's 112 bytes through the protocol core (every check of an ordinary
        WRITE); its answer is held. Accepted, the payload goes to the file: the bytes already
        in the scratch buffer with pwrite, the rest with os.splice as it arrives; refused,
        the payload is read and discarded. Either way the answer goes once all of it came."""
        conn = client.conn
        client.pending = b""
        client.splice = sw
        client.splice_left = sw.length
        held_from = len(conn.outbox)
        try:
            conn.receive(sw.frame)
        finally:
            sw.frame = None  # (handle_write matched it by identity: no later request can)
        sw.response = conn.outbox[held_from:]
        del conn.outbox[held_from:]
        if not conn.outbox:
            self.state.flush_pending.discard(conn)
        if conn.closing:
            client.splice = None
            self._flush(client)
            self._drop(client, conn.close_reason)
            return
        if sw.op is not None:
            try:
                sw.fd = os.dup(sw.op.fd)  # a CLOSE from elsewhere cannot pull it away
            except OSError as exc:
                sw.op = None
                sw.status = oserror_to_status(exc, "WRITE")
        first = have - data_at
        if first:
            self._splice_write(sw, self.scratch_view[data_at:have])
            client.splice_left -= first
        self._splice_more(client)

    def _splice_write(self, sw, data) -> None:
        """pwrite `data` at the payload's next offset (a failed write: its status, and the
        rest of the payload is discarded)."""
        if sw.op is None or sw.status != STATUS_SUCCESS:
            return
        written = 0
        n = len(data)
        try:
            while written < n:
                written += os.pwrite(sw.fd, data[written:], sw.offset + sw.done + written)
        except OSError as exc:
            sw.status = oserror_to_status(exc, "WRITE")
        sw.done += written

    def _splice_more(self, client: _Client) -> None:
        """Move what the socket has of the payload: socket → pipe → file at its offset (or
        into the scratch buffer and away, for a refused or failed WRITE); the answer once
        the last byte is in."""
        sw = client.splice
        conn = client.conn
        sock_fd = client.fileno
        while client.splice_left:
            left = client.splice_left
            try:
                if sw.op is None or sw.status != STATUS_SUCCESS or self._pipe is None:
                    n = client.sock.recv_into(self.scratch_view[:min(left, SCRATCH_SIZE)])
                else:
                    n = _SPLICE(sock_fd, self._pipe[1], min(left, self._pipe_size), None,
                                None, _SPLICE_FLAGS)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._drop(client, f"receive failed: {exc.strerror}")
                return
            if not n:
                self._drop(client, "closed by client")
                return
            client.splice_left = left - n
            if sw.op is not None and sw.status == STATUS_SUCCESS and self._pipe is not None:
                self._splice_drain(sw, self._pipe[0], n)
        client.splice = None
        # (counted when whole, as a frame is: frame_timeout times a trickled payload alike)
        conn.bytes_in += sw.length
        finish_splice(self.state, sw)
        if sw.fd >= 0:
            os.close(sw.fd)
            sw.fd = -1
        conn.outbox += sw.response
        sw.response = []
        self._queue(client)
        self._flush(client)

    def _splice_drain(self, sw, r: int, n: int) -> None:
        """The `n` bytes in the pipe to the file; on a failure (disk full, EIO) the status
        is kept and the pipe emptied (it is the loop's, and must be empty between steps)."""
        while n:
            try:
                m = _SPLICE(r, sw.fd, n, None, sw.offset + sw.done, _SPLICE_FLAGS)
                if m <= 0:
                    raise OSError(errno.EIO, "splice to the file wrote nothing")
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    sw.status = oserror_to_status(exc, "WRITE")
                # EINVAL: a descriptor or file system splice cannot write to (O_APPEND,
                # some FUSE): the bytes through the scratch buffer with pwrite. A failure:
                # the pipe is emptied all the same.
                while n:
                    try:
                        chunk = os.read(r, min(n, SCRATCH_SIZE))
                    except OSError:
                        break
                    if not chunk:
                        break
                    n -= len(chunk)
                    self._splice_write(sw, chunk)
                if n:  # (cannot happen) a pipe not emptied is never used again
                    sw.status = oserror_to_status(OSError(errno.EIO, "pipe"), "WRITE")
                    for fd in self._pipe:
                        os.close(fd)
                    self._pipe = None
                return
            sw.done += m
            n -= m

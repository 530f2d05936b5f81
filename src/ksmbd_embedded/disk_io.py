"""Large WRITEs on a small thread pool, so receiving overlaps writing to disk.

The event loop owns all protocol state; a worker thread only runs `os.pwrite` (and
`fdatasync` for write-through) on a descriptor and a memoryview of the received frame, and
hands back the outcome. While a connection has a write in flight the loop reads nothing more
from it (the kernel keeps receiving into the socket buffer, so the client keeps sending), and
requests already buffered wait: a connection's requests are still processed one after the
other, exactly as without the pool. Other connections go on meanwhile.

This is what Samba's aio pthreadpool does for it; measured here (1 GiB, smbclient put): see
ARCHITECTURE.md and the README's benchmark table.

An Open with a write in flight keeps its descriptor open: a CLOSE, a logoff or a dropped
connection that closes the Open hands the descriptor to the job (`Open.fd_close_pending`),
and it is closed when the write is done — a descriptor number is never reused under a write.
"""

from __future__ import annotations

import collections
import logging
import os
from typing import Any, Callable

log = logging.getLogger("ksmbd.disk_io")

_fdatasync = getattr(os, "fdatasync", os.fsync)

WORKERS = 2  # at most this many writes in flight across all connections, one per connection
OFFLOAD_MIN = 256 * 1024  # smaller writes are cheaper to do right away than to hand over


class WriteJob:
    """One WRITE handed to the pool: where, what, and who finishes it in the loop."""

    __slots__ = ("op", "fd", "data", "offset", "sync", "finish", "conn", "error", "respond")

    def __init__(self, op: Any, fd: int, data: memoryview, offset: int, sync: bool,
                 finish: Callable[[OSError | None], Any]) -> None:
        self.op = op
        self.fd = fd
        self.data = data
        self.offset = offset
        self.sync = sync
        self.finish = finish  # in the loop: (error or None) -> (status, body), may raise
        self.conn: Any = None  # the Connection that answers it (set when it is deferred)
        self.error: OSError | None = None
        self.respond: Any = None  # what the connection needs to build the response later

    def run(self) -> None:
        """In a worker thread: the whole write, continued after short writes."""
        try:
            data, offset, fd = self.data, self.offset, self.fd
            written = 0
            length = len(data)
            while written < length:
                written += os.pwrite(fd, data[written:] if written else data, offset + written)
            if self.sync:
                _fdatasync(fd)
        except OSError as exc:
            self.error = exc


class DiskWorker:
    """The pool and its completion queue; `wake` tells the loop that something finished."""

    def __init__(self, wake: Callable[[], None], workers: int = WORKERS) -> None:
        self._wake = wake
        self._workers = workers
        self._pool: Any = None  # a ThreadPoolExecutor, started on first use
        self._done: collections.deque[WriteJob] = collections.deque()
        self.in_flight = 0

    def submit(self, job: WriteJob) -> None:
        if self._pool is None:
            # imported here: an idle server (or one never sent a large write) does without it
            from concurrent.futures import ThreadPoolExecutor
            self._pool = ThreadPoolExecutor(max_workers=self._workers,
                                            thread_name_prefix="ksmbd-disk")
        job.op.inflight += 1
        self.in_flight += 1
        self._pool.submit(self._run, job)

    def _run(self, job: WriteJob) -> None:
        job.run()
        self._done.append(job)  # deque.append is atomic
        self._wake()

    def completed(self) -> list[WriteJob]:
        """Jobs finished since the last call, with their Open's bookkeeping done (loop side)."""
        out = []
        while True:
            try:
                job = self._done.popleft()
            except IndexError:
                return out
            self.in_flight -= 1
            op = job.op
            op.inflight -= 1
            job.data = None  # the frame buffer may be reused now
            if not op.inflight and op.fd_close_pending >= 0:
                try:
                    os.close(op.fd_close_pending)
                except OSError:
                    pass
                op.fd_close_pending = -1
            out.append(job)

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self.completed()

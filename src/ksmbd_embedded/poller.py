"""The loop's readiness poller: epoll straight, or `selectors` where there is no epoll.

`selectors.EpollSelector.select` wraps every ready descriptor in a key lookup and a tuple
built in Python; at tens of thousands of small requests a second that wrapper costs about a
microsecond per request. The loop needs less: register a descriptor with a tag, change what
it watches, and get (tag, READ/WRITE mask) pairs back.
"""

from __future__ import annotations

import select
import selectors
from typing import Any

READ = selectors.EVENT_READ    # 1
WRITE = selectors.EVENT_WRITE  # 2


def _fd(fileobj: Any) -> int:
    return fileobj if isinstance(fileobj, int) else fileobj.fileno()


class Poller:
    """register/modify/unregister(fileobj, mask, tag) and poll(timeout) -> [(tag, mask)]."""

    def __init__(self) -> None:
        self._tags: dict[int, tuple[Any, int]] = {}  # fd -> (tag, READ/WRITE watched)
        self._epoll = select.epoll() if hasattr(select, "epoll") else None
        self._sel = None if self._epoll is not None else selectors.DefaultSelector()

    @staticmethod
    def _epoll_mask(mask: int) -> int:
        return (select.EPOLLIN if mask & READ else 0) | (select.EPOLLOUT if mask & WRITE else 0)

    def register(self, fileobj: Any, mask: int, tag: Any) -> None:
        self._watch(fileobj, mask, tag, new=True)

    def modify(self, fileobj: Any, mask: int, tag: Any) -> None:
        self._watch(fileobj, mask, tag, new=False)

    def _watch(self, fileobj: Any, mask: int, tag: Any, new: bool) -> None:
        fd = _fd(fileobj)
        if self._epoll is not None:
            (self._epoll.register if new else self._epoll.modify)(fd, self._epoll_mask(mask))
        else:
            (self._sel.register if new else self._sel.modify)(fd, mask, tag)
        self._tags[fd] = (tag, mask)

    def unregister(self, fileobj: Any) -> None:
        """Stop watching; KeyError if it was not watched."""
        fd = _fd(fileobj)
        del self._tags[fd]
        if self._epoll is not None:
            try:
                self._epoll.unregister(fd)
            except OSError:  # already closed: the kernel forgot it with the descriptor
                pass
        else:
            self._sel.unregister(fd)

    def poll(self, timeout: float) -> list[tuple[Any, int]]:
        if self._epoll is None:
            return [(key.data, mask) for key, mask in self._sel.select(timeout)]
        tags = self._tags
        out = []
        for fd, ev in self._epoll.poll(timeout):
            entry = tags.get(fd)
            if entry is None:
                continue  # unregistered by an earlier callback of this round
            mask = 0
            if ev & _IN_ERR_HUP:
                mask = READ
            if ev & _OUT_ERR_HUP:
                mask |= WRITE
            out.append((entry[0], mask & entry[1]))  # an error or hang-up wakes what is watched
        return out

    def close(self) -> None:
        if self._epoll is not None:
            self._epoll.close()
        else:
            self._sel.close()
        self._tags.clear()


if hasattr(select, "epoll"):
    _IN_ERR_HUP = select.EPOLLIN | select.EPOLLERR | select.EPOLLHUP | select.EPOLLRDHUP
    _OUT_ERR_HUP = select.EPOLLOUT | select.EPOLLERR | select.EPOLLHUP

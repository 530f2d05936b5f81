r"""Directory enumeration state of one Open (MS-SMB2 3.3.1.10 Open.EnumerationLocation and
Open.EnumerationSearchPattern; MS-FSA 2.1.5.6.3).

Theory of operation
-------------------
A `DirScan` lives on `Open.dir_state` from the first QUERY_DIRECTORY until CLOSE (which calls
`close_dir_state`) or a restart. It yields (name, FileMeta) pairs: "." (the directory itself),
".." (its parent; the share root's ".." is the root itself), then the directory's entries in
`os.scandir` order. Nothing is read ahead: the scandir iterator stays open between requests and
is advanced one entry at a time, so a 100,000-entry directory costs one entry of memory (plus
the kernel's getdents buffer), never a list of names.

Filtering happens on the name first, before any stat. Skipped: names that cannot be sent as
UTF-16 (bytes from a non-UTF-8 disk, which os.scandir decodes with surrogateescape into lone
surrogates), names a client could never open because CREATE refuses them (control characters,
`< > : " | ? * \\`; see share_paths.check_name), vetoed names, and names the search pattern does
not match. Only then is the entry stat'ed; an entry that vanished (or otherwise cannot be
stat'ed: a dangling symlink, a loop) in between is skipped, and so is a symlink that leads out
of the share (CREATE refuses to follow it, and its target's size and times are not ours to
show). With hide_dot_files, names starting with "." get FILE_ATTRIBUTE_HIDDEN; they are listed.

An entry the caller could not fit into its output buffer goes back with `push_back` and is
the first one returned next time (one entry of pushback is all the caller ever needs).
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any, Callable, Iterator

from . import deferred_size
from .dir_info import compile_pattern
from .dos_attrs import FileMeta, read_meta
from .share_paths import hides_dot_files, is_inside, veto_matcher

if TYPE_CHECKING:
    from ..opens import Open

Entry = tuple[str, FileMeta]

# Where the scan is: the two dot entries, then the directory, then done.
_DOT, _DOTDOT, _ENTRIES, _DONE = range(4)

# Names never listed: lone surrogates (undecodable bytes) and what share_paths.check_name
# refuses in a component, plus the backslash (a separator to the client).
_UNLISTABLE = re.compile(r'[\x00-\x1f<>:"|?*\\\ud800-\udfff]')


class DirScan:
    """One enumeration of a directory Open: pattern, position, and one entry of pushback."""

    __slots__ = ("path", "is_root", "fd", "root", "hide_dot", "pattern", "first", "returned",
                 "_veto", "_match", "_stage", "_it", "_pending", "server", "_dev")

    def __init__(self, path: str, is_root: bool, fd: int, root: str, share: Any, pattern: str,
                 first: bool = True) -> None:
        # `path` may be updated while the scan runs (SET_INFO renaming the directory): entry
        # paths are built from it, never from the path scandir was opened with.
        self.path = path
        self.is_root = is_root  # the share root is its own ".."
        self.fd = fd  # the Open's descriptor, for "." (survives renames of the directory)
        self.root = root  # realpath of the share root: symlinks must stay inside it
        self.hide_dot = hides_dot_files(share)
        self._veto = veto_matcher(share)  # ShareConfig.veto_files compiled, or None
        self.pattern = pattern
        # True for a new search: finding nothing is then STATUS_NO_SUCH_FILE rather than
        # STATUS_NO_MORE_FILES (MS-FSA 2.1.5.6.3).
        self.first = first
        self.returned = 0
        self._match: Callable[[str], bool] = compile_pattern(pattern)
        self._stage = _DOT
        self._it: Iterator[os.DirEntry] | None = None
        self._pending: Entry | None = None
        # The server whose deferred end-of-file sizes (fs/deferred_size.py) the entries report;
        # None when unknown (then sizes are the disk's).
        self.server: Any = None
        self._dev: int | None = None  # st_dev of the directory, looked up when needed
        self._open_iterator()

    @classmethod
    def for_open(cls, op: Open, pattern: str, first: bool = True) -> DirScan:
        """A scan of `op`'s directory (the share root has the name "")."""
        tree = op.tree
        scan = cls(op.path, not op.name, op.fd, tree.root, tree.share, pattern, first)
        scan.server = getattr(getattr(op.session, "connection", None), "server", None)
        return scan

    def restart(self, pattern: str, first: bool) -> None:
        """Start over from "." with `pattern` (MS-SMB2 3.3.5.18 RESTART_SCANS / REOPEN)."""
        self.close()
        self.pattern = pattern
        self._match = compile_pattern(pattern)
        self.first = first
        self.returned = 0
        self._stage = _DOT
        self._pending = None
        self._open_iterator()

    def _open_iterator(self) -> None:
        # Opened now, not at the first entry, so a directory that is gone fails the request
        # up front (OSError for the caller to map) instead of after "." and "..".
        self._it = os.scandir(self.path)

    def close(self) -> None:
        it = self._it
        self._it = None
        self._stage = _DONE
        self._pending = None
        if it is not None:
            it.close()

    def push_back(self, entry: Entry) -> None:
        """Return an entry that did not fit; `next_entry` gives it again first."""
        self._pending = entry

    def next_entry(self) -> Entry | None:
        """The next matching entry, or None at the end of the directory."""
        entry = self._pending
        if entry is not None:
            self._pending = None
            return entry
        match = self._match
        if self._stage == _DOT:
            self._stage = _DOTDOT
            if match("."):
                meta = self._dot_meta(self.fd if self.fd >= 0 else self.path)
                if meta is not None:
                    return ".", meta
        if self._stage == _DOTDOT:
            self._stage = _ENTRIES
            if match(".."):
                path = self.path
                meta = self._dot_meta(path if self.is_root else os.path.dirname(path) or "/")
                if meta is not None:
                    return "..", meta
        it = self._it
        if it is None:
            return None
        veto = self._veto
        hide_dot = self.hide_dot
        unlistable = _UNLISTABLE.search
        for de in it:
            name = de.name
            if unlistable(name) is not None or not match(name):
                continue
            if veto is not None and veto.match(name) is not None:
                continue
            path = f"{self.path}/{name}"
            try:
                if de.is_symlink() and not is_inside(self.root, os.path.realpath(path)):
                    continue
                meta = read_meta(path, None, hide_dot, name)
            except OSError:
                continue  # gone since it was listed, a dangling symlink, a loop...
            if self.server is not None and not meta.is_dir:
                sizes = deferred_size.table(self.server)
                if sizes is not None:
                    self._deferred(sizes, meta)
            return name, meta
        self.close()
        return None

    def _deferred(self, sizes, meta: FileMeta) -> None:
        """A file whose end of file is deferred reports it (files of one directory share its
        st_dev: mount points are directories)."""
        dev = self._dev
        if dev is None:
            try:
                dev = self._dev = os.stat(self.path).st_dev
            except OSError:
                return
        deferred_size.adjust_meta(sizes, (dev, meta.file_id), meta)

    @staticmethod
    def _dot_meta(target) -> FileMeta | None:
        try:
            return read_meta(target)
        except OSError:
            return None


def close_dir_state(op: Open) -> None:
    """Release the enumeration state of `op` (its scandir descriptor). Call on CLOSE and
    whenever an Open is dropped; harmless if there is none."""
    scan = op.dir_state
    if scan is not None:
        op.dir_state = None
        scan.close()

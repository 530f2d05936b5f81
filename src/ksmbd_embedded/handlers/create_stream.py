"""CREATE of a named stream (`file:stream:$DATA`, MS-FSA 2.1.5.1 with a stream name).

handlers/create.py hands a name with a stream part here; the stream lives in a user xattr of
the file (fs/streams.py). The file is opened (or created when the disposition allows), then
the stream is opened, created or overwritten; share modes are per stream.
"""

from __future__ import annotations

import os
import stat as _stat
from typing import TYPE_CHECKING

from ..fs import access_check, acl, share_modes, streams
from ..fs.dos_attrs import (
    FILE_ATTRIBUTE_ARCHIVE, FILE_ATTRIBUTE_READONLY, STORED_ATTRIBUTES_MASK, read_meta,
    unix_to_filetime,
)
from ..fs.share_paths import hides_dot_files, resolve_stat, split_name
from ..fs.sid import token_for
from ..status import (
    STATUS_ACCESS_DENIED, STATUS_CANNOT_DELETE, STATUS_DELETE_PENDING,
    STATUS_OBJECT_NAME_COLLISION, STATUS_OBJECT_NAME_NOT_FOUND, SmbError,
)
from ..tree import DELETE
from .create import (
    _O_BASE, _O_NONBLOCK, _READ_ONLY_FORBIDS, FILE_CREATE, FILE_CREATED, FILE_DELETE_ON_CLOSE,
    FILE_OPEN, FILE_OPENED, FILE_OVERWRITE, FILE_OVERWRITE_IF, FILE_OVERWRITTEN, FILE_SUPERSEDE,
    FILE_SUPERSEDED, FILE_WRITE_THROUGH, _fstat_after_xattrs, _make_object, _new_open,
    _open_dir, _os_error, _store_attributes, _store_security,
)

if TYPE_CHECKING:
    from ..request import Request


def open_stream(req: Request, name: str, stream: str, access: int, max_allowed: bool,
                 attributes: int, share_access: int, disposition: int, options: int,
                 requested: int):
    """MS-FSA 2.1.5.1 for a named stream (fs/streams.py): open the file, or create it when
    the disposition allows, then open, create or overwrite the stream in it. The Open keeps
    a read-only descriptor of the file (enough for its xattrs) and is keyed per stream."""
    tree = req.tree
    server = req.server
    fd = -1
    for attempt in (0, 1):
        path, st = resolve_stat(tree.root, name)
        if st is not None:
            if not _stat.S_ISDIR(st.st_mode) and not _stat.S_ISREG(st.st_mode):
                raise SmbError(STATUS_ACCESS_DENIED)  # FIFOs, sockets, devices
            if share_modes.is_delete_pending(server, (st.st_dev, st.st_ino)):
                raise SmbError(STATUS_DELETE_PENDING)
            break
        if disposition in (FILE_OPEN, FILE_OVERWRITE):
            raise SmbError(STATUS_OBJECT_NAME_NOT_FOUND)
        if not tree.writable:
            raise SmbError(STATUS_ACCESS_DENIED)
        if options & FILE_DELETE_ON_CLOSE and attributes & FILE_ATTRIBUTE_READONLY:
            raise SmbError(STATUS_CANNOT_DELETE)
        token = token_for(req.session)
        parent_sd = access_check.check_create(path, tree.root, token, False)
        try:
            fd, fst = _make_object(req, path, options & ~FILE_WRITE_THROUGH, False)
            break
        except FileExistsError:
            if attempt:
                raise SmbError(STATUS_OBJECT_NAME_COLLISION) from None
    created_file = fd >= 0
    if not created_file:
        try:
            fd = _open_dir(path) if _stat.S_ISDIR(st.st_mode) else \
                os.open(path, _O_BASE | _O_NONBLOCK | os.O_RDONLY)
        except OSError as exc:
            raise _os_error(exc, "open stream") from None
    try:
        if created_file:
            _store_attributes(fd, (attributes & STORED_ATTRIBUTES_MASK)
                              | FILE_ATTRIBUTE_ARCHIVE, unix_to_filetime(fst.st_mtime_ns))
            _store_security(fd, acl.inherit(parent_sd, None, False, token.user,
                                            token.primary_group))
        else:
            fst = os.fstat(fd)
            # the file's stored security descriptor covers its streams (fs/access_check.py)
            access = access_check.check_existing(
                fd, path, tree.root, token_for(req.session), access, requested, max_allowed,
                tree.maximal_access)
            if options & FILE_DELETE_ON_CLOSE and not access & DELETE:
                raise SmbError(STATUS_ACCESS_DENIED)
        base_key = (fst.st_dev, fst.st_ino)
        if share_modes.is_delete_pending(server, base_key):
            raise SmbError(STATUS_DELETE_PENDING)
        meta = read_meta(fd, fst, hides_dot_files(tree.share), split_name(name)[1])
        overwrite = disposition in (FILE_SUPERSEDE, FILE_OVERWRITE, FILE_OVERWRITE_IF)
        if meta.attributes & FILE_ATTRIBUTE_READONLY and not created_file:
            # MS-FSA 2.1.5.1.2.1: the file's read-only attribute covers its streams
            if options & FILE_DELETE_ON_CLOSE:
                raise SmbError(STATUS_CANNOT_DELETE)
            if max_allowed:
                access &= ~_READ_ONLY_FORBIDS
            if access & _READ_ONLY_FORBIDS or overwrite:
                raise SmbError(STATUS_ACCESS_DENIED)
        stored = None if created_file else streams.find_stream(fd, stream)
        if stored is None:
            if disposition in (FILE_OPEN, FILE_OVERWRITE):
                raise SmbError(STATUS_OBJECT_NAME_NOT_FOUND)
            if not tree.writable:
                raise SmbError(STATUS_ACCESS_DENIED)
            streams.write_stream(fd, stream, b"", create=True)
            stored = stream
            action = FILE_CREATED
            key = streams.stream_key(base_key, stored)
        else:
            if disposition == FILE_CREATE:
                raise SmbError(STATUS_OBJECT_NAME_COLLISION)
            key = streams.stream_key(base_key, stored)
            if share_modes.is_delete_pending(server, key):
                raise SmbError(STATUS_DELETE_PENDING)
            from .create_oplocks import share_check  # (with MS-FSA 2.1.5.1.2's oplock steps)
            share_check(req, key, access, share_access, disposition)
            if overwrite:
                if not tree.writable:
                    raise SmbError(STATUS_ACCESS_DENIED)
                streams.write_stream(fd, stored, b"")
                action = FILE_SUPERSEDED if disposition == FILE_SUPERSEDE else FILE_OVERWRITTEN
            else:
                action = FILE_OPENED
        if action != FILE_OPENED:  # the stream's xattr was written: the file's ctime moved
            fst = _fstat_after_xattrs(fd, fst)
            meta = read_meta(fd, fst, hides_dot_files(tree.share), split_name(name)[1])
        size = streams.stream_size(fd, stored)
    except BaseException:
        os.close(fd)
        if created_file:
            try:
                os.unlink(path)  # the file came with this failed create: take it back
            except OSError:
                pass
        raise
    if created_file:
        action = FILE_CREATED
    meta.end_of_file = size
    meta.allocation_size = streams.allocation(size)
    meta.is_dir = False
    full = name + ":" + stored
    op = _new_open(req, fd, path, full, False, access, share_access, options, key, action)
    op.extra = streams.StreamOpen(stored, base_key)
    streams.register(server, op)
    return op, action, meta, fst

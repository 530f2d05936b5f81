"""CREATE and CLOSE (MS-SMB2 2.2.13-2.2.16, 3.3.5.9, 3.3.5.10; MS-FSA 2.1.5.1).

The path through CREATE:
  1. the fixed part and its parameter checks (impersonation, disposition, options, attributes)
  2. the create contexts (create_contexts.py) and the name (fs/share_paths.py)
  3. access: GENERIC_* mapped, MAXIMUM_ALLOWED expanded, everything checked against the tree's
     maximal access (a read-only share refuses writes, creates and deletes)
  4. the disk: resolve inside the share, then open an existing object (type, disposition,
     read-only attribute, delete-pending and share-mode checks) or create a new one
  5. the Open into the server's open table, and the response with its contexts.

Choices worth knowing:
  * IPC$: the named pipes srvsvc and wkssvc (rpc/pipe.py, DCE/RPC); other names answer
    STATUS_OBJECT_NAME_NOT_FOUND.
  * Oplocks (handlers/oplock_break.py, caching/): RequestedOplockLevel is asked of the object
    store once the open has succeeded. Before the share-mode check an opener that meets a
    sharing violation breaks a batch oplock and waits for the acknowledgment (MS-FSA 2.1.5.1.2,
    OPEN_BREAK_H), then the check runs; after it, the open breaks what it conflicts with
    (exclusive/batch to Level II, or to none when it overwrites) and waits likewise. Waiting
    is async: interim STATUS_PENDING, then the CREATE runs again from the start
    (caching/breaks.wait_then_retry). FILE_COMPLETE_IF_OPLOCKED does not wait and answers
    STATUS_OPLOCK_BREAK_IN_PROGRESS; so does not wait a CREATE that is not the last request of
    its compound (only the last may go async). FILE_OPEN_REQUIRING_OPLOCK: an open that would
    break another's oplock is STATUS_CANNOT_BREAK_OPLOCK, one not granted an oplock
    STATUS_OPLOCK_NOT_GRANTED. No leases or durable handles yet: no DHnQ/DH2Q/RqLs answers.
  * Only regular files and directories are served; a FIFO, socket or device node in a share
    is STATUS_ACCESS_DENIED (opening a FIFO could block the event loop).
  * Existing directory with SUPERSEDE/OVERWRITE/OVERWRITE_IF (and no FILE_DIRECTORY_FILE,
    which makes those dispositions invalid) is STATUS_OBJECT_NAME_COLLISION.
  * FILE_DELETE_ON_CLOSE is checked at CREATE like a later FileDispositionInformation:
    READONLY -> STATUS_CANNOT_DELETE, non-empty directory -> STATUS_DIRECTORY_NOT_EMPTY.
  * New files get mode (0o666 & create_mask) | force_create_mode, create_mask defaulting to
    0o644; directories (0o777 & dir_mask) | force_directory_mode, dir_mask defaulting to 0o755.
    The process umask (022 under procd) still applies, except that forced bits are
    re-applied with fchmod. DOS attributes go to the xattr (ARCHIVE added for files).
  * FILE_WRITE_THROUGH opens with O_DSYNC.
  * FILE_OPEN_REPARSE_POINT (MS-FSA 2.1.5.1): when the final component is a symlink, the
    link itself is opened (O_PATH | O_NOFOLLOW; intermediate components resolved and
    confined as always) and is a reparse point, IO_REPARSE_TAG_SYMLINK: FSCTL_GET_REPARSE_POINT,
    QUERY_INFO, CLOSE, rename and delete (FILE_DELETE_ON_CLOSE, FileDispositionInformation)
    act on the link, never on its target. FILE_CREATE is STATUS_OBJECT_NAME_COLLISION, the
    overwriting dispositions STATUS_ACCESS_DENIED (a link has no data). See fs/reparse.py for
    the rights such an Open gets and why links show as reparse points nowhere else. On
    anything that is not a symlink the option changes nothing; a stream name ("link:s")
    follows the link as before.
  * FILE_OPEN_BY_FILE_ID (fs/file_ids.py): a name buffer of 8 bytes (or 16 with the high
    half zero) is a file id (st_ino); every CREATE remembers the ids it returns, and an id is
    opened by the name remembered for it, through every check an open by that name passes,
    only if the object found still has that id. An unknown or stale id is
    STATUS_INVALID_PARAMETER (what NTFS answers for a file reference that names no file);
    any other name length is STATUS_NOT_SUPPORTED (what Windows answers, smbtorture
    smb2.create.gentest). An id never creates anything.
"""

from __future__ import annotations

import logging
import os
import stat as _stat
import struct
from typing import TYPE_CHECKING

from .. import header as h
from ..caching import breaks
from ..fs import access_check, acl, deferred_size, eas, file_ids, reparse, share_modes, streams
from ..fs.acl import map_generic  # noqa: F401  (GENERIC_* -> file rights; also used by tests)
from ..fs.dos_attrs import (
    FILE_ATTRIBUTE_ARCHIVE, FILE_ATTRIBUTE_HIDDEN, FILE_ATTRIBUTE_READONLY,
    FILE_ATTRIBUTE_SYSTEM, FILE_ATTRIBUTE_TEMPORARY, STORED_ATTRIBUTES_MASK, FileMeta,
    read_meta, unix_to_filetime, write_dos_attrs,
)
from ..fs.errno_status import log_unexpected, status_from_oserror
from ..fs.sid import token_for
from ..fs.share_modes import close_open  # noqa: F401  (tree_connect and logoff import it here)
from ..fs.share_paths import (
    has_trailing_backslash, hides_dot_files, is_vetoed, parse_name_stream, resolve_stat,
    split_name,
)
from ..opens import Open
from ..status import (
    STATUS_OPLOCK_BREAK_IN_PROGRESS, STATUS_OPLOCK_NOT_GRANTED,
    STATUS_TOO_MANY_OPENED_FILES,
    STATUS_ACCESS_DENIED, STATUS_BAD_IMPERSONATION_LEVEL, STATUS_CANNOT_DELETE,
    STATUS_DELETE_PENDING, STATUS_FILE_IS_A_DIRECTORY, STATUS_INVALID_PARAMETER,
    STATUS_NETWORK_NAME_DELETED, STATUS_NOT_A_DIRECTORY, STATUS_NOT_SUPPORTED,
    STATUS_OBJECT_NAME_COLLISION,
    STATUS_OBJECT_NAME_INVALID, STATUS_OBJECT_NAME_NOT_FOUND, STATUS_OBJECT_PATH_NOT_FOUND,
    STATUS_PRIVILEGE_NOT_HELD, STATUS_SUCCESS, SmbError,
)
from ..tree import (
    ACCESS_SYSTEM_SECURITY, DELETE, FILE_APPEND_DATA, FILE_EXECUTE, FILE_READ_DATA,
    FILE_WRITE_DATA, MAXIMUM_ALLOWED,
)
from . import create_contexts as cc
from . import create_oplocks, oplock_break

if TYPE_CHECKING:
    from ..request import Request

log = logging.getLogger("ksmbd.create")

# -- wire structures ----------------------------------------------------------------------------
# StructureSize, SecurityFlags, RequestedOplockLevel, ImpersonationLevel, SmbCreateFlags,
# Reserved, DesiredAccess, FileAttributes, ShareAccess, CreateDisposition, CreateOptions,
# NameOffset, NameLength, CreateContextsOffset, CreateContextsLength  (2.2.13, 56 bytes)
_CREATE_REQUEST = struct.Struct("<HBBIQQIIIIIHHII")
_NAME_MIN_OFFSET = h.HEADER_SIZE + _CREATE_REQUEST.size  # the Buffer field
# StructureSize, OplockLevel, Flags, CreateAction, CreationTime, LastAccessTime,
# LastWriteTime, ChangeTime, AllocationSize, EndofFile, FileAttributes, Reserved2,
# FileId (persistent, volatile), CreateContextsOffset, CreateContextsLength  (2.2.14, 88 bytes)
_CREATE_RESPONSE = struct.Struct("<HBBIQQQQQQIIQQII")
_CONTEXTS_OFFSET = h.HEADER_SIZE + _CREATE_RESPONSE.size  # 152, 8-aligned

# ImpersonationLevel (2.2.13)
IMPERSONATION_DELEGATE = 3

# CreateDisposition (2.2.13)
FILE_SUPERSEDE = 0
FILE_OPEN = 1
FILE_CREATE = 2
FILE_OPEN_IF = 3
FILE_OVERWRITE = 4
FILE_OVERWRITE_IF = 5

# CreateAction (2.2.14)
FILE_SUPERSEDED = 0
FILE_OPENED = 1
FILE_CREATED = 2
FILE_OVERWRITTEN = 3

# CreateOptions (2.2.13)
FILE_DIRECTORY_FILE = 0x00000001
FILE_WRITE_THROUGH = 0x00000002
FILE_SEQUENTIAL_ONLY = 0x00000004
FILE_NO_INTERMEDIATE_BUFFERING = 0x00000008
FILE_SYNCHRONOUS_IO_ALERT = 0x00000010
FILE_SYNCHRONOUS_IO_NONALERT = 0x00000020
FILE_NON_DIRECTORY_FILE = 0x00000040
FILE_CREATE_TREE_CONNECTION = 0x00000080
FILE_COMPLETE_IF_OPLOCKED = 0x00000100
FILE_NO_EA_KNOWLEDGE = 0x00000200
FILE_OPEN_REMOTE_INSTANCE = 0x00000400
FILE_RANDOM_ACCESS = 0x00000800
FILE_DELETE_ON_CLOSE = 0x00001000
FILE_OPEN_BY_FILE_ID = 0x00002000
FILE_OPEN_FOR_BACKUP_INTENT = 0x00004000
FILE_NO_COMPRESSION = 0x00008000
FILE_OPEN_REQUIRING_OPLOCK = 0x00010000
FILE_DISALLOW_EXCLUSIVE = 0x00020000
FILE_RESERVE_OPFILTER = 0x00100000
FILE_OPEN_REPARSE_POINT = 0x00200000
FILE_OPEN_NO_RECALL = 0x00400000
FILE_OPEN_FOR_FREE_SPACE_QUERY = 0x00800000
_OPTIONS_RESERVED = 0xFF000000  # -> STATUS_INVALID_PARAMETER
_OPTIONS_NOT_SUPPORTED = FILE_CREATE_TREE_CONNECTION \
    | FILE_RESERVE_OPFILTER  # what Windows answers STATUS_NOT_SUPPORTED for
# FileModeInformation (MS-FSCC 2.4.26) keeps these CreateOptions bits
_MODE_BITS = FILE_WRITE_THROUGH | FILE_SEQUENTIAL_ONLY | FILE_NO_INTERMEDIATE_BUFFERING \
    | FILE_SYNCHRONOUS_IO_ALERT | FILE_SYNCHRONOUS_IO_NONALERT | FILE_DELETE_ON_CLOSE

# FileAttributes a CREATE may not carry (0x8, 0x40 and everything from 0x8000 up, as Windows)
_ATTRIBUTES_INVALID = 0xFFFF8048

# Access masks (MS-SMB2 2.2.13.1): generic rights map to the file-specific ones (fs/acl.py).
_ACCESS_RESERVED = 0x0CE0FE00  # undefined bits: STATUS_ACCESS_DENIED
_READ_ONLY_FORBIDS = FILE_WRITE_DATA | FILE_APPEND_DATA  # what a READONLY file never grants
_DATA_READ = FILE_READ_DATA | FILE_EXECUTE
_DATA_WRITE = FILE_WRITE_DATA | FILE_APPEND_DATA

# POSIX open flags
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_DSYNC = getattr(os, "O_DSYNC", getattr(os, "O_SYNC", 0))
_O_PATH = getattr(os, "O_PATH", 0)
_O_BASE = _O_CLOEXEC | _O_NOFOLLOW
_O_DIR = os.O_RDONLY | _O_DIRECTORY | _O_BASE

_U32 = struct.Struct("<I")

DEFAULT_CREATE_MASK = 0o644
DEFAULT_DIR_MASK = 0o755




def _file_mode(share, is_dir: bool) -> tuple[int, int | None]:
    """(mode for os.open/mkdir, forced bits to re-apply after the umask or None)."""
    if is_dir:
        mask = getattr(share, "dir_mask", None)
        force = getattr(share, "force_directory_mode", None)
        base = 0o777 & (DEFAULT_DIR_MASK if mask is None else mask)
    else:
        mask = getattr(share, "create_mask", None)
        force = getattr(share, "force_create_mode", None)
        base = 0o666 & (DEFAULT_CREATE_MASK if mask is None else mask)
    if force:
        return (base | force) & 0o7777, (base | force) & 0o7777
    return base, None


def _os_error(exc: OSError, what: str) -> SmbError:
    log_unexpected(exc, what)
    return SmbError(status_from_oserror(exc))


# -- CREATE -------------------------------------------------------------------------------------

# A session holds at most this many opens, so one client cannot exhaust the process's fds.
MAX_OPENS_PER_SESSION = 16384


def handle_create(req: Request):
    """MS-SMB2 3.3.5.9. An open that must wait for an oplock break goes async and runs
    again once the break is over (caching/breaks.py)."""
    try:
        return _handle_create(req)
    except breaks.MustWait as wait:
        return breaks.wait_then_retry(req, wait, _handle_create)


def _handle_create(req: Request):
    options = _U32.unpack_from(req.view, h.HEADER_SIZE + 40)[0]
    last = not _U32.unpack_from(req.view, h.NEXT_COMMAND_OFFSET)[0]
    return create_oplocks.run(req, _create,
                              may_wait=last and not options & FILE_COMPLETE_IF_OPLOCKED,
                              requiring=bool(options & FILE_OPEN_REQUIRING_OPLOCK))


def _create(req: Request):
    tree = req.tree
    if tree.closed:
        # Disconnected (connection.py refuses such a tree already): an Open added to it now
        # would never be closed, as close_tree has run. Nothing below goes async, so the
        # tree cannot close between this check and server.opens.add.
        raise SmbError(STATUS_NETWORK_NAME_DELETED)
    if len(req.server.opens.by_id) >= MAX_OPENS_PER_SESSION and \
            sum(t.open_count for t in req.session.trees.values()) >= MAX_OPENS_PER_SESSION:
        raise SmbError(STATUS_TOO_MANY_OPENED_FILES)  # (counted only when it may be true)
    (_, _, requested_oplock, impersonation, _, _, desired, attributes, share_access,
     disposition, options, name_off, name_len, ctx_off,
     ctx_len) = _CREATE_REQUEST.unpack_from(req.view, h.HEADER_SIZE)
    if tree.is_ipc:
        return _create_pipe(req, desired, share_access, options, name_off, name_len)

    # 1. parameters (MS-SMB2 3.3.5.9, MS-FSA 2.1.5.1 parameter validation)
    if impersonation > IMPERSONATION_DELEGATE:
        raise SmbError(STATUS_BAD_IMPERSONATION_LEVEL)
    if disposition > FILE_OVERWRITE_IF or options & _OPTIONS_RESERVED \
            or attributes & _ATTRIBUTES_INVALID or share_access & ~share_modes.FILE_SHARE_VALID:
        raise SmbError(STATUS_INVALID_PARAMETER)
    if options & _OPTIONS_NOT_SUPPORTED:
        raise SmbError(STATUS_NOT_SUPPORTED)
    want_dir = bool(options & FILE_DIRECTORY_FILE)
    if want_dir:
        if options & FILE_NON_DIRECTORY_FILE or attributes & FILE_ATTRIBUTE_TEMPORARY \
                or disposition not in (FILE_CREATE, FILE_OPEN, FILE_OPEN_IF):
            raise SmbError(STATUS_INVALID_PARAMETER)

    # 2. name and contexts
    if name_len:
        if name_off < _NAME_MIN_OFFSET:
            raise SmbError(STATUS_INVALID_PARAMETER)
        raw = req.data(name_off, name_len)
    else:
        raw = req.view[0:0]
    contexts = cc.parse_contexts(req.data(ctx_off, ctx_len)) if ctx_len else ()
    want_mxac = want_qfid = False
    ea_list = sd_ctx = None
    for cname, cdata in contexts:
        if cname == cc.MXAC:
            want_mxac = True
        elif cname == cc.QFID:
            want_qfid = True
        elif cname in (cc.DHNC, cc.DH2C, cc.TWRP):
            raise SmbError(STATUS_OBJECT_NAME_NOT_FOUND)  # no such handle / snapshot
        elif cname == cc.EXTA:
            ea_list = cc.ea_buffer(cdata, streams.supported(tree.root))
        elif cname == cc.SECD:
            sd_ctx = cc.sd_buffer(cdata)  # the new file's descriptor (fs/acl.py inherit)
    by_id = None  # FILE_OPEN_BY_FILE_ID: (st_dev, st_ino) the object opened must have
    if options & FILE_OPEN_BY_FILE_ID:
        name, by_id = _name_for_id(req, raw)
        stream = None
        dir_only = False
    else:
        name, stream = parse_name_stream(raw)  # stream: None, "" (::$DATA) or a stream name
        dir_only = has_trailing_backslash(raw)
    if dir_only and options & FILE_NON_DIRECTORY_FILE:
        raise SmbError(STATUS_OBJECT_NAME_INVALID)
    if stream is not None:
        if want_dir:
            raise SmbError(STATUS_NOT_A_DIRECTORY)  # MS-FSA 2.1.5.1: a data stream
        if stream and not streams.supported(tree.root):
            raise SmbError(STATUS_OBJECT_NAME_INVALID)  # no xattrs: no streams (as FAT)
    share = tree.share
    if name and is_vetoed(share, name):
        if by_id is not None:
            raise SmbError(STATUS_INVALID_PARAMETER)  # as an id that names nothing
        parent = split_name(name)[0]
        if parent and is_vetoed(share, parent):
            raise SmbError(STATUS_OBJECT_PATH_NOT_FOUND)
        raise SmbError(STATUS_OBJECT_NAME_NOT_FOUND)

    # 3. access (MS-SMB2 3.3.5.9, checked against the tree's maximal access)
    if desired & ACCESS_SYSTEM_SECURITY:
        raise SmbError(STATUS_PRIVILEGE_NOT_HELD)
    if desired & _ACCESS_RESERVED:
        raise SmbError(STATUS_ACCESS_DENIED)
    maximal = tree.maximal_access
    access = map_generic(desired)
    max_allowed = bool(access & MAXIMUM_ALLOWED)
    access &= ~MAXIMUM_ALLOWED
    if access & ~maximal:
        raise SmbError(STATUS_ACCESS_DENIED)
    requested = access  # what a stored DACL must grant (fs/access_check.py)
    if max_allowed:
        access |= maximal
    if options & FILE_DELETE_ON_CLOSE and not access & DELETE:
        raise SmbError(STATUS_ACCESS_DENIED)

    # 4. the disk
    root = tree.root
    server = req.server
    if stream:
        from .create_stream import open_stream  # only for names with a stream part
        op, action, meta, fst = open_stream(req, name, stream, access, max_allowed,
                                             attributes, share_access, disposition, options,
                                             requested)
    else:
        # FILE_OPEN_REPARSE_POINT: a symlink as the final component is opened itself
        follow_last = not (options & FILE_OPEN_REPARSE_POINT and _O_PATH)
        for attempt in (0, 1):
            path, st = resolve_stat(root, name, follow_last=follow_last)
            if by_id is not None and (st is None or (st.st_dev, st.st_ino) != by_id):
                file_ids.forget(server, root, by_id[1])
                raise SmbError(STATUS_INVALID_PARAMETER)  # the id names nothing (any more)
            if st is not None:
                if not follow_last and _stat.S_ISLNK(st.st_mode):
                    op, action, meta, fst = _open_link(req, path, name, st, access,
                                                       share_access, disposition, options,
                                                       dir_only)
                    break
                if stream == "" and _stat.S_ISDIR(st.st_mode):
                    raise SmbError(STATUS_FILE_IS_A_DIRECTORY)  # no default data stream
                op, action, meta, fst = _open_existing(req, path, name, st, access,
                                                       max_allowed, attributes, share_access,
                                                       disposition, options, dir_only,
                                                       requested=requested, expect_key=by_id)
                break
            if disposition in (FILE_OPEN, FILE_OVERWRITE):
                raise SmbError(STATUS_OBJECT_NAME_NOT_FOUND)
            if not tree.writable:
                raise SmbError(STATUS_ACCESS_DENIED)
            if dir_only and not want_dir:
                raise SmbError(STATUS_OBJECT_NAME_INVALID)
            try:
                op, action, meta, fst = _create_new(req, path, name, access, attributes,
                                                    share_access, options, want_dir,
                                                    sd_ctx=sd_ctx)
                break
            except FileExistsError:
                if attempt or disposition == FILE_CREATE:
                    raise SmbError(STATUS_OBJECT_NAME_COLLISION) from None
                # created by someone else since resolve: open it as existing (once)

    if ea_list and action != FILE_OPENED and not stream:
        _apply_eas(req, op, action, ea_list)  # MS-SMB2 3.3.5.9.1: on create or overwrite
        fst = _fstat_after_xattrs(op.fd, fst)
        meta = read_meta(op.fd, fst, hides_dot_files(share), split_name(name)[1])

    # 5. response
    server.opens.add(op)
    oplock_level = oplock_break.grant(req, op, requested_oplock)  # MS-SMB2 3.3.5.9
    if not oplock_level and options & FILE_OPEN_REQUIRING_OPLOCK \
            and requested_oplock != oplock_break.SMB2_OPLOCK_LEVEL_NONE:
        share_modes.close_open(server, op)
        raise SmbError(STATUS_OPLOCK_NOT_GRANTED)
    req.set_open(op)
    if op.extra is None or streams.stream_of(op) is not None:
        file_ids.remember(server, root, op.path, fst.st_dev, fst.st_ino)  # not a link's id
    ctx_items = []
    if want_mxac:
        ctx_items.append(cc.maximal_access_response(_maximal_for(op, maximal, meta)))
    if want_qfid:
        ctx_items.append(cc.query_on_disk_id_response(fst.st_ino, fst.st_dev))
    if log.isEnabledFor(logging.DEBUG):
        log.debug("CREATE %r disp=%d opts=0x%x access=0x%x share=%d -> action %d fid %x",
                  name, disposition, options, op.granted_access, share_access, action,
                  op.volatile_id)
    fields = (89, oplock_level, 0, action, meta.creation_time, meta.last_access_time,
              meta.last_write_time, meta.change_time, meta.allocation_size, meta.end_of_file,
              meta.attributes, 0, op.persistent_id, op.volatile_id)
    status = STATUS_OPLOCK_BREAK_IN_PROGRESS if create_oplocks.break_in_progress() \
        and options & FILE_COMPLETE_IF_OPLOCKED else STATUS_SUCCESS
    if not ctx_items:
        return status, _CREATE_RESPONSE.pack(*fields, 0, 0)
    ctx = cc.encode_contexts(ctx_items)
    return status, [_CREATE_RESPONSE.pack(*fields, _CONTEXTS_OFFSET, len(ctx)), ctx]


_U64 = struct.Struct("<Q")


def _name_for_id(req: Request, raw) -> tuple[str, tuple[int, int]]:
    """FILE_OPEN_BY_FILE_ID: (the name remembered for the id in the name buffer, the
    (st_dev, st_ino) the object opened must have). See the module docstring."""
    n = len(raw)
    if n != 8 and not (n == 16 and not any(raw[8:16])):  # a FileId128 with a 64-bit id
        raise SmbError(STATUS_NOT_SUPPORTED)
    ino = _U64.unpack_from(raw, 0)[0]
    entry = file_ids.lookup(req.server, req.tree.root, ino)
    if entry is None:
        raise SmbError(STATUS_INVALID_PARAMETER)
    return entry[1], (entry[0], ino)


FILE_ATTRIBUTE_NORMAL = 0x00000080
_PIPE_ALLOCATION_SIZE = 4096  # what Windows reports for a named pipe


def _create_pipe(req: Request, desired: int, share_access: int, options: int, name_off: int,
                 name_len: int):
    """IPC$: open the named pipe `srvsvc` or `wkssvc` (any case, leading backslash and a
    `PIPE\\` prefix tolerated), backed by an RpcPipe; any other name does not exist."""
    from ..rpc import pipe_name
    from ..rpc.pipe import RpcPipe
    if name_len and name_off < _NAME_MIN_OFFSET:
        raise SmbError(STATUS_INVALID_PARAMETER)
    try:
        name = bytes(req.data(name_off, name_len)).decode("utf-16-le")
    except UnicodeDecodeError:
        raise SmbError(STATUS_OBJECT_NAME_INVALID) from None
    key = pipe_name(name)
    if key is None:
        raise SmbError(STATUS_OBJECT_NAME_NOT_FOUND)
    if desired & ACCESS_SYSTEM_SECURITY:
        raise SmbError(STATUS_PRIVILEGE_NOT_HELD)
    access = map_generic(desired)
    if access & MAXIMUM_ALLOWED:
        access = (access & ~MAXIMUM_ALLOWED) | req.tree.maximal_access
    op = Open(req.session, req.tree, -1, "", key, False, access, share_access, options)
    op.pipe = RpcPipe(key, req.server, req.session)
    op.create_action = FILE_OPENED
    req.server.opens.add(op)
    req.set_open(op)
    log.debug("CREATE pipe %r -> fid %x", name, op.volatile_id)
    return STATUS_SUCCESS, _CREATE_RESPONSE.pack(
        89, 0, 0, FILE_OPENED, 0, 0, 0, 0, _PIPE_ALLOCATION_SIZE, 0, FILE_ATTRIBUTE_NORMAL, 0,
        op.persistent_id, op.volatile_id, 0, 0)


def _maximal_for(op: Open, maximal: int, meta: FileMeta) -> int:
    """MxAc: the tree's maximal access minus what the file itself forbids: its stored
    security descriptor (fs/access_check.py), a read-only attribute, the mode. A symlink
    Open: what fs/reparse.py lets it have (never a look behind the link)."""
    if reparse.link_of(op) is not None:
        return maximal & reparse.LINK_RIGHTS
    stored = access_check.maximal_for_open(op.fd, op.path, op.tree.root,
                                           token_for(op.session), maximal)
    if stored is not None:
        if not op.is_dir and meta.attributes & FILE_ATTRIBUTE_READONLY:
            return stored & ~_READ_ONLY_FORBIDS
        return stored
    if not maximal & _READ_ONLY_FORBIDS or op.is_dir:
        return maximal
    if meta.attributes & FILE_ATTRIBUTE_READONLY or not os.access(op.path, os.W_OK):
        return maximal & ~_READ_ONLY_FORBIDS
    return maximal


def _open_existing(req: Request, path: str, name: str, st: os.stat_result, access: int,
                   max_allowed: bool, attributes: int, share_access: int, disposition: int,
                   options: int, dir_only: bool, requested: int | None = None,
                   expect_key: tuple[int, int] | None = None):
    """MS-FSA 2.1.5.1.2: open what exists (and overwrite it when asked). `requested`: the
    rights asked for by name (without what MAXIMUM_ALLOWED added); `expect_key`: the
    (st_dev, st_ino) of FILE_OPEN_BY_FILE_ID, which the object opened must have."""
    tree = req.tree
    server = req.server
    is_dir = _stat.S_ISDIR(st.st_mode)
    if not is_dir and not _stat.S_ISREG(st.st_mode):
        raise SmbError(STATUS_ACCESS_DENIED)  # FIFOs, sockets, devices are not served
    if is_dir:
        if options & FILE_NON_DIRECTORY_FILE:
            raise SmbError(STATUS_FILE_IS_A_DIRECTORY)
    else:
        if options & FILE_DIRECTORY_FILE:
            raise SmbError(STATUS_NOT_A_DIRECTORY)
        if dir_only:
            raise SmbError(STATUS_OBJECT_NAME_INVALID)
    if disposition == FILE_CREATE:
        raise SmbError(STATUS_OBJECT_NAME_COLLISION)
    overwrite = disposition in (FILE_SUPERSEDE, FILE_OVERWRITE, FILE_OVERWRITE_IF)
    if overwrite:
        if is_dir:
            raise SmbError(STATUS_OBJECT_NAME_COLLISION)
        if not tree.writable:
            raise SmbError(STATUS_ACCESS_DENIED)
    if options & FILE_DELETE_ON_CLOSE and path == tree.root:
        raise SmbError(STATUS_ACCESS_DENIED)  # never the share root

    key = (st.st_dev, st.st_ino)
    if share_modes.is_delete_pending(server, key):
        raise SmbError(STATUS_DELETE_PENDING)

    # Open first (without truncating), so every check below sees the object actually opened.
    if is_dir:
        fd = _open_dir(path)
    else:
        fd, access = _open_file(path, access, max_allowed, options, overwrite)
    try:
        fst = os.fstat(fd)
        key = (fst.st_dev, fst.st_ino)
        if _stat.S_ISDIR(fst.st_mode) != is_dir:
            raise SmbError(STATUS_ACCESS_DENIED)  # swapped under us
        if expect_key is not None and key != expect_key:
            raise SmbError(STATUS_INVALID_PARAMETER)  # replaced since the id was checked
        meta = read_meta(fd, fst, hides_dot_files(tree.share), split_name(name)[1])
        deferred_size.adjust_meta(deferred_size.table(server), key, meta)
        # MS-FSA 2.1.5.1.2.1: a stored security descriptor decides (fs/access_check.py)
        access = access_check.check_existing(
            fd, path, tree.root, token_for(req.session), access,
            access if requested is None else requested, max_allowed, tree.maximal_access, fst)
        if options & FILE_DELETE_ON_CLOSE and not access & DELETE:
            raise SmbError(STATUS_ACCESS_DENIED)
        attrs = meta.attributes
        if attrs & FILE_ATTRIBUTE_READONLY and not is_dir:
            # MS-FSA 2.1.5.1.2.1: a read-only file refuses data writes and deletion
            if options & FILE_DELETE_ON_CLOSE:
                raise SmbError(STATUS_CANNOT_DELETE)
            if max_allowed:
                access &= ~_READ_ONLY_FORBIDS
            if access & _READ_ONLY_FORBIDS or overwrite:
                raise SmbError(STATUS_ACCESS_DENIED)
        if overwrite:
            # MS-FSA 2.1.5.1.2.1: HIDDEN/SYSTEM files are overwritten only by a request that
            # carries those attributes too.
            if attrs & FILE_ATTRIBUTE_HIDDEN and not attributes & FILE_ATTRIBUTE_HIDDEN \
                    or attrs & FILE_ATTRIBUTE_SYSTEM and not attributes & FILE_ATTRIBUTE_SYSTEM:
                raise SmbError(STATUS_ACCESS_DENIED)
        if options & FILE_DELETE_ON_CLOSE:
            refusal = share_modes.delete_refusal(path, is_dir, attrs)
            if refusal:
                raise SmbError(refusal)
        if share_modes.is_delete_pending(server, key):
            raise SmbError(STATUS_DELETE_PENDING)
        create_oplocks.share_check(req, key, access, share_access, disposition)
        streams.check_base_delete(server, key, access)  # its streams must share delete
        if options & FILE_NO_EA_KNOWLEDGE and eas.has_need_ea(fd):
            raise SmbError(STATUS_ACCESS_DENIED)  # MS-FSA 2.1.5.1.2: FILE_NEED_EA
        if overwrite:
            try:
                os.ftruncate(fd, 0)
            except OSError as exc:
                raise _os_error(exc, "overwrite") from None
            streams.remove_all_streams(fd)  # MS-FSA 2.1.5.1.2.1: named streams go too
            deferred_size.forget(server, key)  # a deferred end of file goes with the data
            # MS-FSA 2.1.5.1.2.1: the attributes become the request's, plus ARCHIVE
            _store_attributes(fd, (attributes & STORED_ATTRIBUTES_MASK)
                              | FILE_ATTRIBUTE_ARCHIVE, None)
            fst = _fstat_after_xattrs(fd, fst)
            meta = read_meta(fd, fst, hides_dot_files(tree.share), split_name(name)[1])
    except BaseException:
        os.close(fd)
        raise
    if disposition == FILE_SUPERSEDE:
        action = FILE_SUPERSEDED
    elif overwrite:
        action = FILE_OVERWRITTEN
    else:
        action = FILE_OPENED
    op = _new_open(req, fd, path, name, is_dir, access, share_access, options, key, action)
    return op, action, meta, fst


def _open_link(req: Request, path: str, name: str, lst: os.stat_result, access: int,
               share_access: int, disposition: int, options: int, dir_only: bool):
    """FILE_OPEN_REPARSE_POINT on a symlink (fs/reparse.py): open the link itself, with
    O_PATH | O_NOFOLLOW, keyed by its own (st_dev, st_ino); only reparse.LINK_RIGHTS of
    `access` are granted. Never looks behind a link that leads out of the share."""
    tree = req.tree
    server = req.server
    if disposition == FILE_CREATE:
        raise SmbError(STATUS_OBJECT_NAME_COLLISION)
    if disposition in (FILE_SUPERSEDE, FILE_OVERWRITE, FILE_OVERWRITE_IF):
        raise SmbError(STATUS_ACCESS_DENIED)  # a POSIX symlink has no data to overwrite
    to_dir = reparse.points_to_dir(tree.root, path)
    if to_dir:
        if options & FILE_NON_DIRECTORY_FILE:
            raise SmbError(STATUS_FILE_IS_A_DIRECTORY)  # as a Windows directory symlink
    else:
        if options & FILE_DIRECTORY_FILE:
            raise SmbError(STATUS_NOT_A_DIRECTORY)
        if dir_only:
            raise SmbError(STATUS_OBJECT_NAME_INVALID)
    access &= reparse.LINK_RIGHTS
    key = (lst.st_dev, lst.st_ino)
    if share_modes.is_delete_pending(server, key):
        raise SmbError(STATUS_DELETE_PENDING)
    share_modes.check_share_access(server, key, access, share_access)
    try:
        fd = os.open(path, _O_PATH | _O_NOFOLLOW | _O_CLOEXEC)
    except OSError as exc:
        raise _os_error(exc, "open symlink") from None
    try:
        fst = os.fstat(fd)
        if not _stat.S_ISLNK(fst.st_mode) or (fst.st_dev, fst.st_ino) != key:
            raise SmbError(STATUS_ACCESS_DENIED)  # swapped under us
        link = reparse.LinkOpen(to_dir)
        meta = reparse.adjust_meta(
            read_meta(fd, fst, hides_dot_files(tree.share), split_name(name)[1]), link)
    except BaseException:
        os.close(fd)
        raise
    op = _new_open(req, fd, path, name, False, access, share_access, options, key, FILE_OPENED)
    op.extra = link
    return op, FILE_OPENED, meta, fst


def _open_dir(path: str) -> int:
    try:
        try:
            return os.open(path, _O_DIR)
        except PermissionError:
            if not _O_PATH:
                raise
            return os.open(path, _O_PATH | _O_DIR)  # traversable but not listable
    except OSError as exc:
        raise _os_error(exc, "open directory") from None


def _open_file(path: str, access: int, max_allowed: bool, options: int,
               overwrite: bool) -> tuple[int, int]:
    """os.open a regular file for `access`; returns (fd, access), access reduced when
    MAXIMUM_ALLOWED asked for more than the OS lets this process have."""
    flags = _O_BASE | _O_NONBLOCK
    if options & FILE_WRITE_THROUGH:
        flags |= _O_DSYNC
    write = bool(access & _DATA_WRITE) or overwrite
    try:
        if write:
            try:
                return os.open(path, flags | os.O_RDWR), access
            except PermissionError:
                if access & _DATA_READ and not max_allowed:
                    raise
                if not access & _DATA_READ:
                    return os.open(path, flags | os.O_WRONLY), access
                if overwrite:
                    raise
                access &= ~_DATA_WRITE  # MAXIMUM_ALLOWED: what the OS allows, read only
        try:
            return os.open(path, flags | os.O_RDONLY), access
        except PermissionError:
            if access & _DATA_READ or not _O_PATH:
                raise
            # No data access asked (attributes, delete): a path-only descriptor will do.
            return os.open(path, _O_PATH | _O_BASE), access
    except OSError as exc:
        raise _os_error(exc, "open") from None


def _create_new(req: Request, path: str, name: str, access: int, attributes: int,
                share_access: int, options: int, want_dir: bool, sd_ctx=None):
    """MS-FSA 2.1.5.1.1: create a file or directory that does not exist. Raises
    FileExistsError when the name appeared since `resolve` (the caller decides).
    `sd_ctx`: the SMB2_CREATE_SD_BUFFER descriptor, if any."""
    share = req.tree.share
    if options & FILE_DELETE_ON_CLOSE and attributes & FILE_ATTRIBUTE_READONLY:
        raise SmbError(STATUS_CANNOT_DELETE)  # MS-FSA 2.1.5.1.1
    token = token_for(req.session)
    parent_sd = access_check.check_create(path, req.tree.root, token, want_dir)
    fd, fst = _make_object(req, path, options, want_dir)
    stored = attributes & STORED_ATTRIBUTES_MASK
    if not want_dir:
        stored |= FILE_ATTRIBUTE_ARCHIVE
    _store_attributes(fd, stored, unix_to_filetime(fst.st_mtime_ns))
    _store_security(fd, acl.inherit(parent_sd, sd_ctx, want_dir, token.user,
                                    token.primary_group))
    fst = _fstat_after_xattrs(fd, fst)
    meta = read_meta(fd, fst, hides_dot_files(share), split_name(name)[1])
    key = (fst.st_dev, fst.st_ino)
    op = _new_open(req, fd, path, name, want_dir, access, share_access, options, key,
                   FILE_CREATED)
    return op, FILE_CREATED, meta, fst


def _make_object(req: Request, path: str, options: int,
                 want_dir: bool) -> tuple[int, os.stat_result]:
    """mkdir, or create a file O_EXCL (read-write), with the share's modes: (fd, fstat).
    Raises FileExistsError when the name appeared since `resolve`."""
    server = req.server
    if share_modes.any_delete_pending(server):
        parent = os.path.dirname(path)
        try:
            pst = os.stat(parent)
        except OSError as exc:
            raise _os_error(exc, "stat parent") from None
        if share_modes.is_delete_pending(server, (pst.st_dev, pst.st_ino)):
            raise SmbError(STATUS_DELETE_PENDING)
    mode, forced = _file_mode(req.tree.share, want_dir)
    try:
        if want_dir:
            os.mkdir(path, mode)
            fd = os.open(path, _O_DIR)
        else:
            flags = _O_BASE | os.O_CREAT | os.O_EXCL | os.O_RDWR
            if options & FILE_WRITE_THROUGH:
                flags |= _O_DSYNC
            fd = os.open(path, flags, mode)
    except FileExistsError:
        raise
    except OSError as exc:
        raise _os_error(exc, "create") from None
    try:
        if forced is not None:
            os.fchmod(fd, forced)
        if req.tree.share.inherit_owner:
            _inherit_owner(fd, path)
        return fd, os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise _os_error(exc, "create") from None


def _fstat_after_xattrs(fd: int, fst: os.stat_result) -> os.stat_result:
    """The object's stat after we set xattrs on it (DOS attributes, security descriptor,
    EAs): each moved its ctime, and the CREATE response must report the ChangeTime that a
    QUERY_INFO right after it reports (smbtorture smb2.create.open compares them)."""
    try:
        return os.fstat(fd)
    except OSError:
        return fst


def _inherit_owner(fd: int, path: str) -> None:
    """`inherit owner` (ksmbd.conf(5)): a new file or directory belongs to the owner of the
    directory it is created in, not to the account the server runs as. Needs the server to
    run as root (it does on OpenWrt); elsewhere the file keeps the server's uid."""
    parent_uid = os.stat(os.path.dirname(path)).st_uid
    if os.fstat(fd).st_uid != parent_uid:
        try:
            os.fchown(fd, parent_uid, -1)
        except PermissionError as exc:
            log.debug("inherit owner of %s: %s", path, exc)


def _apply_eas(req: Request, op: Open, action: int, ea_list) -> None:
    """The EAs of an SMB2_CREATE_EA_BUFFER context onto the new or overwritten object; if
    they cannot be stored the CREATE fails, and an object it created is removed again."""
    try:
        eas.apply(op.fd, ea_list)
    except SmbError:
        os.close(op.fd)
        op.fd = -1
        if action == FILE_CREATED:
            try:
                if op.is_dir:
                    os.rmdir(op.path)
                else:
                    os.unlink(op.path)
            except OSError as exc:
                log_unexpected(exc, "remove after failed EAs")
        raise


def _store_security(fd: int, sd) -> None:
    """A new file's security descriptor into its xattr (nothing when `sd` is None); like
    the attributes, a failure is logged and does not fail the CREATE."""
    if sd is None:
        return
    try:
        acl.store(fd, sd)
    except OSError as exc:
        log_unexpected(exc, "store security descriptor")


def _store_attributes(fd: int, attributes: int, creation_time: int | None) -> None:
    """DOS attributes into the xattr; a failure is logged, never fails the CREATE (the file
    exists by now, and read_meta falls back to what stat says)."""
    try:
        write_dos_attrs(fd, attributes=attributes, creation_time=creation_time)
    except OSError as exc:
        log_unexpected(exc, "store DOS attributes")


def _new_open(req: Request, fd: int, path: str, name: str, is_dir: bool, access: int,
              share_access: int, options: int, key: tuple[int, int], action: int) -> Open:
    op = Open(req.session, req.tree, fd, path, name, is_dir, access, share_access, options)
    op.file_key = key
    op.create_action = action
    op.mode = options & _MODE_BITS
    if options & FILE_DELETE_ON_CLOSE:
        share_modes.mark_delete_on_close(op)
    return op

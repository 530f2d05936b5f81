"""SET_INFO (MS-SMB2 2.2.39, 2.2.40; 3.3.5.21, 3.3.5.21.1-4; MS-FSA 2.1.5.15).

Decisions
---------
* Class validity follows 3.3.5.21.1/.2: served here are FileBasic, FileRename, FileLink,
  FileDisposition(Ex), FilePosition, FileMode, FileAllocation, FileEndOfFile; of the other
  classes 2.2.39 lists, FileValidDataLength is STATUS_PRIVILEGE_NOT_HELD (it needs
  SeManageVolumePrivilege, MS-FSA 2.1.5.15.12, which no SMB user holds here), FileShortName
  and FilePipe are STATUS_NOT_SUPPORTED. Classes
  MS-FSCC documents with "Set" but 2.2.39 does not list are STATUS_NOT_SUPPORTED, all others
  STATUS_INVALID_INFO_CLASS.
* A read-only tree refuses every change with STATUS_ACCESS_DENIED; FilePosition and FileMode
  only change the handle and are allowed.
* FileBasicInformation: 0 and -1 leave a time unchanged; -1 and -2 (stop/resume updating for
  this handle) cannot be honoured on POSIX and are treated as "unchanged". ChangeTime cannot be
  set on disk (the kernel owns ctime): a set value is reported until the file changes again
  (fs/change_time.py). Attributes and CreationTime go to the
  user.DOSATTRIB xattr; where the file system has no xattrs, READONLY falls back to the owner
  write bit (vfat keeps that as its read-only flag).
* FileEndOfFileInformation: ftruncate, except that growing a file on a file system where
  that writes zeros (vfat, exFAT before Linux 6.8, FUSE) is deferred: fs/deferred_size.py.
* FileAllocationInformation truncates only when the allocation is below the end of file and
  otherwise does nothing: no posix_fallocate (glibc writes zeros, musl fails).
* Disposition: DELETE access; READONLY -> STATUS_CANNOT_DELETE (unless the Ex flag
  IGNORE_READONLY_ATTRIBUTE); a directory with entries -> STATUS_DIRECTORY_NOT_EMPTY; the share
  root -> STATUS_CANNOT_DELETE. The state is the file's delete-pending flag in `share_modes`;
  FileDispositionInformationEx with FILE_DISPOSITION_ON_CLOSE sets this open's
  delete-on-close instead; FILE_DISPOSITION_POSIX_SEMANTICS is treated as the plain flag.
* FileFullEaInformation (MS-FSA 2.1.5.15.4) needs FILE_WRITE_EA; the list is checked whole
  before any EA is written; fs/eas.py stores it.
* Named streams (fs/streams.py): end of file and allocation resize the stream; an open of a
  stream renamed to ":new[:$DATA]" renames the stream (MS-FSA 2.1.5.15.11.1: an existing
  target needs ReplaceIfExists (else STATUS_OBJECT_NAME_COLLISION), no open handle
  (STATUS_SHARING_VIOLATION) and no data (STATUS_INVALID_PARAMETER)); "::$DATA" moves the
  stream's data into the file's, which must be empty (or ReplaceIfExists) and not open
  elsewhere. A stream open renamed to a path is STATUS_SHARING_VIOLATION (what Windows
  answers, smbtorture smb2.streams.rename2). A file with open streams cannot be renamed
  (STATUS_ACCESS_DENIED, smb2.streams.basefile-rename-with-open-stream). The file's own open
  renamed to ":name" (default stream into a named one) is STATUS_NOT_SUPPORTED.
* Rename and link targets are share-relative names (a leading backslash is accepted),
  RootDirectory must be 0 (STATUS_INVALID_PARAMETER). (3.3.5.21.1 also says a FileName holding a separator is
  STATUS_NOT_SUPPORTED; every client sends share-relative paths with separators and Windows
  servers accept them, so that sentence is not followed.) The target's parent is resolved with
  `share_paths.resolve_stat` (confined, case-insensitive); its last component is matched
  case-insensitively but never followed if it is a symlink (a replace replaces the link). A
  target that is the source itself (a case-only rename) is not a collision. An existing target:
  STATUS_OBJECT_NAME_COLLISION without ReplaceIfExists; STATUS_ACCESS_DENIED if it is a
  directory, open by any handle, or READONLY (MS-FSA 2.1.5.15.11). A directory with open
  handles below it cannot be renamed (STATUS_ACCESS_DENIED). The target's parent directory is
  checked as if opened for write sharing read and write, as Windows does: a handle on it with
  DELETE access, or one that does not share writing, makes the rename STATUS_SHARING_VIOLATION.
  After the rename every open of the file gets the new path and name. The collision check and
  os.rename are two steps: a local process creating the target in between is overwritten
  (renameat2 RENAME_NOREPLACE would close that; not worth ctypes yet).
* SMB2_0_INFO_SECURITY: owner/group need WRITE_OWNER, a DACL WRITE_DAC, a SACL
  ACCESS_SYSTEM_SECURITY (else STATUS_ACCESS_DENIED; no token holds it); the descriptor is
  validated (STATUS_INVALID_SECURITY_DESCR), merged into the file's and stored in the
  ``user.ksmbd.NTSD`` xattr (fs/acl.py). Where the file system takes no user xattrs the
  answer is STATUS_INVALID_DEVICE_REQUEST, as MS-FSA 2.1.5.16 says for an object store that
  does not implement security (what a FAT-backed Windows share answers too).
* SMB2_0_INFO_FILESYSTEM: FileFsControl/FileFsObjectId need FILE_WRITE_DATA, then
  STATUS_NOT_SUPPORTED (no quotas, no settable object ids); SMB2_0_INFO_QUOTA:
  STATUS_NOT_SUPPORTED.
"""

from __future__ import annotations

import errno
import logging
import os
import stat as _stat
import struct
from typing import TYPE_CHECKING

from .. import header as h
from ..caching import breaks
from ..caching import oplock as fsa
from ..fs import byte_locks, change_time, deferred_size, eas, reparse, streams
from ..fs import file_info as fi
from ..fs.dos_attrs import (
    BASIC_SETTABLE_ATTRIBUTES, FILE_ATTRIBUTE_DIRECTORY, FILE_ATTRIBUTE_READONLY,
    FILE_ATTRIBUTE_TEMPORARY, filetime_to_unix_ns, read_meta, write_dos_attrs,
)
from ..fs.errno_status import status_from_oserror
from ..fs.fs_caps import caps_for
from ..fs.security import (
    DACL_SECURITY_INFORMATION, GROUP_SECURITY_INFORMATION, LABEL_SECURITY_INFORMATION,
    OWNER_SECURITY_INFORMATION, SACL_SECURITY_INFORMATION, descriptor_of,
)
from ..fs.acl import InvalidDescriptor, parse_sd, xattrs_unsupported
from ..fs.acl import merge as merge_sd
from ..fs.acl import store as store_sd
from ..fs.sid import token_for
from ..fs.share_modes import (
    FILE_SHARE_READ, FILE_SHARE_WRITE, delete_refusal, is_delete_pending, set_delete_pending,
    share_conflict,
)
from ..fs.share_paths import check_name, find_case, is_vetoed, resolve_stat, split_name
from ..status import (
    STATUS_ACCESS_DENIED, STATUS_CANNOT_DELETE, STATUS_EAS_NOT_SUPPORTED,
    STATUS_FILE_IS_A_DIRECTORY, STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_INFO_CLASS,
    STATUS_INVALID_OWNER, STATUS_INVALID_PRIMARY_GROUP, STATUS_INVALID_SECURITY_DESCR,
    STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED, STATUS_OBJECT_NAME_COLLISION,
    STATUS_OBJECT_PATH_NOT_FOUND, STATUS_PRIVILEGE_NOT_HELD, STATUS_SHARING_VIOLATION,
    STATUS_SUCCESS, SmbError,
)
from ..tree import (
    ACCESS_SYSTEM_SECURITY, DELETE, FILE_WRITE_ATTRIBUTES, FILE_WRITE_DATA, FILE_WRITE_EA,
    WRITE_DAC, WRITE_OWNER,
)
from .query_info import (
    SMB2_0_INFO_FILE, SMB2_0_INFO_FILESYSTEM, SMB2_0_INFO_QUOTA, SMB2_0_INFO_SECURITY,
)
from . import oplock_break
from .read_write import check_credit_charge, max_transact_size

if TYPE_CHECKING:
    from ..opens import Open
    from ..request import Request

log = logging.getLogger("ksmbd.set_info")

# 2.2.39: StructureSize, InfoType, FileInfoClass, BufferLength, BufferOffset, Reserved,
# AdditionalInformation, FileId (2 x Q)
_REQUEST = struct.Struct("<HBBIHHIQQ")
_RESPONSE = b"\x02\x00"  # 2.2.40: StructureSize 2

_SECTOR = 512  # FilePositionInformation alignment under FILE_NO_INTERMEDIATE_BUFFERING

# MS-FSCC 2.4 classes whose Uses include "Set" but which 2.2.39 does not list.
_SET_DOCUMENTED_UNLISTED = frozenset((fi.FILE_QUOTA_INFORMATION, fi.FILE_RENAME_INFORMATION_EX))
# MS-FSCC 2.5: FileFsLabelInformation and FileFsVolumeFlagsInformation take "Set" too.
_FS_SET_CLASSES = frozenset((6, 8))  # FileFsControlInformation, FileFsObjectIdInformation
_FS_SET_UNLISTED = frozenset((2, 10))


def handle_set_info(req: Request):
    """MS-SMB2 3.3.5.21. A rename or delete that must wait for another open's batch oplock
    to be broken goes async and runs again once the break is over (caching/breaks.py)."""
    try:
        return _handle_set_info(req)
    except breaks.MustWait as wait:
        return breaks.wait_then_retry(req, wait, _handle_set_info)


def _handle_set_info(req: Request):
    (_, info_type, info_class, buf_len, buf_off, _, additional, fid_p,
     fid_v) = _REQUEST.unpack_from(req.view, h.HEADER_SIZE)
    op = req.open_for(fid_p, fid_v)
    # 3.3.5.21
    if buf_len > max_transact_size(req.conn) or buf_len == 0:
        raise SmbError(STATUS_INVALID_PARAMETER)
    check_credit_charge(req, buf_len)
    buf = req.data(buf_off, buf_len)
    if info_type == SMB2_0_INFO_FILE:
        setter = _FILE_SETTERS.get(info_class)
        if setter is None:
            if info_class in _SET_DOCUMENTED_UNLISTED:
                raise SmbError(STATUS_NOT_SUPPORTED)
            raise SmbError(STATUS_INVALID_INFO_CLASS)
        if op.pipe is not None or op.fd < 0:
            raise SmbError(STATUS_NOT_SUPPORTED)  # named pipes come with IPC$ support
        try:
            setter(req, op, buf)
        except fi.InfoError as exc:
            raise SmbError(exc.status) from None
        return STATUS_SUCCESS, _RESPONSE
    if info_type == SMB2_0_INFO_FILESYSTEM:
        return _set_fs(op, info_class)
    if info_type == SMB2_0_INFO_SECURITY:
        return _set_security(op, additional, buf)
    if info_type == SMB2_0_INFO_QUOTA:
        raise SmbError(STATUS_NOT_SUPPORTED)
    raise SmbError(STATUS_INVALID_PARAMETER)


def _require(op: Open, access: int) -> None:
    """3.3.5.21.1: the open must hold `access`, and the tree must be writable."""
    if not op.granted_access & access or not op.tree.writable:
        raise SmbError(STATUS_ACCESS_DENIED)


def _writable(op: Open) -> None:
    if not op.tree.writable:
        raise SmbError(STATUS_ACCESS_DENIED)


def _os_error(exc: OSError) -> SmbError:
    return SmbError(status_from_oserror(exc))


# -- FileBasicInformation (MS-FSA 2.1.5.15.2) -----------------------------------------------------

def _set_basic(req: Request, op: Open, buf) -> None:
    ctime, atime, mtime, change, attrs = fi.decode_basic(buf)
    _require(op, FILE_WRITE_ATTRIBUTES)
    link = reparse.link_of(op)
    if link is not None:
        _set_basic_on_link(op, link, atime, mtime, attrs)
        return
    new_attrs = None
    if attrs:
        if attrs & FILE_ATTRIBUTE_DIRECTORY and not op.is_dir:
            raise SmbError(STATUS_INVALID_PARAMETER)
        if attrs & FILE_ATTRIBUTE_TEMPORARY and op.is_dir:
            raise SmbError(STATUS_INVALID_PARAMETER)
        new_attrs = attrs & BASIC_SETTABLE_ATTRIBUTES  # FILE_ATTRIBUTE_NORMAL alone -> 0
    creation = ctime if ctime > 0 else None
    fd = op.fd
    try:
        if new_attrs is not None or creation is not None:
            stored = write_dos_attrs(fd, new_attrs, creation)
            if not stored and new_attrs is not None:
                _readonly_by_mode(fd, bool(new_attrs & FILE_ATTRIBUTE_READONLY))
        if atime > 0 or mtime > 0:
            st = os.fstat(fd)
            os.utime(fd, ns=(filetime_to_unix_ns(atime) if atime > 0 else st.st_atime_ns,
                             filetime_to_unix_ns(mtime) if mtime > 0 else st.st_mtime_ns))
        if change > 0:
            # the kernel owns ctime: remembered until the file changes (fs/change_time.py)
            change_time.remember(os.fstat(fd), change)
    except OSError as exc:
        raise _os_error(exc) from None


def _set_basic_on_link(op: Open, link, atime: int, mtime: int, attrs: int) -> None:
    """An Open of a symlink itself (fs/reparse.py; its descriptor is O_PATH): Linux keeps no
    user xattrs on symlinks, so attributes and CreationTime are accepted and not stored;
    times go to the link with utimensat(AT_SYMLINK_NOFOLLOW), never to its target. Clients
    send this before deleting a link (smbprotocol's remove, rmdir of a directory link)."""
    if attrs & FILE_ATTRIBUTE_DIRECTORY and not link.points_to_dir:
        raise SmbError(STATUS_INVALID_PARAMETER)
    if atime > 0 or mtime > 0:
        try:
            st = os.lstat(op.path)
            os.utime(op.path, ns=(filetime_to_unix_ns(atime) if atime > 0 else st.st_atime_ns,
                                  filetime_to_unix_ns(mtime) if mtime > 0 else st.st_mtime_ns),
                     follow_symlinks=False)
        except OSError as exc:
            raise _os_error(exc) from None


def _readonly_by_mode(fd: int, readonly: bool) -> None:
    """No xattrs here (vfat...): READONLY is the absence of the owner write bit."""
    st = os.fstat(fd)
    mode = _stat.S_IMODE(st.st_mode)
    want = mode & ~0o222 if readonly else mode | _stat.S_IWUSR
    if want != mode:
        try:
            os.fchmod(fd, want)
        except OSError as exc:  # vfat without "quiet" refuses chmod: keep going
            log.debug("read-only attribute by mode on fd %d: %s", fd, exc)


# -- sizes (MS-FSA 2.1.5.15.1, 2.1.5.15.4, 2.1.5.15.12) -------------------------------------------

def _set_end_of_file(req: Request, op: Open, buf) -> None:
    eof = fi.decode_end_of_file(buf)
    _require(op, FILE_WRITE_DATA)
    if op.is_dir:
        raise SmbError(STATUS_INVALID_PARAMETER)
    oplock_break.break_for(req.server, op, fsa.SET_EOF)  # MS-FSA 2.1.5.14: Level II -> none
    stream = streams.stream_of(op)
    if stream is not None:
        streams.set_size(op.fd, stream.name, eof)
        return
    try:
        # a plain ftruncate, except growing on FAT-like file systems: deferred (no zero-fill)
        deferred_size.set_end_of_file(req.server, op, eof)
    except OSError as exc:
        raise _os_error(exc) from None


def _set_allocation(req: Request, op: Open, buf) -> None:
    size = fi.decode_allocation(buf)
    _require(op, FILE_WRITE_DATA)
    if op.is_dir:
        raise SmbError(STATUS_INVALID_PARAMETER)
    oplock_break.break_for(req.server, op, fsa.SET_EOF)  # MS-FSA 2.1.5.14: Level II -> none
    stream = streams.stream_of(op)
    if stream is not None:
        if size < streams.stream_size(op.fd, stream.name):
            streams.set_size(op.fd, stream.name, size)  # below the data: truncates
        return
    try:
        deferred_size.set_allocation(req.server, op, size)
    except OSError as exc:
        raise _os_error(exc) from None


def _set_valid_data_length(req: Request, op: Open, buf) -> None:
    fi.decode_valid_data_length(buf)
    _require(op, FILE_WRITE_DATA)
    if op.is_dir:
        raise SmbError(STATUS_INVALID_PARAMETER)
    raise SmbError(STATUS_PRIVILEGE_NOT_HELD)


# -- disposition (MS-FSA 2.1.5.15.3) --------------------------------------------------------------

def _set_disposition(req: Request, op: Open, buf) -> None:
    delete = fi.decode_disposition(buf)
    _dispose(req, op, fi.FILE_DISPOSITION_DELETE if delete else 0)


def _set_disposition_ex(req: Request, op: Open, buf) -> None:
    _dispose(req, op, fi.decode_disposition_ex(buf))


def _dispose(req: Request, op: Open, flags: int) -> None:
    _require(op, DELETE)
    delete = bool(flags & fi.FILE_DISPOSITION_DELETE)
    if delete:
        # MS-FSA 2.1.5.14.3: another open's batch oplock is broken, and the delete waits
        oplock_break.break_for(req.server, op, fsa.DELETE, may_wait=oplock_break.may_wait(req))
    key = op.file_key
    if key is None:
        raise SmbError(STATUS_NOT_SUPPORTED)
    if delete:
        if not op.name:
            raise SmbError(STATUS_CANNOT_DELETE)  # never the share root
        attrs = 0
        if not flags & fi.FILE_DISPOSITION_IGNORE_READONLY_ATTRIBUTE:
            try:
                attrs = read_meta(op.fd).attributes
            except OSError as exc:
                raise _os_error(exc) from None
        refusal = delete_refusal(op.path, op.is_dir, attrs)
        if refusal:
            raise SmbError(refusal)
    if flags & fi.FILE_DISPOSITION_ON_CLOSE:
        op.delete_on_close = delete
    else:
        set_delete_pending(req.server, key, delete)


# -- rename and link (MS-FSA 2.1.5.15.11, 2.1.5.15.8) ---------------------------------------------

def _target(req: Request, op: Open,
            raw_name: str) -> tuple[str, str, str, os.stat_result | None]:
    """A rename/link target: (share-relative name, path as the client spelled its last
    component, path of the existing entry matching it ignoring case (else the same), lstat of
    that entry or None).

    Like Windows' open of the target directory (write access, sharing read and write), the
    target's parent must not be open by a handle that denies that: STATUS_SHARING_VIOLATION
    (smbtorture smb2.rename.*delete_access*)."""
    if raw_name.startswith(":"):
        raise SmbError(STATUS_NOT_SUPPORTED)  # stream renames: no alternate streams yet
    name = check_name(raw_name, leading_backslash_ok=True)
    tree = op.tree
    if not name:
        raise SmbError(STATUS_ACCESS_DENIED)  # the share root: an existing directory
    if is_vetoed(tree.share, name):
        raise SmbError(STATUS_ACCESS_DENIED)
    parent_name, last = split_name(name)
    parent, pst = resolve_stat(tree.root, parent_name)
    if pst is None or not _stat.S_ISDIR(pst.st_mode):
        raise SmbError(STATUS_OBJECT_PATH_NOT_FOUND)
    if share_conflict(FILE_WRITE_DATA, FILE_SHARE_READ | FILE_SHARE_WRITE,
                      req.server.opens.others((pst.st_dev, pst.st_ino))):
        raise SmbError(STATUS_SHARING_VIOLATION)
    exact = parent + "/" + last if parent != "/" else "/" + last
    path = exact
    st = _lstat(exact)
    if st is None:
        found = find_case(parent, last)
        if found is not None:
            path = parent + "/" + found if parent != "/" else "/" + found
            st = _lstat(path)
    return name, exact, path, st


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _os_error(exc) from None


def _check_replace(req: Request, path: str, st: os.stat_result, replace: bool) -> None:
    """MS-FSA: what an existing target allows."""
    if not replace:
        raise SmbError(STATUS_OBJECT_NAME_COLLISION)
    if _stat.S_ISDIR(st.st_mode):
        raise SmbError(STATUS_ACCESS_DENIED)
    if req.server.opens.others((st.st_dev, st.st_ino)) \
            or streams.stream_opens(req.server, (st.st_dev, st.st_ino)):
        raise SmbError(STATUS_ACCESS_DENIED)
    if not _stat.S_ISLNK(st.st_mode):
        try:
            if read_meta(path, st).attributes & FILE_ATTRIBUTE_READONLY:
                raise SmbError(STATUS_ACCESS_DENIED)
        except OSError as exc:
            raise _os_error(exc) from None


def _set_rename(req: Request, op: Open, buf) -> None:
    replace, root_dir, raw_name = fi.decode_rename(buf)
    _require(op, DELETE)
    if root_dir:
        raise SmbError(STATUS_INVALID_PARAMETER)  # MS-FSCC 2.4.42.2: 0 for network operations
    stream = streams.stream_of(op)
    if stream is not None:
        _rename_stream(req, op, stream, replace, raw_name)
        return
    if not op.name:
        raise SmbError(STATUS_ACCESS_DENIED)  # the share root stays where it is
    if streams.stream_opens(req.server, op.file_key):
        raise SmbError(STATUS_ACCESS_DENIED)  # a stream of it is open
    # MS-FSA 2.1.5.14.11: another open's batch oplock is broken, and the rename waits
    oplock_break.break_for(req.server, op, fsa.RENAME, may_wait=oplock_break.may_wait(req))
    name, exact, path, st = _target(req, op, raw_name)
    replaced = None
    if st is not None and (st.st_dev, st.st_ino) != op.file_key:
        _check_replace(req, path, st, replace)
        replaced = path
        deferred_size.forget(req.server, (st.st_dev, st.st_ino))
    # else: no target, or the source itself (a case-only rename): take the new spelling
    if exact == op.path:
        return  # renamed onto itself
    server = req.server
    if op.is_dir:
        prefix = op.path + "/"
        if any(o.path.startswith(prefix) for o in server.opens.by_id.values()):
            raise SmbError(STATUS_ACCESS_DENIED)  # open handles below this directory
    try:
        # POSIX rename replaces `exact` atomically; an entry spelled differently, or a file a
        # directory replaces (which rename(2) refuses), goes first.
        if replaced is not None and (replaced != exact or op.is_dir):
            os.unlink(replaced)
        os.rename(op.path, exact)
    except OSError as exc:
        raise _os_error(exc) from None
    old = op.path
    peers = server.opens.others(op.file_key) if op.file_key is not None else ()
    for o in (op, *peers):
        if o.path == old:
            o.path = exact
            o.name = name
            state = o.dir_state  # a QUERY_DIRECTORY scan in progress follows the move
            if state is not None and getattr(state, "path", None) == old:
                state.path = exact
                if getattr(state, "parent", None) is not None:
                    state.parent = os.path.dirname(exact)


def _rename_stream(req: Request, op: Open, stream: streams.StreamOpen, replace: bool,
                   raw_name: str) -> None:
    """MS-FSA 2.1.5.15.11.1 (see the module docstring)."""
    if not raw_name.startswith(":"):
        raise SmbError(STATUS_SHARING_VIOLATION)  # Windows' answer (smb2.streams.rename2)
    sname, sep, stype = raw_name[1:].partition(":")
    if raw_name.endswith(":") or (sep and stype.upper() != "$DATA") or not (sname or sep):
        raise SmbError(STATUS_INVALID_PARAMETER)
    if sname:
        try:
            streams.check_stream_name(sname)
        except SmbError:
            raise SmbError(STATUS_INVALID_PARAMETER) from None
    _writable(op)
    server = req.server
    fd = op.fd
    base_name = op.name.rpartition(":")[0]
    if not sname:
        _stream_to_default(req, op, stream, replace, base_name)
        return
    target = streams.find_stream(fd, sname)
    if target is not None and target.casefold() != stream.name.casefold():
        if not replace:
            raise SmbError(STATUS_OBJECT_NAME_COLLISION)
        if server.opens.others(streams.stream_key(stream.base_key, target)):
            raise SmbError(STATUS_SHARING_VIOLATION)
        if streams.stream_size(fd, target):
            raise SmbError(STATUS_INVALID_PARAMETER)
        if target != sname:
            streams.remove_stream(fd, target)  # replaced under the new spelling
    if sname == stream.name:
        return
    streams.rename_stream(fd, stream.name, sname)
    old_key = op.file_key
    new_key = streams.stream_key(stream.base_key, sname)
    pending = is_delete_pending(server, old_key)
    for o in list(server.opens.others(old_key)):
        streams.unregister(server, o)
        byte_locks.release_open(server, o)  # locks stay with the old key otherwise
        o.extra = streams.StreamOpen(sname, stream.base_key)
        o.name = base_name + ":" + sname
        streams.rekey(server, o, new_key)
        streams.register(server, o)
    if pending and old_key != new_key:
        set_delete_pending(server, old_key, False)
        set_delete_pending(server, new_key, True)


def _stream_to_default(req: Request, op: Open, stream: streams.StreamOpen, replace: bool,
                       base_name: str) -> None:
    """Rename a named stream to "::$DATA": its data becomes the file's."""
    server = req.server
    try:
        st = os.fstat(op.fd)
    except OSError as exc:
        raise _os_error(exc) from None
    if _stat.S_ISDIR(st.st_mode):
        raise SmbError(STATUS_INVALID_PARAMETER)  # a directory has no default data stream
    if server.opens.others(stream.base_key):
        raise SmbError(STATUS_SHARING_VIOLATION)
    if st.st_size:
        raise SmbError(STATUS_INVALID_PARAMETER if replace else STATUS_OBJECT_NAME_COLLISION)
    data = streams.read_stream(op.fd, stream.name)
    flags = os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        wfd = os.open(op.path, flags)
    except OSError as exc:
        raise _os_error(exc) from None
    try:
        wst = os.fstat(wfd)
        if (wst.st_dev, wst.st_ino) != stream.base_key:
            raise SmbError(STATUS_ACCESS_DENIED)  # the name holds another file now
        os.ftruncate(wfd, 0)
        written = 0
        while written < len(data):
            written += os.pwrite(wfd, data[written:], written)
        streams.remove_stream(wfd, stream.name)
    except OSError as exc:
        os.close(wfd)
        raise _os_error(exc) from None
    except BaseException:
        os.close(wfd)
        raise
    # The open now is an open of the file's default stream, on a read-write descriptor.
    streams.unregister(server, op)
    byte_locks.release_open(server, op)
    old_fd, op.fd = op.fd, wfd
    os.close(old_fd)
    op.extra = None
    op.name = base_name
    streams.rekey(server, op, stream.base_key)


def _set_link(req: Request, op: Open, buf) -> None:
    replace, root_dir, raw_name = fi.decode_link(buf)
    _writable(op)
    if root_dir or streams.stream_of(op) is not None:
        raise SmbError(STATUS_INVALID_PARAMETER)  # a stream has no links of its own
    if op.is_dir:
        raise SmbError(STATUS_FILE_IS_A_DIRECTORY)
    _name, exact, path, st = _target(req, op, raw_name)
    if st is not None:
        if (st.st_dev, st.st_ino) == op.file_key:
            if not replace:
                raise SmbError(STATUS_OBJECT_NAME_COLLISION)
            return  # already a link to this file
        _check_replace(req, path, st, replace)
    try:
        if st is not None:
            os.unlink(path)
        os.link(op.path, exact)
    except OSError as exc:
        if exc.errno in (errno.EPERM, errno.EOPNOTSUPP) and \
                not caps_for(op.tree.root).hard_links:
            raise SmbError(STATUS_NOT_SUPPORTED) from None  # FAT has no hard links
        raise _os_error(exc) from None


# -- per-handle state (MS-FSA 2.1.5.15.9, 2.1.5.15.7) ---------------------------------------------

def _set_position(req: Request, op: Open, buf) -> None:
    offset = fi.decode_position(buf)
    if op.mode & fi.FILE_NO_INTERMEDIATE_BUFFERING and offset % _SECTOR:
        raise SmbError(STATUS_INVALID_PARAMETER)
    op.position = offset


_SYNC = fi.FILE_SYNCHRONOUS_IO_ALERT | fi.FILE_SYNCHRONOUS_IO_NONALERT


def _set_mode(req: Request, op: Open, buf) -> None:
    mode = fi.decode_mode(buf)
    if bool(mode & _SYNC) != bool(op.mode & _SYNC):
        raise SmbError(STATUS_INVALID_PARAMETER)  # the synchronous mode is fixed at open
    new = op.mode
    if not new & fi.FILE_NO_INTERMEDIATE_BUFFERING:
        new = (new & ~fi.FILE_WRITE_THROUGH) | (mode & fi.FILE_WRITE_THROUGH)
    new = (new & ~fi.FILE_SEQUENTIAL_ONLY) | (mode & fi.FILE_SEQUENTIAL_ONLY)
    if new & _SYNC:
        new = (new & ~_SYNC) | (mode & _SYNC)
    op.mode = new


# -- extended attributes, and classes 2.2.39 lists that the store cannot take ---------------------

def _set_full_ea(req: Request, op: Open, buf) -> None:
    _require(op, FILE_WRITE_EA)  # 3.3.5.21.1
    if not streams.supported(op.tree.root):
        raise SmbError(STATUS_EAS_NOT_SUPPORTED)
    eas.apply(op.fd, eas.parse_full_ea_list(buf))


def _not_supported(req: Request, op: Open, buf) -> None:
    raise SmbError(STATUS_NOT_SUPPORTED)


_FILE_SETTERS = {
    fi.FILE_BASIC_INFORMATION: _set_basic,
    fi.FILE_RENAME_INFORMATION: _set_rename,
    fi.FILE_LINK_INFORMATION: _set_link,
    fi.FILE_DISPOSITION_INFORMATION: _set_disposition,
    fi.FILE_DISPOSITION_INFORMATION_EX: _set_disposition_ex,
    fi.FILE_POSITION_INFORMATION: _set_position,
    fi.FILE_MODE_INFORMATION: _set_mode,
    fi.FILE_ALLOCATION_INFORMATION: _set_allocation,
    fi.FILE_END_OF_FILE_INFORMATION: _set_end_of_file,
    fi.FILE_VALID_DATA_LENGTH_INFORMATION: _set_valid_data_length,
    fi.FILE_FULL_EA_INFORMATION: _set_full_ea,
    fi.FILE_SHORT_NAME_INFORMATION: _not_supported,
    fi.FILE_PIPE_INFORMATION: _not_supported,
}


# -- SMB2_0_INFO_FILESYSTEM (3.3.5.21.2), SMB2_0_INFO_SECURITY (3.3.5.21.3) -----------------------

def _set_fs(op: Open, info_class: int):
    if info_class in _FS_SET_CLASSES:
        _require(op, FILE_WRITE_DATA)
        raise SmbError(STATUS_NOT_SUPPORTED)
    if info_class in _FS_SET_UNLISTED:
        raise SmbError(STATUS_NOT_SUPPORTED)
    raise SmbError(STATUS_INVALID_INFO_CLASS)


def _set_security(op: Open, additional: int, buf: memoryview):
    access = op.granted_access
    if additional & (OWNER_SECURITY_INFORMATION | GROUP_SECURITY_INFORMATION
                     | LABEL_SECURITY_INFORMATION) and not access & WRITE_OWNER:
        raise SmbError(STATUS_ACCESS_DENIED)
    if additional & DACL_SECURITY_INFORMATION and not access & WRITE_DAC:
        raise SmbError(STATUS_ACCESS_DENIED)
    if additional & SACL_SECURITY_INFORMATION and not access & ACCESS_SYSTEM_SECURITY:
        raise SmbError(STATUS_ACCESS_DENIED)
    _writable(op)
    if op.pipe is not None or op.fd < 0:
        raise SmbError(STATUS_NOT_SUPPORTED)
    # MS-FSA 2.1.5.16: a malformed descriptor, or one without the owner / group it is meant
    # to set, is refused; the parts named are merged into the file's descriptor (the stored
    # one, else the one synthesized from its mode) and the whole is stored (fs/acl.py).
    try:
        new = parse_sd(buf)
    except InvalidDescriptor:
        raise SmbError(STATUS_INVALID_SECURITY_DESCR) from None
    parts = additional & (OWNER_SECURITY_INFORMATION | GROUP_SECURITY_INFORMATION
                          | DACL_SECURITY_INFORMATION)  # a SACL never gets here; no labels
    if parts & OWNER_SECURITY_INFORMATION and new.owner is None:
        raise SmbError(STATUS_INVALID_OWNER)
    if parts & GROUP_SECURITY_INFORMATION and new.group is None:
        raise SmbError(STATUS_INVALID_PRIMARY_GROUP)
    if not parts:
        return STATUS_SUCCESS, _RESPONSE
    try:
        st = os.fstat(op.fd)
        base = descriptor_of(op.fd, st, token_for(op.session), op.path)[0]
        store_sd(op.fd, merge_sd(base, new, parts), op.path)
    except OSError as exc:
        if xattrs_unsupported(exc):
            raise SmbError(STATUS_INVALID_DEVICE_REQUEST) from None  # no place to keep it
        raise _os_error(exc) from None
    return STATUS_SUCCESS, _RESPONSE

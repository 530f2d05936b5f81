"""OSError errno -> NTSTATUS, in one place for every handler (MS-ERREF 2.3.1).

`status_from_oserror(exc)` is a pure mapping. Errnos that an SMB client causes in normal use
(missing names, collisions, permissions, full disk...) are "expected"; anything else usually
means a server or disk problem, and `log_unexpected()` logs it at WARNING once per
(errno, operation) pair, then at DEBUG, so a failing USB disk cannot flood the log.
"""

from __future__ import annotations

import errno
import logging

from ..status import (
    STATUS_ACCESS_DENIED, STATUS_DIRECTORY_NOT_EMPTY, STATUS_DISK_FULL,
    STATUS_FILE_IS_A_DIRECTORY, STATUS_INVALID_HANDLE, STATUS_INVALID_PARAMETER,
    STATUS_MEDIA_WRITE_PROTECTED, STATUS_NO_SUCH_DEVICE,
    STATUS_NOT_SAME_DEVICE, STATUS_NOT_SUPPORTED, STATUS_OBJECT_NAME_COLLISION,
    STATUS_OBJECT_NAME_INVALID, STATUS_OBJECT_NAME_NOT_FOUND, STATUS_OBJECT_PATH_NOT_FOUND,
    STATUS_SHARING_VIOLATION, STATUS_TOO_MANY_OPENED_FILES, STATUS_UNSUCCESSFUL,
)

log = logging.getLogger("ksmbd.fs")

_MAP: dict[int, int] = {
    errno.ENOENT: STATUS_OBJECT_NAME_NOT_FOUND,
    errno.ENOTDIR: STATUS_OBJECT_PATH_NOT_FOUND,
    errno.EEXIST: STATUS_OBJECT_NAME_COLLISION,
    errno.EACCES: STATUS_ACCESS_DENIED,
    errno.EPERM: STATUS_ACCESS_DENIED,
    errno.ENOSPC: STATUS_DISK_FULL,
    errno.EDQUOT: STATUS_DISK_FULL,
    errno.EFBIG: STATUS_DISK_FULL,
    errno.EISDIR: STATUS_FILE_IS_A_DIRECTORY,
    errno.ENOTEMPTY: STATUS_DIRECTORY_NOT_EMPTY,
    errno.EROFS: STATUS_MEDIA_WRITE_PROTECTED,
    errno.ENAMETOOLONG: STATUS_OBJECT_NAME_INVALID,
    errno.ELOOP: STATUS_ACCESS_DENIED,  # a symlink refused by O_NOFOLLOW, or a loop
    errno.EMFILE: STATUS_TOO_MANY_OPENED_FILES,
    errno.ENFILE: STATUS_TOO_MANY_OPENED_FILES,
    errno.EXDEV: STATUS_NOT_SAME_DEVICE,
    errno.EBUSY: STATUS_SHARING_VIOLATION,
    errno.ETXTBSY: STATUS_SHARING_VIOLATION,
    errno.EINVAL: STATUS_INVALID_PARAMETER,
    errno.EBADF: STATUS_INVALID_HANDLE,
    errno.ENODEV: STATUS_NO_SUCH_DEVICE,
    errno.ENXIO: STATUS_NO_SUCH_DEVICE,
    errno.EOPNOTSUPP: STATUS_NOT_SUPPORTED,
    errno.ENOSYS: STATUS_NOT_SUPPORTED,
}
if hasattr(errno, "ENOTSUP"):
    _MAP.setdefault(errno.ENOTSUP, STATUS_NOT_SUPPORTED)

# What clients cause in normal use; anything else is worth a WARNING.
EXPECTED_ERRNOS = frozenset((
    errno.ENOENT, errno.ENOTDIR, errno.EEXIST, errno.EACCES, errno.EPERM, errno.EISDIR,
    errno.ENOTEMPTY, errno.ENAMETOOLONG, errno.ELOOP, errno.EXDEV, errno.EBUSY,
    errno.ETXTBSY, errno.ENOSPC, errno.EDQUOT, errno.EFBIG,
))

_logged: set[tuple[int | None, str]] = set()
_MAX_LOGGED = 256


def status_from_oserror(exc: OSError) -> int:
    """The NTSTATUS for an OSError; STATUS_UNSUCCESSFUL for errnos without a better match."""
    return _MAP.get(exc.errno, STATUS_UNSUCCESSFUL) if exc.errno is not None \
        else STATUS_UNSUCCESSFUL


def log_unexpected(exc: OSError, what: str) -> None:
    """Log an OSError a client would not normally cause: WARNING once per (errno, what)."""
    if exc.errno in EXPECTED_ERRNOS:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s: %s", what, exc)
        return
    key = (exc.errno, what)
    if key in _logged:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s: %s", what, exc)
        return
    if len(_logged) < _MAX_LOGGED:
        _logged.add(key)
    log.warning("%s: %s (further errors of this kind are logged at DEBUG)", what, exc)


def oserror_to_status(exc: OSError, what: str) -> int:
    """`status_from_oserror` plus `log_unexpected`: what a handler's except clause wants."""
    log_unexpected(exc, what)
    return status_from_oserror(exc)

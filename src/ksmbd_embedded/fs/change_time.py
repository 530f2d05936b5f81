"""ChangeTime set by a client (FileBasicInformation), kept until the file changes again.

POSIX gives no way to set a file's ctime: the kernel owns it. Windows lets SET_INFO
FileBasicInformation set ChangeTime (MS-FSA 2.1.5.15.2), and clients read it back (smbtorture
checks it when it sets up a file). So a value a client sets is remembered together with the
file's ctime right after the SET_INFO; as long as the file's ctime is still that one, the
remembered value is what every reply reports, and the first real change of the file (which
moves its ctime) makes the real ctime win again, as an NTFS change would.

In memory only (a restart forgets it, like an NTFS change right after would); bounded.
"""

from __future__ import annotations

import os

MAX_ENTRIES = 4096

# (st_dev, st_ino) -> (ctime_ns the file had right after the set, ChangeTime FILETIME)
_remembered: dict[tuple[int, int], tuple[int, int]] = {}


def remember(st: os.stat_result, change_time: int) -> None:
    """A client set ChangeTime; `st` is the file's stat after every other update of that
    SET_INFO (DOS attributes, times)."""
    key = (st.st_dev, st.st_ino)
    _remembered.pop(key, None)
    if len(_remembered) >= MAX_ENTRIES:
        _remembered.pop(next(iter(_remembered)))  # oldest first (insertion order)
    _remembered[key] = (st.st_ctime_ns, change_time)


def reported(st: os.stat_result, real: int) -> int:
    """ChangeTime to report for a file whose real ctime maps to FILETIME `real`."""
    if not _remembered:
        return real
    entry = _remembered.get((st.st_dev, st.st_ino))
    if entry is None:
        return real
    if entry[0] != st.st_ctime_ns:  # changed since: the set value is stale
        _remembered.pop((st.st_dev, st.st_ino), None)
        return real
    return entry[1]

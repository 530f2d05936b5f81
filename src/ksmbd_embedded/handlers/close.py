"""CLOSE (MS-SMB2 2.2.15, 2.2.16, 3.3.5.10): the one way an Open ends from the client's side.

Everything an Open leaves behind (share modes, byte-range locks, delete-on-close, a deferred
end of file on FAT-like file systems, its descriptor) is undone in fs/share_modes.close_open,
which logoff, tree disconnect and a dropped connection use too. SMB2_CLOSE_FLAG_POSTQUERY_ATTRIB
answers the file's times, sizes and attributes as they are after the close.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from .. import header as h
from ..fs import deferred_size, reparse, streams
from ..fs.dos_attrs import read_meta
from ..fs.errno_status import log_unexpected
from ..fs.share_modes import close_open
from ..fs.share_paths import hides_dot_files, split_name
from ..status import STATUS_SUCCESS

if TYPE_CHECKING:
    from ..request import Request

# StructureSize, Flags, Reserved, FileId (persistent, volatile)  (2.2.15)
_CLOSE_REQUEST = struct.Struct("<HHIQQ")
# StructureSize, Flags, Reserved, CreationTime, LastAccessTime, LastWriteTime, ChangeTime,
# AllocationSize, EndofFile, FileAttributes  (2.2.16, 60 bytes)
_CLOSE_RESPONSE = struct.Struct("<HHIQQQQQQI")
_CLOSE_EMPTY = _CLOSE_RESPONSE.pack(60, 0, 0, 0, 0, 0, 0, 0, 0, 0)

CLOSE_FLAG_POSTQUERY_ATTRIB = 0x0001


def handle_close(req: Request):
    """MS-SMB2 3.3.5.10."""
    _, flags, _, persistent, volatile = _CLOSE_REQUEST.unpack_from(req.view, h.HEADER_SIZE)
    op = req.open_for(persistent, volatile)
    body = _CLOSE_EMPTY
    # A deferred end of file (FAT-like file systems) reaches the disk in close_open, on the
    # last close; the attributes report it already.
    if flags & CLOSE_FLAG_POSTQUERY_ATTRIB and op.fd >= 0:
        try:
            meta = read_meta(op.fd, None, hides_dot_files(op.tree.share),
                             split_name(op.name)[1])
            deferred_size.adjust_meta(deferred_size.table(req.server), op.file_key, meta)
            stream = streams.stream_of(op)
            if stream is not None:  # the file's times and attributes, the stream's size
                meta.end_of_file = streams.stream_size(op.fd, stream.name)
                meta.allocation_size = streams.allocation(meta.end_of_file)
            link = reparse.link_of(op)
            if link is not None:
                reparse.adjust_meta(meta, link)
            body = _CLOSE_RESPONSE.pack(60, CLOSE_FLAG_POSTQUERY_ATTRIB, 0, meta.creation_time,
                                        meta.last_access_time, meta.last_write_time,
                                        meta.change_time, meta.allocation_size,
                                        meta.end_of_file, meta.attributes)
        except OSError as exc:
            log_unexpected(exc, "close: query attributes")
    close_open(req.server, op)
    if req.chain.open is op:
        req.chain.open = None  # later related requests get STATUS_FILE_CLOSED
    return STATUS_SUCCESS, body

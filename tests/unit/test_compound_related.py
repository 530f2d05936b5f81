"""Related compounds after a failure (MS-SMB2 3.3.5.2.7.2): the requests that use the FileId
of a failed CREATE get the CREATE's status, all of them, not only the next one (smbtorture
smb2.compound.related4, related7, related8); a related request with FileId { all ones }
when nothing before it in the chain carried or generated a FileId is STATUS_INVALID_HANDLE;
one that needs no FileId (another CREATE) is processed."""

import struct

from test_compound_padding import _tree
from test_connection import header, send, status_of
from test_create import create_body

from ksmbd_embedded import header as h
from ksmbd_embedded.status import (
    STATUS_INVALID_HANDLE, STATUS_OBJECT_NAME_NOT_FOUND, STATUS_SUCCESS,
)

ALL_ONES = 2**64 - 1
FSCTL_CREATE_OR_GET_OBJECT_ID = 0x000900C0


def _read(fid=(ALL_ONES, ALL_ONES)) -> bytes:
    # 2.2.19: StructureSize 49, Padding, Flags, Length, Offset, FileId, MinimumCount, Channel,
    # RemainingBytes, ReadChannelInfoOffset/Length, one byte of Buffer
    return struct.pack("<HBBIQQQIIIHH", 49, 0x50, 0, 1, 0, *fid, 0, 0, 0, 0, 0) + b"\x00"


def _close(fid=(ALL_ONES, ALL_ONES)) -> bytes:
    return struct.pack("<HHIQQ", 24, 0, 0, *fid)


def _ioctl(ctl: int, fid=(ALL_ONES, ALL_ONES), max_out: int = 64) -> bytes:
    return struct.pack("<HHIQQIIIIIIII", 57, 0, ctl, *fid, 0, 0, 0, 0, 0, max_out, 1, 0) + \
        b"\x00"


def _compound(signer, sid, tree_id, msg_id, parts):
    """One message of `parts` [(command, body)], every one after the first related."""
    out = bytearray()
    for i, (command, body) in enumerate(parts):
        req = bytearray(header(command, msg_id + i, session_id=sid, tree_id=tree_id,
                               flags=h.FLAGS_RELATED_OPERATIONS if i else 0)) + body
        if i != len(parts) - 1:
            req += bytes(-len(req) % 8)
            struct.pack_into("<I", req, 20, len(req))
        signer.sign(req)
        out += req
    return bytes(out)


def _responses(resp: bytes):
    """[(command, status, session id, body)] of a compound response."""
    out = []
    off = 0
    while True:
        nxt = struct.unpack_from("<I", resp, off + 20)[0]
        end = off + nxt if nxt else len(resp)
        msg = resp[off:end]
        out.append((struct.unpack_from("<H", msg, 12)[0], status_of(msg),
                    struct.unpack_from("<Q", msg, 40)[0], msg[64:]))
        if not nxt:
            return out
        off = end


def test_a_failed_create_fails_every_related_request_with_its_status(tmp_path):
    conn, sid, signer, msg_id, tree_id = _tree(tmp_path)
    resp = send(conn, _compound(signer, sid, tree_id, msg_id, [
        (h.CREATE, create_body("missing.txt")),
        (h.READ, _read()),
        (h.IOCTL, _ioctl(FSCTL_CREATE_OR_GET_OBJECT_ID)),
        (h.CLOSE, _close()),
    ]))
    got = _responses(resp)
    assert [(c, s) for c, s, _, _ in got] == [
        (h.CREATE, STATUS_OBJECT_NAME_NOT_FOUND), (h.READ, STATUS_OBJECT_NAME_NOT_FOUND),
        (h.IOCTL, STATUS_OBJECT_NAME_NOT_FOUND), (h.CLOSE, STATUS_OBJECT_NAME_NOT_FOUND)]
    # each an ERROR response of the session the chain runs in
    assert all(s == sid and body[:2] == b"\x09\x00" for _, _, s, body in got)


def test_a_related_create_after_a_failed_one_runs_and_gives_the_file_id(tmp_path):
    conn, sid, signer, msg_id, tree_id = _tree(tmp_path)
    resp = send(conn, _compound(signer, sid, tree_id, msg_id, [
        (h.CREATE, create_body("missing.txt")),
        (h.CREATE, create_body("hello.txt")),
        (h.READ, _read()),
        (h.CLOSE, _close()),
    ]))
    assert [(c, s) for c, s, _, _ in _responses(resp)] == [
        (h.CREATE, STATUS_OBJECT_NAME_NOT_FOUND), (h.CREATE, STATUS_SUCCESS),
        (h.READ, STATUS_SUCCESS), (h.CLOSE, STATUS_SUCCESS)]
    assert not conn.server.opens.by_id  # the CLOSE closed what the second CREATE opened


def test_related_file_id_without_any_before_it_is_invalid_handle(tmp_path):
    conn, sid, signer, msg_id, tree_id = _tree(tmp_path)
    unc = "\\\\srv\\share".encode("utf-16-le")
    resp = send(conn, _compound(signer, sid, 0, msg_id, [
        (h.TREE_CONNECT, struct.pack("<HHHH", 9, 0, 72, len(unc)) + unc),
        (h.READ, _read()),
        (h.CLOSE, _close()),
    ]))
    assert [(c, s) for c, s, _, _ in _responses(resp)] == [
        (h.TREE_CONNECT, STATUS_SUCCESS), (h.READ, STATUS_INVALID_HANDLE),
        (h.CLOSE, STATUS_INVALID_HANDLE)]

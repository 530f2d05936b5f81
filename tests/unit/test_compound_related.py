"""Related compounds after a failure (MS-SMB2 3.3.5.2.7.2): the requests that use the FileId
of a failed CREATE get the CREATE's status, all of them, not only the next one (smbtorture
smb2.compound.related4, related7, related8); a related request with FileId { all ones }
when nothing before it in the chain carried or generated a FileId is STATUS_INVALID_HANDLE;
one that needs no FileId (another CREATE) is processed. A related request after a
TREE_DISCONNECT (or LOGOFF) in the same chain finds no tree (session): it fails, and no Open
is ever added to a tree already disconnected (fuzz corpus 6ec951bdf032)."""

import struct

from test_compound_padding import _tree
from test_connection import header, send, status_of
from test_create import create_body

from info_fixtures import Env
from ksmbd_embedded import header as h
from ksmbd_embedded.handlers.create import handle_create
from ksmbd_embedded.handlers.tree_connect import close_tree
from ksmbd_embedded.status import (
    STATUS_INVALID_HANDLE, STATUS_NETWORK_NAME_DELETED, STATUS_OBJECT_NAME_NOT_FOUND,
    STATUS_SHARING_VIOLATION, STATUS_SUCCESS, STATUS_USER_SESSION_DELETED,
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


def _tree_connect_body(share: str) -> bytes:
    unc = f"\\\\srv\\{share}".encode("utf-16-le")
    return struct.pack("<HHHH", 9, 0, 72, len(unc)) + unc


def _connect(conn, signer, sid, msg_id, share):
    req = header(h.TREE_CONNECT, msg_id, session_id=sid) + _tree_connect_body(share)
    signer.sign(req)
    resp = send(conn, req)
    assert status_of(resp) == STATUS_SUCCESS
    return struct.unpack_from("<Q", resp, 32)[0] >> 32


def test_related_create_after_tree_disconnect_fails_and_opens_nothing(tmp_path):
    conn, sid, signer, msg_id, tree_id = _tree(tmp_path)
    session = conn.sessions[sid]
    old_tree = session.trees[tree_id]
    resp = send(conn, _compound(signer, sid, tree_id, msg_id, [
        (h.TREE_DISCONNECT, struct.pack("<HH", 4, 0)),
        (h.CREATE, create_body("hello.txt", share=0)),  # ShareAccess 0: would lock it out
        (h.READ, _read()),
        (h.CLOSE, _close()),
    ]))
    # 3.3.5.2.11: the previous request's TreeId is no longer in Session.TreeConnectTable
    assert [(c, s) for c, s, _, _ in _responses(resp)] == [
        (h.TREE_DISCONNECT, STATUS_SUCCESS), (h.CREATE, STATUS_NETWORK_NAME_DELETED),
        (h.READ, STATUS_NETWORK_NAME_DELETED), (h.CLOSE, STATUS_NETWORK_NAME_DELETED)]
    assert not conn.server.opens.by_id and old_tree.open_count == 0 and old_tree.closed
    assert tree_id not in session.trees
    # the file is not locked out: a new tree opens it with ShareAccess 0, and only once
    new_tree = _connect(conn, signer, sid, msg_id + 4, "share")
    resp = send(conn, _compound(signer, sid, new_tree, msg_id + 5, [
        (h.CREATE, create_body("hello.txt", share=0))]))
    assert status_of(resp) == STATUS_SUCCESS
    resp = send(conn, _compound(signer, sid, new_tree, msg_id + 6, [
        (h.CREATE, create_body("hello.txt", share=0))]))
    assert status_of(resp) == STATUS_SHARING_VIOLATION
    assert len(conn.server.opens.by_id) == 1


def test_related_pipe_create_after_ipc_tree_disconnect_fails(tmp_path):
    conn, sid, signer, msg_id, _ = _tree(tmp_path)
    ipc = _connect(conn, signer, sid, msg_id, "IPC$")
    resp = send(conn, _compound(signer, sid, ipc, msg_id + 1, [
        (h.TREE_DISCONNECT, struct.pack("<HH", 4, 0)),
        (h.CREATE, create_body("srvsvc")),
    ]))
    assert [(c, s) for c, s, _, _ in _responses(resp)] == [
        (h.TREE_DISCONNECT, STATUS_SUCCESS), (h.CREATE, STATUS_NETWORK_NAME_DELETED)]
    assert not conn.server.opens.by_id


def test_related_create_after_a_tree_connect_and_disconnect_of_another_tree_runs(tmp_path):
    # the chain's tree is the previous request's: a TREE_CONNECT gives a new, live one
    conn, sid, signer, msg_id, tree_id = _tree(tmp_path)
    resp = send(conn, _compound(signer, sid, tree_id, msg_id, [
        (h.TREE_DISCONNECT, struct.pack("<HH", 4, 0)),
        (h.TREE_CONNECT, _tree_connect_body("share")),
        (h.CREATE, create_body("hello.txt")),
        (h.CLOSE, _close()),
    ]))
    assert [(c, s) for c, s, _, _ in _responses(resp)] == [
        (h.TREE_DISCONNECT, STATUS_SUCCESS), (h.TREE_CONNECT, STATUS_SUCCESS),
        (h.CREATE, STATUS_SUCCESS), (h.CLOSE, STATUS_SUCCESS)]
    assert not conn.server.opens.by_id


def test_related_create_after_logoff_fails_and_opens_nothing(tmp_path):
    conn, sid, signer, msg_id, tree_id = _tree(tmp_path)
    resp = send(conn, _compound(signer, sid, tree_id, msg_id, [
        (h.LOGOFF, struct.pack("<HH", 4, 0)),
        (h.CREATE, create_body("hello.txt", share=0)),
    ]))
    got = [(c, s) for c, s, _, _ in _responses(resp)]
    assert got == [(h.LOGOFF, STATUS_SUCCESS), (h.CREATE, STATUS_USER_SESSION_DELETED)]
    assert not conn.server.opens.by_id


def test_create_never_adds_an_open_to_a_disconnected_tree(tmp_path):
    # whatever hands a request a tree already closed (close_tree has run, so nothing would
    # close an Open added now), CREATE refuses it before opening anything
    for share_dir, ipc in ((tmp_path / "a", False), (tmp_path / "b", True)):
        share_dir.mkdir()
        (share_dir / "hello.txt").write_text("hi")
        env = Env(share_dir)
        if ipc:
            env.tree.share = None
            env.tree.is_ipc = True
        close_tree(env.server, env.tree)
        name = "srvsvc" if ipc else "hello.txt"
        assert env.call(handle_create, h.CREATE, create_body(name, share=0))[0] == \
            STATUS_NETWORK_NAME_DELETED
        assert not env.server.opens.by_id and env.tree.open_count == 0

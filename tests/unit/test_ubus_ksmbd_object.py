"""The `ksmbd` ubus object's methods, called without any socket (KsmbdObject.call)."""

import os
import stat

import pytest

from ksmbd_embedded import header as h
from ksmbd_embedded.config import config_from_text
from ksmbd_embedded.connection import Connection
from ksmbd_embedded.fs import byte_locks
from ksmbd_embedded.opens import Open
from ksmbd_embedded.pwddb import PasswordDb, nt_hash
from ksmbd_embedded.server import ServerState
from ksmbd_embedded.session import VALID, Session
from ksmbd_embedded.tree import TreeConnect
from ksmbd_embedded.ubus import blob
from ksmbd_embedded.ubus import message as m
from ksmbd_embedded.ubus.ksmbd_object import KsmbdObject

CONFIG = """
config globals
\toption workgroup 'WG'

config share
\toption name 'media'
\toption path '{path}'
\toption read_only 'no'

config share
\toption name 'gone'
\toption path '{missing}'
"""


@pytest.fixture
def state(tmp_path):
    share = tmp_path / "media"
    share.mkdir()
    (share / "a.txt").write_bytes(b"hello")
    missing = tmp_path / "missing"
    missing.mkdir()
    cfg_path = tmp_path / "ksmbd.uci"
    cfg_path.write_text(CONFIG.format(path=share, missing=missing))
    cfg = config_from_text(cfg_path.read_text(), str(cfg_path))
    missing.rmdir()  # a share whose disk went away
    db_path = tmp_path / "ksmbdpwd.db"
    db = PasswordDb()
    db.set("alice", nt_hash("alice-pw"))
    db.save(db_path)
    st = ServerState(cfg, db, str(db_path), [str(cfg_path)])
    return st


def add_session(state, user="alice", peer="192.0.2.7:50000", dialect=h.SMB3_11, cipher=2):
    conn = Connection(state, peer, state.now())
    conn.dialect = dialect
    conn.cipher_id = cipher
    state.connections.add(conn)
    sid = state.new_session_id()
    s = Session(sid, conn, state.now())
    s.state = VALID
    s.user = user
    s.signing_required = True
    conn.sessions[sid] = s
    state.sessions[sid] = s
    root = state.share_roots["media"]
    tree = TreeConnect(1, s, state.config.share("media"), True, False, root)
    s.add_tree(tree)
    return conn, s, tree


def add_open(state, session, tree, name="a.txt", access=0x0012019F):
    path = os.path.join(tree.root, name)
    fd = os.open(path, os.O_RDWR)
    op = Open(session, tree, fd, path, name, False, access, 7, 0)
    st = os.fstat(fd)
    op.file_key = (st.st_dev, st.st_ino)
    state.opens.add(op)
    return op


def call(state, method, args=None):
    return KsmbdObject(state).call(method, args or {})


def test_signatures_name_every_method_with_blobmsg_types():
    sig = KsmbdObject.SIGNATURES
    assert set(sig) == {"status", "sessions", "open_files", "shares", "disconnect",
                        "close_file", "reload", "users", "user_add", "user_del", "user_passwd"}
    assert sig["user_add"] == {"name": blob.BLOBMSG_TYPE_STRING,
                               "password": blob.BLOBMSG_TYPE_STRING}
    # every reply and signature must be encodable as blobmsg
    blob.encode_members(sig)


def test_unknown_method_and_non_object_args(state):
    assert call(state, "nosuch") == (m.UBUS_STATUS_METHOD_NOT_FOUND, None)
    status, reply = KsmbdObject(state).call("users", ["x"])
    assert status == m.UBUS_STATUS_INVALID_ARGUMENT


def test_status_counts(state):
    conn, s, tree = add_session(state)
    add_open(state, s, tree)
    state.bytes_read = 10
    state.bytes_written = 2**60  # beyond what JavaScript numbers keep exactly
    status, reply = call(state, "status")
    assert status == m.UBUS_STATUS_OK
    assert reply["version"]
    assert reply["connections"] == 1 and reply["sessions"] == 1
    assert reply["trees"] == 1 and reply["opens"] == 1
    assert reply["bytes_read"] == 10 and reply["bytes_written"] == str(2**60)
    assert reply["dialects"] == {"SMB3_11": 1}
    assert reply["ciphers"] == {"AES-128-GCM": 1}
    assert reply["uptime"] >= 0 and reply["listen"] == []  # no loop: no listeners
    blob.encode_members(reply)


def test_sessions(state):
    conn, s, tree = add_session(state)
    add_open(state, s, tree)
    status, reply = call(state, "sessions")
    assert status == 0
    (entry,) = reply["sessions"]
    assert entry["id"] == s.session_id and entry["user"] == "alice"
    assert entry["client"] == "192.0.2.7:50000" and entry["dialect"] == "SMB3_11"
    assert entry["signing"] is True and entry["encryption"] is False
    assert entry["trees"] == ["media"] and entry["open_count"] == 1
    assert entry["idle"] >= 0
    blob.encode_members(reply)


def test_open_files_with_locks(state):
    conn, s, tree = add_session(state)
    op = add_open(state, s, tree)
    assert byte_locks.try_lock(state, op, 0, 10, True) == 0
    assert byte_locks.try_lock(state, op, 2**63, 2**64 - 1 - 2**63, False) == 0
    status, reply = call(state, "open_files")
    assert status == 0
    (entry,) = reply["open_files"]
    assert entry["id"] == op.volatile_id and entry["share"] == "media"
    assert entry["path"] == "a.txt" and entry["session"] == s.session_id
    assert "read" in entry["access"] and "write" in entry["access"]
    assert entry["locks"][0] == {"offset": 0, "length": 10, "exclusive": True}
    assert entry["locks"][1]["offset"] == str(2**63)
    blob.encode_members(reply)


def test_shares(state):
    add_session(state)
    status, reply = call(state, "shares")
    assert status == 0
    media, gone = reply["shares"]
    assert media["name"] == "media" and media["connected"] == 1 and media["available"]
    assert isinstance(media["fs_type"], str) and media["fs_type"]
    assert isinstance(media["total"], (int, str)) and int(media["total"]) > 0
    assert int(media["free"]) <= int(media["total"])
    assert gone["available"] is False and gone["connected"] == 0 and gone["error"]
    blob.encode_members(reply)


def test_users_and_user_management_write_the_db(state):
    db_path = state.pwddb_path
    assert call(state, "users") == (0, {"users": [{"name": "alice", "sessions": 0}]})
    assert call(state, "user_add", {"name": "carol", "password": "c-pw"}) == (0, None)
    assert PasswordDb.load(db_path).get("carol") == nt_hash("c-pw")
    assert state.pwddb.get("carol") == nt_hash("c-pw")  # the server's copy follows
    assert stat.S_IMODE(os.stat(db_path).st_mode) == 0o600
    status, reply = call(state, "user_add", {"name": "CAROL", "password": "x"})
    assert status == m.UBUS_STATUS_INVALID_ARGUMENT and "exists" in reply["error"]
    assert call(state, "user_passwd", {"name": "Carol", "password": "new"}) == (0, None)
    assert state.pwddb.get("carol") == nt_hash("new")
    assert state.pwddb.names() == ["alice", "carol"]  # spelling kept
    assert call(state, "user_del", {"name": "carol"}) == (0, None)
    assert "carol" not in PasswordDb.load(db_path) and "carol" not in state.pwddb
    assert call(state, "user_del", {"name": "carol"})[0] == m.UBUS_STATUS_NOT_FOUND
    assert call(state, "user_passwd", {"name": "zed", "password": "p"})[0] == \
        m.UBUS_STATUS_NOT_FOUND


@pytest.mark.parametrize("method,args", [
    ("user_add", {}),
    ("user_add", {"name": "x"}),
    ("user_add", {"name": 5, "password": "p"}),
    ("user_add", {"name": "a:b", "password": "p"}),
    ("user_add", {"name": "", "password": "p"}),
    ("user_add", {"name": "x" * 48, "password": "p"}),
    ("user_add", {"name": "x", "password": "p" * 129}),
    ("user_passwd", {"name": "alice"}),
    ("user_del", {"name": None}),
    ("disconnect", {}),
    ("disconnect", {"session": "abc"}),
    ("disconnect", {"session": True}),
    ("close_file", {"id": 1.5}),
    ("close_file", {}),
])
def test_bad_arguments_are_invalid_argument(state, method, args):
    status, reply = call(state, method, args)
    assert status == m.UBUS_STATUS_INVALID_ARGUMENT
    assert reply["error"]
    assert state.pwddb.names() == ["alice"]


def test_disconnect_without_loop_ends_the_session(state):
    conn, s, tree = add_session(state)
    op = add_open(state, s, tree)
    assert call(state, "disconnect", {"session": s.session_id + 2})[0] == m.UBUS_STATUS_NOT_FOUND
    assert call(state, "disconnect", {"session": hex(s.session_id)}) == (0, None)
    assert s.session_id not in state.sessions and op.fd == -1 and len(state.opens) == 0


def test_disconnect_uses_the_loop(state):
    conn, s, tree = add_session(state)
    dropped = []

    class FakeLoop:
        listeners = ()

        def disconnect(self, c, reason):
            dropped.append((c, reason))
            return True

    state.loop = FakeLoop()
    assert call(state, "disconnect", {"session": s.session_id}) == (0, None)
    assert dropped and dropped[0][0] is conn


def test_close_file_closes_like_close(state):
    conn, s, tree = add_session(state)
    op = add_open(state, s, tree)
    other = add_open(state, s, tree)
    assert byte_locks.try_lock(state, op, 0, 10, True) == 0
    assert call(state, "close_file", {"id": op.volatile_id}) == (0, None)
    assert state.opens.get(op.volatile_id) is None and op.fd == -1
    assert tree.open_count == 1
    # its lock went with it: the other open may lock the range now
    assert byte_locks.try_lock(state, other, 0, 10, True) == 0
    assert call(state, "close_file", {"id": op.volatile_id})[0] == m.UBUS_STATUS_NOT_FOUND


def test_reload_rereads_config_and_reports_errors(state, tmp_path):
    cfg_path = tmp_path / "ksmbd.uci"
    (tmp_path / "missing").mkdir()
    text = cfg_path.read_text()
    cfg_path.write_text(text + "\nconfig share\n\toption name 'extra'\n"
                        f"\toption path '{tmp_path}'\n")
    status, reply = call(state, "reload")
    assert status == 0 and reply["shares"] == 3
    assert state.config.share("extra") is not None
    cfg_path.write_text("config share\n\toption name 'bad/name'\n\toption path '/x'\n")
    status, reply = call(state, "reload")
    assert status == m.UBUS_STATUS_UNKNOWN_ERROR and "reload failed" in reply["error"]
    assert state.config.share("extra") is not None  # the old config keeps running


def test_user_methods_without_a_db_file_are_not_supported(state):
    state.pwddb_path = None
    assert call(state, "user_add", {"name": "x", "password": "y"})[0] == \
        m.UBUS_STATUS_NOT_SUPPORTED

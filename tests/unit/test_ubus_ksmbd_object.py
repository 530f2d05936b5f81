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
from ksmbd_embedded.ubus import ksmbd_object
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
    yield st
    for op in list(st.opens.by_id.values()):  # close add_open's descriptors (250 in a test)
        st.opens.remove(op)


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


def add_open(state, session, tree, name="a.txt", access=0x0012019F, file="a.txt"):
    """An Open of `file` (in the share) under the client's `name` for it."""
    path = os.path.join(tree.root, file)
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
    paged = {"offset": blob.BLOBMSG_TYPE_INT32, "limit": blob.BLOBMSG_TYPE_INT32}
    for method in ("sessions", "open_files", "shares", "users"):
        assert sig[method] == paged, method
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
    assert reply["negotiated_ciphers"] == {"AES-128-GCM": 1}
    assert "ciphers" not in reply  # read as "in use"; sessions' "encrypted" says that
    assert reply["uptime"] >= 0 and reply["listen"] == []  # no loop: no listeners
    assert reply["oplock_breaks"] == {"sent": 0, "acknowledged": 0, "timed_out": 0,
                                      "pending": 0}
    blob.encode_members(reply)


def test_status_counts_oplock_breaks(state):
    from ksmbd_embedded.caching import breaks
    bt = breaks.table(state)
    bt.sent, bt.acknowledged, bt.timed_out = 5, 3, 1
    assert call(state, "status")[1]["oplock_breaks"] == {
        "sent": 5, "acknowledged": 3, "timed_out": 1, "pending": 0}


def test_sessions(state):
    conn, s, tree = add_session(state)
    add_open(state, s, tree)
    status, reply = call(state, "sessions")
    assert status == 0
    assert reply["total"] == 1 and reply["offset"] == 0
    (entry,) = reply["sessions"]
    assert entry["id"] == s.session_id and entry["user"] == "alice"
    assert entry["client"] == "192.0.2.7:50000" and entry["dialect"] == "SMB3_11"
    assert entry["signing_required"] is True and entry["encrypted"] is False
    assert entry["negotiated_cipher"] == ""  # no keys: nothing was set up to encrypt with
    assert entry["trees"] == ["media"] and entry["open_count"] == 1
    assert entry["idle"] >= 0
    blob.encode_members(reply)


def test_sessions_tell_a_negotiated_cipher_from_encrypted_traffic(state):
    conn, s, tree = add_session(state, cipher=4)
    s.encryptor = object()  # the session's keys exist: it could encrypt
    (entry,) = call(state, "sessions")[1]["sessions"]
    assert entry["negotiated_cipher"] == "AES-256-GCM"
    assert entry["encrypted"] is False and entry["encrypted_shares"] == []
    assert not {"encryption", "cipher", "signing"} & set(entry)  # the old, ambiguous names
    tree.encrypt_data = True  # a share that demands encryption
    (entry,) = call(state, "sessions")[1]["sessions"]
    assert entry["encrypted"] is False and entry["encrypted_shares"] == ["media"]
    s.encrypt_data = True  # the server demands it for the whole session
    (entry,) = call(state, "sessions")[1]["sessions"]
    assert entry["encrypted"] is True and entry["encrypted_shares"] == ["media"]
    s.encryptor = None  # cannot be: without keys nothing is encrypted
    (entry,) = call(state, "sessions")[1]["sessions"]
    assert entry["encrypted"] is False and entry["negotiated_cipher"] == ""


def test_sessions_encrypted_when_the_client_encrypts_unasked(state):
    conn, s, tree = add_session(state)
    s.encryptor = object()
    s.client_encrypts = True
    (entry,) = call(state, "sessions")[1]["sessions"]
    assert entry["encrypted"] is True and entry["negotiated_cipher"] == "AES-128-GCM"
    assert entry["encrypted_shares"] == ["media"]


def test_names_that_are_not_valid_utf8_are_escaped(state):
    conn, s, tree = add_session(state)
    s.domain = "dom\udc80\ud800"  # NTLM names are decoded with surrogatepass
    add_open(state, s, tree)
    status, reply = call(state, "sessions")
    assert status == 0
    assert reply["sessions"][0]["domain"] == "dom\\udc80\\ud800"
    blob.encode_members(reply)


def test_open_files_with_locks(state):
    conn, s, tree = add_session(state)
    op = add_open(state, s, tree)
    assert byte_locks.try_lock(state, op, 0, 10, True) == 0
    assert byte_locks.try_lock(state, op, 2**63, 2**64 - 1 - 2**63, False) == 0
    status, reply = call(state, "open_files")
    assert status == 0
    assert reply["total"] == 1 and reply["offset"] == 0
    (entry,) = reply["open_files"]
    assert entry["id"] == op.volatile_id and entry["share"] == "media"
    assert entry["path"] == "a.txt" and entry["session"] == s.session_id
    assert "read" in entry["access"] and "write" in entry["access"]
    assert entry["locks"][0] == {"offset": 0, "length": 10, "exclusive": True}
    assert entry["locks"][1]["offset"] == str(2**63)
    assert entry["lock_count"] == 2
    assert entry["oplock"] == "none" and entry["oplock_breaking"] is False
    op.oplock_level, op.oplock_state = 0x09, 2
    entry = call(state, "open_files")[1]["open_files"][0]
    assert entry["oplock"] == "batch" and entry["oplock_breaking"] is True
    blob.encode_members(reply)


def test_open_files_pages_by_offset_and_limit(state):
    conn, s, tree = add_session(state)
    ids = [add_open(state, s, tree).volatile_id for _ in range(250)]
    status, reply = call(state, "open_files")  # no arguments: the first page
    assert status == 0 and reply["total"] == 250 and reply["offset"] == 0
    assert [e["id"] for e in reply["open_files"]] == ids[:ksmbd_object.DEFAULT_LIMIT]
    seen = []
    while len(seen) < 250:
        status, reply = call(state, "open_files", {"offset": len(seen), "limit": 7})
        assert status == 0 and reply["total"] == 250 and reply["offset"] == len(seen)
        assert 0 < len(reply["open_files"]) <= 7
        seen += [e["id"] for e in reply["open_files"]]
    assert seen == ids
    status, reply = call(state, "open_files", {"offset": 250})
    assert status == 0 and reply == {"open_files": [], "offset": 250, "total": 250}
    # numbers as JSON tools may keep them
    assert call(state, "open_files", {"offset": "249", "limit": "0x10"})[1]["open_files"][0][
        "id"] == ids[-1]


def test_pages_stay_small_with_worst_case_names_and_locks(state):
    """The longest names a client can send (a 32,767-unit CREATE name, UTF-8 three bytes a
    character) and thousands of locks: every page stays well under ubusd's 1 MiB, and
    paging still reaches every entry."""
    conn, s, tree = add_session(state)
    s.domain = "\u20ac" * 32767
    long_name = "\u20ac" * 32000 + "\\x.txt"
    opens = [add_open(state, s, tree, name=f"{i}{long_name}") for i in range(40)]
    for i in range(1000):
        assert byte_locks.try_lock(state, opens[0], i * 2, 1, True) == 0
    for method, key in (("open_files", "open_files"), ("sessions", "sessions")):
        seen = 0
        for _ in range(100):  # bounded: every page holds at least one entry
            status, reply = call(state, method, {"offset": seen, "limit": 100000})
            assert status == 0, reply
            size = len(blob.encode_members(reply))
            assert size <= ksmbd_object.PAGE_BUDGET + 64 * 1024 or len(reply[key]) == 1
            assert size < 1024 * 1024 // 2
            assert reply[key]
            seen += len(reply[key])
            if seen >= reply["total"]:
                break
        assert seen == (40 if method == "open_files" else 1)
    first = call(state, "open_files", {"limit": 1})[1]["open_files"][0]
    assert first["lock_count"] == 1000 and len(first["locks"]) == ksmbd_object.MAX_LOCKS
    assert first["path"].endswith("/x.txt")


def test_shares(state):
    add_session(state)
    status, reply = call(state, "shares")
    assert status == 0 and reply["total"] == 2 and reply["offset"] == 0
    media, gone = reply["shares"]
    assert media["name"] == "media" and media["connected"] == 1 and media["available"]
    assert isinstance(media["fs_type"], str) and media["fs_type"]
    assert isinstance(media["total"], (int, str)) and int(media["total"]) > 0
    assert int(media["free"]) <= int(media["total"])
    assert gone["available"] is False and gone["connected"] == 0 and gone["error"]
    blob.encode_members(reply)
    status, reply = call(state, "shares", {"offset": 1, "limit": 1})
    assert status == 0 and [x["name"] for x in reply["shares"]] == ["gone"]
    assert reply["total"] == 2 and reply["offset"] == 1


def test_users_and_user_management_write_the_db(state):
    db_path = state.pwddb_path
    assert call(state, "users") == (0, {"users": [{"name": "alice", "sessions": 0}],
                                        "offset": 0, "total": 1})
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


def test_users_page(state):
    for i in range(150):
        state.pwddb.set(f"user{i:03d}", nt_hash("pw"))
    status, reply = call(state, "users")
    assert status == 0 and reply["total"] == 151
    assert len(reply["users"]) == ksmbd_object.DEFAULT_LIMIT
    status, reply = call(state, "users", {"offset": 150, "limit": 5})
    assert reply["users"] == [{"name": "user149", "sessions": 0}]


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
    ("open_files", {"offset": -1}),
    ("open_files", {"limit": 0}),
    ("sessions", {"limit": "many"}),
    ("users", {"offset": True}),
    ("shares", {"limit": 1.5}),
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

"""CREATE and CLOSE (handlers/create.py, create_contexts.py, fs/share_modes.py)."""

from __future__ import annotations

import os
import stat
import struct
import time

import pytest
from handler_fixtures import HandlerEnv, call, u32

from ksmbd_embedded import header as h
from ksmbd_embedded.fs import share_modes
from ksmbd_embedded.fs.dos_attrs import (
    FILE_ATTRIBUTE_ARCHIVE, FILE_ATTRIBUTE_DIRECTORY, FILE_ATTRIBUTE_HIDDEN,
    FILE_ATTRIBUTE_READONLY, read_meta, unix_to_filetime, write_dos_attrs,
)
from ksmbd_embedded.handlers import create_contexts as cc
from ksmbd_embedded.handlers.close import handle_close
from ksmbd_embedded.handlers.create import (
    FILE_CREATE, FILE_CREATED, FILE_DELETE_ON_CLOSE, FILE_DIRECTORY_FILE,
    FILE_NON_DIRECTORY_FILE, FILE_OPEN, FILE_OPEN_BY_FILE_ID, FILE_OPEN_IF, FILE_OPENED,
    FILE_OVERWRITE, FILE_OVERWRITE_IF, FILE_OVERWRITTEN, FILE_SUPERSEDE, FILE_SUPERSEDED,
    FILE_WRITE_THROUGH, handle_create, map_generic,
)
from ksmbd_embedded.session import VALID, Session
from ksmbd_embedded.status import (
    STATUS_ACCESS_DENIED, STATUS_BAD_IMPERSONATION_LEVEL, STATUS_CANNOT_DELETE,
    STATUS_DELETE_PENDING, STATUS_DIRECTORY_NOT_EMPTY, STATUS_FILE_CLOSED,
    STATUS_FILE_IS_A_DIRECTORY, STATUS_INVALID_PARAMETER, STATUS_NOT_A_DIRECTORY,
    STATUS_NOT_SUPPORTED, STATUS_OBJECT_NAME_COLLISION, STATUS_OBJECT_NAME_INVALID,
    STATUS_OBJECT_NAME_NOT_FOUND, STATUS_OBJECT_PATH_NOT_FOUND, STATUS_OBJECT_PATH_SYNTAX_BAD,
    STATUS_PRIVILEGE_NOT_HELD, STATUS_SHARING_VIOLATION, STATUS_SUCCESS,
)
from ksmbd_embedded.tree import (
    DELETE, FILE_ALL_ACCESS, FILE_READ_ATTRIBUTES, FILE_READ_DATA, FILE_READ_ONLY_ACCESS,
    FILE_WRITE_DATA, GENERIC_ALL, GENERIC_READ, GENERIC_WRITE, MAXIMUM_ALLOWED, SYNCHRONIZE,
    TreeConnect,
)

SHARE_ALL = 7
SHARE_READ = 1
SHARE_WRITE = 2
SHARE_DELETE = 4

_CREATE = struct.Struct("<HBBIQQIIIIIHHII")
_RESPONSE = struct.Struct("<HBBIQQQQQQIIQQII")
_CTX = struct.Struct("<IHHHHI")


def context(name: bytes, data: bytes = b"", last: bool = False) -> bytes:
    """One request create context, 8-aligned unless last."""
    data_off = 24 if data else 0
    size = (24 + len(data)) if data else 16 + len(name)
    padded = (size + 7) & ~7
    buf = bytearray(padded if not last else size)
    _CTX.pack_into(buf, 0, 0 if last else padded, 16, len(name), 0, data_off, len(data))
    buf[16:16 + len(name)] = name
    if data:
        buf[24:24 + len(data)] = data
    return bytes(buf)


def contexts(*items) -> bytes:
    out = b""
    for i, (name, data) in enumerate(items):
        out += context(name, data, last=i == len(items) - 1)
    return out


def create_body(name: str, access: int = GENERIC_READ, share: int = SHARE_ALL,
                disposition: int = FILE_OPEN, options: int = 0, attributes: int = 0,
                ctx: bytes = b"", impersonation: int = 2, raw_name: bytes | None = None,
                name_offset: int | None = None) -> bytes:
    """A CREATE request body (MS-SMB2 2.2.13), name at 120, contexts 8-aligned after it."""
    name_bytes = name.encode("utf-16-le") if raw_name is None else raw_name
    name_off = 64 + 56 if name_offset is None else name_offset
    body = bytearray(56) + name_bytes
    ctx_off = 0
    if ctx:
        body += bytes(-len(body) % 8)
        ctx_off = 64 + len(body)
        body += ctx
    if len(body) == 56:
        body += b"\x00"  # the one byte of Buffer
    _CREATE.pack_into(body, 0, 57, 0, 0, impersonation, 0, 0, access, attributes, share,
                      disposition, options, name_off, len(name_bytes), ctx_off, len(ctx))
    return bytes(body)


class Created:
    def __init__(self, body: bytes) -> None:
        f = _RESPONSE.unpack_from(body, 0)
        (self.size, self.oplock, self.flags, self.action, self.creation, self.access_time,
         self.write_time, self.change_time, self.alloc, self.eof, self.attributes, _,
         self.persistent, self.volatile, ctx_off, ctx_len) = f
        self.contexts = {}
        if ctx_len:
            for cname, data in cc.parse_contexts(memoryview(body)[ctx_off - 64:
                                                                  ctx_off - 64 + ctx_len]):
                self.contexts[cname] = bytes(data)


@pytest.fixture
def env(tmp_path):
    root = tmp_path / "share"
    root.mkdir()
    return HandlerEnv(str(root))


def do_create(env, name, **kw):
    """(status, Created | None)."""
    related = kw.pop("related", False)
    req = env.request(h.CREATE, create_body(name, **kw), related=related)
    status, body = call(handle_create, req)
    return status, (Created(body) if body is not None else None)


def ok_create(env, name, **kw) -> Created:
    status, c = do_create(env, name, **kw)
    assert status == STATUS_SUCCESS, hex(status)
    return c


def close_body(c: Created, flags: int = 0) -> bytes:
    return struct.pack("<HHIQQ", 24, flags, 0, c.persistent, c.volatile)


def do_close(env, c: Created, flags: int = 0):
    return call(handle_close, env.request(h.CLOSE, close_body(c, flags)))


def ok_close(env, c: Created, flags: int = 0) -> bytes:
    status, body = do_close(env, c, flags)
    assert status == STATUS_SUCCESS, hex(status)
    return body


def path(env, name: str) -> str:
    return os.path.join(env.root, name)


# -- dispositions ---------------------------------------------------------------------------------

def test_create_new_file_then_collision(env):
    c = ok_create(env, "new.txt", access=GENERIC_WRITE | GENERIC_READ, disposition=FILE_CREATE)
    assert c.size == 89 and c.oplock == 0 and c.action == FILE_CREATED
    assert c.attributes == FILE_ATTRIBUTE_ARCHIVE and c.eof == 0
    assert os.path.isfile(path(env, "new.txt"))
    assert c.creation and c.write_time and c.change_time and c.access_time
    assert env.server.opens.get(c.volatile) is not None
    status, _ = do_create(env, "new.txt", disposition=FILE_CREATE)
    assert status == STATUS_OBJECT_NAME_COLLISION
    status, _ = do_create(env, "NEW.TXT", disposition=FILE_CREATE)  # case-insensitive
    assert status == STATUS_OBJECT_NAME_COLLISION
    ok_close(env, c)
    assert len(env.server.opens) == 0


def test_open_existing_and_missing(env):
    with open(path(env, "a.txt"), "w") as f:
        f.write("hello")
    c = ok_create(env, "a.txt", disposition=FILE_OPEN)
    assert c.action == FILE_OPENED and c.eof == 5
    assert ok_create(env, "A.TXT").action == FILE_OPENED
    status, _ = do_create(env, "missing.txt", disposition=FILE_OPEN)
    assert status == STATUS_OBJECT_NAME_NOT_FOUND
    status, _ = do_create(env, "nodir\\missing.txt", disposition=FILE_OPEN_IF)
    assert status == STATUS_OBJECT_PATH_NOT_FOUND
    status, _ = do_create(env, "a.txt\\x", disposition=FILE_OPEN)
    assert status == STATUS_OBJECT_PATH_NOT_FOUND


def test_open_if(env):
    assert ok_create(env, "f", disposition=FILE_OPEN_IF).action == FILE_CREATED
    assert ok_create(env, "f", disposition=FILE_OPEN_IF).action == FILE_OPENED


@pytest.mark.parametrize("disposition, existing_action", [
    (FILE_OVERWRITE, FILE_OVERWRITTEN),
    (FILE_OVERWRITE_IF, FILE_OVERWRITTEN),
    (FILE_SUPERSEDE, FILE_SUPERSEDED),
])
def test_overwrite_dispositions(env, disposition, existing_action):
    p = path(env, "data.bin")
    with open(p, "wb") as f:
        f.write(b"x" * 1000)
    write_dos_attrs(p, attributes=0)
    c = ok_create(env, "data.bin", access=GENERIC_READ, disposition=disposition,
                  attributes=FILE_ATTRIBUTE_HIDDEN)
    assert c.action == existing_action
    assert c.eof == 0 and os.path.getsize(p) == 0
    assert c.attributes & FILE_ATTRIBUTE_ARCHIVE
    ok_close(env, c)
    status, c2 = do_create(env, "other.bin", disposition=disposition)
    if disposition == FILE_OVERWRITE:
        assert status == STATUS_OBJECT_NAME_NOT_FOUND
    else:
        assert status == STATUS_SUCCESS and c2.action == FILE_CREATED


def test_overwrite_hidden_needs_hidden(env):
    p = path(env, "h")
    open(p, "w").close()
    assert write_dos_attrs(p, attributes=FILE_ATTRIBUTE_HIDDEN), "no user xattrs here"
    status, _ = do_create(env, "h", disposition=FILE_OVERWRITE_IF)
    assert status == STATUS_ACCESS_DENIED
    assert ok_create(env, "h", disposition=FILE_OVERWRITE_IF,
                     attributes=FILE_ATTRIBUTE_HIDDEN).action == FILE_OVERWRITTEN


def test_parameter_checks(env):
    assert do_create(env, "x", impersonation=4)[0] == STATUS_BAD_IMPERSONATION_LEVEL
    assert do_create(env, "x", disposition=6)[0] == STATUS_INVALID_PARAMETER
    assert do_create(env, "x", options=FILE_OPEN_BY_FILE_ID)[0] == STATUS_NOT_SUPPORTED
    assert do_create(env, "x", options=0x01000000)[0] == STATUS_INVALID_PARAMETER
    assert do_create(env, "x", share=8)[0] == STATUS_INVALID_PARAMETER
    assert do_create(env, "x", raw_name=b"abc")[0] == STATUS_INVALID_PARAMETER  # odd length
    assert do_create(env, "x", name_offset=64 + 40)[0] == STATUS_INVALID_PARAMETER
    assert do_create(env, "x", name_offset=64 + 56 + 100)[0] == STATUS_INVALID_PARAMETER
    assert do_create(env, "\\x")[0] == STATUS_INVALID_PARAMETER
    assert do_create(env, "..\\x")[0] == STATUS_OBJECT_PATH_SYNTAX_BAD
    assert do_create(env, "a:b\\c")[0] == STATUS_OBJECT_NAME_INVALID  # a colon mid-path
    assert do_create(env, "a:b:$FOO")[0] == STATUS_OBJECT_NAME_INVALID  # unknown type
    assert do_create(env, "x", access=0x00000200)[0] == STATUS_ACCESS_DENIED  # reserved bit
    assert do_create(env, "x", access=0x01000000)[0] == STATUS_PRIVILEGE_NOT_HELD
    assert len(env.server.opens) == 0


def test_default_stream_suffix(env):
    open(path(env, "s.txt"), "w").close()
    assert ok_create(env, "s.txt::$DATA").action == FILE_OPENED
    assert do_create(env, "s.txt:alt")[0] == STATUS_OBJECT_NAME_NOT_FOUND  # a named stream


# -- directories ----------------------------------------------------------------------------------

def test_directories(env):
    c = ok_create(env, "dir", options=FILE_DIRECTORY_FILE, disposition=FILE_CREATE)
    assert c.action == FILE_CREATED and c.attributes & FILE_ATTRIBUTE_DIRECTORY
    assert os.path.isdir(path(env, "dir"))
    op = env.server.opens.get(c.volatile)
    assert op.is_dir and op.name == "dir"
    assert ok_create(env, "dir", options=FILE_DIRECTORY_FILE,
                     disposition=FILE_OPEN_IF).action == FILE_OPENED
    assert ok_create(env, "dir").action == FILE_OPENED  # no flag: opens whatever it is
    assert do_create(env, "dir", options=FILE_NON_DIRECTORY_FILE)[0] == \
        STATUS_FILE_IS_A_DIRECTORY
    assert do_create(env, "dir", disposition=FILE_CREATE)[0] == STATUS_OBJECT_NAME_COLLISION
    assert do_create(env, "dir", disposition=FILE_OVERWRITE_IF)[0] == \
        STATUS_OBJECT_NAME_COLLISION
    open(path(env, "file"), "w").close()
    assert do_create(env, "file", options=FILE_DIRECTORY_FILE)[0] == STATUS_NOT_A_DIRECTORY
    assert ok_create(env, "file", options=FILE_NON_DIRECTORY_FILE).action == FILE_OPENED
    assert do_create(env, "x", options=FILE_DIRECTORY_FILE | FILE_NON_DIRECTORY_FILE)[0] == \
        STATUS_INVALID_PARAMETER
    assert do_create(env, "x", options=FILE_DIRECTORY_FILE, disposition=FILE_OVERWRITE_IF)[0] \
        == STATUS_INVALID_PARAMETER
    # nested create, and a trailing backslash that insists on a directory
    assert ok_create(env, "dir\\sub", options=FILE_DIRECTORY_FILE,
                     disposition=FILE_CREATE).action == FILE_CREATED
    assert ok_create(env, "dir\\sub\\").action == FILE_OPENED
    assert do_create(env, "file\\")[0] == STATUS_OBJECT_NAME_INVALID


def test_share_root(env):
    c = ok_create(env, "", access=FILE_READ_ATTRIBUTES, options=FILE_DIRECTORY_FILE)
    assert c.action == FILE_OPENED and c.attributes & FILE_ATTRIBUTE_DIRECTORY
    op = env.server.opens.get(c.volatile)
    assert op.path == env.root and op.name == "" and op.is_dir
    assert do_create(env, "", disposition=FILE_CREATE)[0] == STATUS_OBJECT_NAME_COLLISION
    assert do_create(env, "", options=FILE_NON_DIRECTORY_FILE)[0] == STATUS_FILE_IS_A_DIRECTORY
    assert do_create(env, "", access=DELETE, options=FILE_DELETE_ON_CLOSE)[0] == \
        STATUS_ACCESS_DENIED


def test_directory_mode_and_file_mode(tmp_path):
    root = tmp_path / "s"
    root.mkdir()
    env = HandlerEnv(str(root), create_mask=0o600, dir_mask=0o700,
                     force_create_mode=0o060, force_directory_mode=0o050)
    ok_create(env, "f", disposition=FILE_CREATE)
    ok_create(env, "d", disposition=FILE_CREATE, options=FILE_DIRECTORY_FILE)
    assert stat.S_IMODE(os.stat(root / "f").st_mode) == 0o660
    assert stat.S_IMODE(os.stat(root / "d").st_mode) == 0o750


def test_write_through_and_mode(env):
    c = ok_create(env, "wt", access=GENERIC_WRITE, disposition=FILE_CREATE,
                  options=FILE_WRITE_THROUGH)
    op = env.server.opens.get(c.volatile)
    assert op.mode & FILE_WRITE_THROUGH
    if hasattr(os, "O_DSYNC"):
        import fcntl
        assert fcntl.fcntl(op.fd, fcntl.F_GETFL) & os.O_DSYNC


# -- access ---------------------------------------------------------------------------------------

def test_map_generic():
    assert map_generic(GENERIC_ALL) == FILE_ALL_ACCESS
    assert map_generic(GENERIC_READ) == 0x00120089
    assert map_generic(GENERIC_WRITE) == 0x00120116
    assert map_generic(FILE_READ_DATA) == FILE_READ_DATA


def test_maximum_allowed(env):
    open(path(env, "f"), "w").close()
    c = ok_create(env, "f", access=MAXIMUM_ALLOWED)
    assert env.server.opens.get(c.volatile).granted_access == FILE_ALL_ACCESS


def test_read_only_share(tmp_path):
    root = tmp_path / "ro"
    root.mkdir()
    (root / "f").write_text("data")
    env = HandlerEnv(str(root), writable=False, read_only=True)
    c = ok_create(env, "f", access=GENERIC_READ)
    assert c.action == FILE_OPENED
    for kw in (dict(access=GENERIC_WRITE), dict(access=GENERIC_ALL), dict(access=DELETE),
               dict(access=FILE_WRITE_DATA),
               dict(access=DELETE, options=FILE_DELETE_ON_CLOSE),
               dict(disposition=FILE_OVERWRITE_IF), dict(disposition=FILE_SUPERSEDE)):
        assert do_create(env, "f", **kw)[0] == STATUS_ACCESS_DENIED, kw
    for disposition in (FILE_CREATE, FILE_OPEN_IF, FILE_OVERWRITE_IF, FILE_SUPERSEDE):
        assert do_create(env, "new", disposition=disposition)[0] == STATUS_ACCESS_DENIED
    assert do_create(env, "newdir", disposition=FILE_CREATE,
                     options=FILE_DIRECTORY_FILE)[0] == STATUS_ACCESS_DENIED
    assert not os.path.exists(root / "new") and not os.path.exists(root / "newdir")
    c = ok_create(env, "f", access=MAXIMUM_ALLOWED)
    assert env.server.opens.get(c.volatile).granted_access == FILE_READ_ONLY_ACCESS
    c = ok_create(env, "f", ctx=contexts((cc.MXAC, b"")))
    assert u32(c.contexts[cc.MXAC], 4) == FILE_READ_ONLY_ACCESS


def test_read_only_attribute(env):
    p = path(env, "ro.txt")
    with open(p, "w") as f:
        f.write("keep")
    if not write_dos_attrs(p, attributes=FILE_ATTRIBUTE_READONLY):
        os.chmod(p, 0o444)  # no xattrs: READONLY comes from the mode (not enforced on root)
    assert read_meta(p).attributes & FILE_ATTRIBUTE_READONLY
    assert do_create(env, "ro.txt", access=GENERIC_WRITE)[0] == STATUS_ACCESS_DENIED
    assert do_create(env, "ro.txt", access=GENERIC_ALL)[0] == STATUS_ACCESS_DENIED
    assert do_create(env, "ro.txt", disposition=FILE_OVERWRITE_IF)[0] == STATUS_ACCESS_DENIED
    assert do_create(env, "ro.txt", access=DELETE, options=FILE_DELETE_ON_CLOSE)[0] == \
        STATUS_CANNOT_DELETE
    c = ok_create(env, "ro.txt", access=MAXIMUM_ALLOWED, ctx=contexts((cc.MXAC, b"")))
    granted = env.server.opens.get(c.volatile).granted_access
    assert granted & FILE_READ_DATA and not granted & FILE_WRITE_DATA
    assert not u32(c.contexts[cc.MXAC], 4) & FILE_WRITE_DATA
    with open(p) as f:
        assert f.read() == "keep"


# -- share modes ----------------------------------------------------------------------------------

def test_sharing_violations(env):
    open(path(env, "f"), "w").close()
    a = ok_create(env, "f", access=FILE_READ_DATA, share=SHARE_READ)
    # wants write, but the first open does not share write
    assert do_create(env, "f", access=FILE_WRITE_DATA, share=SHARE_ALL)[0] == \
        STATUS_SHARING_VIOLATION
    # does not share read with the existing reader
    assert do_create(env, "f", access=FILE_READ_DATA, share=SHARE_WRITE)[0] == \
        STATUS_SHARING_VIOLATION
    assert do_create(env, "f", access=DELETE, share=SHARE_ALL)[0] == STATUS_SHARING_VIOLATION
    # compatible reader
    b = ok_create(env, "f", access=FILE_READ_DATA, share=SHARE_READ | SHARE_WRITE)
    # attribute-only opens never conflict
    c = ok_create(env, "f", access=FILE_READ_ATTRIBUTES | SYNCHRONIZE, share=0)
    ok_close(env, a)
    ok_close(env, c)
    # b shares write: now a writer may come
    d = ok_create(env, "f", access=FILE_WRITE_DATA, share=SHARE_READ)
    ok_close(env, b)
    ok_close(env, d)
    ok_create(env, "f", access=GENERIC_ALL, share=0)


def test_sharing_across_sessions(env):
    open(path(env, "f"), "w").close()
    ok_create(env, "f", access=GENERIC_ALL, share=0)
    other = Session(0x2002, env.conn, 0.0)
    other.state = VALID
    tree2 = TreeConnect(1, other, env.share, True, False, env.root)
    other.add_tree(tree2)
    req = env.request(h.CREATE, create_body("f", access=GENERIC_READ))
    req.session, req.tree = other, tree2
    assert call(handle_create, req)[0] == STATUS_SHARING_VIOLATION


def test_share_conflict_rules():
    class O:
        def __init__(self, access, share):
            self.granted_access, self.share_access = access, share
    assert not share_modes.share_conflict(FILE_READ_ATTRIBUTES, 0, [O(GENERIC_ALL, 0)])
    assert not share_modes.share_conflict(FILE_READ_DATA, 1, [O(FILE_READ_ATTRIBUTES, 0)])
    assert share_modes.share_conflict(FILE_READ_DATA, 7, [O(FILE_READ_DATA, 2)])
    assert not share_modes.share_conflict(FILE_READ_DATA, 7, [O(FILE_READ_DATA, 1)])
    assert share_modes.share_conflict(DELETE, 7, [O(FILE_READ_DATA, 3)])
    assert not share_modes.share_conflict(DELETE, 7, [O(FILE_READ_DATA, 7)])


# -- delete on close / delete pending -------------------------------------------------------------

def test_delete_on_close(env):
    c = ok_create(env, "tmp", access=GENERIC_ALL, disposition=FILE_CREATE,
                  options=FILE_DELETE_ON_CLOSE)
    assert os.path.exists(path(env, "tmp"))
    ok_close(env, c)
    assert not os.path.exists(path(env, "tmp"))


def test_delete_on_close_needs_delete_access(env):
    open(path(env, "f"), "w").close()
    assert do_create(env, "f", access=GENERIC_READ | GENERIC_WRITE,
                     options=FILE_DELETE_ON_CLOSE)[0] == STATUS_ACCESS_DENIED
    assert os.path.exists(path(env, "f"))


def test_delete_on_close_waits_for_last_close(env):
    open(path(env, "f"), "w").close()
    keep = ok_create(env, "f", access=GENERIC_READ, share=SHARE_ALL)
    doc = ok_create(env, "f", access=DELETE, share=SHARE_ALL, options=FILE_DELETE_ON_CLOSE)
    # not pending before the delete-on-close handle closes
    extra = ok_create(env, "f", access=GENERIC_READ, share=SHARE_ALL)
    ok_close(env, doc)
    assert os.path.exists(path(env, "f"))
    assert do_create(env, "f", access=GENERIC_READ)[0] == STATUS_DELETE_PENDING
    ok_close(env, keep)
    assert os.path.exists(path(env, "f"))
    ok_close(env, extra)
    assert not os.path.exists(path(env, "f"))
    assert not share_modes.any_delete_pending(env.server)
    # the name is free again
    assert ok_create(env, "f", disposition=FILE_CREATE).action == FILE_CREATED


def test_set_delete_pending_api(env):
    open(path(env, "f"), "w").close()
    c = ok_create(env, "f", access=DELETE | GENERIC_READ)
    op = env.server.opens.get(c.volatile)
    share_modes.set_delete_pending(env.server, op.file_key, True)
    assert share_modes.is_delete_pending(env.server, op.file_key)
    assert do_create(env, "f")[0] == STATUS_DELETE_PENDING
    share_modes.set_delete_pending(env.server, op.file_key, False)
    ok_close(env, ok_create(env, "f"))
    share_modes.set_delete_pending(env.server, op.file_key, True)
    ok_close(env, c)
    assert not os.path.exists(path(env, "f"))


def test_delete_pending_directory_refuses_creates_inside(env):
    os.mkdir(path(env, "d"))
    c = ok_create(env, "d", access=DELETE, options=FILE_DIRECTORY_FILE)
    share_modes.set_delete_pending(env.server, env.server.opens.get(c.volatile).file_key, True)
    assert do_create(env, "d\\new", disposition=FILE_CREATE)[0] == STATUS_DELETE_PENDING
    ok_close(env, c)
    assert not os.path.exists(path(env, "d"))


def test_delete_on_close_directory(env):
    os.mkdir(path(env, "full"))
    open(path(env, "full/x"), "w").close()
    assert do_create(env, "full", access=DELETE, options=FILE_DIRECTORY_FILE |
                     FILE_DELETE_ON_CLOSE)[0] == STATUS_DIRECTORY_NOT_EMPTY
    c = ok_create(env, "empty", access=DELETE | GENERIC_READ, disposition=FILE_CREATE,
                  options=FILE_DIRECTORY_FILE | FILE_DELETE_ON_CLOSE)
    assert os.path.isdir(path(env, "empty"))
    ok_close(env, c)
    assert not os.path.exists(path(env, "empty"))


def test_delete_on_close_never_removes_a_replacement(env):
    c = ok_create(env, "f", access=GENERIC_ALL, disposition=FILE_CREATE,
                  options=FILE_DELETE_ON_CLOSE)
    os.rename(path(env, "f"), path(env, "moved"))
    open(path(env, "f"), "w").close()  # another file under the old name
    ok_close(env, c)
    assert os.path.exists(path(env, "f")) and os.path.exists(path(env, "moved"))


# -- confinement through CREATE -----------------------------------------------------------------

def test_symlink_out_of_share(env, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("secret")
    os.symlink(str(secret), path(env, "link"))
    os.symlink(str(tmp_path), path(env, "up"))
    assert do_create(env, "link")[0] == STATUS_ACCESS_DENIED
    assert do_create(env, "up\\secret")[0] == STATUS_ACCESS_DENIED
    assert do_create(env, "up\\new", disposition=FILE_CREATE)[0] == STATUS_ACCESS_DENIED
    assert do_create(env, "link", disposition=FILE_OVERWRITE_IF)[0] == STATUS_ACCESS_DENIED
    assert secret.read_text() == "secret"


def test_fifo_refused(env):
    os.mkfifo(path(env, "fifo"))
    assert do_create(env, "fifo")[0] == STATUS_ACCESS_DENIED


def test_veto_and_hidden(tmp_path):
    root = tmp_path / "s"
    root.mkdir()
    (root / "x.tmp").write_text("")
    os.mkdir(root / "v.tmp")
    env = HandlerEnv(str(root), veto_files=("*.tmp",), hide_dot_files=True)
    assert do_create(env, "x.tmp")[0] == STATUS_OBJECT_NAME_NOT_FOUND
    assert do_create(env, "y.tmp", disposition=FILE_CREATE)[0] == STATUS_OBJECT_NAME_NOT_FOUND
    assert do_create(env, "v.tmp\\a", disposition=FILE_CREATE)[0] == \
        STATUS_OBJECT_PATH_NOT_FOUND
    c = ok_create(env, ".hidden", disposition=FILE_CREATE)
    assert c.attributes & FILE_ATTRIBUTE_HIDDEN


def test_ipc_share_serves_only_known_pipes(env):
    ipc = TreeConnect(9, env.session, None, True, False, "")
    req = env.request(h.CREATE, create_body("srvsvc"))
    req.tree = ipc
    assert call(handle_create, req)[0] == STATUS_SUCCESS
    req = env.request(h.CREATE, create_body("lsarpc"))  # not served (yet)
    req.tree = ipc
    assert call(handle_create, req)[0] == STATUS_OBJECT_NAME_NOT_FOUND


# -- create contexts ------------------------------------------------------------------------------

def test_mxac_and_qfid(env):
    open(path(env, "f"), "w").close()
    c = ok_create(env, "f", ctx=contexts((cc.MXAC, b""), (cc.DH2Q, bytes(32)),
                                         (cc.RQLS, bytes(52)), (cc.QFID, b"")))
    assert set(c.contexts) == {cc.MXAC, cc.QFID}
    assert struct.unpack("<II", c.contexts[cc.MXAC]) == (0, FILE_ALL_ACCESS)
    st = os.stat(path(env, "f"))
    assert struct.unpack("<QQQQ", c.contexts[cc.QFID]) == (st.st_ino, 0, st.st_dev, 0)
    # only unknown contexts: no response contexts at all
    c = ok_create(env, "f", ctx=contexts((b"ZZZZ", b"abc")))
    assert c.contexts == {}


def test_malformed_contexts(env):
    open(path(env, "f"), "w").close()
    good = contexts((cc.MXAC, b""), (cc.QFID, b""))
    bad_next = bytearray(good)
    struct.pack_into("<I", bad_next, 0, 4096)
    short = good[:10]
    bad_name = bytearray(contexts((cc.MXAC, b"")))
    struct.pack_into("<H", bad_name, 4, 200)
    bad_data = bytearray(contexts((cc.MXAC, b"12345678")))
    struct.pack_into("<I", bad_data, 12, 9999)
    unaligned = bytearray(good)
    struct.pack_into("<I", unaligned, 0, 20)
    looping = bytearray(good)
    struct.pack_into("<I", looping, 0, 0)  # fine: just ends early
    for ctx in (bad_next, short, bad_name, bad_data, unaligned):
        assert do_create(env, "f", ctx=bytes(ctx))[0] == STATUS_INVALID_PARAMETER
    assert do_create(env, "f", ctx=bytes(looping))[0] == STATUS_SUCCESS
    # contexts past the end of the message
    body = bytearray(create_body("f", ctx=good))
    struct.pack_into("<I", body, 48, len(good) + 100)
    assert call(handle_create, env.request(h.CREATE, bytes(body)))[0] == \
        STATUS_INVALID_PARAMETER


def test_durable_reconnect_is_not_found(env):
    open(path(env, "f"), "w").close()
    assert do_create(env, "f", ctx=contexts((cc.DH2C, bytes(36))))[0] == \
        STATUS_OBJECT_NAME_NOT_FOUND


def test_encode_contexts_layout():
    buf = cc.encode_contexts([cc.maximal_access_response(0x1F01FF),
                              cc.query_on_disk_id_response(5, 7)])
    parsed = cc.parse_contexts(memoryview(buf))
    assert [n for n, _ in parsed] == [cc.MXAC, cc.QFID]
    assert struct.unpack_from("<I", buf, 0)[0] == 32  # MxAc: 16 + name 8 + data 8
    assert len(buf) == 32 + 24 + 32


# -- CLOSE ----------------------------------------------------------------------------------------

def test_close_postquery(env):
    with open(path(env, "f"), "wb") as f:
        f.write(b"12345")
    c = ok_create(env, "f")
    body = ok_close(env, c, flags=1)
    fields = struct.unpack("<HHIQQQQQQI", body)
    assert fields[0] == 60 and fields[1] == 1
    assert fields[3] and fields[5]  # creation, last write
    assert fields[8] == 5 and fields[7] >= 0 and fields[9] != 0  # EndofFile, attributes
    c = ok_create(env, "f")
    body = ok_close(env, c)
    assert body == struct.pack("<HHIQQQQQQI", 60, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    assert do_close(env, c)[0] == STATUS_FILE_CLOSED
    assert len(env.server.opens) == 0 and env.tree.open_count == 0


def test_related_compound_uses_created_open(env):
    open(path(env, "f"), "w").close()
    req = env.request(h.CREATE, create_body("f"))
    status, body = call(handle_create, req)
    assert status == STATUS_SUCCESS
    c = Created(body)
    assert req.chain.open is env.server.opens.get(c.volatile)
    close = env.request(h.CLOSE, struct.pack("<HHIQQ", 24, 0, 0, 2**64 - 1, 2**64 - 1),
                        related=True)
    close.chain = req.chain
    assert call(handle_close, close)[0] == STATUS_SUCCESS
    assert len(env.server.opens) == 0
    again = env.request(h.CLOSE, struct.pack("<HHIQQ", 24, 0, 0, 2**64 - 1, 2**64 - 1),
                        related=True)
    again.chain = req.chain
    assert call(handle_close, again)[0] == STATUS_FILE_CLOSED


# -- through a real Connection ---------------------------------------------------------------------

def test_create_close_compound_over_connection(tmp_path):
    from test_connection import CONFIG, header, logon, send, status_of

    from ksmbd_embedded.config import config_from_text
    from ksmbd_embedded.pwddb import PasswordDb, nt_hash
    from ksmbd_embedded.server import ServerState

    share_dir = tmp_path / "share"
    share_dir.mkdir()
    (share_dir / "hello.txt").write_text("hi")
    cfg = config_from_text(CONFIG.format(path=share_dir), "test.uci")
    db = PasswordDb.load(tmp_path / "db")
    db.set("alice", nt_hash("secret"))
    state = ServerState(cfg, db)
    conn, sid, signer, status, msg_id = logon(state)
    assert status == STATUS_SUCCESS
    unc = "\\\\srv\\share".encode("utf-16-le")
    req = header(h.TREE_CONNECT, msg_id, session_id=sid) + struct.pack("<HHHH", 9, 0, 72,
                                                                      len(unc)) + unc
    signer.sign(req)
    resp = send(conn, req)
    assert status_of(resp) == STATUS_SUCCESS
    tree_id = struct.unpack_from("<Q", resp, 32)[0] >> 32
    msg_id += 1

    create = bytearray(header(h.CREATE, msg_id, session_id=sid, tree_id=tree_id))
    create += create_body("HELLO.TXT", ctx=contexts((cc.MXAC, b"")))
    create += bytes(-len(create) % 8)
    struct.pack_into("<I", create, 20, len(create))
    close = header(h.CLOSE, msg_id + 1, session_id=sid, tree_id=tree_id,
                   flags=h.FLAGS_RELATED_OPERATIONS)
    close += struct.pack("<HHIQQ", 24, 1, 0, 2**64 - 1, 2**64 - 1)
    signer.sign(create)
    signer.sign(close)
    resp = send(conn, bytes(create) + bytes(close))
    assert status_of(resp) == STATUS_SUCCESS
    c = Created(resp[64:struct.unpack_from("<I", resp, 20)[0]])
    assert c.action == FILE_OPENED and c.eof == 2 and cc.MXAC in c.contexts
    second = resp[struct.unpack_from("<I", resp, 20)[0]:]
    assert struct.unpack_from("<I", second, 8)[0] == STATUS_SUCCESS
    assert struct.unpack_from("<Q", second, 64 + 48)[0] == 2  # EndofFile from POSTQUERY
    assert len(state.opens) == 0


def test_new_read_only_file_with_delete_on_close(env):
    assert do_create(env, "n", access=GENERIC_ALL, disposition=FILE_CREATE,
                     attributes=FILE_ATTRIBUTE_READONLY,
                     options=FILE_DELETE_ON_CLOSE)[0] == STATUS_CANNOT_DELETE
    assert not os.path.exists(path(env, "n"))
    c = ok_create(env, "n", access=GENERIC_ALL, disposition=FILE_CREATE,
                  attributes=FILE_ATTRIBUTE_READONLY)
    assert env.server.opens.get(c.volatile).granted_access == FILE_ALL_ACCESS


# -- the times a CREATE response reports ------------------------------------------------------------

def slow_down(monkeypatch, owner, name: str) -> None:
    """Make owner.name wait 30 ms before it runs: the ctime its xattr write gives the object
    is then certainly a later tick than the mkdir/open's (the kernel's ctime clock ticks
    every 1-10 ms)."""
    real = getattr(owner, name)

    def slow(*args, **kw):
        time.sleep(0.03)
        return real(*args, **kw)
    monkeypatch.setattr(owner, name, slow)


@pytest.fixture
def slow_xattrs(monkeypatch):
    """Every DOS-attribute / security-descriptor store of a CREATE is slowed down."""
    from ksmbd_embedded.handlers import create
    slow_down(monkeypatch, create, "_store_attributes")
    slow_down(monkeypatch, create, "_store_security")


@pytest.mark.parametrize("options, disposition", [
    (FILE_DIRECTORY_FILE, FILE_CREATE),     # smbtorture smb2.create.open, its last step
    (FILE_NON_DIRECTORY_FILE, FILE_CREATE),
    (FILE_NON_DIRECTORY_FILE, FILE_OVERWRITE_IF),
])
def test_response_times_are_those_after_the_xattr_writes(env, slow_xattrs, options,
                                                        disposition):
    """MS-SMB2 2.2.14: the response's ChangeTime is the object's, i.e. what a QUERY_INFO
    right after it reports; storing the DOS attributes and the descriptor moves the ctime."""
    if disposition == FILE_OVERWRITE_IF:
        with open(path(env, "obj"), "wb") as f:
            f.write(b"old")
    c = ok_create(env, "obj", access=FILE_ALL_ACCESS, disposition=disposition,
                  options=options)
    st = os.stat(path(env, "obj"))
    assert c.change_time == unix_to_filetime(st.st_ctime_ns)
    assert c.write_time == unix_to_filetime(st.st_mtime_ns)
    ok_close(env, c)


def test_response_change_time_after_create_context_eas(env, monkeypatch):
    from ksmbd_embedded.fs import eas
    slow_down(monkeypatch, eas, "apply")
    ea = eas.encode_entry(eas.Ea("EAONE", b"VALUE1"), True)
    c = ok_create(env, "with-ea", access=FILE_ALL_ACCESS, disposition=FILE_CREATE,
                  ctx=contexts((cc.EXTA, ea)))
    assert c.change_time == unix_to_filetime(os.stat(path(env, "with-ea")).st_ctime_ns)
    ok_close(env, c)

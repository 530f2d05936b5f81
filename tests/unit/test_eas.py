"""Extended attributes in user xattrs (fs/eas.py): FileFullEa query/set, ExtA, EaSize."""

from __future__ import annotations

import os
import struct

import pytest
from handler_fixtures import HandlerEnv, call
from test_create import contexts, do_create, ok_close, ok_create, path
from test_streams import query, set_info

from ksmbd_embedded import header as h
from ksmbd_embedded.fs import eas, streams
from ksmbd_embedded.fs import file_info as fi
from ksmbd_embedded.handlers import create_contexts as cc
from ksmbd_embedded.handlers.create import (
    FILE_CREATE, FILE_NO_EA_KNOWLEDGE, FILE_OVERWRITE_IF,
)
from ksmbd_embedded.handlers.query_info import handle_query_info
from ksmbd_embedded.status import (
    STATUS_ACCESS_DENIED, STATUS_BUFFER_OVERFLOW, STATUS_BUFFER_TOO_SMALL,
    STATUS_NO_EAS_ON_FILE, STATUS_SUCCESS, SmbError,
)
from ksmbd_embedded.tree import (
    FILE_ALL_ACCESS, FILE_READ_ATTRIBUTES, FILE_READ_DATA, FILE_READ_EA, FILE_WRITE_DATA,
)


@pytest.fixture
def env(tmp_path):
    root = tmp_path / "share"
    root.mkdir()
    e = HandlerEnv(str(root))
    assert streams.supported(e.root), "the test file system takes no user xattrs"
    return e


def ea_list(*items) -> bytes:
    """A FILE_FULL_EA_INFORMATION chain of (name, value[, flags])."""
    return b"".join(eas.encode_entry(eas.Ea(i[0], i[1], i[2] if len(i) > 2 else 0),
                                     n == len(items) - 1) for n, i in enumerate(items))


def parse(data: bytes) -> list[tuple[str, bytes, int]]:
    return [(e.name, e.value, e.flags) for e in eas.parse_full_ea_list(data)]


# -- wire format ----------------------------------------------------------------------------------

def test_round_trip_and_alignment():
    data = ea_list(("EAONE", b"VALUE1"), ("SecondEA", b"ValueTwo"))
    assert struct.unpack_from("<I", data)[0] == 20  # 8 + 5 + 1 + 6 = 20, already aligned
    assert parse(data) == [("EAONE", b"VALUE1", 0), ("SECONDEA", b"ValueTwo", 0)]
    assert eas.ea_size([eas.Ea("EAONE", b"VALUE1"), eas.Ea("SECONDEA", b"ValueTwo")]) == \
        len(data)


@pytest.mark.parametrize("data,status", [
    (b"\x00" * 7, eas.STATUS_EA_LIST_INCONSISTENT),                      # short
    (struct.pack("<IBBH", 0, 0, 10, 0) + b"AB\x00", eas.STATUS_EA_LIST_INCONSISTENT),
    (struct.pack("<IBBH", 0, 0, 2, 0) + b"ABX", eas.STATUS_EA_LIST_INCONSISTENT),  # no NUL
    (struct.pack("<IBBH", 6, 0, 1, 0) + b"A\x00" + bytes(8), eas.STATUS_EA_LIST_INCONSISTENT),
    (struct.pack("<IBBH", 0, 0, 2, 1) + b"A*\x00v", eas.STATUS_INVALID_EA_NAME),
    (struct.pack("<IBBH", 0, 0, 0, 1) + b"\x00v", eas.STATUS_INVALID_EA_NAME),
])
def test_malformed_lists(data, status):
    with pytest.raises(SmbError) as err:
        eas.parse_full_ea_list(data)
    assert err.value.status == status


def test_encode_whole_entries_only():
    items = [eas.Ea("A", b"1" * 10), eas.Ea("B", b"2")]
    data, n = eas.encode_full_ea_list(items, 25)
    assert n == 1 and struct.unpack_from("<I", data)[0] == 0 and len(data) == 20
    assert eas.encode_full_ea_list(items, 10) == (b"", 0)


# -- storage --------------------------------------------------------------------------------------

def test_apply_set_replace_delete(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"")
    fd = os.open(p, os.O_RDONLY)
    try:
        os.setxattr(fd, "user.lower", b"x")  # written by another program
        eas.apply(fd, [eas.Ea("ONE", b"1"), eas.Ea("LOWER", b"y")])
        got = {e.name: e.value for e in eas.list_eas(fd)}
        assert got == {"ONE": b"1", "LOWER": b"y"}
        assert "user.lower" not in os.listxattr(fd)
        eas.apply(fd, [eas.Ea("ONE", b""), eas.Ea("MISSING", b"")])  # empty value: delete
        assert [e.name for e in eas.list_eas(fd)] == ["LOWER"]
    finally:
        os.close(fd)


@pytest.mark.parametrize("name", ["DOSATTRIB", "dosattrib", "DosStream.x:$DATA",
                                  "ksmbd.NTSD", "KSMBD.NeedEA", "NTACL"])
def test_internal_xattrs_are_not_eas(tmp_path, name):
    p = tmp_path / "f"
    p.write_bytes(b"")
    fd = os.open(p, os.O_RDONLY)
    try:
        os.setxattr(fd, "user." + name, b"internal")
        assert eas.list_eas(fd) == []
        with pytest.raises(SmbError) as err:
            eas.apply(fd, [eas.Ea(name.upper(), b"overwrite")])
        assert err.value.status == STATUS_ACCESS_DENIED
        assert os.getxattr(fd, "user." + name) == b"internal"
    finally:
        os.close(fd)


# -- through the handlers -------------------------------------------------------------------------

def full_ea_query(env, c, out_len=4096, names: list[str] | None = None, flags=0):
    inp = b""
    if names:
        parts = []
        for i, n in enumerate(names):
            raw = n.encode() + b"\x00"
            size = 5 + len(raw)
            padded = size if i == len(names) - 1 else (size + 3) & ~3
            parts.append(struct.pack("<IB", 0 if i == len(names) - 1 else padded, len(n))
                         + raw + bytes(padded - size))
        inp = b"".join(parts)
    body = struct.pack("<HBBIHHIIIQQ", 41, 1, fi.FILE_FULL_EA_INFORMATION, out_len,
                       64 + 40 if inp else 0, 0, len(inp), 0, flags, c.persistent,
                       c.volatile) + (inp or b"\x00")
    status, out = call(handle_query_info, env.request(h.QUERY_INFO, body))
    if status not in (STATUS_SUCCESS, STATUS_BUFFER_OVERFLOW):
        return status, None
    return status, out[8:8 + struct.unpack_from("<I", out, 4)[0]]


def test_create_context_set_query(env):
    ctx = contexts((cc.EXTA, ea_list(("EAONE", b"VALUE1"), ("SECONDEA", b"ValueTwo"))))
    c = ok_create(env, "f.txt", access=FILE_ALL_ACCESS, disposition=FILE_CREATE, ctx=ctx)
    status, data = full_ea_query(env, c)
    assert status == STATUS_SUCCESS
    assert parse(data) == [("EAONE", b"VALUE1", 0), ("SECONDEA", b"ValueTwo", 0)]
    status, info = query(env, c, fi.FILE_EA_INFORMATION)
    assert struct.unpack("<I", info)[0] == len(data)
    # only what was asked, a missing one with an empty value
    status, data = full_ea_query(env, c, names=["secondea", "NOPE"])
    assert parse(data) == [("SECONDEA", b"ValueTwo", 0), ("NOPE", b"", 0)]
    # whole entries only
    status, data = full_ea_query(env, c, out_len=30)
    assert status == STATUS_BUFFER_OVERFLOW and parse(data) == [("EAONE", b"VALUE1", 0)]
    assert full_ea_query(env, c, out_len=10)[0] == STATUS_BUFFER_TOO_SMALL
    # SET_INFO: change one, delete the other
    assert set_info(env, c, fi.FILE_FULL_EA_INFORMATION,
                    ea_list(("EAONE", b"new"), ("SECONDEA", b""))) == STATUS_SUCCESS
    assert parse(full_ea_query(env, c)[1]) == [("EAONE", b"new", 0)]
    assert set_info(env, c, fi.FILE_FULL_EA_INFORMATION, ea_list(("DOSATTRIB", b"x"))) == \
        STATUS_ACCESS_DENIED
    assert set_info(env, c, fi.FILE_FULL_EA_INFORMATION, ea_list(("EAONE", b""))) == \
        STATUS_SUCCESS
    assert full_ea_query(env, c)[0] == STATUS_NO_EAS_ON_FILE
    ok_close(env, c)


def test_access_checks(env):
    open(path(env, "f.txt"), "wb").close()
    c = ok_create(env, "f.txt", access=FILE_READ_DATA | FILE_READ_ATTRIBUTES)
    assert full_ea_query(env, c)[0] == STATUS_ACCESS_DENIED  # no FILE_READ_EA
    assert set_info(env, c, fi.FILE_FULL_EA_INFORMATION, ea_list(("A", b"1"))) == \
        STATUS_ACCESS_DENIED  # no FILE_WRITE_EA
    ok_close(env, c)


def test_bad_create_context_creates_nothing(env):
    ctx = contexts((cc.EXTA, ea_list(("BAD*NAME", b"1"))))
    status, _ = do_create(env, "f.txt", disposition=FILE_CREATE, ctx=ctx)
    assert status == eas.STATUS_INVALID_EA_NAME
    assert not os.path.exists(path(env, "f.txt"))
    ctx = contexts((cc.EXTA, ea_list(("DOSATTRIB", b"1"))))
    assert do_create(env, "f.txt", disposition=FILE_CREATE, ctx=ctx)[0] == STATUS_ACCESS_DENIED


def test_too_large_for_the_file_system(env):
    big = ea_list(*[(f"EA{i}", b"v" * 60000) for i in range(2)])
    ctx = contexts((cc.EXTA, big))
    status, _ = do_create(env, "f.txt", disposition=FILE_CREATE, ctx=ctx)
    if status == STATUS_SUCCESS:  # tmpfs, xfs: room enough
        return
    assert status == eas.STATUS_EA_TOO_LARGE
    assert not os.path.exists(path(env, "f.txt"))  # the failed CREATE took its file back


def test_need_ea_and_no_ea_knowledge(env):
    ctx = contexts((cc.EXTA, ea_list(("NEEDED", b"1", eas.FILE_NEED_EA))))
    ok_close(env, ok_create(env, "f.txt", access=FILE_ALL_ACCESS, disposition=FILE_CREATE,
                            ctx=ctx))
    assert do_create(env, "f.txt", options=FILE_NO_EA_KNOWLEDGE)[0] == STATUS_ACCESS_DENIED
    c = ok_create(env, "f.txt", access=FILE_ALL_ACCESS | FILE_READ_EA)
    assert parse(full_ea_query(env, c)[1]) == [("NEEDED", b"1", eas.FILE_NEED_EA)]
    ok_close(env, c)
    # an overwrite replaces them with the request's
    ctx = contexts((cc.EXTA, ea_list(("NEEDED", b""))))
    c = ok_create(env, "f.txt", access=FILE_WRITE_DATA | FILE_READ_EA,
                  disposition=FILE_OVERWRITE_IF, ctx=ctx)
    ok_close(env, c)
    ok_close(env, ok_create(env, "f.txt", options=FILE_NO_EA_KNOWLEDGE))

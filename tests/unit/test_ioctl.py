"""IOCTL (MS-SMB2 3.3.5.15): validate negotiate, DFS, interface info, pass-through FSCTLs."""

from __future__ import annotations

import struct

import pytest

from info_fixtures import ALL_ONES, CLIENT_DIALECTS, CLIENT_GUID, Env, ioctl_body
from ksmbd_embedded import header as h
from ksmbd_embedded.handlers import ioctl
from ksmbd_embedded.handlers.ioctl import handle_ioctl
from ksmbd_embedded.status import (
    STATUS_ACCESS_DENIED, STATUS_FILE_CLOSED, STATUS_FS_DRIVER_REQUIRED,
    STATUS_INVALID_DEVICE_REQUEST, STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED,
    STATUS_SUCCESS,
)

RESPONSE = struct.Struct("<HHIQQIIIIII")  # 2.2.32
DIALECTS_30 = CLIENT_DIALECTS[:-1]  # a client that negotiated 3.0.2 offered no 3.1.1


@pytest.fixture
def env(tmp_path):
    root = tmp_path / "share"
    root.mkdir()
    (root / "f.txt").write_bytes(b"data")
    e = Env(root, dialect=h.SMB3_02)
    e.conn.client_dialects = DIALECTS_30
    yield e
    e.close_all()


def call(env, body, **kw):
    return env.call(handle_ioctl, h.IOCTL, body, **kw)


def vneg(caps=0x7F, guid=CLIENT_GUID, sec_mode=h.NEGOTIATE_SIGNING_ENABLED,
         dialects=DIALECTS_30) -> bytes:
    return struct.pack("<I16sHH", caps, guid, sec_mode, len(dialects)) + \
        struct.pack(f"<{len(dialects)}H", *dialects)


# -- FSCTL_VALIDATE_NEGOTIATE_INFO ----------------------------------------------------------------

def test_validate_negotiate_match(env):
    status, body = call(env, ioctl_body(ioctl.FSCTL_VALIDATE_NEGOTIATE_INFO, None, vneg()))
    assert status == STATUS_SUCCESS
    (size, _, ctl, fid_p, fid_v, in_off, in_count, out_off, out_count, flags,
     _) = RESPONSE.unpack_from(body, 0)
    assert (size, ctl, fid_p, fid_v) == (49, ioctl.FSCTL_VALIDATE_NEGOTIATE_INFO, ALL_ONES,
                                         ALL_ONES)
    assert (in_off, in_count, out_off, out_count, flags) == (112, 0, 112, 24, 0)
    caps, guid, sec_mode, dialect = struct.unpack_from("<I16sHH", body, 48)
    assert caps == env.conn.server_capabilities
    assert guid == env.server.server_guid
    assert sec_mode & h.NEGOTIATE_SIGNING_ENABLED
    assert dialect == h.SMB3_02
    assert not env.conn.closing


@pytest.mark.parametrize("change", [
    {"caps": 0x3F}, {"guid": bytes(16)}, {"sec_mode": h.NEGOTIATE_SIGNING_REQUIRED},
    {"dialects": (h.SMB2_10, h.SMB3_00, h.SMB3_02)},   # not what NEGOTIATE saw
    {"dialects": DIALECTS_30[::-1]},
    {"dialects": CLIENT_DIALECTS},   # 3.1.1 offered: would have been chosen
])
def test_validate_negotiate_mismatch_closes_connection(env, change):
    status, _ = call(env, ioctl_body(ioctl.FSCTL_VALIDATE_NEGOTIATE_INFO, None, vneg(**change)))
    assert status == STATUS_ACCESS_DENIED
    assert env.conn.closing
    assert "validate negotiate" in env.conn.close_reason


def test_validate_negotiate_dialect_downgrade_detected(env):
    env.conn.dialect = h.SMB3_00  # as if a man in the middle had stripped 3.0.2 and 3.1.1
    status, _ = call(env, ioctl_body(ioctl.FSCTL_VALIDATE_NEGOTIATE_INFO, None, vneg()))
    assert status == STATUS_ACCESS_DENIED
    assert env.conn.closing


def test_validate_negotiate_on_311_closes(tmp_path):
    root = tmp_path / "s"
    root.mkdir()
    env = Env(root, dialect=h.SMB3_11)
    status, _ = call(env, ioctl_body(ioctl.FSCTL_VALIDATE_NEGOTIATE_INFO, None, vneg()))
    assert status == STATUS_ACCESS_DENIED
    assert env.conn.closing


def test_validate_negotiate_small_output_or_short_input_closes(env):
    status, _ = call(env, ioctl_body(ioctl.FSCTL_VALIDATE_NEGOTIATE_INFO, None, vneg(),
                                     max_out=23))
    assert status == STATUS_ACCESS_DENIED and env.conn.closing
    env.conn.closing = False
    status, _ = call(env, ioctl_body(ioctl.FSCTL_VALIDATE_NEGOTIATE_INFO, None, vneg()[:-2]))
    assert status == STATUS_ACCESS_DENIED and env.conn.closing


def test_validate_negotiate_needs_all_ones_file_id(env):
    op = env.open("f.txt")
    status, _ = call(env, ioctl_body(ioctl.FSCTL_VALIDATE_NEGOTIATE_INFO, op, vneg()))
    assert status == STATUS_INVALID_PARAMETER
    assert not env.conn.closing


# -- request checks -------------------------------------------------------------------------------

def test_flags_must_be_fsctl(env):
    status, _ = call(env, ioctl_body(ioctl.FSCTL_VALIDATE_NEGOTIATE_INFO, None, vneg(),
                                     flags=0))
    assert status == STATUS_NOT_SUPPORTED


def test_sizes_above_max_transact(env):
    big = (1 << 20) + 1
    assert call(env, ioctl_body(ioctl.FSCTL_VALIDATE_NEGOTIATE_INFO, None, vneg(),
                                max_out=big))[0] == STATUS_INVALID_PARAMETER
    assert call(env, ioctl_body(ioctl.FSCTL_VALIDATE_NEGOTIATE_INFO, None, vneg(),
                                max_in=big))[0] == STATUS_INVALID_PARAMETER


def test_input_out_of_bounds(env):
    body = bytearray(ioctl_body(ioctl.FSCTL_VALIDATE_NEGOTIATE_INFO, None, vneg()))
    struct.pack_into("<I", body, 28, 4096)  # InputCount past the message
    assert call(env, bytes(body))[0] == STATUS_INVALID_PARAMETER


def test_credit_charge_checked(env):
    body = ioctl_body(ioctl.FSCTL_SET_OBJECT_ID, env.open("f.txt"), max_out=200000)
    assert call(env, body, credit_charge=1)[0] == STATUS_INVALID_PARAMETER
    assert call(env, body, credit_charge=4)[0] == STATUS_INVALID_DEVICE_REQUEST


def test_unknown_file_id(env):
    status, _ = call(env, ioctl_body(ioctl.FSCTL_SET_SPARSE, None, file_id=(5, 5)))
    assert status == STATUS_FILE_CLOSED


# -- other FSCTLs ---------------------------------------------------------------------------------

@pytest.mark.parametrize("ctl", [ioctl.FSCTL_DFS_GET_REFERRALS, ioctl.FSCTL_DFS_GET_REFERRALS_EX])
def test_dfs_referrals(env, ctl):
    referral = struct.pack("<H", 4) + "\\server\\share".encode("utf-16-le") + b"\0\0"
    assert call(env, ioctl_body(ctl, None, referral))[0] == STATUS_FS_DRIVER_REQUIRED
    assert call(env, ioctl_body(ctl, None, referral, file_id=(1, 1)))[0] == \
        STATUS_INVALID_PARAMETER


def test_network_interfaces_not_supported_before_smb3(env):
    env.conn.dialect = h.SMB2_10
    assert call(env, ioctl_body(ioctl.FSCTL_QUERY_NETWORK_INTERFACE_INFO, None))[0] == \
        STATUS_NOT_SUPPORTED


def test_pipe_fsctls_not_supported_yet(env):
    op = env.open("f.txt")
    assert call(env, ioctl_body(ioctl.FSCTL_PIPE_TRANSCEIVE, op, b"\x05\x00"))[0] == \
        STATUS_NOT_SUPPORTED
    assert call(env, ioctl_body(ioctl.FSCTL_PIPE_WAIT, None, bytes(14)))[0] == \
        STATUS_NOT_SUPPORTED


def test_pipe_transceive_uses_pipe_object(env):
    class Pipe:
        def transceive(self, data, max_out):
            return STATUS_SUCCESS, bytes(data)[::-1]

    op = env.open("f.txt")
    op.pipe = Pipe()
    status, body = call(env, ioctl_body(ioctl.FSCTL_PIPE_TRANSCEIVE, op, b"abc"))
    assert status == STATUS_SUCCESS
    fields = RESPONSE.unpack_from(body, 0)
    assert fields[3:5] == (op.persistent_id, op.volatile_id)
    assert fields[7:9] == (112, 3)
    assert body[48:] == b"cba"


@pytest.mark.parametrize("ctl,status", [
    (ioctl.FSCTL_SET_REPARSE_POINT, STATUS_INVALID_DEVICE_REQUEST),
    (ioctl.FSCTL_DUPLICATE_EXTENTS_TO_FILE, STATUS_INVALID_DEVICE_REQUEST),
    (ioctl.FSCTL_FILE_LEVEL_TRIM, STATUS_INVALID_DEVICE_REQUEST),
    (ioctl.FSCTL_SRV_READ_HASH, STATUS_NOT_SUPPORTED),
    (ioctl.FSCTL_SRV_ENUMERATE_SNAPSHOTS, STATUS_NOT_SUPPORTED),
    (0x00ABCDEF, STATUS_NOT_SUPPORTED),   # not an MS-FSCC FSCTL
])
def test_pass_through_and_unimplemented(env, ctl, status):
    assert call(env, ioctl_body(ctl, env.open("f.txt"), bytes(16)))[0] == status


def test_compression(env):
    op = env.open("f.txt")
    status, body = call(env, ioctl_body(ioctl.FSCTL_GET_COMPRESSION, op, max_out=2))
    assert status == STATUS_SUCCESS
    assert RESPONSE.unpack_from(body, 0)[7:9] == (112, 2)
    assert body[48:] == b"\x00\x00"
    assert call(env, ioctl_body(ioctl.FSCTL_GET_COMPRESSION, op, max_out=1))[0] == \
        STATUS_INVALID_PARAMETER
    set_ = ioctl.FSCTL_SET_COMPRESSION
    assert call(env, ioctl_body(set_, op, b"\x00\x00"))[0] == STATUS_SUCCESS
    assert call(env, ioctl_body(set_, op, b"\x01\x00"))[0] == STATUS_NOT_SUPPORTED
    assert call(env, ioctl_body(set_, op, b"\x07\x00"))[0] == STATUS_INVALID_PARAMETER
    assert call(env, ioctl_body(set_, op, b"\x00"))[0] == STATUS_INVALID_PARAMETER
    reader = env.open("f.txt", access=0x00120089)
    assert call(env, ioctl_body(set_, reader, b"\x00\x00"))[0] == STATUS_ACCESS_DENIED
    assert call(env, ioctl_body(ioctl.FSCTL_GET_COMPRESSION, reader))[0] == STATUS_SUCCESS


def test_fscc_table():
    assert ioctl.FSCTL_SET_SPARSE in ioctl.FSCC_FSCTLS
    assert ioctl.FSCTL_VALIDATE_NEGOTIATE_INFO not in ioctl.FSCC_FSCTLS
    assert ioctl.FSCTL_PIPE_TRANSCEIVE not in ioctl.FSCC_FSCTLS


@pytest.mark.parametrize("ctl", [ioctl.FSCTL_CREATE_OR_GET_OBJECT_ID, ioctl.FSCTL_GET_OBJECT_ID])
def test_object_id_is_stable_per_file(env, ctl):
    first = call(env, ioctl_body(ctl, env.open("f.txt"), b""))
    second = call(env, ioctl_body(ctl, env.open("f.txt"), b""))
    assert first[0] == second[0] == STATUS_SUCCESS
    body = b"".join(bytes(p) for p in first[1]) if isinstance(first[1], list) else first[1]
    body2 = b"".join(bytes(p) for p in second[1]) if isinstance(second[1], list) else second[1]
    out1, out2 = body[48:], body2[48:]
    assert len(out1) == 64 and out1 == out2
    assert out1[:16] == out1[32:48]  # BirthObjectId equals ObjectId

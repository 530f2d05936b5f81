"""QUERY_INFO (MS-SMB2 3.3.5.20): every class served, access refusals, buffer-size statuses."""

from __future__ import annotations

import os
import struct

import pytest
from impacket.ldap import ldaptypes

from info_fixtures import Env, basic_buffer, query_body, set_body, unix_to_filetime
from ksmbd_embedded import header as h
from ksmbd_embedded.fs import file_info as fi
from ksmbd_embedded.fs import fs_info as fsi
from ksmbd_embedded.fs.security import (
    DACL_SECURITY_INFORMATION, GROUP_SECURITY_INFORMATION, OWNER_SECURITY_INFORMATION,
    SACL_SECURITY_INFORMATION,
)
from ksmbd_embedded.handlers.query_info import handle_query_info, volume_serial
from ksmbd_embedded.handlers.set_info import handle_set_info
from ksmbd_embedded.status import (
    STATUS_ACCESS_DENIED, STATUS_BUFFER_OVERFLOW, STATUS_BUFFER_TOO_SMALL, STATUS_FILE_CLOSED,
    STATUS_INFO_LENGTH_MISMATCH, STATUS_INVALID_INFO_CLASS, STATUS_INVALID_PARAMETER,
    STATUS_NO_EAS_ON_FILE, STATUS_NOT_SUPPORTED, STATUS_OBJECT_NAME_NOT_FOUND, STATUS_SUCCESS,
)
from ksmbd_embedded.tree import (
    FILE_READ_ATTRIBUTES, FILE_READ_DATA, READ_CONTROL, SYNCHRONIZE,
)

FILE, FS, SECURITY, QUOTA = 1, 2, 3, 4
RESPONSE = struct.Struct("<HHI")


@pytest.fixture
def env(tmp_path):
    root = tmp_path / "share"
    root.mkdir()
    (root / "dir").mkdir()
    (root / "dir" / "f.txt").write_bytes(b"hello world")
    (root / ".hidden").write_bytes(b"x")
    e = Env(root)
    yield e
    e.close_all()


def query(env, op, info_type, info_class, out_len=65536, **kw):
    return env.call(handle_query_info, h.QUERY_INFO,
                    query_body(info_type, info_class, op, out_len, **kw))


def payload(body: bytes) -> bytes:
    """The Buffer of a QUERY_INFO response, checked against its header fields."""
    size, off, length = RESPONSE.unpack_from(body, 0)
    assert size == 9
    assert off == 72
    assert len(body) >= 9
    data = body[8:8 + length]
    assert len(data) == length
    return data


# -- SMB2_0_INFO_FILE -----------------------------------------------------------------------------

def test_basic_information(env):
    op = env.open("dir\\f.txt")
    st = os.stat(op.path)
    status, body = query(env, op, FILE, fi.FILE_BASIC_INFORMATION)
    assert status == STATUS_SUCCESS
    data = payload(body)
    assert len(data) == 40
    ctime, atime, mtime, chtime, attrs, reserved = struct.unpack("<QQQQII", data)
    assert mtime == st.st_mtime_ns // 100 + 116444736000000000
    assert atime == st.st_atime_ns // 100 + 116444736000000000
    assert chtime == st.st_ctime_ns // 100 + 116444736000000000
    assert 0 < ctime <= mtime or ctime <= chtime
    assert attrs == 0x80  # FILE_ATTRIBUTE_NORMAL
    assert reserved == 0


def test_basic_information_directory_and_hidden(env):
    status, body = query(env, env.open("dir"), FILE, fi.FILE_BASIC_INFORMATION)
    assert status == STATUS_SUCCESS
    assert struct.unpack_from("<I", payload(body), 32)[0] == 0x10  # DIRECTORY
    status, body = query(env, env.open(".hidden"), FILE, fi.FILE_BASIC_INFORMATION)
    assert struct.unpack_from("<I", payload(body), 32)[0] == 0x02  # HIDDEN (hide dot files)


def test_standard_information(env):
    op = env.open("dir\\f.txt")
    status, body = query(env, op, FILE, fi.FILE_STANDARD_INFORMATION)
    assert status == STATUS_SUCCESS
    alloc, eof, nlink, pending, is_dir = struct.unpack("<QQIBB2x", payload(body))
    assert (eof, nlink, pending, is_dir) == (11, 1, 0, 0)
    assert alloc == os.stat(op.path).st_blocks * 512


def test_standard_information_reports_delete_pending(env):
    op = env.open("dir\\f.txt")
    status, _ = env.call(handle_set_info, h.SET_INFO,
                         set_body(FILE, fi.FILE_DISPOSITION_INFORMATION, op, b"\x01"))
    assert status == STATUS_SUCCESS
    other = env.open("dir\\f.txt")
    status, body = query(env, other, FILE, fi.FILE_STANDARD_INFORMATION)
    nlink, pending = struct.unpack_from("<IB", payload(body), 16)
    assert (nlink, pending) == (0, 1)  # the one link is going away


def test_standard_needs_no_read_attributes(env):
    op = env.open("dir\\f.txt", access=SYNCHRONIZE)
    assert query(env, op, FILE, fi.FILE_STANDARD_INFORMATION)[0] == STATUS_SUCCESS


def test_small_fixed_classes(env):
    op = env.open("dir\\f.txt", access=FILE_READ_DATA | FILE_READ_ATTRIBUTES)
    op.position = 5
    op.mode = fi.FILE_SEQUENTIAL_ONLY
    st = os.stat(op.path)
    expect = {
        fi.FILE_INTERNAL_INFORMATION: struct.pack("<Q", st.st_ino),
        fi.FILE_EA_INFORMATION: struct.pack("<I", 0),
        fi.FILE_ACCESS_INFORMATION: struct.pack("<I", FILE_READ_DATA | FILE_READ_ATTRIBUTES),
        fi.FILE_POSITION_INFORMATION: struct.pack("<Q", 5),
        fi.FILE_MODE_INFORMATION: struct.pack("<I", fi.FILE_SEQUENTIAL_ONLY),
        fi.FILE_ALIGNMENT_INFORMATION: struct.pack("<I", 0),
        fi.FILE_ATTRIBUTE_TAG_INFORMATION: struct.pack("<II", 0x80, 0),
        fi.FILE_ID_INFORMATION: struct.pack("<QQQ", volume_serial(st.st_dev), st.st_ino, 0),
    }
    for info_class, want in expect.items():
        status, body = query(env, op, FILE, info_class)
        assert status == STATUS_SUCCESS, info_class
        assert payload(body) == want, info_class


def test_network_open_and_compression(env):
    op = env.open("dir\\f.txt")
    status, body = query(env, op, FILE, fi.FILE_NETWORK_OPEN_INFORMATION)
    data = payload(body)
    assert len(data) == 56
    alloc, eof, attrs = struct.unpack_from("<QQI", data, 32)
    assert (eof, attrs) == (11, 0x80)
    status, body = query(env, op, FILE, fi.FILE_COMPRESSION_INFORMATION)
    size, fmt = struct.unpack_from("<QH", payload(body), 0)
    assert (size, fmt) == (alloc, 0)


def test_all_information_name_has_leading_backslash(env):
    op = env.open("dir\\f.txt")
    status, body = query(env, op, FILE, fi.FILE_ALL_INFORMATION)
    assert status == STATUS_SUCCESS
    data = payload(body)
    assert struct.unpack_from("<Q", data, 48)[0] == 11  # EndOfFile
    assert struct.unpack_from("<I", data, 76)[0] == op.granted_access
    nlen = struct.unpack_from("<I", data, 96)[0]
    assert data[100:100 + nlen].decode("utf-16-le") == "\\dir\\f.txt"


def test_name_classes(env):
    op = env.open("dir\\f.txt")
    status, body = query(env, op, FILE, fi.FILE_NAME_INFORMATION)
    assert payload(body)[4:].decode("utf-16-le") == "\\dir\\f.txt"
    status, body = query(env, op, FILE, fi.FILE_NORMALIZED_NAME_INFORMATION)
    assert payload(body)[4:].decode("utf-16-le") == "dir\\f.txt"
    root = env.open("")
    status, body = query(env, root, FILE, fi.FILE_NAME_INFORMATION)
    data = payload(body)
    assert len(data) == 8  # sizeof(FILE_NAME_INFORMATION): zero-padded
    assert struct.unpack_from("<I", data)[0] == 2
    assert data[4:6].decode("utf-16-le") == "\\"


def test_stream_information(env):
    status, body = query(env, env.open("dir\\f.txt"), FILE, fi.FILE_STREAM_INFORMATION)
    data = payload(body)
    nxt, nlen, size = struct.unpack_from("<IIQ", data, 0)
    assert (nxt, size) == (0, 11)
    assert data[24:24 + nlen].decode("utf-16-le") == "::$DATA"
    status, body = query(env, env.open("dir"), FILE, fi.FILE_STREAM_INFORMATION)
    assert status == STATUS_SUCCESS
    assert payload(body) == b""
    assert len(body) == 9  # StructureSize 9: one Buffer byte even when empty


def test_alternate_name_and_eas(env):
    op = env.open("dir\\f.txt")
    status, body = query(env, op, FILE, fi.FILE_ALTERNATE_NAME_INFORMATION)
    assert status == STATUS_SUCCESS
    assert payload(body)[4:].decode("utf-16-le") == "F.TXT"
    (env.root / "a long name.text").write_bytes(b"")
    status, body = query(env, env.open("a long name.text"), FILE,
                         fi.FILE_ALTERNATE_NAME_INFORMATION)
    short = payload(body)[4:].decode("utf-16-le")
    assert short.startswith("ALON~") and short.endswith(".TEX")
    assert query(env, env.open(""), FILE, fi.FILE_ALTERNATE_NAME_INFORMATION)[0] == \
        STATUS_OBJECT_NAME_NOT_FOUND
    assert query(env, op, FILE, fi.FILE_FULL_EA_INFORMATION)[0] == STATUS_NO_EAS_ON_FILE


@pytest.mark.parametrize("info_class", [
    fi.FILE_BASIC_INFORMATION, fi.FILE_ALL_INFORMATION, fi.FILE_NETWORK_OPEN_INFORMATION,
    fi.FILE_ATTRIBUTE_TAG_INFORMATION,
])
def test_read_attributes_required(env, info_class):
    op = env.open("dir\\f.txt", access=FILE_READ_DATA)
    assert query(env, op, FILE, info_class)[0] == STATUS_ACCESS_DENIED


def test_full_ea_needs_read_ea(env):
    op = env.open("dir\\f.txt", access=FILE_READ_ATTRIBUTES)
    assert query(env, op, FILE, fi.FILE_FULL_EA_INFORMATION)[0] == STATUS_ACCESS_DENIED


@pytest.mark.parametrize("info_class,status", [
    (200, STATUS_INVALID_INFO_CLASS),
    (0, STATUS_INVALID_INFO_CLASS),
    (fi.FILE_DIRECTORY_INFORMATION, STATUS_NOT_SUPPORTED),   # documented, not listed
    (fi.FILE_RENAME_INFORMATION, STATUS_NOT_SUPPORTED),
    (fi.FILE_PIPE_INFORMATION, STATUS_INVALID_PARAMETER),    # not a pipe
])
def test_class_validity(env, info_class, status):
    assert query(env, env.open("dir\\f.txt"), FILE, info_class)[0] == status


def test_id_and_normalized_name_by_dialect(tmp_path):
    root = tmp_path / "s"
    root.mkdir()
    (root / "f").write_bytes(b"")
    env = Env(root, dialect=h.SMB2_10)
    op = env.open("f")
    assert query(env, op, FILE, fi.FILE_ID_INFORMATION)[0] == STATUS_NOT_SUPPORTED
    assert query(env, op, FILE, fi.FILE_NORMALIZED_NAME_INFORMATION)[0] == STATUS_NOT_SUPPORTED
    env.close_all()


def test_fixed_class_too_short_is_length_mismatch_with_311_error_context(env):
    op = env.open("dir\\f.txt")
    status, body = query(env, op, FILE, fi.FILE_BASIC_INFORMATION, out_len=39)
    assert status == STATUS_INFO_LENGTH_MISMATCH
    # 2.2.2: StructureSize 9, ErrorContextCount 1, ByteCount 8, context {length 0, id 0}
    assert body == struct.pack("<HBBI", 9, 1, 0, 8) + struct.pack("<II", 0, 0)


def test_length_mismatch_before_311_has_empty_error_data(tmp_path):
    root = tmp_path / "s"
    root.mkdir()
    (root / "f").write_bytes(b"")
    env = Env(root, dialect=h.SMB3_02)
    status, body = query(env, env.open("f"), FILE, fi.FILE_STANDARD_INFORMATION, out_len=8)
    assert status == STATUS_INFO_LENGTH_MISMATCH
    assert body == b"\x09\x00\x00\x00\x00\x00\x00\x00\x00"
    env.close_all()


def test_variable_class_is_truncated_with_buffer_overflow(env):
    op = env.open("dir\\f.txt")
    status, body = query(env, op, FILE, fi.FILE_ALL_INFORMATION, out_len=104)
    assert status == STATUS_BUFFER_OVERFLOW
    data = payload(body)
    assert len(data) == 104
    assert struct.unpack_from("<I", data, 96)[0] == 20  # the full name length stays
    assert data[100:104].decode("utf-16-le") == "\\d"
    assert query(env, op, FILE, fi.FILE_ALL_INFORMATION, out_len=103)[0] == \
        STATUS_INFO_LENGTH_MISMATCH  # sizeof(FILE_ALL_INFORMATION) is 104


def test_output_length_above_max_transact(env):
    op = env.open("dir\\f.txt")
    assert query(env, op, FILE, fi.FILE_BASIC_INFORMATION, out_len=(1 << 20) + 1)[0] == \
        STATUS_INVALID_PARAMETER


def test_unknown_file_id(env):
    op = env.open("dir\\f.txt")
    body = bytearray(query_body(FILE, fi.FILE_BASIC_INFORMATION, op))
    struct.pack_into("<Q", body, 32, op.volatile_id + 100)
    assert env.call(handle_query_info, h.QUERY_INFO, bytes(body))[0] == STATUS_FILE_CLOSED


def test_input_buffer_out_of_bounds(env):
    op = env.open("dir\\f.txt")
    body = bytearray(query_body(FILE, fi.FILE_BASIC_INFORMATION, op))
    struct.pack_into("<HHI", body, 8, 104, 0, 4096)  # InputBufferOffset/Length past the end
    assert env.call(handle_query_info, h.QUERY_INFO, bytes(body))[0] == STATUS_INVALID_PARAMETER


def test_unknown_info_type_and_quota(env):
    op = env.open("dir\\f.txt")
    assert query(env, op, 9, 1)[0] == STATUS_INVALID_PARAMETER
    assert query(env, op, QUOTA, 0)[0] == STATUS_NOT_SUPPORTED


def test_times_round_trip_through_set_info(env):
    op = env.open("dir\\f.txt")
    when = unix_to_filetime(1_600_000_000.5)
    status, _ = env.call(handle_set_info, h.SET_INFO,
                         set_body(FILE, fi.FILE_BASIC_INFORMATION, op,
                                  basic_buffer(ctime=when - 10_000_000, mtime=when)))
    assert status == STATUS_SUCCESS
    ctime, _atime, mtime = struct.unpack_from("<QQQ", payload(
        query(env, op, FILE, fi.FILE_BASIC_INFORMATION)[1]), 0)
    assert mtime == when
    if _has_user_xattrs(op.path):
        assert ctime == when - 10_000_000


def _has_user_xattrs(path: str) -> bool:
    try:
        os.setxattr(path, "user.probe", b"1")
        os.removexattr(path, "user.probe")
        return True
    except OSError:
        return False


# -- SMB2_0_INFO_FILESYSTEM -----------------------------------------------------------------------

def test_fs_size_classes_follow_statvfs(env):
    op = env.open("")
    st = os.statvfs(env.root)
    status, body = query(env, op, FS, fsi.FILE_FS_SIZE_INFORMATION)
    total, avail, spu, bps = struct.unpack("<QQII", payload(body))
    assert bps == 512
    assert total * spu * 512 == st.f_blocks * st.f_frsize
    status, body = query(env, op, FS, fsi.FILE_FS_FULL_SIZE_INFORMATION)
    total2, caller, actual, spu2, bps2 = struct.unpack("<QQQII", payload(body))
    assert (total2, spu2, bps2) == (total, spu, bps)
    assert caller <= actual


def test_fs_attribute_information(env):
    status, body = query(env, env.open(""), FS, fsi.FILE_FS_ATTRIBUTE_INFORMATION)
    assert status == STATUS_SUCCESS
    data = payload(body)
    attrs, max_name, nlen = struct.unpack_from("<IiI", data, 0)
    assert data[12:12 + nlen].decode("utf-16-le") == "NTFS"
    assert max_name == 255
    assert attrs & (fsi.FILE_CASE_PRESERVED_NAMES | fsi.FILE_UNICODE_ON_DISK) == \
        fsi.FILE_CASE_PRESERVED_NAMES | fsi.FILE_UNICODE_ON_DISK
    from ksmbd_embedded.fs import streams
    named = fsi.FILE_NAMED_STREAMS | fsi.FILE_SUPPORTS_EXTENDED_ATTRIBUTES \
        | fsi.FILE_PERSISTENT_ACLS  # all three are stored in user xattrs
    assert attrs & named == (named if streams.supported(env.tree.root) else 0)
    assert not attrs & fsi.FILE_CASE_SENSITIVE_SEARCH
    assert not attrs & fsi.FILE_READ_ONLY_VOLUME
    from ksmbd_embedded.fs.fs_caps import caps_for
    # Where the file system has holes (fs_caps), served by the sparse FSCTLs (ioctl.py).
    assert bool(attrs & fsi.FILE_SUPPORTS_SPARSE_FILES) == caps_for(env.tree.root).sparse
    assert caps_for(env.tree.root).fs_type


def test_fs_attribute_read_only_tree(tmp_path):
    root = tmp_path / "ro"
    root.mkdir()
    env = Env(root, writable=False)
    status, body = query(env, env.open(""), FS, fsi.FILE_FS_ATTRIBUTE_INFORMATION)
    assert struct.unpack_from("<I", payload(body), 0)[0] & fsi.FILE_READ_ONLY_VOLUME
    env.close_all()


def test_fs_volume_device_sector_object_id(env):
    op = env.open("")
    data = payload(query(env, op, FS, fsi.FILE_FS_VOLUME_INFORMATION)[1])
    _ctime, serial, label_len, _objs = struct.unpack_from("<QIIB", data, 0)
    assert serial == volume_serial(os.stat(env.root).st_dev)
    assert data[18:18 + label_len].decode("utf-16-le") == "share"
    assert payload(query(env, op, FS, fsi.FILE_FS_DEVICE_INFORMATION)[1]) == \
        struct.pack("<II", fsi.FILE_DEVICE_DISK, fsi.FILE_DEVICE_IS_MOUNTED)
    assert len(payload(query(env, op, FS, fsi.FILE_FS_SECTOR_SIZE_INFORMATION)[1])) == 28
    assert len(payload(query(env, op, FS, fsi.FILE_FS_OBJECT_ID_INFORMATION)[1])) == 64


def test_fs_volume_short_label_padded_to_sizeof(tmp_path):  # smbclient wants >= 24
    root = tmp_path / "s"
    root.mkdir()
    env = Env(root)
    env.tree.share = env.server.config.shares[0].__class__(name="ro", path=str(root))
    data = payload(query(env, env.open(""), FS, fsi.FILE_FS_VOLUME_INFORMATION)[1])
    assert len(data) == 24
    assert struct.unpack_from("<I", data, 12)[0] == 4
    assert data[18:22].decode("utf-16-le") == "ro" and data[22:] == b"\0\0"
    status, body = query(env, env.open(""), FS, fsi.FILE_FS_VOLUME_INFORMATION, out_len=23)
    assert status == STATUS_INFO_LENGTH_MISMATCH
    env.close_all()


def test_fs_volume_label_truncated(env):
    status, body = query(env, env.open(""), FS, fsi.FILE_FS_VOLUME_INFORMATION, out_len=26)
    assert status == STATUS_BUFFER_OVERFLOW  # "share" needs 28
    assert len(payload(body)) == 26


def test_fs_control_says_no_quotas(env):
    data = payload(query(env, env.open(""), FS, fsi.FILE_FS_CONTROL_INFORMATION)[1])
    assert data == struct.pack("<qqqqqI4x", 0, 0, 0, -1, -1, 0)


# sizeof of each structure (smbtorture smb2.getinfo.qfs_buffercheck / qfile_buffercheck):
# below it STATUS_INFO_LENGTH_MISMATCH, up to the full length STATUS_BUFFER_OVERFLOW, then OK
FS_SIZEOF = {1: 24, 3: 24, 4: 8, 5: 16, 6: 48, 7: 32, 11: 28}
FILE_SIZEOF = {4: 40, 5: 24, 6: 8, 7: 4, 8: 4, 16: 4, 17: 4, 18: 104, 21: 8, 22: 32, 28: 16,
               34: 56, 35: 8}


def _buffercheck(env, op, info_type, info_class, fixed):
    status, body = query(env, op, info_type, info_class)
    assert status == STATUS_SUCCESS
    full = len(payload(body))
    for i in range(full + 1):
        status, _ = query(env, op, info_type, info_class, out_len=i)
        if i < fixed:
            assert status == STATUS_INFO_LENGTH_MISMATCH, (info_class, i)
        elif i < full:
            assert status == STATUS_BUFFER_OVERFLOW, (info_class, i)
        else:
            assert status == STATUS_SUCCESS, (info_class, i)


@pytest.mark.parametrize("info_class", sorted(FS_SIZEOF))
def test_fs_buffer_sizes(env, info_class):
    _buffercheck(env, env.open(""), FS, info_class, FS_SIZEOF[info_class])


@pytest.mark.parametrize("info_class", sorted(FILE_SIZEOF))
def test_file_buffer_sizes(env, info_class):
    _buffercheck(env, env.open("dir\\f.txt"), FILE, info_class, FILE_SIZEOF[info_class])


@pytest.mark.parametrize("info_class,status", [
    (fsi.FILE_FS_LABEL_INFORMATION, STATUS_NOT_SUPPORTED),
    (fsi.FILE_FS_DRIVER_PATH_INFORMATION, STATUS_NOT_SUPPORTED),
    (12, STATUS_INVALID_INFO_CLASS),
    (0, STATUS_INVALID_INFO_CLASS),
])
def test_fs_class_validity(env, info_class, status):
    assert query(env, env.open(""), FS, info_class)[0] == status


def test_fs_too_short(env):
    assert query(env, env.open(""), FS, fsi.FILE_FS_SIZE_INFORMATION, out_len=23)[0] == \
        STATUS_INFO_LENGTH_MISMATCH


# -- SMB2_0_INFO_SECURITY -------------------------------------------------------------------------

def _sd(env, op, additional, out_len=65536):
    status, body = query(env, op, SECURITY, 0, out_len, additional=additional)
    return status, body


def _expected_owner(op, st) -> str:
    """A file owned by the server's uid shows the asking user as owner (fs/security.py)."""
    from ksmbd_embedded.fs.sid import sid_to_str, token_for
    if st.st_uid == os.geteuid():
        return sid_to_str(token_for(op.session).user)
    return f"S-1-22-1-{st.st_uid}"


def test_security_descriptor_parses_with_impacket(env):
    path = env.root / "dir" / "f.txt"
    os.chmod(path, 0o640)
    op = env.open("dir\\f.txt")
    st = os.stat(path)
    status, body = _sd(env, op, OWNER_SECURITY_INFORMATION | GROUP_SECURITY_INFORMATION
                       | DACL_SECURITY_INFORMATION)
    assert status == STATUS_SUCCESS
    sd = ldaptypes.SR_SECURITY_DESCRIPTOR(data=payload(body))
    assert sd["Revision"] == b"\x01"
    assert sd["Control"] & 0x8004 == 0x8004  # SELF_RELATIVE | DACL_PRESENT
    owner = _expected_owner(op, st)
    assert sd["OwnerSid"].formatCanonical() == owner
    assert sd["GroupSid"].formatCanonical() == f"S-1-22-2-{st.st_gid}"
    aces = [(a["AceType"], a["Ace"]["Mask"]["Mask"], a["Ace"]["Sid"].formatCanonical())
            for a in sd["Dacl"].aces]
    assert [a[2] for a in aces] == [owner, f"S-1-22-2-{st.st_gid}"]
    owner_mask, group_mask = aces[0][1], aces[1][1]
    assert owner_mask & 0x120089 == 0x120089 and owner_mask & 0x2 and owner_mask & 0x10000
    assert owner_mask & 0x40000  # WRITE_DAC
    assert group_mask == 0x120089  # FILE_GENERIC_READ only
    assert all(a[0] == 0 for a in aces)  # ACCESS_ALLOWED


def test_security_everyone_and_full_control(env):
    path = env.root / "dir"
    os.chmod(path, 0o755)
    status, body = _sd(env, env.open("dir"), DACL_SECURITY_INFORMATION)
    sd = ldaptypes.SR_SECURITY_DESCRIPTOR(data=payload(body))
    assert sd["OwnerSid"] == b"" or sd["OffsetOwner"] == 0
    aces = {a["Ace"]["Sid"].formatCanonical(): a["Ace"]["Mask"]["Mask"] for a in sd["Dacl"].aces}
    assert aces.pop("S-1-1-0") == 0x1200A9  # read + execute
    assert sd["Dacl"].aces[0]["Ace"]["Mask"]["Mask"] == 0x1F01FF  # the owner: FILE_ALL_ACCESS


def test_security_descriptor_peer_smbprotocol(env):
    from smbprotocol.security_descriptor import SMB2CreateSDBuffer
    op = env.open("dir\\f.txt")
    status, body = _sd(env, op, OWNER_SECURITY_INFORMATION | GROUP_SECURITY_INFORMATION)
    sd = SMB2CreateSDBuffer()
    sd.unpack(payload(body))
    st = os.stat(op.path)
    assert str(sd.get_owner()) == _expected_owner(op, st)
    assert str(sd.get_group()) == f"S-1-22-2-{st.st_gid}"
    assert sd.get_dacl() is None


def test_security_buffer_too_small_reports_size(env):
    op = env.open("dir\\f.txt")
    full = payload(_sd(env, op, 7)[1])
    status, body = _sd(env, op, 7, out_len=len(full) - 1)
    assert status == STATUS_BUFFER_TOO_SMALL
    # 3.1.1: one error context carrying the 4-byte size needed
    assert body == struct.pack("<HBBI", 9, 1, 0, 12) + struct.pack("<III", 4, 0, len(full))


def test_security_buffer_too_small_before_311(tmp_path):
    root = tmp_path / "s"
    root.mkdir()
    (root / "f").write_bytes(b"")
    env = Env(root, dialect=h.SMB3_00)
    op = env.open("f")
    status, body = _sd(env, op, 7, out_len=8)
    assert status == STATUS_BUFFER_TOO_SMALL
    size = struct.unpack_from("<I", body, 8)[0]
    assert body[:8] == struct.pack("<HBBI", 9, 0, 0, 4) and size > 20
    env.close_all()


def test_security_access_checks(env):
    op = env.open("dir\\f.txt", access=FILE_READ_ATTRIBUTES)
    assert _sd(env, op, OWNER_SECURITY_INFORMATION)[0] == STATUS_ACCESS_DENIED
    op = env.open("dir\\f.txt", access=READ_CONTROL)
    assert _sd(env, op, OWNER_SECURITY_INFORMATION)[0] == STATUS_SUCCESS
    assert _sd(env, op, SACL_SECURITY_INFORMATION)[0] == STATUS_ACCESS_DENIED


def test_security_sacl_gives_no_sacl(env):
    op = env.open("dir\\f.txt", access=READ_CONTROL | 0x01000000)  # ACCESS_SYSTEM_SECURITY
    status, body = _sd(env, op, SACL_SECURITY_INFORMATION)
    assert status == STATUS_SUCCESS
    data = payload(body)
    assert data == struct.pack("<BBHIIII", 1, 0, 0x8000, 0, 0, 0, 0)


# -- fs_caps: the probe behind FILE_SUPPORTS_SPARSE_FILES ------------------------------------------

def test_mountinfo_longest_mount_point_wins(tmp_path):
    from ksmbd_embedded.fs.fs_caps import mount_for
    info = tmp_path / "mountinfo"
    info.write_text(
        "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
        "30 22 8:17 / /mnt/usb rw,relatime shared:2 - vfat /dev/sdb1 rw,fmask=0022\n"
        "31 22 8:18 / /mnt/usb\\040two ro,relatime shared:3 - fuseblk /dev/sdc1 ro\n"
    )
    assert mount_for("/mnt/usb/photos", str(info))[:2] == ("vfat", "/dev/sdb1")
    assert mount_for("/mnt/usbx", str(info))[:2] == ("ext4", "/dev/sda1")
    fstype, source, options = mount_for("/mnt/usb two/x", str(info))
    assert (fstype, "ro" in options) == ("fuseblk", True)


def test_probe_of_a_real_directory(tmp_path):
    from ksmbd_embedded.fs.fs_caps import caps_for, forget, probe
    caps = probe(str(tmp_path))
    assert caps.fs_type != ""
    if caps.fs_type in ("ext4", "tmpfs", "btrfs", "xfs"):
        assert caps.sparse and caps.hard_links and not caps.zero_fill_extend
    forget()
    assert caps_for(str(tmp_path)) == caps


# -- security descriptor builder ------------------------------------------------------------------

def test_security_descriptor_layout():
    from ksmbd_embedded.fs.security import build_security_descriptor, sid_to_str
    sd = build_security_descriptor(0o100604, 1000, 100, 0x7)
    _rev, _sbz, control, off_owner, off_group, off_sacl, off_dacl = struct.unpack_from(
        "<BBHIIII", sd, 0)
    assert (control, off_sacl) == (0x8004, 0)
    assert sid_to_str(sd[off_owner:off_group]) == "S-1-22-1-1000"
    assert sid_to_str(sd[off_group:off_dacl]) == "S-1-22-2-100"
    rev, _, size, count, _ = struct.unpack_from("<BBHHH", sd, off_dacl)
    assert (rev, count, off_dacl + size) == (2, 2, len(sd))  # owner rw-, group none, other r--
    assert build_security_descriptor(0o100000, 0, 0, 0) == \
        struct.pack("<BBHIIII", 1, 0, 0x8000, 0, 0, 0, 0)

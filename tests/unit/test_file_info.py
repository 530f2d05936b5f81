"""QUERY_INFO encoders and SET_INFO decoders for file classes (MS-FSCC 2.4)."""

import struct

import pytest
from smbprotocol import file_info as sp

from ksmbd_embedded.fs import file_info as fi
from ksmbd_embedded.fs.dos_attrs import FileMeta
from ksmbd_embedded.fs.file_info import InfoError


def u8(v): return struct.pack("<B", v)
def u16(v): return struct.pack("<H", v)
def u32(v): return struct.pack("<I", v)
def u64(v): return struct.pack("<Q", v)
def i64(v): return struct.pack("<q", v)


CT = 132223104000000010
AT = 132223104000000020
WT = 132223104000000030
CHT = 132223104000000040


def meta(**kw):
    d = dict(attributes=0x20, creation_time=CT, last_access_time=AT, last_write_time=WT,
             change_time=CHT, end_of_file=5000, allocation_size=8192, nlink=2,
             file_id=0x0011223344556677, is_dir=False, delete_pending=False)
    d.update(kw)
    return FileMeta(**d)


# --- info class numbers ----------------------------------------------------

def test_info_class_numbers():
    assert fi.FILE_BASIC_INFORMATION == 4
    assert fi.FILE_STANDARD_INFORMATION == 5
    assert fi.FILE_INTERNAL_INFORMATION == 6
    assert fi.FILE_EA_INFORMATION == 7
    assert fi.FILE_ACCESS_INFORMATION == 8
    assert fi.FILE_NAME_INFORMATION == 9
    assert fi.FILE_RENAME_INFORMATION == 10
    assert fi.FILE_LINK_INFORMATION == 11
    assert fi.FILE_DISPOSITION_INFORMATION == 13
    assert fi.FILE_POSITION_INFORMATION == 14
    assert fi.FILE_MODE_INFORMATION == 16
    assert fi.FILE_ALIGNMENT_INFORMATION == 17
    assert fi.FILE_ALL_INFORMATION == 18
    assert fi.FILE_ALLOCATION_INFORMATION == 19
    assert fi.FILE_END_OF_FILE_INFORMATION == 20
    assert fi.FILE_ALTERNATE_NAME_INFORMATION == 21
    assert fi.FILE_STREAM_INFORMATION == 22
    assert fi.FILE_COMPRESSION_INFORMATION == 28
    assert fi.FILE_NETWORK_OPEN_INFORMATION == 34
    assert fi.FILE_ATTRIBUTE_TAG_INFORMATION == 35
    assert fi.FILE_NORMALIZED_NAME_INFORMATION == 48
    assert fi.FILE_ID_INFORMATION == 59
    assert fi.FILE_DISPOSITION_INFORMATION_EX == 64
    assert fi.FILE_INFO_CLASS_NAMES[18] == "FILE_ALL_INFORMATION"
    for cls, size in fi.FILE_INFO_MIN_SIZES.items():
        assert size > 0 and cls in fi.FILE_INFO_CLASS_NAMES


# --- golden encodings ------------------------------------------------------

def test_basic_golden():
    data = fi.encode_basic(meta())
    assert data == b"".join([
        u64(CT),     # 0  CreationTime
        u64(AT),     # 8  LastAccessTime
        u64(WT),     # 16 LastWriteTime
        u64(CHT),    # 24 ChangeTime
        u32(0x20),   # 32 FileAttributes
        u32(0),      # 36 Reserved
    ])
    assert len(data) == 40
    assert data[32:36] == u32(0x20)


def test_standard_golden():
    data = fi.encode_standard(meta(delete_pending=True))
    assert data == b"".join([
        u64(8192),   # 0  AllocationSize
        u64(5000),   # 8  EndOfFile
        u32(2),      # 16 NumberOfLinks
        u8(1),       # 20 DeletePending
        u8(0),       # 21 Directory
        u16(0),      # 22 Reserved
    ])
    assert len(data) == 24
    d = fi.encode_standard(meta(is_dir=True, end_of_file=0, allocation_size=0, nlink=3))
    assert d[20] == 0 and d[21] == 1 and d[16:20] == u32(3)


def test_network_open_golden():
    data = fi.encode_network_open(meta())
    assert data == b"".join([
        u64(CT),     # 0  CreationTime
        u64(AT),     # 8  LastAccessTime
        u64(WT),     # 16 LastWriteTime
        u64(CHT),    # 24 ChangeTime
        u64(8192),   # 32 AllocationSize
        u64(5000),   # 40 EndOfFile
        u32(0x20),   # 48 FileAttributes
        u32(0),      # 52 Reserved
    ])
    assert len(data) == 56


def test_all_golden():
    name = "\\dir\\f.txt"
    nb = name.encode("utf-16-le")
    data = fi.encode_all(meta(), name, access_flags=0x001F01FF, position=77,
                         mode=0x20, alignment=0, ea_size=0)
    expected = b"".join([
        # BasicInformation @0
        u64(CT), u64(AT), u64(WT), u64(CHT),
        u32(0x20),           # 32 FileAttributes
        u32(0),              # 36 Reserved
        # StandardInformation @40
        u64(8192),           # 40 AllocationSize
        u64(5000),           # 48 EndOfFile
        u32(2),              # 56 NumberOfLinks
        u8(0),               # 60 DeletePending
        u8(0),               # 61 Directory
        u16(0),              # 62 Reserved
        # InternalInformation @64
        u64(0x0011223344556677),
        # EaInformation @72
        u32(0),
        # AccessInformation @76
        u32(0x001F01FF),
        # PositionInformation @80
        u64(77),
        # ModeInformation @88
        u32(0x20),
        # AlignmentInformation @92
        u32(0),
        # NameInformation @96
        u32(len(nb)),        # 96 FileNameLength
        nb,                  # 100 FileName
    ])
    assert data == expected
    assert len(data) == 100 + len(nb)
    assert data[64:72] == u64(0x0011223344556677)
    assert data[96:100] == u32(20)


def test_small_classes():
    m = meta()
    assert fi.encode_internal(m) == u64(0x0011223344556677)
    assert fi.encode_ea(m) == u32(0)
    assert fi.encode_ea(m, 12) == u32(12)
    assert fi.encode_access(m, 0x120089) == u32(0x120089)
    assert fi.encode_position(m, 1 << 40) == u64(1 << 40)
    assert fi.encode_mode(m, fi.FILE_SYNCHRONOUS_IO_NONALERT) == u32(0x20)
    assert fi.encode_alignment(m) == u32(0)
    assert fi.encode_name(m, "a") == u32(2) + b"a\x00"
    assert fi.encode_name(m, b"b\x00") == u32(2) + b"b\x00"
    assert fi.encode_normalized_name(m, "\\x") == u32(4) + "\\x".encode("utf-16-le")
    assert fi.encode_alternate_name(m, "FOO~1.TXT") == u32(18) + "FOO~1.TXT".encode("utf-16-le")
    assert fi.encode_attribute_tag(m) == u32(0x20) + u32(0)
    assert fi.encode_attribute_tag(m, 0xA000000C) == u32(0x20) + u32(0xA000000C)


def test_id_information():
    data = fi.encode_id(meta(), volume_serial=0xCAFEBABE)
    assert data == b"".join([
        u64(0xCAFEBABE),              # 0  VolumeSerialNumber
        u64(0x0011223344556677),      # 8  FileId, low 64 bits
        u64(0),                       # 16 FileId, high 64 bits
    ])


def test_stream_information():
    data = fi.encode_stream(meta())
    name = "::$DATA".encode("utf-16-le")
    assert data == b"".join([
        u32(0),            # 0  NextEntryOffset
        u32(len(name)),    # 4  StreamNameLength (14)
        u64(5000),         # 8  StreamSize
        u64(8192),         # 16 StreamAllocationSize
        name,              # 24 StreamName
    ])
    assert fi.encode_stream(meta(is_dir=True)) == b""
    s = sp.FileStreamInformation()
    s.unpack(data)
    assert s["stream_name"].get_value() == "::$DATA"
    assert s["stream_size"].get_value() == 5000
    assert s["stream_allocation_size"].get_value() == 8192


def test_compression_information():
    data = fi.encode_compression(meta())
    assert data == b"".join([
        u64(8192),   # 0  CompressedFileSize (bytes allocated)
        u16(0),      # 8  CompressionFormat NONE
        u8(0),       # 10 CompressionUnitShift
        u8(0),       # 11 ChunkShift
        u8(0),       # 12 ClusterShift
        b"\0" * 3,   # 13 Reserved
    ])
    assert fi.encode_compression(meta(is_dir=True))[:8] == u64(0)


def test_non_ascii_and_surrogateescaped_names():
    m = meta()
    assert fi.encode_name(m, "Ünï€") == u32(8) + "Ünï€".encode("utf-16-le")
    raw = b"bad\xff".decode("utf-8", "surrogateescape")  # as os.listdir gives it
    enc = fi.encode_name(m, raw)
    assert enc[4:] == b"b\x00a\x00d\x00\xff\xdc"
    # ... and the same code units come back through the rename decoder
    buf = u8(0) + b"\0" * 7 + u64(0) + u32(len(enc) - 4) + enc[4:]
    assert fi.decode_rename(buf)[2] == raw


def test_encode_query_dispatch():
    m = meta()
    assert fi.encode_query(fi.FILE_BASIC_INFORMATION, m) == fi.encode_basic(m)
    assert fi.encode_query(fi.FILE_ALL_INFORMATION, m, name="x", access_flags=1) == \
        fi.encode_all(m, "x", 1)
    assert fi.encode_query(fi.FILE_ID_INFORMATION, m, volume_serial=5) == fi.encode_id(m, 5)
    for cls, size in fi.FILE_INFO_MIN_SIZES.items():
        if cls == fi.FILE_ALTERNATE_NAME_INFORMATION:
            assert fi.encode_query(cls, m) is None
            continue
        assert len(fi.encode_query(cls, m)) >= size, cls
    assert fi.encode_query(fi.FILE_RENAME_INFORMATION, m) is None
    assert fi.encode_query(999, m) is None


# --- cross-check with smbprotocol ------------------------------------------

def test_smbprotocol_reads_basic_and_standard():
    m = meta(attributes=0x21, delete_pending=True)
    b = sp.FileBasicInformation()
    b.unpack(fi.encode_basic(m))
    assert int(b["creation_time"].get_value()) == CT
    assert int(b["last_access_time"].get_value()) == AT
    assert int(b["last_write_time"].get_value()) == WT
    assert int(b["change_time"].get_value()) == CHT
    assert b["file_attributes"].get_value() == 0x21
    s = sp.FileStandardInformation()
    s.unpack(fi.encode_standard(m))
    assert s["allocation_size"].get_value() == 8192
    assert s["end_of_file"].get_value() == 5000
    assert s["number_of_links"].get_value() == 2
    assert s["delete_pending"].get_value() is True
    assert s["directory"].get_value() is False


def test_smbprotocol_reads_all_information():
    m = meta()
    a = sp.FileAllInformation()
    a.unpack(fi.encode_all(m, "\\a\\b.txt", access_flags=0x12019F, position=3, mode=0x22))
    assert a["basic_information"].get_value()["file_attributes"].get_value() == 0x20
    std = a["standard_information"].get_value()
    assert std["end_of_file"].get_value() == 5000
    assert std["number_of_links"].get_value() == 2
    assert a["internal_information"].get_value()["index_number"].get_value() == 0x0011223344556677
    assert a["access_information"].get_value()["access_flags"].get_value() == 0x12019F
    assert a["position_information"].get_value()["current_byte_offset"].get_value() == 3
    assert a["mode_information"].get_value()["mode"].get_value() == 0x22
    assert a["name_information"].get_value()["file_name"].get_value() == "\\a\\b.txt"


def test_smbprotocol_reads_attribute_tag():
    t = sp.FileAttributeTagInformation()
    t.unpack(fi.encode_attribute_tag(meta(attributes=0x10), 7))
    assert t["file_attributes"].get_value() == 0x10
    assert t["reparse_tag"].get_value() == 7


# --- SET_INFO decoders -----------------------------------------------------

def _status(fn, data):
    with pytest.raises(InfoError) as ei:
        fn(data)
    return ei.value.status


def test_decode_basic():
    data = i64(CT) + i64(0) + i64(-1) + i64(-2) + u32(0x21) + u32(0)
    assert fi.decode_basic(data) == (CT, 0, -1, -2, 0x21)
    assert fi.decode_basic(memoryview(bytearray(data))) == (CT, 0, -1, -2, 0x21)
    # longer buffers are fine
    assert fi.decode_basic(data + b"xx") == (CT, 0, -1, -2, 0x21)


def test_decode_basic_from_smbprotocol():
    b = sp.FileBasicInformation()
    b["creation_time"] = CT
    b["last_write_time"] = WT
    b["file_attributes"] = 0x2
    ct, at, wt, cht, attrs = fi.decode_basic(b.pack())
    assert (ct, wt, attrs) == (CT, WT, 2)


def test_decode_basic_errors():
    good = i64(0) * 4 + u32(0) + u32(0)
    assert _status(fi.decode_basic, good[:39]) == fi.STATUS_INFO_LENGTH_MISMATCH
    assert _status(fi.decode_basic, b"") == fi.STATUS_INFO_LENGTH_MISMATCH
    for pos in range(4):
        bad = bytearray(good)
        bad[pos * 8:pos * 8 + 8] = i64(-3)
        assert _status(fi.decode_basic, bytes(bad)) == fi.STATUS_INVALID_PARAMETER


@pytest.mark.parametrize("fn", [fi.decode_end_of_file, fi.decode_allocation,
                                fi.decode_position, fi.decode_valid_data_length])
def test_decode_u64_classes(fn):
    assert fn(u64(0)) == 0
    assert fn(u64(1 << 40) + b"pad") == 1 << 40
    assert _status(fn, u64(0)[:7]) == fi.STATUS_INFO_LENGTH_MISMATCH
    assert _status(fn, i64(-1)) == fi.STATUS_INVALID_PARAMETER


def test_decode_end_of_file_from_smbprotocol():
    e = sp.FileEndOfFileInformation()
    e["end_of_file"] = 123456
    assert fi.decode_end_of_file(e.pack()) == 123456


def test_decode_disposition():
    assert fi.decode_disposition(b"\x01") is True
    assert fi.decode_disposition(b"\x00") is False
    assert fi.decode_disposition(b"\x02\x00\x00\x00") is True
    assert _status(fi.decode_disposition, b"") == fi.STATUS_INFO_LENGTH_MISMATCH
    d = sp.FileDispositionInformation()
    d["delete_pending"] = True
    assert fi.decode_disposition(d.pack()) is True


def test_decode_disposition_ex():
    assert fi.decode_disposition_ex(u32(0)) == fi.FILE_DISPOSITION_DO_NOT_DELETE
    flags = fi.FILE_DISPOSITION_DELETE | fi.FILE_DISPOSITION_POSIX_SEMANTICS \
        | fi.FILE_DISPOSITION_IGNORE_READONLY_ATTRIBUTE
    assert fi.decode_disposition_ex(u32(flags)) == 0x13
    assert _status(fi.decode_disposition_ex, b"\x01\x00\x00") == fi.STATUS_INFO_LENGTH_MISMATCH
    assert _status(fi.decode_disposition_ex, u32(0x20)) == fi.STATUS_INVALID_PARAMETER


def _rename_buf(name, replace=1, root=0, nlen=None, extra=b""):
    nb = name.encode("utf-16-le")
    return b"".join([
        u8(replace),                         # 0  ReplaceIfExists
        b"\0" * 7,                           # 1  Reserved
        u64(root),                           # 8  RootDirectory
        u32(len(nb) if nlen is None else nlen),  # 16 FileNameLength
        nb,                                  # 20 FileName
        extra,
    ])


def test_decode_rename():
    assert fi.decode_rename(_rename_buf("dir\\new.txt")) == (True, 0, "dir\\new.txt")
    assert fi.decode_rename(_rename_buf("x", replace=0, root=9)) == (False, 9, "x")
    # trailing padding (Windows pads to 8 bytes) is ignored
    assert fi.decode_rename(_rename_buf("ab", extra=b"\0\0\0\0")) == (True, 0, "ab")
    assert fi.decode_link(_rename_buf("link")) == (True, 0, "link")


def test_decode_rename_errors():
    assert _status(fi.decode_rename, b"\0" * 19) == fi.STATUS_INFO_LENGTH_MISMATCH
    assert _status(fi.decode_rename, _rename_buf("")) == fi.STATUS_INVALID_PARAMETER
    assert _status(fi.decode_rename, _rename_buf("ab", nlen=3)) == fi.STATUS_INVALID_PARAMETER
    assert _status(fi.decode_rename, _rename_buf("ab", nlen=6)) == fi.STATUS_INVALID_PARAMETER
    assert _status(fi.decode_link, _rename_buf("ab", nlen=0xFFFFFFFE)) == \
        fi.STATUS_INVALID_PARAMETER


def test_decode_rename_from_smbprotocol():
    r = sp.FileRenameInformation()
    r["replace_if_exists"] = True
    r["file_name"] = "sub\\renamed.bin".encode("utf-16-le")
    assert fi.decode_rename(r.pack()) == (True, 0, "sub\\renamed.bin")
    link = sp.FileLinkInformation()
    link["replace_if_exists"] = False
    link["file_name"] = "hard.lnk".encode("utf-16-le")
    assert fi.decode_link(link.pack()) == (False, 0, "hard.lnk")


def test_decode_mode():
    assert fi.decode_mode(u32(0)) == 0
    ok = fi.FILE_WRITE_THROUGH | fi.FILE_SEQUENTIAL_ONLY | fi.FILE_SYNCHRONOUS_IO_NONALERT
    assert fi.decode_mode(u32(ok)) == ok
    assert fi.decode_mode(u32(fi.FILE_SYNCHRONOUS_IO_ALERT)) == 0x10
    assert _status(fi.decode_mode, b"\0\0\0") == fi.STATUS_INFO_LENGTH_MISMATCH
    assert _status(fi.decode_mode, u32(fi.FILE_NO_INTERMEDIATE_BUFFERING)) == \
        fi.STATUS_INVALID_PARAMETER
    assert _status(fi.decode_mode, u32(fi.FILE_DELETE_ON_CLOSE)) == fi.STATUS_INVALID_PARAMETER
    assert _status(fi.decode_mode, u32(0x30)) == fi.STATUS_INVALID_PARAMETER


def test_info_error():
    e = InfoError(fi.STATUS_INVALID_PARAMETER)
    assert e.status == 0xC000000D and "C000000D" in str(e)
    assert InfoError(1, "why").args == ("why",)
    assert fi.STATUS_INFO_LENGTH_MISMATCH == 0xC0000004

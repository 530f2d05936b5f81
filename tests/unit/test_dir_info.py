"""QUERY_DIRECTORY entry encoders (MS-FSCC 2.4)."""

import struct

import pytest
from smbprotocol import file_info as sp

from ksmbd_embedded.fs import dir_info as di
from ksmbd_embedded.fs.dir_info import DIR_INFO_CLASSES, encode_entry, set_next_entry_offset
from ksmbd_embedded.fs.dos_attrs import FileMeta


def u8(v): return struct.pack("<B", v)
def u16(v): return struct.pack("<H", v)
def u32(v): return struct.pack("<I", v)
def u64(v): return struct.pack("<Q", v)


CT = 132223104000000010
AT = 132223104000000020
WT = 132223104000000030
CHT = 132223104000000040
FID = 0x0102030405060708


def meta(**kw):
    d = dict(attributes=0x20, creation_time=CT, last_access_time=AT, last_write_time=WT,
             change_time=CHT, end_of_file=1234, allocation_size=4096, nlink=1,
             file_id=FID, is_dir=False)
    d.update(kw)
    return FileMeta(**d)


def head(name_len, attrs=0x20, eof=1234, alloc=4096):
    """The 64-byte head shared by the detailed classes, one field per line."""
    return b"".join([
        u32(0),          # 0  NextEntryOffset
        u32(0),          # 4  FileIndex
        u64(CT),         # 8  CreationTime
        u64(AT),         # 16 LastAccessTime
        u64(WT),         # 24 LastWriteTime
        u64(CHT),        # 32 ChangeTime
        u64(eof),        # 40 EndOfFile
        u64(alloc),      # 48 AllocationSize
        u32(attrs),      # 56 FileAttributes
        u32(name_len),   # 60 FileNameLength
    ])


def encode(cls, m, name, offset=0, limit=1 << 16):
    buf = bytearray()
    n = encode_entry(cls, m, name, buf, offset, limit)
    assert n is not None
    assert len(buf) == offset + n
    return bytes(buf[offset:])


def test_class_numbers_and_fixed_sizes():
    assert DIR_INFO_CLASSES == {1, 2, 3, 12, 37, 38, 60, 78, 79, 80, 81}
    assert di.DIR_INFO_FIXED_SIZES == {
        di.FILE_DIRECTORY_INFORMATION: 64,
        di.FILE_FULL_DIRECTORY_INFORMATION: 68,
        di.FILE_BOTH_DIRECTORY_INFORMATION: 94,
        di.FILE_NAMES_INFORMATION: 12,
        di.FILE_ID_BOTH_DIRECTORY_INFORMATION: 104,
        di.FILE_ID_FULL_DIRECTORY_INFORMATION: 80,
        di.FILE_ID_EXTD_DIRECTORY_INFORMATION: 88,
        di.FILE_ID_64_EXTD_DIRECTORY_INFORMATION: 80,
        di.FILE_ID_64_EXTD_BOTH_DIRECTORY_INFORMATION: 106,
        di.FILE_ID_ALL_EXTD_DIRECTORY_INFORMATION: 96,
        di.FILE_ID_ALL_EXTD_BOTH_DIRECTORY_INFORMATION: 122,
    }


def test_id_both_directory_golden():
    name = "Résumé.docx"
    nb = name.encode("utf-16-le")
    data = encode(di.FILE_ID_BOTH_DIRECTORY_INFORMATION, meta(), name)
    assert data == b"".join([
        u32(0),          # 0   NextEntryOffset
        u32(0),          # 4   FileIndex
        u64(CT),         # 8   CreationTime
        u64(AT),         # 16  LastAccessTime
        u64(WT),         # 24  LastWriteTime
        u64(CHT),        # 32  ChangeTime
        u64(1234),       # 40  EndOfFile
        u64(4096),       # 48  AllocationSize
        u32(0x20),       # 56  FileAttributes
        u32(len(nb)),    # 60  FileNameLength
        u32(0),          # 64  EaSize
        u8(0),           # 68  ShortNameLength
        u8(0),           # 69  Reserved1
        b"\0" * 24,      # 70  ShortName
        u16(0),          # 94  Reserved2
        u64(FID),        # 96  FileId
        nb,              # 104 FileName
    ])
    assert data[96:104] == u64(FID)
    assert data[104:] == nb


def test_directory_full_both_names_golden():
    nb = "a.txt".encode("utf-16-le")
    m = meta()
    assert encode(di.FILE_DIRECTORY_INFORMATION, m, "a.txt") == head(10) + nb
    assert encode(di.FILE_FULL_DIRECTORY_INFORMATION, m, "a.txt") == b"".join([
        head(10),
        u32(0),          # 64 EaSize
        nb,              # 68 FileName
    ])
    assert encode(di.FILE_BOTH_DIRECTORY_INFORMATION, m, "a.txt") == b"".join([
        head(10),
        u32(0),          # 64 EaSize
        u8(0),           # 68 ShortNameLength
        u8(0),           # 69 Reserved1
        b"\0" * 24,      # 70 ShortName
        nb,              # 94 FileName
    ])
    assert encode(di.FILE_NAMES_INFORMATION, m, "a.txt") == b"".join([
        u32(0),          # 0  NextEntryOffset
        u32(0),          # 4  FileIndex
        u32(10),         # 8  FileNameLength
        nb,              # 12 FileName
    ])
    assert encode(di.FILE_ID_FULL_DIRECTORY_INFORMATION, m, "a.txt") == b"".join([
        head(10),
        u32(0),          # 64 EaSize
        u32(0),          # 68 Reserved
        u64(FID),        # 72 FileId
        nb,              # 80 FileName
    ])


def test_extd_classes_golden():
    nb = "d".encode("utf-16-le")
    m = meta(attributes=0x10, end_of_file=0, allocation_size=0, is_dir=True)
    h = head(2, attrs=0x10, eof=0, alloc=0)
    assert encode(di.FILE_ID_EXTD_DIRECTORY_INFORMATION, m, "d") == b"".join([
        h,
        u32(0),          # 64 EaSize
        u32(0),          # 68 ReparsePointTag
        u64(FID),        # 72 FileId (128-bit, low half)
        u64(0),          # 80 FileId (high half)
        nb,              # 88 FileName
    ])
    assert encode(di.FILE_ID_64_EXTD_DIRECTORY_INFORMATION, m, "d") == b"".join([
        h,
        u32(0),          # 64 EaSize
        u32(0),          # 68 ReparsePointTag
        u64(FID),        # 72 FileId
        nb,              # 80 FileName
    ])
    assert encode(di.FILE_ID_64_EXTD_BOTH_DIRECTORY_INFORMATION, m, "d") == b"".join([
        h,
        u32(0),          # 64 EaSize
        u32(0),          # 68 ReparsePointTag
        u64(FID),        # 72 FileId
        u8(0),           # 80 ShortNameLength
        u8(0),           # 81 Reserved1
        b"\0" * 24,      # 82 ShortName
        nb,              # 106 FileName
    ])
    assert encode(di.FILE_ID_ALL_EXTD_DIRECTORY_INFORMATION, m, "d") == b"".join([
        h,
        u32(0),          # 64 EaSize
        u32(0),          # 68 ReparsePointTag
        u64(FID),        # 72 FileId
        u64(FID),        # 80 FileId128 low
        u64(0),          # 88 FileId128 high
        nb,              # 96 FileName
    ])
    assert encode(di.FILE_ID_ALL_EXTD_BOTH_DIRECTORY_INFORMATION, m, "d") == b"".join([
        h,
        u32(0),          # 64 EaSize
        u32(0),          # 68 ReparsePointTag
        u64(FID),        # 72 FileId
        u64(FID),        # 80 FileId128 low
        u64(0),          # 88 FileId128 high
        u8(0),           # 96 ShortNameLength
        u8(0),           # 97 Reserved1
        b"\0" * 24,      # 98 ShortName
        nb,              # 122 FileName
    ])


@pytest.mark.parametrize("cls", sorted(DIR_INFO_CLASSES))
def test_fits_exactly_and_not_one_byte_less(cls):
    fixed = di.DIR_INFO_FIXED_SIZES[cls]
    name = "file.bin"
    size = fixed + 2 * len(name)
    off = 16
    buf = bytearray(b"\xAA" * 512)
    before = bytes(buf)
    assert encode_entry(cls, meta(), name, buf, off, off + size - 1) is None
    assert buf == before                       # nothing written
    assert encode_entry(cls, meta(), name, buf, off, off + size) == size
    assert buf[:off] == before[:off]           # nothing before the entry
    assert buf[off + size:] == before[off + size:]  # nor after it
    assert buf[off:off + 4] == u32(0)          # NextEntryOffset
    assert buf[off + fixed:off + size] == name.encode("utf-16-le")
    assert b"\xAA" not in buf[off:off + size]  # reserved and short-name bytes are zeroed


def test_buffer_grows_with_zeros():
    buf = bytearray(b"hdr")
    n = encode_entry(di.FILE_NAMES_INFORMATION, meta(), "x", buf, 8, 100)
    assert n == 14 and len(buf) == 22
    assert buf[3:8] == b"\0" * 5


def test_bytes_name_and_surrogates():
    nb = "pre-encoded".encode("utf-16-le")
    assert encode(di.FILE_NAMES_INFORMATION, meta(), nb)[12:] == nb
    raw = b"caf\xe9".decode("utf-8", "surrogateescape")
    expected = "caf".encode("utf-16-le") + b"\xe9\xdc"  # lone U+DCE9 as a code unit
    assert encode(di.FILE_NAMES_INFORMATION, meta(), raw)[12:] == expected


def test_unsupported_class():
    with pytest.raises(ValueError):
        encode_entry(4, meta(), "x", bytearray(), 0, 100)


def _walk(data):
    """Split a QUERY_DIRECTORY buffer on NextEntryOffset."""
    off = 0
    while True:
        nxt = struct.unpack_from("<I", data, off)[0]
        yield off, data[off:off + nxt] if nxt else data[off:]
        if not nxt:
            return
        off += nxt


def _build(cls, entries, limit=4096):
    buf = bytearray()
    prev = None
    end = 0
    for m, name in entries:
        off = (end + 7) & ~7
        n = encode_entry(cls, m, name, buf, off, limit)
        if n is None:
            break
        if prev is not None:
            set_next_entry_offset(buf, prev, off)
        prev, end = off, off + n
    return bytes(buf[:end])


ENTRIES = [
    (meta(attributes=0x10, is_dir=True, end_of_file=0, allocation_size=0, file_id=2), "."),
    (meta(attributes=0x10, is_dir=True, end_of_file=0, allocation_size=0, file_id=1), ".."),
    (meta(), "report.pdf"),
    (meta(attributes=0x22, end_of_file=7, file_id=0xFFFFFFFFFFFFFFFF), "ünïcødé.txt"),
]


def test_chain_decoded_by_smbprotocol_id_both():
    data = _build(di.FILE_ID_BOTH_DIRECTORY_INFORMATION, ENTRIES)
    parts = list(_walk(data))
    assert [off % 8 for off, _ in parts] == [0, 0, 0, 0]
    assert len(parts) == 4
    for (off, chunk), (m, name) in zip(parts, ENTRIES):
        s = sp.FileIdBothDirectoryInformation()
        s.unpack(chunk)
        assert s["file_name"].get_value().decode("utf-16-le") == name
        assert s["file_id"].get_value() == m.file_id
        assert s["end_of_file"].get_value() == m.end_of_file
        assert s["allocation_size"].get_value() == m.allocation_size
        assert s["file_attributes"].get_value() == m.attributes
        assert s["creation_time"].pack() == u64(CT)  # raw FILETIME bytes
        assert s["change_time"].pack() == u64(CHT)
        assert s["short_name_length"].get_value() == 0
    # the last entry ends the buffer, unpadded
    assert len(data) == parts[-1][0] + 104 + 2 * len(ENTRIES[-1][1])
    assert struct.unpack_from("<I", data, parts[-1][0])[0] == 0


@pytest.mark.parametrize("cls,struct_type", [
    (di.FILE_DIRECTORY_INFORMATION, sp.FileDirectoryInformation),
    (di.FILE_FULL_DIRECTORY_INFORMATION, sp.FileFullDirectoryInformation),
    (di.FILE_BOTH_DIRECTORY_INFORMATION, sp.FileBothDirectoryInformation),
    (di.FILE_ID_FULL_DIRECTORY_INFORMATION, sp.FileIdFullDirectoryInformation),
    (di.FILE_NAMES_INFORMATION, sp.FileNamesInformation),
])
def test_chain_decoded_by_smbprotocol_other_classes(cls, struct_type):
    data = _build(cls, ENTRIES)
    parts = list(_walk(data))
    assert len(parts) == 4
    for (off, chunk), (m, name) in zip(parts, ENTRIES):
        s = struct_type()
        s.unpack(chunk)
        assert s["file_name"].get_value().decode("utf-16-le") == name
        if cls != di.FILE_NAMES_INFORMATION:
            assert s["end_of_file"].get_value() == m.end_of_file
            assert s["file_attributes"].get_value() == m.attributes
        if cls == di.FILE_ID_FULL_DIRECTORY_INFORMATION:
            assert s["file_id"].get_value() == m.file_id


def test_chain_stops_at_limit():
    # Room for the first two 104+2 / 104+4 entries only: 0..106, 112..216
    data = _build(di.FILE_ID_BOTH_DIRECTORY_INFORMATION, ENTRIES, limit=230)
    parts = list(_walk(data))
    assert [off for off, _ in parts] == [0, 112]
    assert len(data) == 112 + 104 + 4


def test_set_next_entry_offset():
    buf = bytearray(64)
    set_next_entry_offset(buf, 8, 48)
    assert buf[8:12] == u32(40)

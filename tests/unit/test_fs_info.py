"""QUERY_INFO file system classes (MS-FSCC 2.5)."""

import os
import struct
import uuid
from types import SimpleNamespace

import pytest
from smbprotocol import file_info as sp

from ksmbd_embedded.fs import fs_info as fs


def u8(v): return struct.pack("<B", v)
def u32(v): return struct.pack("<I", v)
def u64(v): return struct.pack("<Q", v)


def vfs(frsize=4096, bsize=4096, blocks=1000, bfree=600, bavail=500, flag=0):
    return SimpleNamespace(f_frsize=frsize, f_bsize=bsize, f_blocks=blocks,
                           f_bfree=bfree, f_bavail=bavail, f_flag=flag)


def test_class_numbers():
    assert (fs.FILE_FS_VOLUME_INFORMATION, fs.FILE_FS_SIZE_INFORMATION,
            fs.FILE_FS_DEVICE_INFORMATION, fs.FILE_FS_ATTRIBUTE_INFORMATION,
            fs.FILE_FS_FULL_SIZE_INFORMATION, fs.FILE_FS_OBJECT_ID_INFORMATION,
            fs.FILE_FS_SECTOR_SIZE_INFORMATION) == (1, 3, 4, 5, 7, 8, 11)


def test_attribute_flag_values():
    assert fs.FILE_CASE_SENSITIVE_SEARCH == 0x1
    assert fs.FILE_CASE_PRESERVED_NAMES == 0x2
    assert fs.FILE_UNICODE_ON_DISK == 0x4
    assert fs.FILE_PERSISTENT_ACLS == 0x8
    assert fs.FILE_SUPPORTS_SPARSE_FILES == 0x40
    assert fs.FILE_SUPPORTS_REPARSE_POINTS == 0x80
    assert fs.FILE_SUPPORTS_OBJECT_IDS == 0x10000
    assert fs.FILE_NAMED_STREAMS == 0x40000
    assert fs.FILE_READ_ONLY_VOLUME == 0x80000
    assert fs.FILE_SUPPORTS_HARD_LINKS == 0x400000
    assert fs.FILE_SUPPORTS_EXTENDED_ATTRIBUTES == 0x800000


def test_fs_attribute_golden():
    flags = fs.FILE_CASE_PRESERVED_NAMES | fs.FILE_UNICODE_ON_DISK | fs.FILE_SUPPORTS_SPARSE_FILES
    data = fs.encode_fs_attribute(flags)
    assert data == b"".join([
        u32(0x46),                  # 0  FileSystemAttributes
        u32(255),                   # 4  MaximumComponentNameLength
        u32(8),                     # 8  FileSystemNameLength
        "NTFS".encode("utf-16-le"),  # 12 FileSystemName
    ])
    assert len(data) == 20
    other = fs.encode_fs_attribute(fs.DEFAULT_FS_ATTRIBUTES, 143, "ext4")
    assert other[:12] == u32(0x6) + u32(143) + u32(8)
    assert other[12:] == "ext4".encode("utf-16-le")


def test_fs_volume_golden_and_smbprotocol():
    ct = 132223104000000000
    data = fs.encode_fs_volume(ct, 0x1234ABCD, "share")
    label = "share".encode("utf-16-le")
    assert data == b"".join([
        u64(ct),          # 0  VolumeCreationTime
        u32(0x1234ABCD),  # 8  VolumeSerialNumber
        u32(len(label)),  # 12 VolumeLabelLength
        u8(0),            # 16 SupportsObjects
        u8(0),            # 17 Reserved
        label,            # 18 VolumeLabel
    ])
    v = sp.FileFsVolumeInformation()
    v.unpack(data)
    assert v["volume_serial_number"].get_value() == 0x1234ABCD
    assert v["volume_label"].get_value() == "share"
    assert v["supports_objects"].get_value() is False
    assert v["volume_creation_time"].pack() == u64(ct)
    assert len(fs.encode_fs_volume(0, 1)) == 18
    assert fs.encode_fs_volume(0, 1 << 40 | 5)[8:12] == u32(5)
    assert fs.encode_fs_volume(0, 1, supports_objects=True)[16] == 1


def test_fs_size_golden():
    data = fs.encode_fs_size(vfs())
    assert data == b"".join([
        u64(1000),   # 0  TotalAllocationUnits
        u64(500),    # 8  AvailableAllocationUnits (caller's: f_bavail)
        u32(8),      # 16 SectorsPerAllocationUnit (4096 / 512)
        u32(512),    # 20 BytesPerSector
    ])


def test_fs_full_size_golden_and_smbprotocol():
    data = fs.encode_fs_full_size(vfs())
    assert data == b"".join([
        u64(1000),   # 0  TotalAllocationUnits
        u64(500),    # 8  CallerAvailableAllocationUnits (f_bavail)
        u64(600),    # 16 ActualAvailableAllocationUnits (f_bfree)
        u32(8),      # 24 SectorsPerAllocationUnit
        u32(512),    # 28 BytesPerSector
    ])
    f = sp.FileFsFullSizeInformation()
    f.unpack(data)
    assert f["total_allocation_units"].get_value() == 1000
    assert f["caller_available_units"].get_value() == 500
    assert f["actual_available_units"].get_value() == 600
    assert f["sectors_per_unit"].get_value() == 8
    assert f["bytes_per_sector"].get_value() == 512


def test_allocation_units_edge_cases():
    # f_frsize 0: fall back to f_bsize
    assert fs.allocation_units(vfs(frsize=0, bsize=1024)) == (1000, 500, 600, 2)
    # exactly one sector
    assert fs.allocation_units(vfs(frsize=512)) == (1000, 500, 600, 1)
    # a unit that is not a multiple of 512 is re-expressed in sectors
    assert fs.allocation_units(vfs(frsize=1000, blocks=1024, bfree=512, bavail=256)) == (
        2000, 500, 1000, 1)
    assert fs.allocation_units(vfs(frsize=256, blocks=10, bfree=4, bavail=2)) == (5, 1, 2, 1)
    # big volumes: 16 TiB of 64 KiB units
    units = 16 * 2**40 // 65536
    assert fs.allocation_units(vfs(frsize=65536, blocks=units, bfree=units, bavail=units)) == (
        units, units, units, 128)


def test_real_statvfs():
    st = os.statvfs("/")
    total, caller, actual, spu = fs.allocation_units(st)
    assert total * spu * 512 == st.f_blocks * st.f_frsize
    assert caller <= actual <= total
    assert len(fs.encode_fs_full_size(st)) == 32
    assert len(fs.encode_fs_size(st)) == 24


def test_read_only_flag_from_statvfs():
    assert fs.fs_attributes_from_statvfs(vfs()) == fs.DEFAULT_FS_ATTRIBUTES
    ro = vfs(flag=os.ST_RDONLY)
    assert fs.fs_attributes_from_statvfs(ro) == fs.DEFAULT_FS_ATTRIBUTES | fs.FILE_READ_ONLY_VOLUME
    assert fs.fs_attributes_from_statvfs(ro, 0x40) == 0x40 | 0x80000


def test_fs_device():
    assert fs.encode_fs_device() == b"".join([
        u32(7),      # 0 DeviceType FILE_DEVICE_DISK
        u32(0x20),   # 4 Characteristics FILE_DEVICE_IS_MOUNTED
    ])
    assert fs.encode_fs_device(characteristics=fs.FILE_REMOTE_DEVICE | fs.FILE_READ_ONLY_DEVICE) \
        == u32(7) + u32(0x12)


def test_fs_object_id_and_smbprotocol():
    guid = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
    data = fs.encode_fs_object_id(guid.bytes_le)
    assert len(data) == 64
    assert data[:16] == guid.bytes_le    # 0  ObjectId
    assert data[16:] == b"\0" * 48       # 16 ExtendedInfo
    o = sp.FileFsObjectIdInformation()
    o.unpack(data)
    assert o["object_id"].pack() == guid.bytes_le  # ObjectId bytes pass through as given
    assert o["extended_info"].get_value() == b"\0" * 48
    assert fs.encode_fs_object_id() == b"\0" * 64
    with pytest.raises(ValueError):
        fs.encode_fs_object_id(b"x" * 17)


def test_fs_sector_size_golden():
    assert fs.encode_fs_sector_size() == b"".join([
        u32(512),    # 0  LogicalBytesPerSector
        u32(512),    # 4  PhysicalBytesPerSectorForAtomicity
        u32(512),    # 8  PhysicalBytesPerSectorForPerformance
        u32(512),    # 12 FileSystemEffectivePhysicalBytesPerSectorForAtomicity
        u32(3),      # 16 Flags: ALIGNED_DEVICE | PARTITION_ALIGNED_ON_DEVICE
        u32(0),      # 20 ByteOffsetForSectorAlignment
        u32(0),      # 24 ByteOffsetForPartitionAlignment
    ])
    d = fs.encode_fs_sector_size(512, 4096, flags=fs.SSINFO_FLAGS_NO_SEEK_PENALTY)
    assert struct.unpack("<7I", d) == (512, 4096, 4096, 4096, 4, 0, 0)


def test_min_sizes():
    assert fs.FS_INFO_MIN_SIZES[fs.FILE_FS_ATTRIBUTE_INFORMATION] == 12
    assert len(fs.encode_fs_attribute(fs_name="")) == 12
    assert fs.FS_INFO_MIN_SIZES[fs.FILE_FS_VOLUME_INFORMATION] == len(fs.encode_fs_volume(0, 0))

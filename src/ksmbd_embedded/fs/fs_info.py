"""QUERY_INFO file system information classes (MS-FSCC 2.5).

Sizes come from ``os.statvfs`` (or any object with f_frsize, f_bsize,
f_blocks, f_bfree, f_bavail): the allocation unit is f_frsize (f_bsize when
f_frsize is 0), reported as SectorsPerAllocationUnit = unit / 512 with
BytesPerSector 512.  A unit that is not a multiple of 512 is re-expressed in
512-byte units.  Encoders do no output-buffer checks; FS_INFO_MIN_SIZES gives
the fixed sizes for the caller's STATUS_INFO_LENGTH_MISMATCH check.
"""

from __future__ import annotations

import os
import struct

# File system information classes (MS-FSCC 2.5)
FILE_FS_VOLUME_INFORMATION = 1
FILE_FS_LABEL_INFORMATION = 2
FILE_FS_SIZE_INFORMATION = 3
FILE_FS_DEVICE_INFORMATION = 4
FILE_FS_ATTRIBUTE_INFORMATION = 5
FILE_FS_CONTROL_INFORMATION = 6
FILE_FS_FULL_SIZE_INFORMATION = 7
FILE_FS_OBJECT_ID_INFORMATION = 8
FILE_FS_DRIVER_PATH_INFORMATION = 9
FILE_FS_VOLUME_FLAGS_INFORMATION = 10
FILE_FS_SECTOR_SIZE_INFORMATION = 11

FS_INFO_MIN_SIZES = {
    FILE_FS_VOLUME_INFORMATION: 18,
    FILE_FS_SIZE_INFORMATION: 24,
    FILE_FS_DEVICE_INFORMATION: 8,
    FILE_FS_ATTRIBUTE_INFORMATION: 12,
    FILE_FS_FULL_SIZE_INFORMATION: 32,
    FILE_FS_OBJECT_ID_INFORMATION: 64,
    FILE_FS_SECTOR_SIZE_INFORMATION: 28,
}

# FileSystemAttributes (MS-FSCC 2.5.1)
FILE_CASE_SENSITIVE_SEARCH = 0x00000001
FILE_CASE_PRESERVED_NAMES = 0x00000002
FILE_UNICODE_ON_DISK = 0x00000004
FILE_PERSISTENT_ACLS = 0x00000008
FILE_FILE_COMPRESSION = 0x00000010
FILE_VOLUME_QUOTAS = 0x00000020
FILE_SUPPORTS_SPARSE_FILES = 0x00000040
FILE_SUPPORTS_REPARSE_POINTS = 0x00000080
FILE_SUPPORTS_REMOTE_STORAGE = 0x00000100
FILE_RETURNS_CLEANUP_RESULT_INFO = 0x00000200
FILE_SUPPORTS_POSIX_UNLINK_RENAME = 0x00000400
FILE_VOLUME_IS_COMPRESSED = 0x00008000
FILE_SUPPORTS_OBJECT_IDS = 0x00010000
FILE_SUPPORTS_ENCRYPTION = 0x00020000
FILE_NAMED_STREAMS = 0x00040000
FILE_READ_ONLY_VOLUME = 0x00080000
FILE_SEQUENTIAL_WRITE_ONCE = 0x00100000
FILE_SUPPORTS_TRANSACTIONS = 0x00200000
FILE_SUPPORTS_HARD_LINKS = 0x00400000
FILE_SUPPORTS_EXTENDED_ATTRIBUTES = 0x00800000
FILE_SUPPORTS_OPEN_BY_FILE_ID = 0x01000000
FILE_SUPPORTS_USN_JOURNAL = 0x02000000
FILE_SUPPORT_INTEGRITY_STREAMS = 0x04000000
FILE_SUPPORTS_BLOCK_REFCOUNTING = 0x08000000
FILE_SUPPORTS_SPARSE_VDL = 0x10000000
FILE_DAX_VOLUME = 0x20000000
FILE_SUPPORTS_GHOSTING = 0x40000000

# What a case-insensitive, case-preserving share on a POSIX file system
# honestly offers; the caller ORs in what it implements (sparse, ACLs, ...).
DEFAULT_FS_ATTRIBUTES = FILE_CASE_PRESERVED_NAMES | FILE_UNICODE_ON_DISK

# DeviceType and Characteristics (MS-FSCC 2.5.10)
FILE_DEVICE_CD_ROM = 0x00000002
FILE_DEVICE_DISK = 0x00000007
FILE_REMOVABLE_MEDIA = 0x00000001
FILE_READ_ONLY_DEVICE = 0x00000002
FILE_FLOPPY_DISKETTE = 0x00000004
FILE_WRITE_ONCE_MEDIA = 0x00000008
FILE_REMOTE_DEVICE = 0x00000010
FILE_DEVICE_IS_MOUNTED = 0x00000020
FILE_VIRTUAL_VOLUME = 0x00000040
FILE_DEVICE_SECURE_OPEN = 0x00000100
FILE_CHARACTERISTIC_TS_DEVICE = 0x00001000
FILE_CHARACTERISTIC_WEBDAV_DEVICE = 0x00002000
FILE_DEVICE_ALLOW_APPCONTAINER_TRAVERSAL = 0x00020000
FILE_PORTABLE_DEVICE = 0x00040000

# FileFsSectorSizeInformation Flags (MS-FSCC 2.5.7)
SSINFO_FLAGS_ALIGNED_DEVICE = 0x00000001
SSINFO_FLAGS_PARTITION_ALIGNED_ON_DEVICE = 0x00000002
SSINFO_FLAGS_NO_SEEK_PENALTY = 0x00000004
SSINFO_FLAGS_TRIM_ENABLED = 0x00000008
SSINFO_OFFSET_UNKNOWN = 0xFFFFFFFF

BYTES_PER_SECTOR = 512

# VolumeCreationTime, VolumeSerialNumber, VolumeLabelLength, SupportsObjects,
# Reserved; VolumeLabel at 18
_VOLUME = struct.Struct("<QIIBx")                  # 18
# TotalAllocationUnits, AvailableAllocationUnits, SectorsPerAllocationUnit,
# BytesPerSector
_SIZE = struct.Struct("<QQII")                     # 24
# DeviceType, Characteristics
_DEVICE = struct.Struct("<II")                     # 8
# FileSystemAttributes, MaximumComponentNameLength, FileSystemNameLength;
# FileSystemName at 12
_ATTRIBUTE = struct.Struct("<IiI")                 # 12
# TotalAllocationUnits, CallerAvailableAllocationUnits,
# ActualAvailableAllocationUnits, SectorsPerAllocationUnit, BytesPerSector
_FULL_SIZE = struct.Struct("<QQQII")               # 32
# ObjectId, ExtendedInfo
_OBJECT_ID = struct.Struct("<16s48s")              # 64
# LogicalBytesPerSector, PhysicalBytesPerSectorForAtomicity,
# PhysicalBytesPerSectorForPerformance,
# FileSystemEffectivePhysicalBytesPerSectorForAtomicity, Flags,
# ByteOffsetForSectorAlignment, ByteOffsetForPartitionAlignment
_SECTOR_SIZE = struct.Struct("<IIIIIII")           # 28


def allocation_units(st) -> tuple[int, int, int, int]:
    """(total, caller_available, actual_available, sectors_per_unit) from statvfs.

    caller_available is f_bavail (what an unprivileged user may use),
    actual_available f_bfree.  BytesPerSector is BYTES_PER_SECTOR.
    """
    unit = st.f_frsize or st.f_bsize or BYTES_PER_SECTOR
    if unit >= BYTES_PER_SECTOR and unit % BYTES_PER_SECTOR == 0:
        return st.f_blocks, st.f_bavail, st.f_bfree, unit // BYTES_PER_SECTOR
    return (st.f_blocks * unit // BYTES_PER_SECTOR, st.f_bavail * unit // BYTES_PER_SECTOR,
            st.f_bfree * unit // BYTES_PER_SECTOR, 1)


def fs_attributes_from_statvfs(st, base: int = DEFAULT_FS_ATTRIBUTES) -> int:
    """``base`` plus FILE_READ_ONLY_VOLUME when the mount is read-only."""
    if getattr(st, "f_flag", 0) & getattr(os, "ST_RDONLY", 1):
        return base | FILE_READ_ONLY_VOLUME
    return base


def encode_fs_volume(creation_time: int, serial_number: int, label: str = "",
                     supports_objects: bool = False) -> bytes:
    """FileFsVolumeInformation (1): 18 fixed bytes, then the label (UTF-16LE)."""
    lb = label.encode("utf-16-le", "surrogatepass")
    return _VOLUME.pack(creation_time, serial_number & 0xFFFFFFFF, len(lb),
                        1 if supports_objects else 0) + lb


def encode_fs_size(st) -> bytes:
    """FileFsSizeInformation (3), 24 bytes; available = caller-available (f_bavail)."""
    total, caller, _actual, spu = allocation_units(st)
    return _SIZE.pack(total, caller, spu, BYTES_PER_SECTOR)


def encode_fs_device(device_type: int = FILE_DEVICE_DISK,
                     characteristics: int = FILE_DEVICE_IS_MOUNTED) -> bytes:
    """FileFsDeviceInformation (4), 8 bytes."""
    return _DEVICE.pack(device_type, characteristics)


def encode_fs_attribute(attributes: int = DEFAULT_FS_ATTRIBUTES,
                        max_component_name_length: int = 255,
                        fs_name: str = "NTFS") -> bytes:
    """FileFsAttributeInformation (5): 12 fixed bytes, then FileSystemName."""
    nb = fs_name.encode("utf-16-le")
    return _ATTRIBUTE.pack(attributes, max_component_name_length, len(nb)) + nb


def encode_fs_full_size(st) -> bytes:
    """FileFsFullSizeInformation (7), 32 bytes."""
    total, caller, actual, spu = allocation_units(st)
    return _FULL_SIZE.pack(total, caller, actual, spu, BYTES_PER_SECTOR)


def encode_fs_object_id(object_id: bytes = b"", extended_info: bytes = b"") -> bytes:
    """FileFsObjectIdInformation (8): ObjectId (16, a GUID) + ExtendedInfo (48).

    Both are raw bytes (for a GUID in its MS wire form use uuid.UUID.bytes_le).
    Shorter values are zero-padded; longer ones are a ValueError.
    """
    if len(object_id) > 16 or len(extended_info) > 48:
        raise ValueError("object_id is 16 bytes, extended_info 48")
    return _OBJECT_ID.pack(object_id, extended_info)


def encode_fs_sector_size(
    logical: int = BYTES_PER_SECTOR,
    physical_atomicity: int | None = None,
    physical_performance: int | None = None,
    fs_effective_atomicity: int | None = None,
    flags: int = SSINFO_FLAGS_ALIGNED_DEVICE | SSINFO_FLAGS_PARTITION_ALIGNED_ON_DEVICE,
    sector_alignment_offset: int = 0,
    partition_alignment_offset: int = 0,
) -> bytes:
    """FileFsSectorSizeInformation (11), 28 bytes; unset physical sizes = logical."""
    pa = logical if physical_atomicity is None else physical_atomicity
    pp = pa if physical_performance is None else physical_performance
    fe = pa if fs_effective_atomicity is None else fs_effective_atomicity
    return _SECTOR_SIZE.pack(logical, pa, pp, fe, flags,
                             sector_alignment_offset, partition_alignment_offset)

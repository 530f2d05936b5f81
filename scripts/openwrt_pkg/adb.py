"""The generic ADB container of apk-tools 3 (what .apk v3 packages and packages.adb are made of).

Everything here was learnt from apk-tools 3.0.x (src/adb.h, src/adb.c, src/adb_comp.c,
src/io_gunzip.c) and checked against files made by `apk mkpkg` / `apk mkndx` 3.0.5.  The
package and index schemas themselves live in apk.py.

File layout (all integers little-endian):

* compression wrapper (adb_comp.c adb_compress/adb_decompress): ``b"ADBd"`` followed by a *raw*
  deflate stream (no zlib header, no checksum) of the plain file.  apk_ostream_zlib() sets up
  deflateInit2(level 9 ("level ?: 9"), Z_DEFLATED, windowBits -15, memLevel 8,
  Z_DEFAULT_STRATEGY), feeds every write with Z_NO_FLUSH (never a sync flush) and ends with
  Z_FINISH.  With no flushes zlib's output does not depend on how the input is cut into
  writes, so Python's zlib (the same library) with the same parameters gives the same bytes.  ``b"ADB."`` is an uncompressed file, ``b"ADBc"`` is followed
  by a 2-byte {alg, level} spec (alg 1 deflate, 2 zstd).
* plain file: ``b"ADB."`` + u32 schema id (``pckg`` for packages, ``indx`` for indexes), then
  blocks.  A block is a u32 ``type << 30 | (4 + payload length)`` header, the payload, and zero
  padding to a multiple of 8 bytes (ADB_BLOCK_ALIGNMENT).  Type 3 (ADB_BLOCK_EXT) is the large
  form: u32 ``3 << 30 | real type``, u32 reserved, u64 ``16 + payload length``.  The order is
  one ADB block (type 0), then SIG blocks (type 1), then DATA blocks (type 2).
* ADB block payload: an 8-byte header (u8 compat version = 0, u8 version, u16 reserved,
  u32 root value) followed by the value heap.  A value is a u32 ``type << 28 | payload``:
  0 is NULL; INT (0x1) carries a number below 2**28 inline; INT_32 (0x2) / INT_64 (0x3) and
  BLOB_8/16/32 (0x8/0x9/0xa, a u8/u16/u32 length then the bytes) point at heap offsets;
  OBJECT (0xe) and ARRAY (0xd) point at a u32 count ``n`` followed by ``n - 1`` values
  (field 1.. of an object, items of an array).

How apk's writer lays out the heap (adb.c adb_w_raw/adb_w_data), which the writer below copies
so that the bytes come out equal:

* data is appended in the order the values are created; before each item the heap is padded
  with zeros to the item's alignment: 1 for BLOB_8, 2 for BLOB_16, 4 for BLOB_32, INT_32,
  INT_64 and objects/arrays (adb_w_copy() copies an INT_64 with alignment 8).
* identical items are stored once: adb_w_data() keeps a hash table of everything written and
  returns the earlier offset when the same bytes were written before at an offset that suits
  the alignment (otherwise it writes them again and remembers the new place).  Raw writes
  (adb_w_blob_raw, used for the package's hash placeholder) bypass the table.
* an object or array drops its trailing NULL fields; one left with no field at all is NULL
  and writes nothing (__adb_w_obj).  Array items that are NULL are skipped (adb_wa_append).
* mkpkg and mkndx store their arrays through adb_wo_obj()/adb_w_fromstring(), which call
  adb_w_obj(): the paths, files, dependency and package arrays carry the OBJECT tag (0xe),
  not ARRAY (0xd).  Readers accept both.
* sorted arrays are sorted (qsort with adb_ro_cmpobj in ADB_OBJCMP_EXACT mode: every field in
  order, by the field's own comparison) just before they are written; "unique" arrays then
  drop neighbours that are the very same value (adb_wa_sort_unique).
"""

from __future__ import annotations

import functools
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

# --- values (adb.h ADB_TYPE_*) -------------------------------------------------------------

TYPE_SPECIAL = 0x0
TYPE_INT = 0x1
TYPE_INT_32 = 0x2
TYPE_INT_64 = 0x3
TYPE_BLOB_8 = 0x8
TYPE_BLOB_16 = 0x9
TYPE_BLOB_32 = 0xA
TYPE_ARRAY = 0xD
TYPE_OBJECT = 0xE

NULL = 0
VALUE_MASK = 0x0FFFFFFF


def _val(type_: int, payload: int) -> int:
    if payload > VALUE_MASK:
        raise ValueError("ADB heap larger than 256 MiB")
    return type_ << 28 | payload


def value_type(val: int) -> int:
    return val >> 28


def value_payload(val: int) -> int:
    return val & VALUE_MASK


# --- schema ids (apk_adb.h), blocks (adb.h) ------------------------------------------------

def schema_id(tag: bytes) -> int:
    """The u32 a 4-letter schema tag is stored as (b"pckg" -> 0x676b6370)."""
    return struct.unpack("<I", tag)[0]


SCHEMA_PACKAGE = schema_id(b"pckg")
SCHEMA_INDEX = schema_id(b"indx")

MAGIC_PLAIN = b"ADB."
MAGIC_DEFLATE = b"ADBd"
MAGIC_COMPRESSED = b"ADBc"

BLOCK_ADB = 0
BLOCK_SIG = 1
BLOCK_DATA = 2
BLOCK_EXT = 3
BLOCK_ALIGNMENT = 8

ADB_HEADER_SIZE = 8  # struct adb_hdr

# deflateInit2() arguments of apk_ostream_zlib() (io_gunzip.c): "level ?: 9", raw deflate.
DEFLATE_LEVEL = 9
DEFLATE_WBITS = -15
DEFLATE_MEMLEVEL = 8


class AdbError(ValueError):
    """Malformed ADB data."""


# --- schemas ---------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Scalar:
    """A blob or integer field.  ``compare`` orders two blobs (None is NULL) for sorting."""

    is_int: bool = False
    compare: Callable[[bytes | None, bytes | None], int] | None = None


@dataclass(frozen=True, eq=False)
class ObjectSchema:
    """An object: ``fields[i]`` is field ``i + 1`` as (name, schema)."""

    fields: tuple[tuple[str, "Schema"], ...]


@dataclass(frozen=True, eq=False)
class ArraySchema:
    """An array of ``item``; ``sort`` is None, "sort" or "unique" (the schema's pre_commit)."""

    item: "Schema"
    sort: str | None = None


Schema = Scalar | ObjectSchema | ArraySchema


def bytes_order(a: bytes | None, b: bytes | None) -> int:
    """apk_blob_sort(): memcmp of the common part, then the shorter first; NULL is empty."""
    a, b = a or b"", b or b""
    return (a > b) - (a < b)


BLOB = Scalar(compare=bytes_order)
INT = Scalar(is_int=True)


# --- reading ---------------------------------------------------------------------------------

class AdbView:
    """Read access to an ADB heap (the ADB block payload, header included)."""

    def __init__(self, adb: bytes | bytearray) -> None:
        self.adb = adb

    def _deref(self, val: int, size: int, extra: int = 0) -> int:
        offs = value_payload(val) + extra
        if offs + size > len(self.adb):
            raise AdbError(f"value {val:#010x} points outside the ADB block")
        return offs

    def root(self) -> int:
        if len(self.adb) < ADB_HEADER_SIZE:
            raise AdbError("ADB block shorter than its header")
        return struct.unpack_from("<I", self.adb, 4)[0]

    def integer(self, val: int) -> int | None:
        t = value_type(val)
        if val == NULL:
            return None
        if t == TYPE_INT:
            return value_payload(val)
        if t == TYPE_INT_32:
            return struct.unpack_from("<I", self.adb, self._deref(val, 4))[0]
        if t == TYPE_INT_64:
            return struct.unpack_from("<Q", self.adb, self._deref(val, 8))[0]
        raise AdbError(f"value {val:#010x} is not an integer")

    def blob(self, val: int) -> bytes | None:
        t = value_type(val)
        if val == NULL:
            return None
        sizes = {TYPE_BLOB_8: (1, "<B"), TYPE_BLOB_16: (2, "<H"), TYPE_BLOB_32: (4, "<I")}
        if t not in sizes:
            raise AdbError(f"value {val:#010x} is not a blob")
        hdr, fmt = sizes[t]
        length = struct.unpack_from(fmt, self.adb, self._deref(val, hdr))[0]
        start = self._deref(val, length, hdr)
        return bytes(self.adb[start:start + length])

    def items(self, val: int) -> list[int]:
        """The values of an object (field 1..) or array (item 1..); [] for NULL."""
        if val == NULL:
            return []
        if value_type(val) not in (TYPE_OBJECT, TYPE_ARRAY):
            raise AdbError(f"value {val:#010x} is not an object or array")
        offs = self._deref(val, 4)
        num = struct.unpack_from("<I", self.adb, offs)[0]
        if num == 0:
            raise AdbError(f"object at {offs:#x} has a zero count")
        self._deref(val, 4 * num)
        return list(struct.unpack_from(f"<{num - 1}I", self.adb, offs + 4))

    def decode(self, val: int, schema: Schema) -> Any:
        """The value as Python data: int, bytes, dict (field name -> value, NULL fields left
        out, fields beyond the schema ignored), or list; None for NULL."""
        if isinstance(schema, Scalar):
            return self.integer(val) if schema.is_int else self.blob(val)
        if val == NULL:
            return None
        values = self.items(val)
        if isinstance(schema, ArraySchema):
            if NULL in values:
                raise AdbError(f"array at {value_payload(val):#x} has a NULL item")
            return [self.decode(v, schema.item) for v in values]
        out: dict[str, Any] = {}
        for (name, sub), v in zip(schema.fields, values):
            decoded = self.decode(v, sub)
            if decoded is not None:
                out[name] = decoded
        return out


def compare(view1: AdbView, v1: int, view2: AdbView, v2: int, schema: Schema) -> int:
    """adb_ro_cmpobj(..., ADB_OBJCMP_EXACT) / the scalar schemas' compare: <0, 0 or >0."""
    if isinstance(schema, Scalar):
        if schema.is_int:
            a, b = view1.integer(v1) or 0, view2.integer(v2) or 0
            return (a > b) - (a < b)
        assert schema.compare is not None
        return schema.compare(view1.blob(v1), view2.blob(v2))
    items1, items2 = view1.items(v1), view2.items(v2)
    for i in range(max(len(items1), len(items2))):
        sub = schema.item if isinstance(schema, ArraySchema) else schema.fields[i][1]
        a = items1[i] if i < len(items1) else NULL
        b = items2[i] if i < len(items2) else NULL
        r = compare(view1, a, view2, b, sub)
        if r:
            return r
    return 0


# --- writing ---------------------------------------------------------------------------------

@dataclass
class AdbWriter:
    """Builds an ADB heap the way adb.c's writer does (see the module docstring)."""

    schema: int
    buf: bytearray = field(default_factory=lambda: bytearray(ADB_HEADER_SIZE))
    _seen: dict[bytes, int] = field(default_factory=dict)

    @property
    def view(self) -> AdbView:
        return AdbView(self.buf)

    def _raw(self, data: bytes, align: int) -> int:
        self.buf += bytes(-len(self.buf) % align)
        offs = len(self.buf)
        self.buf += data
        return offs

    def _data(self, data: bytes, align: int, cache: bool = True) -> int:
        if cache:
            offs = self._seen.get(data)
            if offs is not None and offs % align == 0:
                return offs
        offs = self._raw(data, align)
        if cache:
            self._seen[data] = offs
        return offs

    def blob(self, data: bytes, cache: bool = True) -> int:
        """adb_w_blob(); ``cache=False`` is adb_w_blob_raw().  An empty blob is NULL."""
        n = len(data)
        if n == 0:
            return NULL
        if n <= 0xFF:
            return _val(TYPE_BLOB_8, self._data(struct.pack("<B", n) + data, 1, cache))
        if n <= 0xFFFF:
            return _val(TYPE_BLOB_16, self._data(struct.pack("<H", n) + data, 2, cache))
        return _val(TYPE_BLOB_32, self._data(struct.pack("<I", n) + data, 4, cache))

    def integer(self, n: int) -> int:
        """adb_w_int(): inline below 2**28, else a 4- or 8-byte heap item (aligned to 4)."""
        if n < 0 or n >= 1 << 64:
            raise ValueError(f"integer out of range: {n}")
        if n < 0x10000000:
            return _val(TYPE_INT, n)
        if n < 1 << 32:
            return _val(TYPE_INT_32, self._data(struct.pack("<I", n), 4))
        return _val(TYPE_INT_64, self._data(struct.pack("<Q", n), 4))

    def obj(self, values: Sequence[int], type_: int = TYPE_OBJECT) -> int:
        """__adb_w_obj(): ``values`` are fields 1..; trailing NULLs dropped; none left is NULL."""
        n = len(values)
        while n and values[n - 1] == NULL:
            n -= 1
        if not n:
            return NULL
        data = struct.pack(f"<{n + 1}I", n + 1, *values[:n])
        return _val(type_, self._data(data, 4))

    def array(self, items: Sequence[int], schema: ArraySchema, type_: int = TYPE_OBJECT) -> int:
        """Append ``items`` (NULLs skipped), run the schema's sort, write the array.

        ``type_`` is OBJECT by default: mkpkg and mkndx store every array through
        adb_wo_obj()/adb_w_fromstring(), which call adb_w_obj() and so tag arrays as objects
        (only adb_w_arr() uses the ARRAY tag)."""
        vals = [v for v in items if v != NULL]
        if schema.sort:
            view = self.view
            key = functools.cmp_to_key(lambda a, b: compare(view, a, view, b, schema.item))
            vals.sort(key=key)  # stable, like glibc's merge-sort qsort
            if schema.sort == "unique":
                vals = [v for i, v in enumerate(vals) if i == 0 or v != vals[i - 1]]
        return self.obj(vals, type_)

    def copy(self, src: AdbView, val: int) -> int:
        """adb_w_copy(): copy a value (recursively) from another ADB into this one."""
        t = value_type(val)
        if val == NULL or t in (TYPE_SPECIAL, TYPE_INT):
            return val
        if t == TYPE_INT_32:
            return _val(t, self._data(struct.pack("<I", src.integer(val)), 4))
        if t == TYPE_INT_64:
            return _val(t, self._data(struct.pack("<Q", src.integer(val)), 8))
        if t in (TYPE_BLOB_8, TYPE_BLOB_16, TYPE_BLOB_32):
            blob = src.blob(val) or b""
            hdr = {TYPE_BLOB_8: "<B", TYPE_BLOB_16: "<H", TYPE_BLOB_32: "<I"}[t]
            return _val(t, self._data(struct.pack(hdr, len(blob)) + blob, struct.calcsize(hdr)))
        if t in (TYPE_OBJECT, TYPE_ARRAY):
            values = [self.copy(src, v) for v in src.items(val)]
            return _val(t, self._data(struct.pack(f"<{len(values) + 1}I", len(values) + 1,
                                                  *values), 4))
        raise AdbError(f"cannot copy value {val:#010x}")

    def set_root(self, val: int) -> None:
        struct.pack_into("<I", self.buf, 4, val)

    def blob_offset(self, val: int) -> int:
        """Where the bytes of a blob value start in the heap (after its length)."""
        hdr = {TYPE_BLOB_8: 1, TYPE_BLOB_16: 2, TYPE_BLOB_32: 4}[value_type(val)]
        return value_payload(val) + hdr


# --- blocks and files ------------------------------------------------------------------------

def block_header(type_: int, length: int) -> bytes:
    """adb_block_init(): the short 4-byte header, or the 16-byte EXT one for huge payloads."""
    if length <= 0x3FFFFFFF - 4:
        return struct.pack("<I", (type_ << 30) + 4 + length)
    return struct.pack("<IIQ", (BLOCK_EXT << 30) + type_, 0, 16 + length)


def block_pieces(type_: int, *payload: bytes) -> list[bytes]:
    """A block as apk writes it: header, payload piece(s), zero padding to 8 bytes."""
    length = sum(map(len, payload))
    hdr = block_header(type_, length)
    pad = -(len(hdr) + length) % BLOCK_ALIGNMENT
    return [hdr, *payload, bytes(pad)] if pad else [hdr, *payload]


def file_header(schema: int) -> bytes:
    return MAGIC_PLAIN + struct.pack("<I", schema)


def deflate(pieces: Sequence[bytes]) -> bytes:
    """``ADBd`` + raw deflate of the pieces, fed one write at a time like apk's gzo_write()."""
    z = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, DEFLATE_WBITS, DEFLATE_MEMLEVEL,
                         zlib.Z_DEFAULT_STRATEGY)
    out = [MAGIC_DEFLATE]
    out += [z.compress(p) for p in pieces]
    out.append(z.flush(zlib.Z_FINISH))
    return b"".join(out)


def decompress(data: bytes) -> bytes:
    """The plain ``ADB.`` file inside a (possibly deflated) ADB file."""
    magic = data[:4]
    if magic == MAGIC_PLAIN:
        return data
    if magic == MAGIC_DEFLATE:
        body = data[4:]
    elif magic == MAGIC_COMPRESSED:
        if len(data) < 6:
            raise AdbError("truncated compression spec")
        alg = data[4]
        if alg == 0:
            return data[6:]
        if alg != 1:
            raise AdbError(f"unsupported ADB compression algorithm {alg}")
        body = data[6:]
    else:
        raise AdbError(f"not an ADB file (magic {magic!r})")
    z = zlib.decompressobj(DEFLATE_WBITS)
    try:
        plain = z.decompress(body) + z.flush()
    except zlib.error as e:
        raise AdbError(f"bad deflate stream: {e}") from None
    if not z.eof:
        raise AdbError("truncated deflate stream")
    if z.unused_data:
        raise AdbError("data after the end of the deflate stream")
    return plain


@dataclass(frozen=True)
class Block:
    type: int
    payload: bytes


def parse_blocks(plain: bytes) -> tuple[int, list[Block]]:
    """Split a plain ``ADB.`` file into its schema id and blocks (adb_block_validate rules)."""
    if len(plain) < 8 or plain[:4] != MAGIC_PLAIN:
        raise AdbError("missing ADB. header")
    schema = struct.unpack_from("<I", plain, 4)[0]
    blocks: list[Block] = []
    pos = 8
    while pos < len(plain):
        if len(plain) - pos < 4:
            raise AdbError("truncated block header")
        type_size = struct.unpack_from("<I", plain, pos)[0]
        type_, rawsize, hdrsize = type_size >> 30, type_size & 0x3FFFFFFF, 4
        if type_ == BLOCK_EXT:
            if len(plain) - pos < 16:
                raise AdbError("truncated block header")
            type_, hdrsize = type_size & 0x3FFFFFFF, 16
            rawsize = struct.unpack_from("<Q", plain, pos + 8)[0]
        if rawsize < hdrsize:
            raise AdbError("block shorter than its header")
        size = rawsize + (-rawsize % BLOCK_ALIGNMENT)
        if size > len(plain) - pos:
            raise AdbError("truncated block")
        blocks.append(Block(type_, plain[pos + hdrsize:pos + rawsize]))
        pos += size
    return schema, blocks


def read_adb(data: bytes, schema: int, allow_data: bool) -> tuple[AdbView, list[Block]]:
    """Open an ADB file of the given schema: its ADB block and the blocks after it.

    The order is checked as adb.c __adb_m_parse() does: ADB first, SIG blocks, then DATA
    blocks (only when ``allow_data``) and nothing else."""
    found, blocks = parse_blocks(decompress(data))
    if found != schema:
        raise AdbError(f"schema {struct.pack('<I', found)!r}, expected "
                       f"{struct.pack('<I', schema)!r}")
    if not blocks or blocks[0].type != BLOCK_ADB:
        raise AdbError("the first block is not an ADB block")
    seen_data = False
    for blk in blocks[1:]:
        if blk.type == BLOCK_SIG and not seen_data:
            continue
        if blk.type == BLOCK_DATA and allow_data:
            seen_data = True
            continue
        raise AdbError(f"unexpected block of type {blk.type}")
    adb = blocks[0].payload
    if len(adb) < ADB_HEADER_SIZE:
        raise AdbError("ADB block shorter than its header")
    if adb[0] != 0:
        raise AdbError(f"unsupported ADB compat version {adb[0]}")
    return AdbView(adb), blocks[1:]

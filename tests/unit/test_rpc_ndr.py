"""NDR 2.0 subset (rpc/ndr.py) and PDU framing (rpc/pdu.py)."""

from __future__ import annotations

import struct

import pytest

from impacket.dcerpc.v5.rpcrt import MSRPCRespHeader

from ksmbd_embedded.rpc import pdu
from ksmbd_embedded.rpc.ndr import FIRST_REFERENT_ID, NdrError, NdrReader, NdrWriter


def test_alignment_and_integers():
    w = NdrWriter()
    w.u8(1)
    w.u32(0x11223344)
    w.u16(5)
    w.u32(6)
    assert w.getvalue() == b"\x01\x00\x00\x00" + b"\x44\x33\x22\x11" + b"\x05\x00\x00\x00" \
        + b"\x06\x00\x00\x00"
    r = NdrReader(w.getvalue()[4:])
    assert r.u32() == 0x11223344
    assert r.u16() == 5
    assert r.u32() == 6


def test_conformant_varying_string():
    w = NdrWriter()
    w.wstr("ab")
    assert w.getvalue() == struct.pack("<III", 3, 0, 3) + "ab\x00".encode("utf-16-le")
    assert NdrReader(w.getvalue()).wstr() == "ab"
    w = NdrWriter()
    w.wstr("")
    assert w.getvalue() == struct.pack("<III", 1, 0, 1) + b"\x00\x00"


def test_unique_pointers_get_distinct_referent_ids_and_null_is_zero():
    w = NdrWriter()
    w.unique_wstr("x")
    w.unique_wstr(None)
    w.unique_wstr("y")
    w.flush()
    data = w.getvalue()
    a, null, b = struct.unpack_from("<III", data)
    assert a == FIRST_REFERENT_ID and null == 0 and b not in (0, a)
    r = NdrReader(data[12:])
    assert r.wstr() == "x"
    r.align(4)
    assert r.wstr() == "y"


def test_array_of_structures_defers_strings_after_all_structures():
    w = NdrWriter()

    def item(pair):
        w.unique_wstr(pair[0])
        w.u32(pair[1])

    w.struct_array([("a", 1), ("bc", 2)], item)
    data = w.getvalue()
    count, p1, t1, p2, t2 = struct.unpack_from("<IIIII", data)
    assert (count, t1, t2) == (2, 1, 2) and p1 and p2
    r = NdrReader(data)
    r.pos = 20
    assert r.wstr() == "a"
    assert r.wstr() == "bc"
    assert r.remaining() == 0


def test_unique_wstr_reader_and_errors():
    w = NdrWriter()
    w.unique_wstr("\\\\srv")
    w.flush()
    assert NdrReader(w.getvalue()).unique_wstr() == "\\\\srv"
    assert NdrReader(b"\x00\x00\x00\x00").unique_wstr() is None
    with pytest.raises(NdrError):
        NdrReader(b"\x01\x00").u32()
    with pytest.raises(NdrError):  # actual count above maximum count
        NdrReader(struct.pack("<III", 1, 0, 2) + b"a\x00b\x00").wstr()


def test_response_fragments_sizes_flags_and_alloc_hint():
    stub = bytes(range(256)) * 40  # 10240 bytes
    frags = pdu.response_fragments(7, 1, stub, 4280)
    assert len(frags) == 3
    joined = b""
    for i, frag in enumerate(frags):
        hdr = MSRPCRespHeader(frag)
        assert hdr["frag_len"] == len(frag) <= 4280
        assert hdr["call_id"] == 7 and hdr["ctx_id"] == 1
        assert bool(hdr["flags"] & pdu.PFC_FIRST_FRAG) == (i == 0)
        assert bool(hdr["flags"] & pdu.PFC_LAST_FRAG) == (i == len(frags) - 1)
        assert hdr["alloc_hint"] == len(stub) - len(joined)
        body = frag[24:]
        if i < len(frags) - 1:
            assert len(body) % 8 == 0
        joined += body
    assert joined == stub
    empty = pdu.response_fragments(1, 0, b"", 4280)
    assert len(empty) == 1 and empty[0][3] == pdu.PFC_FIRST_FRAG | pdu.PFC_LAST_FRAG


def test_fault_layout():
    data = pdu.fault(9, 2, pdu.NCA_S_OP_RNG_ERROR)
    hdr = pdu.parse_header(data)
    assert (hdr.ptype, hdr.frag_length, hdr.call_id) == (pdu.FAULT, 32, 9)
    assert hdr.flags & pdu.PFC_DID_NOT_EXECUTE
    assert struct.unpack_from("<IHBBI", data, 16) == (0, 2, 0, 0, pdu.NCA_S_OP_RNG_ERROR)


def test_parse_bind_rejects_truncation():
    with pytest.raises(pdu.PduError):
        pdu.parse_header(b"\x05\x00")
    bad = struct.pack("<BBBB4sHHI", 5, 0, pdu.BIND, 3, pdu.DREP_LE, 28, 0, 1) \
        + struct.pack("<HHIB3x", 4280, 4280, 0, 1)
    with pytest.raises(pdu.PduError):
        pdu.parse_bind(bad, pdu.parse_header(bad))

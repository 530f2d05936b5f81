"""SMB2 signing (MS-SMB2 3.1.4.1 / 3.1.5.1): published signatures, primitives, cross-checks.

Published SMB messages with their AES-CMAC signatures (Microsoft Open Specifications blog):
  [ANATOMY] "SMB 2 and SMB 3 security in Windows 10: the anatomy of signing and
            cryptographic keys", Appendix "Key derivation example for SMB 3.1.1
            multichannel" (signed SESSION_SETUP messages of both channels).
  [ENC311]  "SMB 3.1.1 Encryption in Windows 10", Appendix A.1 / A.2 (final SESSION_SETUP
            responses).
Primitive vectors: RFC 4493 section 4 (AES-CMAC), NIST CAVP gcmEncryptExtIV128.rsp
[Keylen = 128][IVlen = 96][PTlen = 0][AADlen = 128][Taglen = 128] Count 0 and 1 (GMAC).
No published HMAC-SHA256 (SMB 2.x) or AES-GMAC *SMB message* vector was found: those are
cross-checked against smbprotocol's independent implementation instead.
"""

import hashlib
import hmac
import struct

import pytest
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ksmbd_embedded.crypto.signing import (
    AES_CMAC, AES_GMAC, HMAC_SHA256, Signer, aes_gmac, gmac_nonce,
)


def h(s: str) -> bytes:
    return bytes.fromhex("".join(s.split()))


# (key, message as published, signature field included)
PUBLISHED = {
    # [ANATOMY] master session: final SESSION_SETUP response, Session.SigningKey
    "anatomy-final-response": ("73FE7A9A77BEF0BDE49C650D8CCB5F76", """
FE534D4240000100000000000100800009000000000000000300000000000000FFFE000000000000
1900000000100000EBE146DA120BA25FC3376A49DFE31BC10900000048001D00A11B3019A0030A01
00A3120410010000003B453CDC3524164200000000"""),
    # [ANATOMY] second channel: binding SESSION_SETUP request, master session's SigningKey
    "anatomy-binding-request": ("73FE7A9A77BEF0BDE49C650D8CCB5F76", """
FE534D4240000100000000000100800008000000000000000200000000000000FFFE000000000000
190000000010000068BD0C58F613CE1334B1EB51C68D39EA19000101010000000000000058004A00
0000000000000000604806062B0601050502A03E303CA00E300C060A2B06010401823702020AA22A
04284E544C4D5353500001000000978208E200000000000000000000000000000000060380250000
000F"""),
    # [ANATOMY] second channel: STATUS_MORE_PROCESSING_REQUIRED response, Session.SigningKey
    "anatomy-binding-interim-response": ("73FE7A9A77BEF0BDE49C650D8CCB5F76", """
FE534D4240000100160000C00100010009000000000000000200000000000000FFFE000000000000
1900000000100000014A71CAE724995E612430E2BE87578C090000004800B300A181B03081ADA003
0A0101A10C060A2B06010401823702020AA281970481944E544C4D53535000020000000C000C0038
00000015828AE23823DA68E32D2FE1000000000000000050005000440000000A0092270000000F53
005500540033003100310002000C0053005500540033003100310001000C00530055005400330031
00310004000C0053005500540033003100310003000C005300550054003300310031000700080041
3B42AECBAED00100000000"""),
    # [ANATOMY] second channel: final SESSION_SETUP response, Channel.SigningKey
    "anatomy-binding-final-response": ("C962BCA1A9DD1697B030644199705431", """
FE534D4240000100000000000100800009000000000000000300000000000000FFFE000000000000
19000000001000008D604217FFBACF40635BF9D8729921500900000048001D00A11B3019A0030A01
00A312041001000000CFB046FC5D368E2200000000"""),
    # [ENC311] A.1: final SESSION_SETUP response
    "enc311-gcm-final-response": ("8765949DFEAEE105CE9118B45BE988F0", """
FE534D4240000100000000000100800009000000000000000200000000000000FFFE000000000000
25000000001000006B85A4519A0F3EEA35BA946DD3AFE6B80900000048001D00A11B3019A0030A01
00A3120410010000003932A87523AB660100000000"""),
    # [ENC311] A.2: final SESSION_SETUP response
    "enc311-ccm-final-response": ("3DCC82C5795AE27F383242761078C59B", """
FE534D4240000100000000000100800009000000000000000200000000000000FFFE000000000000
21000000001000003676196AEE8CA17E5D50A53642EF2BE40900000048001D00A11B3019A0030A01
00A3120410010000000F57444342A2717E00000000"""),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_cmac_signatures(name):
    key, msg = PUBLISHED[name]
    published = h(msg)
    signer = Signer(AES_CMAC, h(key))
    assert signer.verify(published)
    assert signer.verify(memoryview(published))
    blank = bytearray(published)
    blank[48:64] = bytes(16)
    signer.sign(blank)
    assert bytes(blank) == published
    assert not Signer(AES_CMAC, bytes(16)).verify(published)


RFC4493_KEY = h("2b7e1516 28aed2a6 abf71588 09cf4f3c")
RFC4493_M = h("""6bc1bee2 2e409f96 e93d7e11 7393172a ae2d8a57 1e03ac9c 9eb76fac 45af8e51
                 30c81c46 a35ce411 e5fbc119 1a0a52ef f69f2445 df4f9b17 ad2b417b e66c3710""")


@pytest.mark.parametrize("length,mac", [
    (0, "bb1d6929 e9593728 7fa37d12 9b756746"),   # Example 1
    (16, "070a16b4 6b4d4144 f79bdd9d d04a287c"),  # Example 2
    (40, "dfa66747 de9ae630 30ca3261 1497c827"),  # Example 3
    (64, "51f0bebf 7e3b9d92 fc497417 79363cfe"),  # Example 4
])
def test_rfc4493_cmac_primitive_in_pieces(length, mac):
    # The CMAC primitive as Signer drives it: a template copied per message, fed in pieces.
    template = cmac.CMAC(algorithms.AES(RFC4493_KEY))
    c = template.copy()
    m = RFC4493_M[:length]
    for piece in (m[:7], m[7:33], m[33:]):
        c.update(piece)
    assert c.finalize() == h(mac)


@pytest.mark.parametrize("key,iv,aad,tag", [
    ("77be63708971c4e240d1cb79e8d77feb", "e0e00f19fed7ba0136a797f3",
     "7a43ec1d9c0a5a78a0b16533a6213cab", "209fcc8d3675ed938e9c7166709dd946"),
    ("7680c5d3ca6154758e510f4d25b98820", "f8f105f9c3df4965780321f8",
     "c94c410194c765e3dcc7964379758ed3", "94dca8edfcf90bb74b153c8d48a17930"),
])
def test_nist_gmac_vectors(key, iv, aad, tag):
    aad_b = h(aad)
    assert aes_gmac(h(key), h(iv), aad_b) == h(tag)
    # split AAD, views: the way Signer feeds header / zero signature / rest
    assert aes_gmac(h(key), h(iv), aad_b[:5], memoryview(aad_b)[5:11], aad_b[11:]) == h(tag)
    assert AESGCM(h(key)).encrypt(h(iv), b"", aad_b) == h(tag)


def make_msg(command=8, flags=0, message_id=5, body=b"hello world, this is a body!"):
    hdr = bytearray(64)
    struct.pack_into("<IHHIHHIIQIIQ", hdr, 0, 0x424D53FE, 64, 1, 0, command, 1, flags, 0,
                     message_id, 0xFEFF, 7, 0x100000000025)
    hdr[48:64] = b"\xAA" * 16  # garbage in the signature field must not matter
    return hdr + body


def zeroed(msg) -> bytes:
    m = bytearray(msg)
    m[48:64] = bytes(16)
    return bytes(m)


def test_gmac_nonce_layout():
    assert gmac_nonce(0x0102030405060708, False, False) == h("080706050403020100000000")
    assert gmac_nonce(1, True, False) == h("0100000000000000" "01000000")
    assert gmac_nonce(1, False, True) == h("0100000000000000" "02000000")


@pytest.mark.parametrize("command,flags,bits", [
    (8, 0, 0),       # request from the client
    (8, 1, 1),       # response: SERVER_TO_REDIR -> sender is the server
    (0x0C, 0, 2),    # CANCEL request
    (0x0C, 1, 1),    # (a server never sends CANCEL; role bit only)
    (0x12, 1, 1),    # OPLOCK_BREAK notification from the server
])
def test_gmac_nonce_role_and_cancel_bits(command, flags, bits):
    key = bytes(range(16))
    msg = make_msg(command=command, flags=flags, message_id=0x1122334455)
    Signer(AES_GMAC, key).sign(msg)
    nonce = struct.pack("<QI", 0x1122334455, bits)
    assert bytes(msg[48:64]) == AESGCM(key).encrypt(nonce, b"", zeroed(msg))


def test_gmac_signatures_differ_by_role_and_cancel():
    key = bytes(range(16))
    sigs = set()
    for command, flags in ((8, 0), (8, 1), (0x0C, 0)):
        m = make_msg(command=command, flags=flags, message_id=9)
        Signer(AES_GMAC, key).sign(m)
        sigs.add(bytes(m[48:64]))
    assert len(sigs) == 3


@pytest.mark.parametrize("algorithm,dialect_name", [
    (HMAC_SHA256, "SMB_2_1_0"), (AES_CMAC, "SMB_3_0_0"), (AES_GMAC, "SMB_3_1_1"),
])
@pytest.mark.parametrize("command,flags", [(8, 0), (8, 1), (0x0C, 0), (5, 0x9)])
def test_cross_check_with_smbprotocol(algorithm, dialect_name, command, flags):
    # smbprotocol's Connection._generate_signature is an independent implementation of
    # 3.1.4.1 (it builds the GMAC nonce from explicit response / command arguments).
    import smbprotocol.connection as connection
    import types

    from smbprotocol import Dialects
    from smbprotocol.header import Commands
    fake = types.SimpleNamespace(dialect=getattr(Dialects, dialect_name),
                                 signing_algorithm_id=algorithm if algorithm == AES_GMAC else None)
    key = bytes(range(16, 32))
    msg = make_msg(command=command, flags=flags, message_id=77, body=bytes(range(200)))
    Signer(algorithm, key).sign(msg)
    expected = connection.Connection._generate_signature(
        fake, bytes(msg), key, 77, bool(flags & 1),
        Commands.SMB2_CANCEL if command == 0x0C else command)
    assert bytes(msg[48:64]) == expected


def test_hmac_sha256_is_truncated_hmac_over_zeroed_message():
    key = bytes(range(16))
    msg = make_msg()
    Signer(HMAC_SHA256, key).sign(msg)
    assert bytes(msg[48:64]) == hmac.new(key, zeroed(msg), hashlib.sha256).digest()[:16]


@pytest.mark.parametrize("algorithm", [HMAC_SHA256, AES_CMAC, AES_GMAC])
def test_sign_sets_flag_and_verify_detects_tampering(algorithm):
    s = Signer(algorithm, bytes(range(16)))
    msg = make_msg(flags=1)
    s.sign(msg)
    assert struct.unpack_from("<I", msg, 16)[0] == 0x9  # SERVER_TO_REDIR | SIGNED
    snapshot = bytes(msg)
    assert s.verify(msg) and s.verify(snapshot)
    assert bytes(msg) == snapshot  # verify leaves the buffer alone
    for pos in (0, 12, 16, 24, 47, 48, 63, 64, len(msg) - 1):
        bad = bytearray(snapshot)
        bad[pos] ^= 0x01
        assert not s.verify(bad), pos
        assert not s.verify(memoryview(bytes(bad))), pos
    assert not s.verify(snapshot + b"\x00")  # appended padding is covered too
    assert not s.verify(snapshot[:40])


@pytest.mark.parametrize("algorithm", [HMAC_SHA256, AES_CMAC, AES_GMAC])
def test_sign_one_message_of_a_compound_in_place(algorithm):
    s = Signer(algorithm, bytes(range(16)))
    first, second = make_msg(body=b"x" * 20) + bytes(4), make_msg(message_id=6, body=b"y" * 9)
    chain = bytearray(first + second)
    view = memoryview(chain)
    s.sign(view[:len(first)])
    s.sign(view[len(first):])
    alone = bytearray(first)
    s.sign(alone)
    assert bytes(chain[:len(first)]) == bytes(alone)
    assert s.verify(view[:len(first)]) and s.verify(view[len(first):])
    assert not s.verify(view[:len(first) - 4])  # the padding belongs to the signed range


def test_bad_keys_and_algorithms():
    with pytest.raises(ValueError):
        Signer(AES_CMAC, bytes(32))
    with pytest.raises(ValueError):
        Signer(AES_GMAC, bytes(8))
    with pytest.raises(ValueError):
        Signer(7, bytes(16))
    with pytest.raises(ValueError):
        Signer(AES_CMAC, bytes(16)).sign(bytearray(10))

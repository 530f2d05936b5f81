"""SMB 3.x encryption / TRANSFORM_HEADER (MS-SMB2 2.2.41, 3.1.4.3) against published frames.

Sources (Microsoft Open Specifications blog; hex transcribed as printed, the HTML layout
of the 3.1.1 post's "Transformed message" lines removed):
  [ENC30]  "Encryption in SMB 3.0: A protocol perspective", "Test vector": AES-128-CCM,
           WRITE / READ requests (client EncryptionKey) and responses (server key).
  [ENC311] "SMB 3.1.1 Encryption in Windows 10", Appendix A.1 (AES-128-GCM) and
           Appendix A.2 (AES-128-CCM), same exchange.
For each frame: encrypting the SMB2 packet with the published key and Nonce field must give
the published transformed message byte for byte, and decrypting it must give the packet.
Note the [ENC30] frames carry non-zero bytes after the 11-byte CCM nonce (Windows 2012).
AES-256 has no published vector: round trip + cross-check with smbprotocol.
"""

import struct
import types

import pytest

from ksmbd_embedded.crypto import encryption
from ksmbd_embedded.crypto.encryption import (
    AES_128_CCM, AES_128_GCM, AES_256_CCM, AES_256_GCM, TRANSFORM_PROTOCOL_ID, Cipher,
    DecryptError, parse_transform_header,
)


def h(s: str) -> bytes:
    return bytes.fromhex("".join(s.split()))


# name: (cipher, key, SessionId, Nonce field, SMB2 packet, transformed message)
VECTORS = {
    "enc30-write-request": (AES_128_CCM, "261B72350558F2E9DCF613070383EDBF", 0x8E40014000011,
        "66E69A111892584FB5ED524A744DA3EE", """
FE534D4240000100000000000900400008000000000000000400000000000000
FFFE0000010000001100001400E4080000000000000000000000000000000000
3100700017000000000000000000000015010000390000020100000039020000
00000000000000007000000000000000536D623320656E6372797074696F6E20
74657374696E67""", """
FD534D4281A286535415445DAE393921E44FA42E66E69A111892584FB5ED524A
744DA3EE87000000000001001100001400E4080025C8FEE16605A437832D1CD5
2DA9F4645333482A175FE5384563F45FCDAFAEF38BC62BA4D5C62897996625A4
4C29BE5658DE2E6117585779E7B59FFD971278D08580D7FA899E410E910EABF5
AA1DB43050B33B49182637759AC15D84BFCDF5B6B238993C0F4CF4D6012023F6
C627297075D84B7803912D0A9639634453595EF3E33FFE4E7AC2AB"""),
    "enc30-write-response": (AES_128_CCM, "8FE2B57EC34D2DB5B1A9727F526BBDB5", 0x8E40014000011,
        "86000000000000001100001400E40800", """
FE534D4240000100000000000900210009000000000000000400000000000000
FFFE0000010000001100001400E4080000000000000000000000000000000000
11000000170000000000000000000000""", """
FD534D42A6015530A18F6D9AFFE22AFAE8E66484860000000000000011000014
00E4080050000000000001001100001400E40800DBF46435C5F14169293CE079
E344479BF670227E49873F458672C3098DAC467DD5809F369D67409166515787
1483E01F7BECD02064EAC3E235F913668BBC2F097980D4B378F1993EFF6E60D1
77309E5B"""),
    "enc30-read-request": (AES_128_CCM, "261B72350558F2E9DCF613070383EDBF", 0x8E40014000011,
        "A5123A25F983E245983F413B8B429AF2", """
FE534D4240000100000000000800400008000000000000000500000000000000
FFFE0000010000001100001400E4080000000000000000000000000000000000
3100000017000000000000000000000015010000390000020100000039020000
0000000000000000000000000000000000""", """
FD534D42E93601498B76D6F7A72D5EF9B6C79FAFA5123A25F983E245983F413B
8B429AF271000000000001001100001400E408009A464F709AA663F8C2FC3907
D63CBF6F98B1E3DD649ED366009FD0B40A365224718E5440E053F6E01AE462FD
B721BF91C3A6E52E14F9EFF005F445761289FF1272908B52754C8FCB949F228A
C104A66204289A205BCBC47509D04AF9A907002B96863358B3B7CBA5E3779300
74FCDF3550"""),
    "enc30-read-response": (AES_128_CCM, "8FE2B57EC34D2DB5B1A9727F526BBDB5", 0x8E40014000011,
        "87000000000000001100001400E40800", """
FE534D4240000100000000000800210009000000000000000500000000000000
FFFE0000010000001100001400E4080000000000000000000000000000000000
11005000170000000000000000000000536D623320656E6372797074696F6E20
74657374696E67""", """
FD534D42ABD518B68C2F04D7879F482B689EB83F870000000000000011000014
00E4080067000000000001001100001400E40800493D6FE2BDBEB435CF5F5469
70C7BB57BF20E713C75A3D045507E0D68E5C0346659D6FFB8AC1504A786CA2BB
89C9E7FE4F313E910A04180D2D0EA7DF636329E5A3285984500EF86FE9D55DA4
FAB9531CFDD4C551D47F3C73124BB4590A45052B694048B991CCF5"""),
    "enc311-gcm-write-request": (AES_128_GCM, "A2F5E80E5D59103034F32E52F698E5EC", 0x100000000025,
        "C7D6822D269CAF48904C664C00000000", """
FE534D4240000100000000000900010008000000000000000500000000000000FFFE000001000000
25000000001000000000000000000000000000000000000031007000170000000000000000000000
0600000004000000010000000400000000000000000000007000000000000000536D623320656E63
72797074696F6E2074657374696E67""", """
FD534D42BD73D97D2BC9001BCAFAC0FDFF5FEEBCC7D6822D269CAF48904C664C0000000087000000
0000010025000000001000006ECDD2A7AFC7B47763057A041B8FD4DAFFE990B70C9E09D36C084E02
D14EF247F8BDE38ACF6256F8B1D3B56F77FBDEB312FEA5E92CBCC1ED8FB2EBBFAA75E49A4A394BB4
4576545567C24D4C014D47C9FBDFDAFD2C4F9B72F8D256452620A299F48E29E53D6B61D1C13A19E9
1AF013F00D17E3ABC2FC3D36C8C1B6B93973253852DBD442E46EE8"""),
    "enc311-gcm-write-response": (AES_128_GCM, "748C50868C90F302962A5C35F5F9A8BF", 0x100000000025,
        "E06831DD2E8EB7B40000000000000000", """
FE534D4240000100000000000900010001000000000000000500000000000000FFFE000001000000
25000000001000000000000000000000000000000000000011000000170000000000000000000000""", """
FD534D42ACBE1CB7ED343ADF1725EF144D90D4B0E06831DD2E8EB7B4000000000000000050000000
00000100250000000010000026BBBF949983A6C1C796559D0F2C510CB651D1F7B6AC8DED32A2A0B8
F2D793A815C6F6B848D69767A215841A42D400AE6DDB5F0B44173A014973321FDD7950DA6179159B
82E03C9E18A050FF0EA1C967"""),
    "enc311-gcm-read-request": (AES_128_GCM, "A2F5E80E5D59103034F32E52F698E5EC", 0x100000000025,
        "D7AA8C6D36859243B715E0A600000000", """
FE534D4240000100000000000800010008000000000000000600000000000000FFFE000001000000
25000000001000000000000000000000000000000000000031000000170000000000000000000000
060000000400000001000000040000000000000000000000000000000000000000""", """
FD534D426DAC0B6FD85A3ED42BB917DA38FE0386D7AA8C6D36859243B715E0A60000000071000000
00000100250000000010000088A47BF09CA3C3141CDD7306BE9D9475AB24FCCB833D77461C041F8F
B983D0C188F0729272B31D9D3D0DC6B687C069EEE0CC8EACA2C536D019ACC9E185D1EB630E0FCB79
3EEECEB06D82A1D77706E700DBEBFB4FEB54D7AD2D97E7288804F90757FE4D08D6A84A3FF433E745
1E768E4699"""),
    "enc311-gcm-read-response": (AES_128_GCM, "748C50868C90F302962A5C35F5F9A8BF", 0x100000000025,
        "E16831DD2E8EB7B40000000000000000", """
FE534D4240000100000000000800010001000000000000000600000000000000FFFE000001000000
25000000001000000000000000000000000000000000000011005000170000000000000000000000
536D623320656E6372797074696F6E2074657374696E67""", """
FD534D427F714B3B9D8FA1198584E71C2BAA1CB6E16831DD2E8EB7B4000000000000000067000000
000001002500000000100000FECEDF4D03BB11A6CC5D8A53BE33D6D8701986342B4197D306E16F9C
BB218E92F7F8281F51CE68BB85A20D87DE90EBBF80538066D1C37513C0A58D70936D537B624F5500
202A612B6CD30D448A82791A0B2E049ED512AFAEFB06E98AB3D6F931D7D50DB2DBD36A"""),
    "enc311-ccm-write-request": (AES_128_CCM, "DFAAA31AAE40A2485D47AC4DF09FDA1D", 0x100000000021,
        "9F6F1EAAD7E9F24AACD38F0000000000", """
FE534D4240000100000000000900010008000000000000000500000000000000FFFE000001000000
21000000001000000000000000000000000000000000000031007000170000000000000000000000
0500000004000000010000000400000000000000000000007000000000000000536D623320656E63
72797074696F6E2074657374696E67""", """
FD534D42E89551D666DAB8993488F5A97103116C9F6F1EAAD7E9F24AACD38F000000000087000000
00000100210000000010000056A74778199A9D2B6E9C3A376FD88D27680694FED253A313BEB07381
AE8689F973ACDB8D716E4477803BCE53A92E1B81FA3E965AD9AF2C89C08CE66A344664453B8FC881
18EDC9814CF58E92AA465E6EFB09958A9FDAD96FBD55B36A710C30D5E7C64AD7B9449F9F17EDD024
FE8BA79154F340A82740D1D5180C69B0A2DE6A4BA893BD55D3210E"""),
    "enc311-ccm-write-response": (AES_128_CCM, "95C544AEF6072680DA1CE49A68A97FA6", 0x100000000021,
        "D96831DD2E8EB7B40000000000000000", """
FE534D4240000100000000000900010001000000000000000500000000000000FFFE000001000000
21000000001000000000000000000000000000000000000011000000170000000000000000000000""", """
FD534D42DD33EC41A927DD51476FE887C2D3C136D96831DD2E8EB7B4000000000000000050000000
000001002100000000100000F783157E0F6F1C055D746753CA16D20C21088E2A67564E056C2F68A7
F14F226C3BD809B7A2D52E5FE4ECF49821BC6001733430CF174E2764B3CCB213AAD8BB9FBAF6C15E
13D9120965390E004A96A3F7"""),
    "enc311-ccm-read-request": (AES_128_CCM, "DFAAA31AAE40A2485D47AC4DF09FDA1D", 0x100000000021,
        "A0F92E964EDC3049B86E190000000000", """
FE534D4240000100000000000800010008000000000000000600000000000000FFFE000001000000
21000000001000000000000000000000000000000000000031000000170000000000000000000000
050000000400000001000000040000000000000000000000000000000000000000""", """
FD534D4235BF9600C841F0CDA9BD1BC3727B7E36A0F92E964EDC3049B86E19000000000071000000
000001002100000000100000C4CCD3EB483A0638E69C99E391E7F64BCC10D6BEE46FEEA258C4BCAF
792CB5A6E69283924081806DAB64827E9D14A5345D5221AB6DAFCB0E89FC2606B63D92163F4F6C93
D1213D86ABF123B93EAD3AEF9A3471EFD68A423A00A6E0064D9AE3C842EFFFAD236A3BF25D37F4CD
054C97DE18"""),
    "enc311-ccm-read-response": (AES_128_CCM, "95C544AEF6072680DA1CE49A68A97FA6", 0x100000000021,
        "DA6831DD2E8EB7B40000000000000000", """
FE534D4240000100000000000800010001000000000000000600000000000000FFFE000001000000
21000000001000000000000000000000000000000000000011005000170000000000000000000000
536D623320656E6372797074696F6E2074657374696E67""", """
FD534D42E241A13C7E1EE42ECF1FD69F3B8668C6DA6831DD2E8EB7B4000000000000000067000000
00000100210000000010000015D67234FC8358D7BA1BF037ABC8EFD41A0A8F9BB04B16DEB1E85606
BD8C2770823FE6239A286CB3E3D5762ABBD53FD8DE11ED491FE905E146A8FFCE09414AB741103D63
7E28B19C6BA759B399DCC21FAE24CF2A455A13B215FC2857ABB513927F9F271D1C208B"""),
}


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_published_frames(name):
    cipher_id, key, sid, nonce, packet, transformed = VECTORS[name]
    packet, transformed = h(packet), h(transformed)
    c = Cipher(cipher_id, h(key))
    assert c.encrypt(sid, packet, nonce=h(nonce)) == transformed
    assert c.decrypt(memoryview(transformed)) == (sid, packet)
    assert c.decrypt(bytearray(transformed)) == (sid, packet)
    assert parse_transform_header(transformed) == (h(nonce), len(packet), 1, sid)


@pytest.mark.parametrize("name", ["enc311-gcm-write-request", "enc311-ccm-read-request"])
def test_short_nonce_is_zero_padded(name):
    cipher_id, key, sid, nonce, packet, transformed = VECTORS[name]
    short = h(nonce)[:11 if cipher_id == AES_128_CCM else 12]
    assert Cipher(cipher_id, h(key)).encrypt(sid, h(packet), nonce=short) == h(transformed)


def test_fallback_paths_match(monkeypatch):
    # cryptography 38 has neither encrypt_into nor bytes-like AEAD arguments.
    _, key, sid, nonce, packet, transformed = VECTORS["enc311-gcm-read-response"]
    c = Cipher(AES_128_GCM, h(key))
    aead = c._aead
    c._aead = types.SimpleNamespace(encrypt=aead.encrypt, decrypt=aead.decrypt)
    monkeypatch.setattr(encryption, "_BYTESLIKE", False)
    assert c.encrypt(sid, memoryview(h(packet)), nonce=h(nonce)) == h(transformed)
    assert c.decrypt(memoryview(h(transformed))) == (sid, h(packet))


def test_list_of_buffers_is_one_message():
    c = Cipher(AES_128_GCM, bytes(16))
    parts = [b"A" * 64, bytearray(b"B" * 10), memoryview(b"C" * 7)]
    frame = c.encrypt(1, parts, nonce=bytes(12))
    assert frame == c.encrypt(1, b"A" * 64 + b"B" * 10 + b"C" * 7, nonce=bytes(12))
    assert c.decrypt(frame)[1] == b"A" * 64 + b"B" * 10 + b"C" * 7


@pytest.mark.parametrize("cipher_id,tail", [
    (AES_128_CCM, 5), (AES_128_GCM, 4), (AES_256_CCM, 5), (AES_256_GCM, 4)])
def test_generated_nonces_unique_and_shaped(cipher_id, tail):
    c = Cipher(cipher_id, bytes(32 if cipher_id >= AES_256_CCM else 16))
    seen = set()
    for _ in range(5000):
        nonce = parse_transform_header(c.encrypt(3, b"x" * 70))[0]
        assert nonce[16 - tail:] == bytes(tail)
        seen.add(nonce)
    assert len(seen) == 5000
    other = Cipher(cipher_id, bytes(32 if cipher_id >= AES_256_CCM else 16))
    assert parse_transform_header(other.encrypt(3, b"x"))[0] not in seen


def frame_for_tamper():
    _, key, sid, nonce, packet, transformed = VECTORS["enc311-gcm-write-request"]
    return Cipher(AES_128_GCM, h(key)), h(transformed)


@pytest.mark.parametrize("pos", [4, 19, 20, 31, 35, 40, 41, 44, 51, 52, 100, -1])
def test_tampering_is_detected(pos):
    c, frame = frame_for_tamper()
    bad = bytearray(frame)
    bad[pos] ^= 0x80
    with pytest.raises(DecryptError):
        c.decrypt(memoryview(bad))


def test_nonce_bytes_past_the_gcm_nonce_are_authenticated():
    # They are not part of the GCM nonce but are part of the AAD.
    c, frame = frame_for_tamper()
    bad = bytearray(frame)
    bad[33] ^= 1  # nonce field byte 13
    with pytest.raises(DecryptError):
        c.decrypt(bad)


def test_malformed_headers():
    c, frame = frame_for_tamper()
    with pytest.raises(DecryptError):
        c.decrypt(frame[:51])
    with pytest.raises(DecryptError):
        c.decrypt(frame[:-1])  # OriginalMessageSize no longer matches
    with pytest.raises(DecryptError):
        c.decrypt(frame + b"\x00")
    bad = bytearray(frame)
    struct.pack_into("<H", bad, 42, 2)
    with pytest.raises(DecryptError):
        c.decrypt(bad)
    bad = bytearray(frame)
    bad[0] = 0xFE  # an SMB2 header, not a transform header
    with pytest.raises(DecryptError):
        c.decrypt(bad)
    with pytest.raises(DecryptError):
        parse_transform_header(b"\xfdSMB" + bytes(10))
    with pytest.raises(ValueError):  # DecryptError is a ValueError
        Cipher(AES_128_GCM, bytes(16)).decrypt(frame)
    assert struct.unpack_from("<I", frame)[0] == TRANSFORM_PROTOCOL_ID


def test_key_sizes():
    for cipher_id, size in ((AES_128_CCM, 16), (AES_128_GCM, 16), (AES_256_CCM, 32),
                            (AES_256_GCM, 32)):
        Cipher(cipher_id, bytes(size))
        with pytest.raises(ValueError):
            Cipher(cipher_id, bytes(48 - size))
    with pytest.raises(ValueError):
        Cipher(5, bytes(16))
    with pytest.raises(ValueError):
        Cipher(AES_128_GCM, bytes(16)).encrypt(1, b"x", nonce=bytes(11))


@pytest.mark.parametrize("cipher_id", [AES_128_CCM, AES_128_GCM, AES_256_CCM, AES_256_GCM])
def test_cross_check_with_smbprotocol(cipher_id):
    # smbprotocol's Connection._encrypt / _decrypt: an independent TRANSFORM_HEADER + AEAD
    # implementation (random nonces of its own), in both directions.
    import smbprotocol.connection as connection
    from smbprotocol import Dialects
    key_c2s = bytes(range(32 if cipher_id >= AES_256_CCM else 16))
    key_s2c = bytes(range(100, 100 + len(key_c2s)))
    sid = 0x123456789A
    fake = types.SimpleNamespace(dialect=Dialects.SMB_3_1_1, cipher_id=cipher_id)
    packet = b"\xfeSMB" + bytes(range(256)) * 3

    # client -> server: smbprotocol encrypts, our server decrypts
    session = types.SimpleNamespace(encryption_key=key_c2s, session_id=sid)
    frame = connection.Connection._encrypt(fake, packet, session).pack()
    assert Cipher(cipher_id, key_c2s).decrypt(memoryview(frame)) == (sid, packet)

    # server -> client: we encrypt, smbprotocol decrypts
    ours = Cipher(cipher_id, key_s2c).encrypt(sid, packet)
    fake.session_table = {sid: types.SimpleNamespace(decryption_key=key_s2c)}
    msg = connection.SMB2TransformHeader()
    msg.unpack(bytes(ours))
    assert connection.Connection._decrypt(fake, msg) == packet


@pytest.mark.parametrize("cipher_id,key_len", [(2, 16), (4, 32), (1, 16), (3, 32)])
def test_large_messages_round_trip_and_tamper(cipher_id, key_len):
    """Large messages take the streaming GCM decrypt (one-shot AESGCM encrypts them, so the
    two APIs check each other); CCM keeps the one-shot path."""
    import os as _os
    from ksmbd_embedded.crypto.encryption import Cipher, DecryptError
    key = _os.urandom(key_len)
    plain = b"\xfeSMB" + _os.urandom(300_000)
    frame = Cipher(cipher_id, key).encrypt(0x1122334455667788, plain)
    session_id, out = Cipher(cipher_id, key).decrypt(memoryview(frame))
    assert session_id == 0x1122334455667788 and bytes(out) == plain
    for pos in (10, 60, len(frame) // 2, len(frame) - 1):  # tag, AAD, ciphertext
        bad = bytearray(frame)
        bad[pos] ^= 0x40
        with pytest.raises(DecryptError):
            Cipher(cipher_id, key).decrypt(memoryview(bad))


@pytest.mark.parametrize("cipher_id,key_len", [(2, 16), (4, 32), (1, 16), (3, 32)])
@pytest.mark.parametrize("size", [68, 300_000])
def test_encrypt_in_place_matches_encrypt(cipher_id, key_len, size):
    """encrypt_in_place (the server's responses) gives the frame encrypt() gives for the same
    nonce, with the message buffer itself turned into the ciphertext."""
    import os as _os
    key = _os.urandom(key_len)
    plain = b"\xfeSMB" + _os.urandom(size - 4)
    sender = Cipher(cipher_id, key)
    buf = bytearray(plain)
    hdr = sender.encrypt_in_place(0x1122334455667788, buf)
    assert len(hdr) == 52 and bytes(buf) != plain
    nonce, length, flags, session_id = parse_transform_header(hdr)
    assert (length, flags, session_id) == (size, 1, 0x1122334455667788)
    same = Cipher(cipher_id, key).encrypt(0x1122334455667788, plain, nonce=nonce)
    assert bytes(same) == hdr + bytes(buf)
    assert bytes(Cipher(cipher_id, key).decrypt(memoryview(hdr + bytes(buf)))[1]) == plain
    hdr2 = sender.encrypt_in_place(0x1122334455667788, bytearray(plain))
    assert hdr2[20:36] != hdr[20:36]  # a fresh nonce each time


@pytest.mark.parametrize("cipher_id,key_len", [(2, 16), (4, 32)])
def test_large_gcm_frame_in_a_writable_buffer_is_decrypted_in_place(cipher_id, key_len):
    import os as _os
    key = _os.urandom(key_len)
    plain = b"\xfeSMB" + _os.urandom(300_000)
    frame = bytearray(Cipher(cipher_id, key).encrypt(7, plain))
    view = memoryview(frame)
    _, out = Cipher(cipher_id, key).decrypt(view)
    assert bytes(out) == plain
    assert out.obj is frame  # the plaintext is the frame's own buffer, no copy
    bad = bytearray(Cipher(cipher_id, key).encrypt(7, plain))
    bad[-1] ^= 1
    with pytest.raises(DecryptError):
        Cipher(cipher_id, key).decrypt(memoryview(bad))

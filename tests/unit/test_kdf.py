"""SMB 3.x key derivation (MS-SMB2 3.1.4.2) against Microsoft's published examples.

Sources (Microsoft Open Specifications blog; values transcribed as printed there):
  [ANATOMY] "SMB 2 and SMB 3 security in Windows 10: the anatomy of signing and
            cryptographic keys", Appendix "Key derivation examples" (3.0 and 3.1.1
            multichannel).
  [ENC30]   "Encryption in SMB 3.0: A protocol perspective", section "Test vector".
  [ENC311]  "SMB 3.1.1 Encryption in Windows 10", Appendix A.1 (AES-GCM) and A.2 (AES-CCM).

These posts print the keys from the *client's* point of view: "EncryptionKey (Client) =
DecryptionKey (Server) = KDF(SessionKey, "SMB2AESCCM\\0", "ServerIn \\0")" ([ANATOMY],
"Parameters for Dialects 3.0 and 3.0.2"). Our SessionKeys are the server's, so the blog's
EncryptionKey is our decryption_key and vice versa.
"""

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.kbkdf import KBKDFHMAC, CounterLocation, Mode

from ksmbd_embedded.crypto.kdf import (
    AES_128_CCM, AES_128_GCM, AES_256_CCM, AES_256_GCM, SMB2_0_2, SMB2_1, SMB3_0, SMB3_0_2,
    SMB3_1_1, SessionKeys, derive_keys, smb3_kdf,
)


def h(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", "").replace("\n", ""))


# (dialect, cipher, SessionKey, preauth hash, Signing, Enc(Client), Dec(Client), Application)
VECTORS = {
    # [ANATOMY] SMB 3.0 multichannel, master session (first channel), Dialect 0x0300
    "anatomy-3.0": (SMB3_0, AES_128_CCM, "7CD451825D0450D235424E44BA6E78CC", None,
                    "0B7E9C5CAC36C0F6EA9AB275298CEDCE", "FAD27796665B313EBB578F388632B4F7",
                    "B0F0427F7CEB416D1D9DCC0CD4F99447", "BB23A4575AA26C721AF525AF15A87B4F"),
    # [ENC30] SessionId 0x8e40014000011
    "enc-3.0": (SMB3_0, AES_128_CCM, "B4546771B515F766A86735532DD6C4F0", None,
                "F773CD23C18FD1E08EE510CADA7CF852", "261B72350558F2E9DCF613070383EDBF",
                "8FE2B57EC34D2DB5B1A9727F526BBDB5", "77432F808CE99156B5BC6A3676D730D1"),
    # [ANATOMY] SMB 3.1.1 multichannel, master session, CypherId 0x0002
    "anatomy-3.1.1": (
        SMB3_1_1, AES_128_GCM, "270E1BA896585EEB7AF3472D3B4C75A7",
        "0DD13628CC3ED218EF9DF9772D436D0887AB9814BFAE63A80AA845F36909DB7928622DDDAD522D97"
        "51640A459762C5A9D6BB084CBB3CE6BDADEF5D5BCE3C6C01",
        "73FE7A9A77BEF0BDE49C650D8CCB5F76", "629BCBC54422A0F572B97F45989B6073",
        "E2AF0DCEFAC68DA71A0DFBD0D1350D74", "6D7AD7954E9EC61E907B4D473DC178FF"),
    # [ENC311] Appendix A.1, CypherId 0x0002, SessionId 0x100000000025
    "enc-3.1.1-gcm": (
        SMB3_1_1, AES_128_GCM, "419FDDF34C1E001909D362AE7FB6AF79",
        "B23F3CBFD69487D9832B79B1594A367CDD950909B774C3A4C412B4FCEA9EDDDBA7DB256BA2EA30E9"
        "77F11F9B113247578E0E915C6D2A513B8F2FCA5707DC8770",
        "8765949DFEAEE105CE9118B45BE988F0", "A2F5E80E5D59103034F32E52F698E5EC",
        "748C50868C90F302962A5C35F5F9A8BF", "099D610789FBE82055B313601C3E8CC4"),
    # [ENC311] Appendix A.2, CypherId 0x0001, SessionId 0x100000000021
    "enc-3.1.1-ccm": (
        SMB3_1_1, AES_128_CCM, "07B7F69C1E2581662DF6987E88F9E891",
        "DECF98A420718718F22090D3580FCC5E484BD310FA1268210C6E86335A8891E767F5BCD99FA5A785"
        "9D665AD07A73EA94E1BCDB7CFA69A6962A28A244138340B1",
        "3DCC82C5795AE27F383242761078C59B", "DFAAA31AAE40A2485D47AC4DF09FDA1D",
        "95C544AEF6072680DA1CE49A68A97FA6", "7A2F0F73EC2D530879B2913BBFCE242F"),
}


@pytest.mark.parametrize("name", sorted(VECTORS))
def test_published_key_derivation(name):
    dialect, cipher, sk, preauth, sign, enc_client, dec_client, app = VECTORS[name]
    keys = derive_keys(dialect, h(sk), h(preauth) if preauth else None, cipher)
    assert keys.signing_key == h(sign)
    assert keys.application_key == h(app)
    assert keys.decryption_key == h(enc_client)  # client encrypts what we decrypt
    assert keys.encryption_key == h(dec_client)  # we encrypt what the client decrypts


def test_smb302_uses_the_30_labels():
    a = derive_keys(SMB3_0, h(VECTORS["anatomy-3.0"][2]), None, AES_128_CCM)
    assert derive_keys(SMB3_0_2, h(VECTORS["anatomy-3.0"][2]), None, AES_128_CCM) == a


def test_binding_channel_signing_keys():
    # [ANATOMY] second channel (session binding): only Channel.SigningKey is new.
    k30 = derive_keys(SMB3_0, h("4E01A2B313BCF660CC250BEF021AEDE6"), None, AES_128_CCM)
    assert k30.signing_key == h("BA1A17DBBFEC349BCA105563D598952F")
    preauth = h("EA3BF912B11CBFEC5B1889E8209614218687F82FA5294521AD3063425E49E88A10BD022124CE2512"
                "3BC9111F52D9566BA88BF46344E6063DC5E3FF0389026F6C")
    k311 = derive_keys(SMB3_1_1, h("84B9DBB730116A8FA6E9889555C265F9"), preauth, AES_128_GCM)
    assert k311.signing_key == h("C962BCA1A9DD1697B030644199705431")


def test_smb3_kdf_direct_labels():
    # The raw KDF with the labels exactly as MS-SMB2 lists them (trailing NUL included).
    sk = h("7CD451825D0450D235424E44BA6E78CC")
    assert smb3_kdf(sk, b"SMB2AESCMAC\x00", b"SmbSign\x00") == h("0B7E9C5CAC36C0F6EA9AB275298CEDCE")
    assert smb3_kdf(sk, b"SMB2APP\x00", b"SmbRpc\x00") == h("BB23A4575AA26C721AF525AF15A87B4F")
    assert smb3_kdf(sk, b"SMB2AESCCM\x00", b"ServerIn \x00") == h("FAD27796665B313EBB578F388632B4F7")


@pytest.mark.parametrize("bits", [128, 256, 384])
def test_smb3_kdf_matches_cryptography_kbkdf(bits):
    # Independent SP800-108 implementation (cryptography's KBKDFHMAC), incl. L > 256.
    key, label, ctx = bytes(range(32)), b"SMBC2SCipherKey\x00", bytes(range(64))
    ref = KBKDFHMAC(algorithm=hashes.SHA256(), mode=Mode.CounterMode, length=bits // 8, rlen=4,
                    llen=4, location=CounterLocation.BeforeFixed, label=label, context=ctx,
                    fixed=None).derive(key)
    assert smb3_kdf(key, label, ctx, bits) == ref


@pytest.mark.parametrize("dialect", [SMB2_0_2, SMB2_1])
def test_smb2_signing_key_is_the_session_key(dialect):
    keys = derive_keys(dialect, h("00112233445566778899AABBCCDDEEFF0102"), None, 0)
    assert keys == SessionKeys(h("00112233445566778899AABBCCDDEEFF"), None, None,
                               h("00112233445566778899AABBCCDDEEFF"))
    short = derive_keys(dialect, b"\x01\x02", None, 0)
    assert short.signing_key == b"\x01\x02" + bytes(14)  # right-padded to 16 bytes


@pytest.mark.parametrize("cipher", [AES_256_CCM, AES_256_GCM])
def test_aes256_key_lengths_and_full_session_key(cipher):
    full = bytes(range(100, 132))  # e.g. a 32-byte Kerberos AES-256 session key
    preauth = bytes(range(64))
    keys = derive_keys(SMB3_1_1, full, preauth, cipher)
    assert len(keys.signing_key) == 16 and len(keys.application_key) == 16
    assert len(keys.encryption_key) == 32 and len(keys.decryption_key) == 32
    # signing/application: Session.SessionKey = first 16 bytes, L = 128
    assert keys.signing_key == smb3_kdf(full[:16], b"SMBSigningKey\x00", preauth, 128)
    assert keys.application_key == smb3_kdf(full[:16], b"SMBAppKey\x00", preauth, 128)
    # cipher keys: Session.FullSessionKey, L = 256
    assert keys.encryption_key == smb3_kdf(full, b"SMBS2CCipherKey\x00", preauth, 256)
    assert keys.decryption_key == smb3_kdf(full, b"SMBC2SCipherKey\x00", preauth, 256)
    # L is part of the KDF input: a 256-bit key is not a 128-bit key extended
    k128 = derive_keys(SMB3_1_1, full, preauth, AES_128_GCM)
    assert len(k128.encryption_key) == 16
    assert keys.encryption_key[:16] != k128.encryption_key
    assert keys.signing_key == k128.signing_key


def test_aes256_cross_check_with_smbprotocol():
    # smbprotocol's own KDF (KBKDFHMAC based) as an independent peer; note it names the
    # keys from the client's side.
    import smbprotocol.session as session
    kdf = session.Session._smb3kdf
    full, preauth = bytes(range(7, 39)), bytes(range(64, 128))
    keys = derive_keys(SMB3_1_1, full, preauth, AES_256_GCM)
    assert keys.decryption_key == kdf(None, full, b"SMBC2SCipherKey\x00", preauth, length=32)
    assert keys.encryption_key == kdf(None, full, b"SMBS2CCipherKey\x00", preauth, length=32)
    assert keys.signing_key == kdf(None, full[:16], b"SMBSigningKey\x00", preauth)


def test_errors():
    with pytest.raises(ValueError):
        derive_keys(SMB3_1_1, bytes(16), None, AES_128_GCM)
    with pytest.raises(ValueError):
        derive_keys(SMB3_1_1, bytes(16), bytes(32), AES_128_GCM)
    with pytest.raises(ValueError):
        derive_keys(0x0400, bytes(16), None, 0)
    with pytest.raises(ValueError):
        smb3_kdf(bytes(16), b"x\x00", b"y\x00", 100)


def test_session_keys_is_frozen_and_slotted():
    keys = derive_keys(SMB2_1, bytes(16), None, 0)
    with pytest.raises(AttributeError):
        keys.signing_key = b""  # type: ignore[misc]
    assert not hasattr(keys, "__dict__")

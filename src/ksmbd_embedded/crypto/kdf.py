"""SMB 3.x key derivation: MS-SMB2 3.1.4.2 (KDF), 3.3.5.5.3 / 3.2.5.3.1 (which keys, labels).

SP800-108 section 5.1 KDF in counter mode, PRF HMAC-SHA256, r = 32:
    K(i) = HMAC-SHA256(Ki, [i]_32be || Label || 0x00 || Context || [L]_32be)
The labels and contexts are passed exactly as MS-SMB2 lists them, including their own
trailing NUL (b"SMB2AESCMAC\\x00"); the 0x00 separator of SP800-108 comes on top of that.

Session.SessionKey is the first 16 bytes of the GSS session key, right-padded with zeros
when shorter (MS-SMB2 3.2.1.3 / 3.3.1.8). Signing and application keys always use it with
L = 128. Only for AES-256-CCM/GCM (3.1.1) are the cipher keys derived from the *full* GSS
key (Session.FullSessionKey) with L = 256; e.g. a Kerberos AES-256 key is 32 bytes.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

SMB2_0_2 = 0x0202
SMB2_1 = 0x0210
SMB3_0 = 0x0300
SMB3_0_2 = 0x0302
SMB3_1_1 = 0x0311

CIPHER_NONE = 0
AES_128_CCM = 1
AES_128_GCM = 2
AES_256_CCM = 3
AES_256_GCM = 4
AES_256_CIPHERS = frozenset((AES_256_CCM, AES_256_GCM))


@dataclass(frozen=True, slots=True)
class SessionKeys:
    signing_key: bytes
    encryption_key: bytes | None  # server -> client (Session.EncryptionKey on the server)
    decryption_key: bytes | None  # client -> server (Session.DecryptionKey on the server)
    application_key: bytes


def smb3_kdf(key: bytes, label: bytes, context: bytes, length_bits: int = 128) -> bytes:
    """SP800-108 counter-mode KDF with HMAC-SHA256 (r = 32), returning length_bits bits."""
    if length_bits <= 0 or length_bits % 8:
        raise ValueError("length_bits must be a positive multiple of 8")
    fixed = bytes(label) + b"\x00" + bytes(context) + length_bits.to_bytes(4, "big")
    out = bytearray()
    i = 1
    while len(out) * 8 < length_bits:
        out += hmac.new(key, i.to_bytes(4, "big") + fixed, hashlib.sha256).digest()
        i += 1
    return bytes(out[: length_bits // 8])


def derive_keys(dialect: int, session_key: bytes, preauth_hash: bytes | None,
                cipher_id: int) -> SessionKeys:
    """Keys of a newly authenticated session (server view: encryption = server->client).

    session_key: the cryptographic key from the GSS context, any length (NTLM: 16 bytes).
    preauth_hash: Session.PreauthIntegrityHashValue (64 bytes), required for 3.1.1.
    cipher_id: Connection.CipherId (3.1.1); for 3.0 / 3.0.2 the cipher is AES-128-CCM.
    """
    full = bytes(session_key)
    sk = full[:16].ljust(16, b"\x00")
    if dialect in (SMB2_0_2, SMB2_1):
        return SessionKeys(sk, None, None, sk)
    if dialect in (SMB3_0, SMB3_0_2):
        return SessionKeys(
            signing_key=smb3_kdf(sk, b"SMB2AESCMAC\x00", b"SmbSign\x00"),
            encryption_key=smb3_kdf(sk, b"SMB2AESCCM\x00", b"ServerOut\x00"),
            decryption_key=smb3_kdf(sk, b"SMB2AESCCM\x00", b"ServerIn \x00"),
            application_key=smb3_kdf(sk, b"SMB2APP\x00", b"SmbRpc\x00"),
        )
    if dialect == SMB3_1_1:
        if preauth_hash is None or len(preauth_hash) != 64:
            raise ValueError("SMB 3.1.1 key derivation needs the 64-byte pre-auth hash")
        ctx = bytes(preauth_hash)
        if cipher_id in AES_256_CIPHERS:
            ckey, bits = full, 256
        else:
            ckey, bits = sk, 128
        return SessionKeys(
            signing_key=smb3_kdf(sk, b"SMBSigningKey\x00", ctx),
            encryption_key=smb3_kdf(ckey, b"SMBS2CCipherKey\x00", ctx, bits),
            decryption_key=smb3_kdf(ckey, b"SMBC2SCipherKey\x00", ctx, bits),
            application_key=smb3_kdf(sk, b"SMBAppKey\x00", ctx),
        )
    raise ValueError(f"unknown dialect 0x{dialect:04x}")

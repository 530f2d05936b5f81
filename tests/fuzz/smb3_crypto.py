"""SMB 3.1.1 encryption for the fuzz client, from MS-SMB2: the pre-authentication integrity
hash (3.2.5.2, 3.2.5.3.1), key derivation (3.1.4.2: SP800-108 counter mode, HMAC-SHA256) and
the TRANSFORM_HEADER (2.2.41; 3.1.4.3 encrypting, 3.2.5.1.1 decrypting). With it a case can
send its fuzzed requests encrypted, so the server's decryption and its encrypted responses
(READ payloads encrypted in place, compounds encrypted whole) are fuzzed too.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM

# 2.2.3.1.2 cipher ids: (AEAD, key bytes, nonce bytes)
CIPHERS = {1: (AESCCM, 16, 11), 2: (AESGCM, 16, 12), 3: (AESCCM, 32, 11), 4: (AESGCM, 32, 12)}
TRANSFORM = struct.Struct("<4s16s16sIHHQ")  # ProtocolId .. SessionId, 52 bytes
TRANSFORM_SIZE = TRANSFORM.size


class Preauth:
    """PreauthIntegrityHashValue: SHA-512 over the value so far and each message."""

    def __init__(self, value: bytes = bytes(64)) -> None:
        self.value = value

    def update(self, message: bytes) -> None:
        self.value = hashlib.sha512(self.value + bytes(message)).digest()

    def copy(self) -> Preauth:
        return Preauth(self.value)


def kdf(key: bytes, label: bytes, context: bytes, length: int) -> bytes:
    """SP800-108 KDF in counter mode, r = 32, PRF HMAC-SHA256, one block (L <= 256)."""
    data = struct.pack(">I", 1) + label + b"\x00" + context + struct.pack(">I", length * 8)
    return hmac.new(key, data, hashlib.sha256).digest()[:length]


class Transform:
    """A session's two AEAD keys: requests encrypted, responses decrypted."""

    def __init__(self, cipher_id: int, session_key: bytes, preauth_value: bytes,
                 session_id: int) -> None:
        aead, size, self.nonce_size = CIPHERS[cipher_id]
        key = session_key[:16].ljust(16, b"\x00")
        self.encryptor = aead(kdf(key, b"SMBC2SCipherKey\x00", preauth_value, size))
        self.decryptor = aead(kdf(key, b"SMBS2CCipherKey\x00", preauth_value, size))
        self.session_id = session_id

    def encrypt(self, message: bytes) -> bytes:
        nonce = os.urandom(self.nonce_size)
        head = TRANSFORM.pack(b"\xfdSMB", bytes(16), nonce.ljust(16, b"\x00"), len(message), 0,
                              0x0001, self.session_id)
        sealed = self.encryptor.encrypt(nonce, bytes(message), head[20:])
        return head[:4] + sealed[-16:] + head[20:] + sealed[:-16]

    def decrypt(self, frame: bytes) -> bytes:
        """The message inside a server's transformed frame (ValueError if it is not one)."""
        if len(frame) < TRANSFORM_SIZE:
            raise ValueError("transformed frame shorter than a TRANSFORM_HEADER")
        proto, tag, nonce, size, _, flags, _ = TRANSFORM.unpack_from(frame, 0)
        if proto != b"\xfdSMB" or flags != 0x0001:
            raise ValueError(f"bad TRANSFORM_HEADER (protocol {proto!r}, flags {flags:#x})")
        body = bytes(frame[TRANSFORM_SIZE:])
        if size != len(body):
            raise ValueError(f"OriginalMessageSize {size} for {len(body)} encrypted bytes")
        try:
            return self.decryptor.decrypt(nonce[:self.nonce_size], body + tag,
                                          bytes(frame[20:TRANSFORM_SIZE]))
        except InvalidTag:
            raise ValueError("a response that does not decrypt") from None

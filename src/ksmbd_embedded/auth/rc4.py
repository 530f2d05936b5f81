"""Pure-Python RC4 (ARCFOUR) for NTLM key exchange and NTLM signatures.

NTLM needs RC4 only on tiny inputs (a 16-byte EncryptedRandomSessionKey, an
8-byte signature checksum), so a plain Python implementation is fast enough
and avoids ``cryptography``'s "decrepit" ARC4, which on OpenSSL 3 builds (e.g.
OpenWrt) may require the legacy provider.

RC4 is a broken cipher; it is used here only because MS-NLMP mandates it.
"""

from __future__ import annotations

__all__ = ["RC4", "rc4"]


class RC4:
    """Stateful RC4 keystream (an NTLM "handle", MS-NLMP 3.4.4 / 6 RC4Init).

    Successive :meth:`update` calls continue the same keystream, which is what
    NTLM sealing/signing handles require.
    """

    __slots__ = ("_s", "_i", "_j")

    def __init__(self, key: bytes) -> None:
        key = bytes(key)
        if not 1 <= len(key) <= 256:
            raise ValueError("RC4 key must be 1..256 bytes")
        s = list(range(256))
        j = 0
        klen = len(key)
        for i in range(256):
            j = (j + s[i] + key[i % klen]) & 0xFF
            s[i], s[j] = s[j], s[i]
        self._s = s
        self._i = 0
        self._j = 0

    def update(self, data: bytes) -> bytes:
        """Encrypt or decrypt ``data`` (the operation is symmetric)."""
        s = self._s
        i = self._i
        j = self._j
        out = bytearray(len(data))
        for n, byte in enumerate(bytes(data)):
            i = (i + 1) & 0xFF
            si = s[i]
            j = (j + si) & 0xFF
            sj = s[j]
            s[i] = sj
            s[j] = si
            out[n] = byte ^ s[(si + sj) & 0xFF]
        self._i = i
        self._j = j
        return bytes(out)


def rc4(key: bytes, data: bytes) -> bytes:
    """One-shot RC4: a fresh keystream under ``key`` applied to ``data``
    (MS-NLMP's RC4K(K, D))."""
    return RC4(key).update(data)

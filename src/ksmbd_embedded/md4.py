"""MD4 message digest (RFC 1320), needed for the NT password hash (MS-NLMP 3.3.1).

OpenSSL 3 no longer offers MD4 through hashlib, so this is a small pure-Python version.
It only ever hashes passwords (at most 256 bytes), so speed does not matter.
"""

import struct

__all__ = ["md4"]

_MASK = 0xFFFFFFFF
_BLOCK = struct.Struct("<16I")
# Message word order and shift amounts of rounds 2 and 3 (RFC 1320 section 3.4).
_ROUND2_ORDER = (0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15)
_ROUND3_ORDER = (0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15)
_SHIFTS = ((3, 7, 11, 19), (3, 5, 9, 13), (3, 9, 11, 15))


def _rotl(x: int, s: int) -> int:
    return ((x << s) | (x >> (32 - s))) & _MASK


def _compress(state: list[int], block: tuple[int, ...]) -> None:
    """Process one 16-word block (RFC 1320 section 3.4) into ``state``."""
    a, b, c, d = state
    for i in range(16):  # round 1: F(x,y,z) = xy | ~x z
        s = _SHIFTS[0][i % 4]
        a = _rotl((a + ((b & c) | (~b & d)) + block[i]) & _MASK, s)
        a, b, c, d = d, a, b, c
    for i, k in enumerate(_ROUND2_ORDER):  # round 2: G = majority(x, y, z)
        s = _SHIFTS[1][i % 4]
        a = _rotl((a + ((b & c) | (b & d) | (c & d)) + block[k] + 0x5A827999) & _MASK, s)
        a, b, c, d = d, a, b, c
    for i, k in enumerate(_ROUND3_ORDER):  # round 3: H = x xor y xor z
        s = _SHIFTS[2][i % 4]
        a = _rotl((a + (b ^ c ^ d) + block[k] + 0x6ED9EBA1) & _MASK, s)
        a, b, c, d = d, a, b, c
    state[0] = (state[0] + a) & _MASK
    state[1] = (state[1] + b) & _MASK
    state[2] = (state[2] + c) & _MASK
    state[3] = (state[3] + d) & _MASK


def md4(data: bytes) -> bytes:
    """Return the 16-byte MD4 digest of ``data``."""
    # Padding (section 3.1) and length (section 3.2): 0x80, zeros to 56 mod 64, bit count.
    pad = b"\x80" + b"\x00" * ((55 - len(data)) % 64)
    message = bytes(data) + pad + struct.pack("<Q", (len(data) * 8) & (2**64 - 1))
    state = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476]
    for off in range(0, len(message), 64):
        _compress(state, _BLOCK.unpack_from(message, off))
    return struct.pack("<4I", *state)

"""SMB 3.1.1 pre-authentication integrity hash: MS-SMB2 3.3.5.4 / 3.3.5.5 (SHA-512 chain).

H0 = 64 zero bytes; for every NEGOTIATE and SESSION_SETUP message hashed,
H = SHA-512(H || message). The connection keeps one chain; each session setup starts
from a copy of the connection's value after NEGOTIATE.
"""

from __future__ import annotations

HASH_SIZE = 64
SHA_512 = 0x0001  # PreauthIntegrityCaps.HashAlgorithms value


class PreauthHash:
    __slots__ = ("_value",)

    def __init__(self, value: bytes = bytes(HASH_SIZE)) -> None:
        if len(value) != HASH_SIZE:
            raise ValueError("pre-auth hash value must be 64 bytes")
        self._value = bytes(value)

    def update(self, message: bytes | bytearray | memoryview) -> None:
        import hashlib  # at the first NEGOTIATE, not at start (issue 11: idle memory)

        h = hashlib.sha512(self._value)
        h.update(message)
        self._value = h.digest()

    @property
    def value(self) -> bytes:
        return self._value

    def copy(self) -> PreauthHash:
        return PreauthHash(self._value)

    def __repr__(self) -> str:
        return f"PreauthHash({self._value.hex()[:16]}...)"

"""Sans-I/O NTLMv2 acceptor (server side of MS-NLMP, connection-oriented).

Written from [MS-NLMP]:

* 2.2.1.1 NEGOTIATE_MESSAGE, 2.2.1.2 CHALLENGE_MESSAGE,
  2.2.1.3 AUTHENTICATE_MESSAGE, 2.2.2.1 AV_PAIR, 2.2.2.5 NEGOTIATE flags,
  2.2.2.7 NTLMv2_CLIENT_CHALLENGE, 2.2.2.8 NTLMv2_RESPONSE
* 3.2.5.1.1 / 3.2.5.1.2 server message processing
* 3.3.2 NTLM v2 authentication (NTOWFv2, NTProofStr, SessionBaseKey)
* 3.4.4.2 / 3.4.5.1-3.4.5.3 signatures with extended session security,
  KXKEY, SIGNKEY, SEALKEY

Policy (deliberate, documented for the SESSION_SETUP handler):

* Only NTLMv2 is accepted.  An NtChallengeResponse of 24 bytes (NTLMv1 or
  NTLMv1 with ESS) or an LM-only login gives ``result == "refused"``.
* Anonymous (empty user name, empty NtChallengeResponse, LmChallengeResponse
  empty or Z(1)) gives ``result == "anonymous"`` and no session key.
* A user name with empty responses (what smbclient -N sends first: the local
  login name and no password) is not anonymous (3.2.5.1.2 needs an empty user
  name): an unknown name gives ``"unknown_user"`` as any unknown name does
  (the server may map it to guest), a known one ``"refused"`` (nothing to
  verify).
* ``reason`` says why in words fit for the log: "NTLMv1 refused", "LM
  refused", "wrong password", "unknown user", "no password sent", "MIC
  mismatch", ... (empty for "ok" and "anonymous").
* The NTLMv2 proof is checked with the domain name as sent and, if that fails,
  with an empty domain (MS-NLMP 3.2.5.1.2: "NTLM servers SHOULD support NTLM
  clients which incorrectly use NIL for the UserDom"; Windows does the same).
* If the client's NTLMv2 target info carries MsvAvFlags bit 0x2, the MIC is
  verified and a mismatch gives ``result == "refused"``.
* NTLMSSP_NEGOTIATE_KEY_EXCH with an EncryptedRandomSessionKey that is not
  16 bytes (2.2.1.3) is a malformed message: :class:`NtlmError`
  ("EncryptedRandomSessionKey of N bytes"), so STATUS_INVALID_PARAMETER like
  any malformed token. Only a logon without an NT response (anonymous, or a
  name and no password) may leave the key out.
* MsvAvTimestamp / MsvAvTargetName / MsvAvChannelBindings sent by the client
  are not checked (SMB over TCP has no channel binding; the server challenge
  is fresh per connection).

Every offset/length read from the wire is bounds-checked; malformed input
raises :class:`NtlmError` (a ``ValueError``).
"""

from __future__ import annotations

import os
import struct
import time
from typing import Callable, Iterable

from .rc4 import RC4, rc4

__all__ = [
    "NtlmError",
    "NtlmAcceptor",
    "ntowfv2",
    "ntproofstr",
    "ntlmv2_temp",
    "session_base_key",
    "lmv2_response",
    "key_exchange_key",
    "encode_av_pairs",
    "parse_av_pairs",
    "sign_key",
    "seal_key",
    "mac_signature",
    "compute_mic",
    "filetime",
]


class NtlmError(ValueError):
    """Malformed or out-of-sequence NTLM message."""


NTLMSSP_SIGNATURE = b"NTLMSSP\x00"
NEGOTIATE_MESSAGE = 1
CHALLENGE_MESSAGE = 2
AUTHENTICATE_MESSAGE = 3

# MS-NLMP 2.2.2.5 NEGOTIATE flags
NTLMSSP_NEGOTIATE_UNICODE = 0x00000001
NTLM_NEGOTIATE_OEM = 0x00000002
NTLMSSP_REQUEST_TARGET = 0x00000004
NTLMSSP_NEGOTIATE_SIGN = 0x00000010
NTLMSSP_NEGOTIATE_SEAL = 0x00000020
NTLMSSP_NEGOTIATE_DATAGRAM = 0x00000040
NTLMSSP_NEGOTIATE_LM_KEY = 0x00000080
NTLMSSP_NEGOTIATE_NTLM = 0x00000200
NTLMSSP_ANONYMOUS = 0x00000800
NTLMSSP_NEGOTIATE_OEM_DOMAIN_SUPPLIED = 0x00001000
NTLMSSP_NEGOTIATE_OEM_WORKSTATION_SUPPLIED = 0x00002000
NTLMSSP_NEGOTIATE_ALWAYS_SIGN = 0x00008000
NTLMSSP_TARGET_TYPE_DOMAIN = 0x00010000
NTLMSSP_TARGET_TYPE_SERVER = 0x00020000
NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY = 0x00080000
NTLMSSP_NEGOTIATE_IDENTIFY = 0x00100000
NTLMSSP_REQUEST_NON_NT_SESSION_KEY = 0x00400000
NTLMSSP_NEGOTIATE_TARGET_INFO = 0x00800000
NTLMSSP_NEGOTIATE_VERSION = 0x02000000
NTLMSSP_NEGOTIATE_128 = 0x20000000
NTLMSSP_NEGOTIATE_KEY_EXCH = 0x40000000
NTLMSSP_NEGOTIATE_56 = 0x80000000

# Flags echoed back in the CHALLENGE when the client asked for them.
_ECHO_FLAGS = (
    NTLMSSP_NEGOTIATE_SIGN
    | NTLMSSP_NEGOTIATE_SEAL
    | NTLMSSP_NEGOTIATE_ALWAYS_SIGN
    | NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY
    | NTLMSSP_NEGOTIATE_VERSION
    | NTLMSSP_NEGOTIATE_128
    | NTLMSSP_NEGOTIATE_56
    | NTLMSSP_NEGOTIATE_KEY_EXCH
)

# MS-NLMP 2.2.2.1 AV_PAIR ids
MSV_AV_EOL = 0x0000
MSV_AV_NB_COMPUTER_NAME = 0x0001
MSV_AV_NB_DOMAIN_NAME = 0x0002
MSV_AV_DNS_COMPUTER_NAME = 0x0003
MSV_AV_DNS_DOMAIN_NAME = 0x0004
MSV_AV_DNS_TREE_NAME = 0x0005
MSV_AV_FLAGS = 0x0006
MSV_AV_TIMESTAMP = 0x0007
MSV_AV_SINGLE_HOST = 0x0008
MSV_AV_TARGET_NAME = 0x0009
MSV_AV_CHANNEL_BINDINGS = 0x000A

MSV_AV_FLAG_MIC_PRESENT = 0x00000002

# Version structure (2.2.2.10) sent in the CHALLENGE when the client sets
# NTLMSSP_NEGOTIATE_VERSION.  Debugging information only; 6.1 build 7601.
SERVER_VERSION = (6, 1, 7601)
NTLMSSP_REVISION_W2K3 = 0x0F

# Offsets inside AUTHENTICATE_MESSAGE (2.2.1.3)
_AUTH_HEADER_LEN = 64  # through NegotiateFlags
_AUTH_MIC_OFFSET = 72  # after the 8-byte Version
_AUTH_MIC_END = 88

# NTLMv2_CLIENT_CHALLENGE fixed part: RespType, HiRespType, Reserved1,
# Reserved2, TimeStamp, ChallengeFromClient, Reserved3 = 28 bytes.
_NTLMV2_BLOB_HEADER = 28
_NTLMV2_MIN_RESPONSE = 16 + _NTLMV2_BLOB_HEADER

_FILETIME_EPOCH_OFFSET = 116444736000000000  # 1601-01-01 -> 1970-01-01, 100ns

_C2S_SIGN = b"session key to client-to-server signing key magic constant\x00"
_S2C_SIGN = b"session key to server-to-client signing key magic constant\x00"
_C2S_SEAL = b"session key to client-to-server sealing key magic constant\x00"
_S2C_SEAL = b"session key to server-to-client sealing key magic constant\x00"


# ---------------------------------------------------------------------------
# Pure functions (MS-NLMP 3.3.2, 3.4.5.x)
# ---------------------------------------------------------------------------


# hashlib/hmac (libcrypto, ~4 MB) are imported at the first logon, not at start (issue 11:
# an idle server's memory); once loaded, an import statement is a dict lookup.
def _hmac_md5(key: bytes, data: bytes) -> bytes:
    import hashlib
    import hmac

    return hmac.new(key, data, hashlib.md5).digest()


def _md5(data: bytes) -> bytes:
    import hashlib

    return hashlib.md5(data).digest()


def _compare_digest(a: bytes, b: bytes) -> bool:
    import hmac

    return hmac.compare_digest(a, b)


def _upper(s: str) -> str:
    """Uppercase one code point at a time (Windows RtlUpcaseUnicodeString
    never changes the string length, unlike str.upper() for e.g. 'ß')."""
    out = []
    for ch in s:
        up = ch.upper()
        out.append(up if len(up) == 1 else ch)
    return "".join(out)


def _utf16(s: str) -> bytes:
    return s.encode("utf-16-le", "surrogatepass")


def ntowfv2(nt_hash: bytes, user: str, domain: str) -> bytes:
    """NTOWFv2 = HMAC_MD5(NT hash, UNICODE(Uppercase(User) + UserDom)).

    ``nt_hash`` is MD4(UNICODE(password)) (NTOWFv1).  LMOWFv2 is identical.
    """
    if len(nt_hash) != 16:
        raise ValueError("NT hash must be 16 bytes")
    return _hmac_md5(bytes(nt_hash), _utf16(_upper(user) + domain))


def ntlmv2_temp(
    timestamp: bytes | int, client_challenge: bytes, av_pairs: bytes
) -> bytes:
    """The NTLMv2 ``temp`` value of MS-NLMP 3.3.2 (= NTLMv2_CLIENT_CHALLENGE):
    RespType 1, HiRespType 1, Z(6), Time, ClientChallenge, Z(4), ServerName
    (the AV pairs, including MsvAvEOL), Z(4)."""
    if isinstance(timestamp, int):
        timestamp = struct.pack("<Q", timestamp)
    if len(timestamp) != 8 or len(client_challenge) != 8:
        raise ValueError("timestamp and client challenge must be 8 bytes")
    return (
        b"\x01\x01" + b"\x00" * 6 + bytes(timestamp) + bytes(client_challenge)
        + b"\x00" * 4 + bytes(av_pairs) + b"\x00" * 4
    )


def ntproofstr(response_key_nt: bytes, server_challenge: bytes, temp: bytes) -> bytes:
    """NTProofStr = HMAC_MD5(ResponseKeyNT, ServerChallenge + temp)."""
    return _hmac_md5(response_key_nt, bytes(server_challenge) + bytes(temp))


def session_base_key(response_key_nt: bytes, nt_proof_str: bytes) -> bytes:
    """SessionBaseKey = HMAC_MD5(ResponseKeyNT, NTProofStr) (NTLMv2)."""
    return _hmac_md5(response_key_nt, nt_proof_str)


def key_exchange_key(session_base_key_: bytes) -> bytes:
    """KXKEY for NTLMv2 is the SessionBaseKey itself (MS-NLMP 3.4.5.1)."""
    return bytes(session_base_key_)


def lmv2_response(
    response_key_lm: bytes, server_challenge: bytes, client_challenge: bytes
) -> bytes:
    """LMv2 = HMAC_MD5(ResponseKeyLM, ServerChallenge + ClientChallenge) +
    ClientChallenge.  Not used for verification (NTLMv2 is authoritative);
    provided for the published test vector."""
    return _hmac_md5(response_key_lm, bytes(server_challenge) + bytes(client_challenge)) + bytes(
        client_challenge
    )


def encode_av_pairs(pairs: Iterable[tuple[int, bytes]]) -> bytes:
    """Serialise AV pairs and terminate the list with MsvAvEOL."""
    out = bytearray()
    for av_id, value in pairs:
        if av_id == MSV_AV_EOL:
            continue
        if len(value) > 0xFFFF:
            raise ValueError("AV pair value too long")
        out += struct.pack("<HH", av_id, len(value)) + bytes(value)
    out += b"\x00\x00\x00\x00"
    return bytes(out)


def parse_av_pairs(data: bytes) -> list[tuple[int, bytes]]:
    """Parse an AV pair list up to MsvAvEOL (or the end of ``data``).

    Data after MsvAvEOL is ignored (the NTLMv2 blob has Z(4) padding there).
    Raises NtlmError when a pair runs past the end of ``data``.
    """
    data = bytes(data)
    pairs: list[tuple[int, bytes]] = []
    pos = 0
    n = len(data)
    while pos < n:
        if pos + 4 > n:
            raise NtlmError("truncated AV_PAIR header")
        av_id, av_len = struct.unpack_from("<HH", data, pos)
        pos += 4
        if av_id == MSV_AV_EOL:
            break
        if pos + av_len > n:
            raise NtlmError("AV_PAIR value runs past the end of the list")
        pairs.append((av_id, data[pos:pos + av_len]))
        pos += av_len
    return pairs


def sign_key(exported_session_key: bytes, client_to_server: bool) -> bytes:
    """SIGNKEY with extended session security (MS-NLMP 3.4.5.2)."""
    magic = _C2S_SIGN if client_to_server else _S2C_SIGN
    return _md5(bytes(exported_session_key) + magic)


def seal_key(exported_session_key: bytes, flags: int, client_to_server: bool) -> bytes:
    """SEALKEY with extended session security (MS-NLMP 3.4.5.3)."""
    key = bytes(exported_session_key)
    if flags & NTLMSSP_NEGOTIATE_128:
        pass
    elif flags & NTLMSSP_NEGOTIATE_56:
        key = key[:7]
    else:
        key = key[:5]
    magic = _C2S_SEAL if client_to_server else _S2C_SEAL
    return _md5(key + magic)


def mac_signature(
    signing_key: bytes, seal_handle: RC4 | None, seq_num: int, message: bytes
) -> bytes:
    """NTLMSSP_MESSAGE_SIGNATURE with extended session security
    (MS-NLMP 3.4.4.2): Version 1, Checksum = HMAC_MD5(SigningKey,
    SeqNum + Message)[0..7], RC4-encrypted with the sealing handle when key
    exchange was negotiated (``seal_handle`` not None), then SeqNum."""
    seq = struct.pack("<I", seq_num & 0xFFFFFFFF)
    checksum = _hmac_md5(signing_key, seq + bytes(message))[:8]
    if seal_handle is not None:
        checksum = seal_handle.update(checksum)
    return b"\x01\x00\x00\x00" + checksum + seq


def compute_mic(
    exported_session_key: bytes, negotiate: bytes, challenge: bytes, authenticate: bytes
) -> bytes:
    """MIC = HMAC_MD5(ExportedSessionKey, NEGOTIATE + CHALLENGE + AUTHENTICATE)
    where the AUTHENTICATE_MESSAGE's MIC field must already be zeroed."""
    return _hmac_md5(exported_session_key, bytes(negotiate) + bytes(challenge) + bytes(authenticate))


def filetime(unix_time: float) -> int:
    """Unix time -> Windows FILETIME (100 ns units since 1601-01-01)."""
    return _FILETIME_EPOCH_OFFSET + int(unix_time * 10_000_000)


# ---------------------------------------------------------------------------
# Acceptor
# ---------------------------------------------------------------------------


def _buffer(msg: bytes, fields_offset: int, min_payload: int) -> bytes:
    """Read a (Len, MaxLen, BufferOffset) descriptor and its payload."""
    length, _maxlen, offset = struct.unpack_from("<HHI", msg, fields_offset)
    if length == 0:
        return b""
    if offset < min_payload:
        raise NtlmError("payload buffer overlaps the message header")
    if offset + length > len(msg):
        raise NtlmError("payload buffer runs past the end of the message")
    return msg[offset:offset + length]


class NtlmAcceptor:
    """Server side of one NTLM authentication (NEGOTIATE -> CHALLENGE ->
    AUTHENTICATE).

    ``lookup(username)`` returns the user's 16-byte NT hash or None; it must
    do its own case-insensitive matching.  ``random_bytes`` is injectable for
    tests (server challenge only).

    After the AUTHENTICATE_MESSAGE, ``complete`` is True and ``result`` is one
    of ``"ok"``, ``"anonymous"``, ``"unknown_user"``, ``"bad_password"``,
    ``"refused"``; ``reason`` says why for every result but "ok" and
    "anonymous" (see the module docstring).  ``session_key`` is the 16-byte
    ExportedSessionKey for ``"ok"``, else None.  ``lm_response_length`` and
    ``nt_response_length`` are the sizes of the client's two responses (for
    a debug log: 24-byte NT means NTLMv1, 0 means no password).
    """

    RESULTS = ("ok", "anonymous", "unknown_user", "bad_password", "refused")

    def __init__(
        self,
        lookup: Callable[[str], bytes | None],
        netbios_name: str,
        netbios_domain: str,
        dns_name: str = "",
        dns_domain: str = "",
        now: Callable[[], float] = time.time,
        *,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._lookup = lookup
        self.netbios_name = netbios_name
        self.netbios_domain = netbios_domain
        self.dns_name = dns_name
        self.dns_domain = dns_domain
        self._now = now
        self._random_bytes = random_bytes

        self._state = "initial"  # -> "challenged" -> "done"
        self.complete = False
        self.result: str | None = None
        self.reason = ""
        self.user: str | None = None
        self.domain: str | None = None
        self.workstation: str | None = None
        self.session_key: bytes | None = None
        self.mic_present = False
        self.lm_response_length = 0
        self.nt_response_length = 0

        self.client_flags = 0  # NEGOTIATE_MESSAGE flags
        self.challenge_flags = 0  # what we answered
        self.negotiate_flags = 0  # final flags (AUTHENTICATE_MESSAGE)
        self.server_challenge: bytes | None = None
        self.negotiate_message: bytes | None = None
        self.challenge_message: bytes | None = None
        self.authenticate_message: bytes | None = None

        self._client_sign_key: bytes | None = None
        self._server_sign_key: bytes | None = None
        self._client_seal: RC4 | None = None
        self._server_seal: RC4 | None = None

    # -- public -----------------------------------------------------------

    def step(self, token: bytes) -> bytes | None:
        """Feed one NTLM message; returns the CHALLENGE_MESSAGE for a
        NEGOTIATE_MESSAGE, None after the AUTHENTICATE_MESSAGE."""
        token = bytes(token)
        if len(token) < 12 or token[:8] != NTLMSSP_SIGNATURE:
            raise NtlmError("not an NTLMSSP message")
        (msg_type,) = struct.unpack_from("<I", token, 8)
        if msg_type == NEGOTIATE_MESSAGE and self._state == "initial":
            return self._on_negotiate(token)
        if msg_type == AUTHENTICATE_MESSAGE and self._state == "challenged":
            self._on_authenticate(token)
            return None
        raise NtlmError(f"unexpected NTLM message type {msg_type} in state {self._state}")

    @property
    def can_sign(self) -> bool:
        """True when NTLM signatures (e.g. SPNEGO mechListMIC) can be made:
        a session key exists and extended session security was negotiated.
        (Signatures without ESS are not implemented.)"""
        return self._server_sign_key is not None

    def sign(self, message: bytes, seq_num: int = 0) -> bytes:
        """Server-to-client NTLM signature (GSS_GetMIC) over ``message``."""
        if self._server_sign_key is None:
            raise NtlmError("no signing key (not authenticated, or no ESS)")
        return mac_signature(self._server_sign_key, self._server_seal, seq_num, message)

    def verify(self, message: bytes, signature: bytes, seq_num: int = 0) -> bool:
        """Check a client-to-server NTLM signature (GSS_VerifyMIC)."""
        if self._client_sign_key is None:
            raise NtlmError("no signing key (not authenticated, or no ESS)")
        expected = mac_signature(self._client_sign_key, self._client_seal, seq_num, message)
        return _compare_digest(expected, bytes(signature))

    # -- NEGOTIATE -> CHALLENGE ------------------------------------------

    def _on_negotiate(self, msg: bytes) -> bytes:
        if len(msg) < 16:
            raise NtlmError("NEGOTIATE_MESSAGE too short")
        (client_flags,) = struct.unpack_from("<I", msg, 12)
        self.client_flags = client_flags
        self.negotiate_message = msg

        flags = NTLMSSP_NEGOTIATE_NTLM | NTLMSSP_NEGOTIATE_TARGET_INFO
        flags |= NTLMSSP_REQUEST_TARGET | NTLMSSP_TARGET_TYPE_DOMAIN
        if client_flags & NTLMSSP_NEGOTIATE_UNICODE or not client_flags & NTLM_NEGOTIATE_OEM:
            flags |= NTLMSSP_NEGOTIATE_UNICODE
        else:
            flags |= NTLM_NEGOTIATE_OEM
        flags |= client_flags & _ECHO_FLAGS
        self.challenge_flags = flags

        challenge = bytes(self._random_bytes(8))
        if len(challenge) != 8:
            raise ValueError("random_bytes must return 8 bytes")
        self.server_challenge = challenge

        if flags & NTLMSSP_NEGOTIATE_UNICODE:
            target_name = _utf16(self.netbios_domain)
        else:
            target_name = self.netbios_domain.encode("latin-1", "replace")

        av = [
            (MSV_AV_NB_COMPUTER_NAME, _utf16(self.netbios_name)),
            (MSV_AV_NB_DOMAIN_NAME, _utf16(self.netbios_domain)),
            # Always present: some clients (e.g. impacket) need a DNS host name
            # to build MsvAvTargetName.
            (MSV_AV_DNS_COMPUTER_NAME, _utf16(self.dns_name or self.netbios_name.lower())),
        ]
        if self.dns_domain:
            av.append((MSV_AV_DNS_DOMAIN_NAME, _utf16(self.dns_domain)))
        av.append((MSV_AV_TIMESTAMP, struct.pack("<Q", filetime(self._now()))))
        target_info = encode_av_pairs(av)

        if flags & NTLMSSP_NEGOTIATE_VERSION:
            major, minor, build = SERVER_VERSION
            version = struct.pack("<BBH3xB", major, minor, build, NTLMSSP_REVISION_W2K3)
        else:
            version = b"\x00" * 8

        header_len = 56
        tn_off = header_len
        ti_off = tn_off + len(target_name)
        out = (
            NTLMSSP_SIGNATURE
            + struct.pack("<I", CHALLENGE_MESSAGE)
            + struct.pack("<HHI", len(target_name), len(target_name), tn_off)
            + struct.pack("<I", flags)
            + challenge
            + b"\x00" * 8
            + struct.pack("<HHI", len(target_info), len(target_info), ti_off)
            + version
            + target_name
            + target_info
        )
        self.challenge_message = out
        self._state = "challenged"
        return out

    # -- AUTHENTICATE -----------------------------------------------------

    def _finish(self, result: str, reason: str = "") -> None:
        self.result = result
        self.reason = reason
        self.complete = True
        self._state = "done"

    def _on_authenticate(self, msg: bytes) -> None:
        if len(msg) < _AUTH_HEADER_LEN:
            raise NtlmError("AUTHENTICATE_MESSAGE too short")
        (flags,) = struct.unpack_from("<I", msg, 60)
        lm = _buffer(msg, 12, _AUTH_HEADER_LEN)
        nt = _buffer(msg, 20, _AUTH_HEADER_LEN)
        dom_raw = _buffer(msg, 28, _AUTH_HEADER_LEN)
        user_raw = _buffer(msg, 36, _AUTH_HEADER_LEN)
        ws_raw = _buffer(msg, 44, _AUTH_HEADER_LEN)
        enc_key = _buffer(msg, 52, _AUTH_HEADER_LEN)

        if flags & NTLMSSP_NEGOTIATE_UNICODE:
            unicode = True
        elif flags & NTLM_NEGOTIATE_OEM:
            unicode = False
        else:
            unicode = bool(self.challenge_flags & NTLMSSP_NEGOTIATE_UNICODE)

        def dec(raw: bytes) -> str:
            if unicode:
                if len(raw) % 2:
                    raise NtlmError("odd-length UTF-16 string")
                return raw.decode("utf-16-le", "surrogatepass")
            return raw.decode("latin-1")

        domain = dec(dom_raw)
        user = dec(user_raw)
        workstation = dec(ws_raw)

        # Everything parsed: record it.
        self.authenticate_message = msg
        self.negotiate_flags = flags
        self.user = user
        self.domain = domain
        self.workstation = workstation
        self.lm_response_length = len(lm)
        self.nt_response_length = len(nt)

        no_lm = lm in (b"", b"\x00")
        # MS-NLMP 2.2.1.3: with KEY_EXCH the client supplies EncryptedRandomSessionKey, the
        # RC4 of the 16-byte ExportedSessionKey, so 16 bytes; any other length is a malformed
        # message (the SESSION_SETUP fails with STATUS_INVALID_PARAMETER), whether or not
        # SIGN/SEAL make the key used. Without an NT response (anonymous, or a name and no
        # password, as smbclient -N sends) no key comes out of the logon: none is fine.
        if flags & NTLMSSP_NEGOTIATE_KEY_EXCH and len(enc_key) != 16 \
                and (enc_key or len(nt) != 0):
            raise NtlmError(f"EncryptedRandomSessionKey of {len(enc_key)} bytes")
        # Anonymous (MS-NLMP 3.2.5.1.2, 3.3.2): empty user and NT response.
        if user == "" and len(nt) == 0:
            if no_lm:
                self._finish("anonymous")
            else:
                self._finish("refused", "LM refused (LM response without a user name)")
            return

        if len(nt) == 24:
            self._finish("refused", "NTLMv1 refused")
            return
        if len(nt) == 0 and not no_lm:
            self._finish("refused", "LM refused")
            return
        if len(nt) == 0:
            # A user name and no password at all: not anonymous (the name is not empty)
            # and nothing to verify. An unknown name is as unknown as with a password.
            if self._lookup(user) is None:
                self._finish("unknown_user", "unknown user, no password sent")
            else:
                self._finish("refused", "no password sent")
            return
        if len(nt) < _NTLMV2_MIN_RESPONSE:
            raise NtlmError("NtChallengeResponse too short for NTLMv2")

        proof = nt[:16]
        temp = nt[16:]
        av_pairs = parse_av_pairs(temp[_NTLMV2_BLOB_HEADER:])
        av_flags = 0
        for av_id, value in av_pairs:
            if av_id == MSV_AV_FLAGS:
                if len(value) != 4:
                    raise NtlmError("MsvAvFlags must be 4 bytes")
                (av_flags,) = struct.unpack("<I", value)
        self.mic_present = bool(av_flags & MSV_AV_FLAG_MIC_PRESENT)

        nt_hash = self._lookup(user)
        if nt_hash is None:
            # Same work as a real check, to not reveal valid names by timing.
            ntproofstr(ntowfv2(b"\x00" * 16, user, domain), self.server_challenge or b"", temp)
            self._finish("unknown_user", "unknown user")
            return
        nt_hash = bytes(nt_hash)
        if len(nt_hash) != 16:
            raise ValueError("lookup() must return a 16-byte NT hash or None")

        assert self.server_challenge is not None
        response_key = None
        for candidate in dict.fromkeys((domain, "")):  # sent domain first, then NIL
            key = ntowfv2(nt_hash, user, candidate)
            if _compare_digest(ntproofstr(key, self.server_challenge, temp), proof):
                response_key = key
                break
        if response_key is None:
            self._finish("bad_password", "wrong password")
            return

        kxkey = key_exchange_key(session_base_key(response_key, proof))

        # MS-NLMP 3.2.5.1.2: decrypt the random session key only when
        # KEY_EXCH and (SIGN or SEAL) are negotiated.
        candidates: list[bytes] = []
        # (KEY_EXCH means a 16-byte enc_key: checked above.)
        if flags & NTLMSSP_NEGOTIATE_KEY_EXCH and flags & (
            NTLMSSP_NEGOTIATE_SIGN | NTLMSSP_NEGOTIATE_SEAL
        ):
            candidates.append(rc4(kxkey, enc_key))
        else:
            candidates.append(kxkey)
            # Some clients (macOS GSS, see dotnet/runtime fix for macOS NTLM)
            # set KEY_EXCH without SIGN/SEAL yet still send and use a random
            # key; accepted only if the MIC proves that key.
            if flags & NTLMSSP_NEGOTIATE_KEY_EXCH:
                candidates.append(rc4(kxkey, enc_key))

        exported = candidates[0]
        if self.mic_present:
            if len(msg) < _AUTH_MIC_END:
                self._finish("refused", "MIC flagged but the message is too short for one")
                return
            mic = msg[_AUTH_MIC_OFFSET:_AUTH_MIC_END]
            zeroed = msg[:_AUTH_MIC_OFFSET] + b"\x00" * 16 + msg[_AUTH_MIC_END:]
            assert self.negotiate_message is not None and self.challenge_message is not None
            for cand in candidates:
                expected = compute_mic(cand, self.negotiate_message, self.challenge_message, zeroed)
                if _compare_digest(expected, mic):
                    exported = cand
                    break
            else:
                self._finish("refused", "MIC mismatch")
                return

        self.session_key = exported
        if flags & NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY:
            self._client_sign_key = sign_key(exported, True)
            self._server_sign_key = sign_key(exported, False)
            if flags & NTLMSSP_NEGOTIATE_KEY_EXCH:
                self._client_seal = RC4(seal_key(exported, flags, True))
                self._server_seal = RC4(seal_key(exported, flags, False))
        self._finish("ok")

"""Tests for the NTLMv2 acceptor (auth/ntlm.py) and RC4 (auth/rc4.py).

Vectors: MS-NLMP 4.2.1 common values and 4.2.4 NTLMv2 Authentication
(4.2.4.1.1 NTOWFv2, 4.2.4.1.2 Session Base Key, 4.2.4.1.3 temp, 4.2.4.2.1
LMv2 response, 4.2.4.2.2 NTLMv2 response, 4.2.4.2.3 Encrypted Session Key,
4.2.4.3 AUTHENTICATE_MESSAGE, 4.2.4.4 GSS_WrapEx keys/signature).

Independent peers: pyspnego's NTLM initiator and impacket's NTLM client.
"""

from __future__ import annotations

import random
import struct

import pytest
import spnego
from impacket import ntlm as imp_ntlm

from ksmbd_embedded.auth import ntlm as N
from ksmbd_embedded.auth.ntlm import NtlmAcceptor, NtlmError
from ksmbd_embedded.auth.rc4 import RC4, rc4

try:  # the project's own NT hash, once the teammate's module exists
    from ksmbd_embedded.pwddb import nt_hash
except ImportError:  # pragma: no cover - fallback: pyspnego's independent MD4
    from spnego._ntlm_raw.crypto import ntowfv1 as nt_hash


def h(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", "").replace("\n", ""))


# ---------------------------------------------------------------------------
# MS-NLMP 4.2.1 / 4.2.4 published values
# ---------------------------------------------------------------------------

USER = "User"
DOMAIN = "Domain"
PASSWORD = "Password"
SERVER_CHALLENGE = h("01 23 45 67 89 ab cd ef")
CLIENT_CHALLENGE = h("aa aa aa aa aa aa aa aa")
RANDOM_SESSION_KEY = h("55" * 16)
TIME = h("00" * 8)
NTOWFV1 = h("a4 f4 9c 40 65 10 bd ca b6 82 4e e7 c3 0f d8 52")  # 4.2.2.1.2
NTOWFV2 = h("0c 86 8a 40 3b fd 7a 93 a3 00 1e f2 2e f0 2e 3f")  # 4.2.4.1.1
SESSION_BASE_KEY = h("8d e4 0c ca db c1 4a 82 f1 5c b0 ad 0d e9 5c a3")  # 4.2.4.1.2
# 4.2.4.3 CHALLENGE TargetInfo: MsvAvNbDomainName "Domain", MsvAvNbComputerName "Server", EOL
TARGET_INFO = h(
    "02 00 0c 00 44 00 6f 00 6d 00 61 00 69 00 6e 00"
    "01 00 0c 00 53 00 65 00 72 00 76 00 65 00 72 00"
    "00 00 00 00"
)
TEMP = h(  # 4.2.4.1.3
    "01 01 00 00 00 00 00 00 00 00 00 00 00 00 00 00"
    "aa aa aa aa aa aa aa aa 00 00 00 00 02 00 0c 00"
    "44 00 6f 00 6d 00 61 00 69 00 6e 00 01 00 0c 00"
    "53 00 65 00 72 00 76 00 65 00 72 00 00 00 00 00"
    "00 00 00 00"
)
LMV2_RESPONSE = h("86 c3 50 97 ac 9c ec 10 25 54 76 4a 57 cc cc 19 aa aa aa aa aa aa aa aa")
NT_PROOF_STR = h("68 cd 0a b8 51 e5 1c 96 aa bc 92 7b eb ef 6a 1c")  # 4.2.4.2.2
ENCRYPTED_SESSION_KEY = h("c5 da d2 54 4f c9 79 90 94 ce 1c e9 0b c9 d0 3e")  # 4.2.4.2.3
AUTHENTICATE_4243 = h(  # 4.2.4.3 AUTHENTICATE_MESSAGE
    "4e 54 4c 4d 53 53 50 00 03 00 00 00 18 00 18 00"
    "6c 00 00 00 54 00 54 00 84 00 00 00 0c 00 0c 00"
    "48 00 00 00 08 00 08 00 54 00 00 00 10 00 10 00"
    "5c 00 00 00 10 00 10 00 d8 00 00 00 35 82 88 e2"
    "05 01 28 0a 00 00 00 0f 44 00 6f 00 6d 00 61 00"
    "69 00 6e 00 55 00 73 00 65 00 72 00 43 00 4f 00"
    "4d 00 50 00 55 00 54 00 45 00 52 00 86 c3 50 97"
    "ac 9c ec 10 25 54 76 4a 57 cc cc 19 aa aa aa aa"
    "aa aa aa aa 68 cd 0a b8 51 e5 1c 96 aa bc 92 7b"
    "eb ef 6a 1c 01 01 00 00 00 00 00 00 00 00 00 00"
    "00 00 00 00 aa aa aa aa aa aa aa aa 00 00 00 00"
    "02 00 0c 00 44 00 6f 00 6d 00 61 00 69 00 6e 00"
    "01 00 0c 00 53 00 65 00 72 00 76 00 65 00 72 00"
    "00 00 00 00 00 00 00 00 c5 da d2 54 4f c9 79 90"
    "94 ce 1c e9 0b c9 d0 3e"
)
CHALLENGE_FLAGS_424 = 0xE28A8233  # "33 82 8a e2"
# 4.2.4.4 GSS_WrapEx
PLAINTEXT = "Plaintext".encode("utf-16-le")
CLIENT_SEAL_KEY = h("59 f6 00 97 3c c4 96 0a 25 48 0a 7c 19 6e 4c 58")
CLIENT_SIGN_KEY = h("47 88 dc 86 1b 47 82 f3 5d 43 fd 98 fe 1a 2d 39")
SEALED = h("54 e5 01 65 bf 19 36 dc 99 60 20 c1 81 1b 0f 06 fb 5f")
SIGNATURE = h("01 00 00 00 7f b3 8e c5 c5 5d 49 76 00 00 00 00")
CHECKSUM_BEFORE_RC4 = h("70 35 28 51 f2 56 43 09")


def test_rc4_known_answers():
    # Classic published ARC4 test vectors.
    assert rc4(b"Key", b"Plaintext") == h("bbf316e8d940af0ad3")
    assert rc4(b"Wiki", b"pedia") == h("1021bf0420")
    assert rc4(b"Secret", b"Attack at dawn") == h("45a01f645fc35b383552544b9bf5")
    # stateful handle continues the keystream
    r = RC4(b"Key")
    assert r.update(b"Plain") + r.update(b"text") == h("bbf316e8d940af0ad3")
    with pytest.raises(ValueError):
        RC4(b"")


def test_nt_hash_helper_matches_spec():
    assert nt_hash(PASSWORD) == NTOWFV1


def test_ntowfv2_vector():
    assert N.ntowfv2(NTOWFV1, USER, DOMAIN) == NTOWFV2
    # only the user name is uppercased
    assert N.ntowfv2(NTOWFV1, "user", DOMAIN) == NTOWFV2
    assert N.ntowfv2(NTOWFV1, USER, "domain") != NTOWFV2


def test_temp_proof_and_keys_vectors():
    temp = N.ntlmv2_temp(TIME, CLIENT_CHALLENGE, TARGET_INFO)
    assert temp == TEMP
    assert N.ntlmv2_temp(0, CLIENT_CHALLENGE, TARGET_INFO) == TEMP
    proof = N.ntproofstr(NTOWFV2, SERVER_CHALLENGE, temp)
    assert proof == NT_PROOF_STR
    # the whole NtChallengeResponse as carried in 4.2.4.3 at offset 0x84
    assert proof + temp == AUTHENTICATE_4243[0x84:0x84 + 0x54]
    sbk = N.session_base_key(NTOWFV2, proof)
    assert sbk == SESSION_BASE_KEY
    assert N.key_exchange_key(sbk) == SESSION_BASE_KEY
    assert N.lmv2_response(NTOWFV2, SERVER_CHALLENGE, CLIENT_CHALLENGE) == LMV2_RESPONSE
    assert rc4(N.key_exchange_key(sbk), RANDOM_SESSION_KEY) == ENCRYPTED_SESSION_KEY
    assert AUTHENTICATE_4243[0xD8:0xE8] == ENCRYPTED_SESSION_KEY


def test_sign_seal_keys_and_signature_vector():
    assert N.sign_key(RANDOM_SESSION_KEY, client_to_server=True) == CLIENT_SIGN_KEY
    assert N.seal_key(RANDOM_SESSION_KEY, CHALLENGE_FLAGS_424, client_to_server=True) == CLIENT_SEAL_KEY
    # GSS_WrapEx: seal then sign with the same RC4 handle (MS-NLMP 3.4.3)
    assert N.mac_signature(CLIENT_SIGN_KEY, None, 0, PLAINTEXT) == (
        b"\x01\x00\x00\x00" + CHECKSUM_BEFORE_RC4 + b"\x00" * 4
    )
    handle = RC4(CLIENT_SEAL_KEY)
    assert handle.update(PLAINTEXT) == SEALED
    assert N.mac_signature(CLIENT_SIGN_KEY, handle, 0, PLAINTEXT) == SIGNATURE


def test_av_pairs_roundtrip_and_errors():
    pairs = N.parse_av_pairs(TARGET_INFO)
    assert pairs == [(2, "Domain".encode("utf-16-le")), (1, "Server".encode("utf-16-le"))]
    assert N.encode_av_pairs(pairs) == TARGET_INFO
    assert N.parse_av_pairs(TARGET_INFO + b"\x00" * 4) == pairs  # padding after EOL
    with pytest.raises(NtlmError):
        N.parse_av_pairs(b"\x01\x00\x10\x00abc")
    with pytest.raises(NtlmError):
        N.parse_av_pairs(b"\x01\x00")


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

USERS = {"alice": nt_hash("secret"), "user": NTOWFV1}


def lookup(name: str) -> bytes | None:
    return USERS.get(name.lower())


def make_acceptor(**kw) -> NtlmAcceptor:
    kw.setdefault("now", lambda: 1_700_000_000.0)
    return NtlmAcceptor(lookup, "KSMBD", "WORKGROUP", **kw)


NEG_FLAGS = (
    N.NTLMSSP_NEGOTIATE_UNICODE | N.NTLMSSP_REQUEST_TARGET | N.NTLMSSP_NEGOTIATE_SIGN
    | N.NTLMSSP_NEGOTIATE_NTLM | N.NTLMSSP_NEGOTIATE_ALWAYS_SIGN
    | N.NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY | N.NTLMSSP_NEGOTIATE_TARGET_INFO
    | N.NTLMSSP_NEGOTIATE_VERSION | N.NTLMSSP_NEGOTIATE_128 | N.NTLMSSP_NEGOTIATE_KEY_EXCH
)


def negotiate_msg(flags: int = NEG_FLAGS) -> bytes:
    return (
        b"NTLMSSP\x00" + struct.pack("<II", 1, flags)
        + struct.pack("<HHI", 0, 0, 40) * 2 + b"\x0a\x00\x63\x45\x00\x00\x00\x0f"
    )


def authenticate_msg(
    *, lm=b"", nt=b"", domain="", user="", ws="", enc_key=b"",
    flags=NEG_FLAGS, with_mic=False,
) -> bytes:
    fields = [lm, nt, domain.encode("utf-16-le"), user.encode("utf-16-le"),
              ws.encode("utf-16-le"), enc_key]
    offset = 88 if with_mic else 72
    hdr = b"NTLMSSP\x00" + struct.pack("<I", 3)
    payload = b""
    for f in fields:
        hdr += struct.pack("<HHI", len(f), len(f), offset + len(payload))
        payload += f
    hdr += struct.pack("<I", flags) + b"\x0a\x00\x63\x45\x00\x00\x00\x0f"
    if with_mic:
        hdr += b"\x00" * 16
    return hdr + payload


def parse_challenge(msg: bytes) -> dict:
    assert msg[:8] == b"NTLMSSP\x00" and struct.unpack_from("<I", msg, 8)[0] == 2
    tn_len, _, tn_off = struct.unpack_from("<HHI", msg, 12)
    (flags,) = struct.unpack_from("<I", msg, 20)
    ti_len, _, ti_off = struct.unpack_from("<HHI", msg, 40)
    return {
        "flags": flags,
        "challenge": msg[24:32],
        "target_name": msg[tn_off:tn_off + tn_len],
        "target_info": dict(N.parse_av_pairs(msg[ti_off:ti_off + ti_len])),
        "version": msg[48:56],
    }


def ntlmv2_response(password_hash, user, domain, server_challenge, av, client_chal=b"\x11" * 8):
    key = N.ntowfv2(password_hash, user, domain)
    temp = N.ntlmv2_temp(N.filetime(1_700_000_000.0), client_chal, av)
    proof = N.ntproofstr(key, server_challenge, temp)
    return proof + temp, N.session_base_key(key, proof)


def pyspnego_handshake(acc: NtlmAcceptor, username="alice", password="secret"):
    c = spnego.client(username, password, hostname="srv", protocol="ntlm")
    neg = c.step()
    chal = acc.step(neg)
    auth = c.step(chal)
    out = acc.step(auth)
    return c, neg, chal, auth, out


# ---------------------------------------------------------------------------
# Acceptor against the spec's own AUTHENTICATE_MESSAGE
# ---------------------------------------------------------------------------


def test_acceptor_accepts_spec_authenticate_message():
    acc = NtlmAcceptor(lookup, "Server", "Domain", random_bytes=lambda n: SERVER_CHALLENGE)
    chal = acc.step(negotiate_msg(CHALLENGE_FLAGS_424))
    assert parse_challenge(chal)["challenge"] == SERVER_CHALLENGE
    assert acc.step(AUTHENTICATE_4243) is None
    assert acc.complete and acc.result == "ok"
    assert (acc.user, acc.domain, acc.workstation) == ("User", "Domain", "COMPUTER")
    assert acc.mic_present is False
    # KEY_EXCH + SIGN/SEAL: ExportedSessionKey = RC4(KXKEY, EncryptedRandomSessionKey)
    assert acc.session_key == RANDOM_SESSION_KEY
    # signing keys derived from it: GSS_GetMIC of the client verifies
    sig = N.mac_signature(CLIENT_SIGN_KEY, RC4(CLIENT_SEAL_KEY), 0, PLAINTEXT)
    assert acc.verify(PLAINTEXT, sig, 0)


def test_spec_authenticate_with_other_password_is_bad_password():
    acc = NtlmAcceptor(lambda u: nt_hash("nope"), "Server", "Domain",
                       random_bytes=lambda n: SERVER_CHALLENGE)
    acc.step(negotiate_msg(CHALLENGE_FLAGS_424))
    acc.step(AUTHENTICATE_4243)
    assert acc.result == "bad_password" and acc.session_key is None


# ---------------------------------------------------------------------------
# CHALLENGE_MESSAGE contents
# ---------------------------------------------------------------------------


def test_challenge_message_contents():
    acc = NtlmAcceptor(lookup, "KSMBD", "WORKGROUP", dns_name="ksmbd.lan", dns_domain="lan",
                       now=lambda: 1_700_000_000.0)
    c = parse_challenge(acc.step(negotiate_msg()))
    f = c["flags"]
    for flag in (N.NTLMSSP_NEGOTIATE_UNICODE, N.NTLMSSP_NEGOTIATE_NTLM, N.NTLMSSP_NEGOTIATE_ALWAYS_SIGN,
                 N.NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY, N.NTLMSSP_NEGOTIATE_TARGET_INFO,
                 N.NTLMSSP_NEGOTIATE_VERSION, N.NTLMSSP_NEGOTIATE_128, N.NTLMSSP_NEGOTIATE_KEY_EXCH,
                 N.NTLMSSP_NEGOTIATE_SIGN, N.NTLMSSP_REQUEST_TARGET):
        assert f & flag, hex(flag)
    assert not f & N.NTLMSSP_NEGOTIATE_SEAL  # not requested
    assert not f & N.NTLMSSP_NEGOTIATE_LM_KEY
    assert c["target_name"] == "WORKGROUP".encode("utf-16-le")
    ti = c["target_info"]
    assert ti[N.MSV_AV_NB_COMPUTER_NAME] == "KSMBD".encode("utf-16-le")
    assert ti[N.MSV_AV_NB_DOMAIN_NAME] == "WORKGROUP".encode("utf-16-le")
    assert ti[N.MSV_AV_DNS_COMPUTER_NAME] == "ksmbd.lan".encode("utf-16-le")
    assert ti[N.MSV_AV_DNS_DOMAIN_NAME] == "lan".encode("utf-16-le")
    assert struct.unpack("<Q", ti[N.MSV_AV_TIMESTAMP])[0] == 116444736000000000 + 1_700_000_000 * 10**7
    assert c["version"][7] == 0x0F and c["version"] != b"\x00" * 8
    assert len(c["challenge"]) == 8


def test_challenge_without_optional_requests():
    acc = make_acceptor()
    c = parse_challenge(acc.step(negotiate_msg(N.NTLMSSP_NEGOTIATE_UNICODE | N.NTLMSSP_NEGOTIATE_NTLM)))
    f = c["flags"]
    assert not f & (N.NTLMSSP_NEGOTIATE_KEY_EXCH | N.NTLMSSP_NEGOTIATE_SIGN | N.NTLMSSP_NEGOTIATE_VERSION)
    assert c["version"] == b"\x00" * 8
    # DNS computer name always present (falls back to the NetBIOS name)
    assert c["target_info"][N.MSV_AV_DNS_COMPUTER_NAME] == "ksmbd".encode("utf-16-le")
    assert N.MSV_AV_DNS_DOMAIN_NAME not in c["target_info"]


def test_challenges_are_random():
    a, b = make_acceptor(), make_acceptor()
    assert parse_challenge(a.step(negotiate_msg()))["challenge"] != \
        parse_challenge(b.step(negotiate_msg()))["challenge"]


# ---------------------------------------------------------------------------
# Handshakes with pyspnego (independent NTLM initiator)
# ---------------------------------------------------------------------------


def test_pyspnego_ok():
    acc = make_acceptor()
    c, *_, out = pyspnego_handshake(acc)
    assert out is None
    assert acc.complete and acc.result == "ok"
    assert acc.user == "alice" and acc.domain == ""
    assert acc.mic_present  # pyspnego sends a MIC when MsvAvTimestamp is present
    assert c.complete and acc.session_key == c.session_key and len(acc.session_key) == 16
    # NTLM signatures interoperate in both directions (used for mechListMIC)
    assert acc.verify(b"hello", c.sign(b"hello"), 0)
    c.verify(b"world", acc.sign(b"world", 0))


def test_pyspnego_with_domain_and_case_insensitive_user():
    acc = make_acceptor()
    c, *_ = pyspnego_handshake(acc, username="WORKGROUP\\ALICE")
    assert acc.result == "ok"
    assert acc.user == "ALICE" and acc.domain == "WORKGROUP"
    assert acc.session_key == c.session_key


def test_pyspnego_wrong_password():
    acc = make_acceptor()
    pyspnego_handshake(acc, password="wrong")
    assert acc.complete and acc.result == "bad_password" and acc.session_key is None


def test_pyspnego_unknown_user():
    acc = make_acceptor()
    pyspnego_handshake(acc, username="mallory")
    assert acc.complete and acc.result == "unknown_user" and acc.session_key is None
    assert acc.user == "mallory"


@pytest.mark.parametrize("level", ["0", "1", "2"])
def test_pyspnego_ntlmv1_is_refused(monkeypatch, level):
    # pyspnego's initiator reads LM_COMPAT_LEVEL at construction: 0/1 send
    # LM + NTLMv1, 2 sends NTLMv1 only (24-byte NtChallengeResponse).
    monkeypatch.setenv("LM_COMPAT_LEVEL", level)
    acc = make_acceptor()
    _, _, _, auth, _ = pyspnego_handshake(acc)
    nt_len = struct.unpack_from("<H", auth, 20)[0]
    assert nt_len == 24
    assert acc.complete and acc.result == "refused" and acc.session_key is None


def test_mic_tampering_is_refused():
    acc = make_acceptor()
    c = spnego.client("alice", "secret", hostname="srv", protocol="ntlm")
    neg = c.step()
    auth = bytearray(c.step(acc.step(neg)))
    auth[72] ^= 0x01  # first MIC byte
    acc.step(bytes(auth))
    assert acc.result == "refused" and acc.reason == "MIC mismatch" and acc.session_key is None


def test_mic_covers_fields_outside_ntproofstr():
    # Changing the workstation name does not affect NTProofStr, only the MIC.
    acc = make_acceptor()
    c = spnego.client("alice", "secret", hostname="srv", protocol="ntlm")
    auth = bytearray(c.step(acc.step(c.step())))
    ws_len, _, ws_off = struct.unpack_from("<HHI", auth, 44)
    assert ws_len >= 2
    auth[ws_off] ^= 0x01
    acc.step(bytes(auth))
    assert acc.result == "refused"


def test_mic_covers_negotiate_message():
    acc = make_acceptor()
    c = spnego.client("alice", "secret", hostname="srv", protocol="ntlm")
    neg = bytearray(c.step())
    chal = acc.step(bytes(neg))
    acc.negotiate_message = bytes(neg[:-1]) + bytes([neg[-1] ^ 1])  # as if altered in transit
    acc.step(c.step(chal))
    assert acc.result == "refused"


# ---------------------------------------------------------------------------
# Handshakes with impacket (second independent NTLM client)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("signing", [True, False])
def test_impacket_ok(signing):
    acc = make_acceptor()
    type1 = imp_ntlm.getNTLMSSPType1("WS01", "", signingRequired=signing)
    chal = acc.step(type1.getData())
    type3, exported = imp_ntlm.getNTLMSSPType3(type1, chal, "alice", "secret", "WORKGROUP")
    assert acc.step(type3.getData()) is None
    assert acc.result == "ok"
    assert (acc.user, acc.domain) == ("alice", "WORKGROUP")
    assert acc.session_key == exported
    assert bool(acc.negotiate_flags & N.NTLMSSP_NEGOTIATE_KEY_EXCH) == signing


def test_impacket_anonymous():
    acc = make_acceptor()
    type1 = imp_ntlm.getNTLMSSPType1("", "", signingRequired=True)
    chal = acc.step(type1.getData())
    type3, _ = imp_ntlm.getNTLMSSPType3(type1, chal, "", "", "")
    acc.step(type3.getData())
    assert acc.result == "anonymous" and acc.session_key is None


def test_impacket_wrong_password():
    acc = make_acceptor()
    type1 = imp_ntlm.getNTLMSSPType1("WS01", "", signingRequired=True)
    chal = acc.step(type1.getData())
    type3, _ = imp_ntlm.getNTLMSSPType3(type1, chal, "alice", "bad", "WORKGROUP")
    acc.step(type3.getData())
    assert acc.result == "bad_password"


# ---------------------------------------------------------------------------
# Hand-built AUTHENTICATE messages
# ---------------------------------------------------------------------------


def _challenged(**kw):
    acc = make_acceptor(**kw)
    chal = parse_challenge(acc.step(negotiate_msg()))
    return acc, chal


@pytest.mark.parametrize("lm", [b"", b"\x00"])
def test_anonymous(lm):
    acc, _ = _challenged()
    acc.step(authenticate_msg(lm=lm, flags=NEG_FLAGS | N.NTLMSSP_ANONYMOUS))
    assert acc.complete and acc.result == "anonymous"
    assert acc.session_key is None and acc.user == "" and not acc.can_sign


def test_empty_user_with_lm_response_is_refused():
    acc, _ = _challenged()
    acc.step(authenticate_msg(lm=b"\x01" * 24))
    assert acc.result == "refused"


def test_lm_only_response_is_refused():
    acc, _ = _challenged()
    acc.step(authenticate_msg(user="alice", lm=b"\x01" * 24))
    assert acc.result == "refused"


def _ntlmv2_auth(acc_chal, *, sent_domain, proof_domain, password="secret", user="alice", flags=None):
    av = N.encode_av_pairs([(N.MSV_AV_NB_COMPUTER_NAME, "KSMBD".encode("utf-16-le"))])
    nt, sbk = ntlmv2_response(nt_hash(password), user, proof_domain, acc_chal["challenge"], av)
    exported = b"\x42" * 16
    return authenticate_msg(
        nt=nt, user=user, domain=sent_domain, ws="WS",
        enc_key=rc4(sbk, exported), flags=NEG_FLAGS if flags is None else flags,
    ), exported, sbk


def test_empty_domain_fallback():
    # Client computed NTOWFv2 with an empty UserDom but sent a domain name.
    acc, chal = _challenged()
    msg, exported, _ = _ntlmv2_auth(chal, sent_domain="WORKGROUP", proof_domain="")
    acc.step(msg)
    assert acc.result == "ok" and acc.domain == "WORKGROUP" and acc.session_key == exported


def test_other_domain_in_proof_is_bad_password():
    acc, chal = _challenged()
    msg, _, _ = _ntlmv2_auth(chal, sent_domain="WORKGROUP", proof_domain="OTHER")
    acc.step(msg)
    assert acc.result == "bad_password"


def test_no_key_exchange_uses_session_base_key():
    acc, chal = _challenged()
    flags = NEG_FLAGS & ~N.NTLMSSP_NEGOTIATE_KEY_EXCH
    msg, _, sbk = _ntlmv2_auth(chal, sent_domain="", proof_domain="", flags=flags)
    acc.step(msg)
    assert acc.result == "ok" and acc.session_key == sbk


SIGN_SEAL = N.NTLMSSP_NEGOTIATE_SIGN | N.NTLMSSP_NEGOTIATE_SEAL


@pytest.mark.parametrize("flags", [NEG_FLAGS, NEG_FLAGS & ~SIGN_SEAL], ids=["sign", "no_sign"])
@pytest.mark.parametrize("key_len", [0, 8, 15, 17, 32])
def test_key_exchange_needs_a_16_byte_encrypted_key(flags, key_len):
    """MS-NLMP 2.2.1.3: with NTLMSSP_NEGOTIATE_KEY_EXCH the EncryptedRandomSessionKey is the
    16-byte RC4 of the ExportedSessionKey; any other length is a malformed message, refused
    whether or not SIGN/SEAL made the key matter (and before the password is looked at)."""
    acc, chal = _challenged()
    av = N.encode_av_pairs([])
    nt, _ = ntlmv2_response(nt_hash("secret"), "alice", "", chal["challenge"], av)
    with pytest.raises(NtlmError, match=f"^EncryptedRandomSessionKey of {key_len} bytes$"):
        acc.step(authenticate_msg(nt=nt, user="alice", enc_key=b"\x42" * key_len,
                                  flags=flags))
    assert not acc.complete and acc.session_key is None and acc.user == "alice"


def test_anonymous_key_exchange_key_is_empty_or_16_bytes():
    acc, _ = _challenged()
    with pytest.raises(NtlmError, match="^EncryptedRandomSessionKey of 8 bytes$"):
        acc.step(authenticate_msg(enc_key=bytes(8), flags=NEG_FLAGS | N.NTLMSSP_ANONYMOUS))
    acc, _ = _challenged()
    acc.step(authenticate_msg(enc_key=bytes(16), flags=NEG_FLAGS | N.NTLMSSP_ANONYMOUS))
    assert acc.result == "anonymous" and acc.session_key is None


def test_non_ascii_user_name():
    USERS["jürgen"] = nt_hash("pässwörd")
    try:
        acc, chal = _challenged()
        msg, exported, _ = _ntlmv2_auth(chal, sent_domain="", proof_domain="", user="Jürgen",
                                        password="pässwörd")
        acc.step(msg)
        assert acc.result == "ok" and acc.user == "Jürgen"
    finally:
        del USERS["jürgen"]


# ---------------------------------------------------------------------------
# Sequencing and malformed input
# ---------------------------------------------------------------------------


def test_out_of_sequence_messages():
    acc = make_acceptor()
    with pytest.raises(NtlmError):
        acc.step(AUTHENTICATE_4243)  # AUTHENTICATE before NEGOTIATE
    acc.step(negotiate_msg())
    with pytest.raises(NtlmError):
        acc.step(negotiate_msg())  # second NEGOTIATE
    acc.step(AUTHENTICATE_4243)
    with pytest.raises(NtlmError):
        acc.step(AUTHENTICATE_4243)  # after completion
    with pytest.raises(NtlmError):
        make_acceptor().step(b"NTLMSSP\x00\x02\x00\x00\x00" + b"\x00" * 40)  # CHALLENGE
    with pytest.raises(NtlmError):
        make_acceptor().step(b"not ntlm at all")
    assert issubclass(NtlmError, ValueError)


def test_malformed_authenticate_fields():
    acc, chal = _challenged()
    good, _, _ = _ntlmv2_auth(chal, sent_domain="", proof_domain="")
    bad = bytearray(good)
    struct.pack_into("<HHI", bad, 20, 0xFFFF, 0xFFFF, 72)  # NT response past the end
    with pytest.raises(NtlmError):
        acc.step(bytes(bad))
    acc, chal = _challenged()
    bad = bytearray(good)
    struct.pack_into("<I", bad, 24, 0xFFFFFFF0)  # huge offset
    with pytest.raises(NtlmError):
        acc.step(bytes(bad))
    acc, _ = _challenged()
    with pytest.raises(NtlmError):
        acc.step(authenticate_msg(user="alice", nt=b"\x00" * 30))  # neither v1 nor v2
    acc, _ = _challenged()
    odd = bytearray(authenticate_msg(user="alice", nt=b"\x00" * 50))
    struct.pack_into("<H", odd, 36, 9)  # odd UTF-16 length
    with pytest.raises(NtlmError):
        acc.step(bytes(odd))


def test_fuzz_only_ntlm_error():
    rng = random.Random(20241121)
    seeds = [negotiate_msg(), AUTHENTICATE_4243]
    c = spnego.client("alice", "secret", hostname="srv", protocol="ntlm")
    a = make_acceptor()
    neg = c.step()
    seeds += [neg, c.step(a.step(neg))]
    outcomes = set()
    for i in range(3000):
        base = bytearray(rng.choice(seeds))
        mode = i % 4
        if mode == 0:
            data = bytes(base[: rng.randrange(len(base) + 1)])
        elif mode == 1:
            for _ in range(rng.randint(1, 8)):
                base[rng.randrange(len(base))] = rng.randrange(256)
            data = bytes(base)
        elif mode == 2:  # corrupt a length/offset descriptor of the header
            pos = rng.choice([12, 14, 16, 20, 24, 28, 32, 36, 40, 44, 48, 52, 56])
            if pos + 4 <= len(base):
                struct.pack_into("<I", base, pos, rng.choice([0, 1, 0xFFFF, 0xFFFFFFFF, rng.getrandbits(32)]))
            data = bytes(base)
        else:
            data = b"NTLMSSP\x00" + bytes(rng.getrandbits(8) for _ in range(rng.randrange(80)))
        acc = make_acceptor(random_bytes=lambda n: SERVER_CHALLENGE)
        try:
            acc.step(negotiate_msg())
            acc.step(data)
            outcomes.add(acc.result)
        except NtlmError:
            outcomes.add("error")
    assert "error" in outcomes

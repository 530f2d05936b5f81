"""Tests for the SPNEGO acceptor and DER codec (auth/spnego.py).

Independent peers: pyspnego (its SPNEGO initiator with the pure-Python
NTLM, and its token packer/unpacker) and impacket's SPNEGO structures.
"""

from __future__ import annotations

import random

import pytest
import spnego
import spnego.exceptions
from impacket import ntlm as imp_ntlm
from impacket.spnego import SPNEGO_NegTokenInit, SPNEGO_NegTokenResp, TypesMech
from spnego._spnego import NegTokenInit as PyInit
from spnego._spnego import NegTokenResp as PyResp
from spnego._spnego import unpack_token

from ksmbd_embedded.auth import spnego as S
from ksmbd_embedded.auth.ntlm import NtlmAcceptor
from ksmbd_embedded.auth.spnego import SpnegoAcceptor, SpnegoError, negotiate_hint

try:
    from ksmbd_embedded.pwddb import nt_hash
except ImportError:  # pragma: no cover - fallback: pyspnego's independent MD4
    from spnego._ntlm_raw.crypto import ntowfv1 as nt_hash

KRB5_OID = "1.2.840.113554.1.2.2"
MS_KRB5_OID = "1.2.840.48018.1.2.2"
USERS = {"alice": nt_hash("secret")}


def make_acceptor() -> SpnegoAcceptor:
    return SpnegoAcceptor(NtlmAcceptor(lambda u: USERS.get(u.lower()), "KSMBD", "WORKGROUP"))


def negotiate_client(user="alice", password="secret"):
    return spnego.client(user, password, hostname="srv", protocol="negotiate",
                         options=spnego.NegotiateOptions.use_negotiate)


def run(acc: SpnegoAcceptor, client, first_in=None):
    """Drive client <-> acceptor; returns the list of server tokens."""
    server_tokens = []
    tok = client.step(first_in)
    while not acc.complete:
        out = acc.step(tok)
        server_tokens.append(out)
        if acc.complete:
            break
        tok = client.step(out)
    return server_tokens


# ---------------------------------------------------------------------------
# negotiate_hint
# ---------------------------------------------------------------------------


def test_negotiate_hint_parses_with_pyspnego_and_ours():
    blob = negotiate_hint()
    assert blob[0] == 0x60
    theirs = unpack_token(blob)
    assert isinstance(theirs, PyInit)
    assert theirs.mech_types == [S.NTLMSSP_OID]
    assert theirs.hint_name == b"not_defined_in_RFC4178@please_ignore"
    assert theirs.mech_token is None and theirs.mech_list_mic is None
    ours = S.parse_token(blob)
    assert ours.mech_types == [S.NTLMSSP_OID] and ours.hint_name == S.HINT_NAME
    # NTLMSSP OID 1.3.6.1.4.1.311.2.2.10 DER-encoded
    assert bytes.fromhex("060a2b06010401823702020a") in blob


def test_negotiate_hint_parses_with_impacket():
    tok = SPNEGO_NegTokenInit(negotiate_hint())
    assert tok["MechTypes"] == [TypesMech["NTLMSSP - Microsoft NTLM Security Support Provider"]]


# ---------------------------------------------------------------------------
# Full SPNEGO handshakes with pyspnego
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("with_hint", [False, True])
def test_pyspnego_negotiate_ok_with_mech_list_mic(with_hint):
    acc = make_acceptor()
    c = negotiate_client()
    tokens = run(acc, c, negotiate_hint() if with_hint else None)
    assert len(tokens) == 2
    first = unpack_token(tokens[0])
    assert isinstance(first, PyResp)
    assert first.neg_state == S.ACCEPT_INCOMPLETE and first.supported_mech == S.NTLMSSP_OID
    assert first.response_token.startswith(b"NTLMSSP\x00\x02\x00\x00\x00")
    final = unpack_token(tokens[1])
    assert final.neg_state == S.ACCEPT_COMPLETED and final.mech_list_mic is not None
    assert acc.complete and acc.result == "ok" and acc.ntlm.result == "ok"
    assert acc.mech_list_mic_verified and acc.mech_list_mic_sent
    # the client verifies our mechListMIC while processing the final token
    assert c.step(tokens[1]) is None
    assert c.complete
    assert acc.session_key == c.session_key and len(acc.session_key) == 16


def test_client_rejects_tampered_server_mech_list_mic():
    acc = make_acceptor()
    c = negotiate_client()
    tokens = run(acc, c)
    final = S.parse_token(tokens[1])
    bad_mic = bytearray(final.mech_list_mic)
    bad_mic[5] ^= 0xFF
    forged = S.encode_neg_token_resp(S.ACCEPT_COMPLETED, mech_list_mic=bytes(bad_mic))
    with pytest.raises(spnego.exceptions.BadMICError):
        c.step(forged)


def test_wrong_password_gives_reject():
    acc = make_acceptor()
    tokens = run(acc, negotiate_client(password="wrong"))
    assert acc.complete and acc.result == "bad_password" and acc.session_key is None
    final = S.parse_token(tokens[-1])
    assert final.neg_state == S.REJECT and final.mech_list_mic is None


def test_unknown_user_mapped_to_guest_gets_accept_completed():
    acc = SpnegoAcceptor(NtlmAcceptor(lambda u: USERS.get(u.lower()), "KSMBD", "WORKGROUP"),
                         accept_results={"ok", "anonymous", "unknown_user"})
    c = negotiate_client(user="guestuser")
    tokens = run(acc, c)
    final = S.parse_token(tokens[-1])
    assert acc.result == "unknown_user" and acc.session_key is None
    assert final.neg_state == S.ACCEPT_COMPLETED and final.mech_list_mic is None


def test_unknown_user_gives_reject():
    acc = make_acceptor()
    tokens = run(acc, negotiate_client(user="nobody"))
    assert acc.result == "unknown_user"
    assert S.parse_token(tokens[-1]).neg_state == S.REJECT


def test_bad_client_mech_list_mic_is_refused():
    acc = make_acceptor()
    c = negotiate_client()
    tok = c.step()
    out = acc.step(tok)
    final_in = unpack_token(c.step(out))
    assert final_in.mech_list_mic is not None
    mic = bytearray(final_in.mech_list_mic)
    mic[4] ^= 0x01
    forged = PyResp(response_token=final_in.response_token, mech_list_mic=bytes(mic)).pack()
    final = S.parse_token(acc.step(forged))
    assert final.neg_state == S.REJECT
    assert acc.ntlm.result == "ok" and acc.result == "refused" and acc.session_key is None


def test_raw_ntlmssp_through_spnego_acceptor():
    acc = make_acceptor()
    c = spnego.client("alice", "secret", hostname="srv", protocol="ntlm")
    chal = acc.step(c.step())
    assert chal.startswith(b"NTLMSSP\x00")
    assert acc.step(c.step(chal)) == b""
    assert acc.complete and acc.raw and acc.result == "ok"
    assert acc.session_key == c.session_key


# ---------------------------------------------------------------------------
# Mechanism selection
# ---------------------------------------------------------------------------


def _finish_with_ntlm(acc: SpnegoAcceptor, mech_types: list[str], send_mic: bool = True):
    """Continue after request-mic with pyspnego's raw NTLM, wrapping its
    tokens in NegTokenResp (pyspnego's packer) and adding the mechListMIC."""
    c = spnego.client("alice", "secret", hostname="srv", protocol="ntlm")
    out = S.parse_token(acc.step(PyResp(response_token=c.step()).pack()))
    assert out.neg_state == S.ACCEPT_INCOMPLETE and out.supported_mech is None
    auth = c.step(out.response_token)
    mech_list_der = S.encode_mech_type_list(mech_types)
    mic = c.sign(mech_list_der) if send_mic else None
    final = S.parse_token(acc.step(PyResp(response_token=auth, mech_list_mic=mic).pack()))
    return c, final, mech_list_der


def test_optimistic_kerberos_then_ntlm():
    acc = make_acceptor()
    mechs = [MS_KRB5_OID, KRB5_OID, S.NTLMSSP_OID]
    first = S.parse_token(acc.step(PyInit(mech_types=mechs, mech_token=b"\x6e\x00fake-krb5-ap-req").pack()))
    assert first.neg_state == S.REQUEST_MIC
    assert first.supported_mech == S.NTLMSSP_OID and first.response_token is None
    assert acc.client_mech_types == mechs
    c, final, der = _finish_with_ntlm(acc, mechs)
    assert final.neg_state == S.ACCEPT_COMPLETED and acc.result == "ok"
    assert acc.mech_list_mic_verified
    c.verify(der, final.mech_list_mic)  # raises if our mechListMIC were wrong
    assert acc.session_key == c.session_key


def test_ntlm_not_first_client_without_mic_still_accepted():
    acc = make_acceptor()
    mechs = [KRB5_OID, S.NTLMSSP_OID]
    acc.step(PyInit(mech_types=mechs).pack())
    _, final, _ = _finish_with_ntlm(acc, mechs, send_mic=False)
    assert final.neg_state == S.ACCEPT_COMPLETED and final.mech_list_mic is None
    assert acc.result == "ok" and not acc.mech_list_mic_verified


def test_only_kerberos_offered_gets_ntlm_request_mic():
    acc = make_acceptor()
    first = S.parse_token(acc.step(PyInit(mech_types=[KRB5_OID], mech_token=b"krb").pack()))
    assert first.neg_state == S.REQUEST_MIC and first.supported_mech == S.NTLMSSP_OID
    assert first.response_token is None


def test_ntlm_first_without_optimistic_token():
    acc = make_acceptor()
    first = S.parse_token(acc.step(PyInit(mech_types=[S.NTLMSSP_OID]).pack()))
    assert first.neg_state == S.ACCEPT_INCOMPLETE and first.supported_mech == S.NTLMSSP_OID
    assert first.response_token is None
    _, final, _ = _finish_with_ntlm(acc, [S.NTLMSSP_OID])
    assert final.neg_state == S.ACCEPT_COMPLETED and acc.result == "ok"


# ---------------------------------------------------------------------------
# impacket as a second SPNEGO/NTLM peer (what its SMB client sends)
# ---------------------------------------------------------------------------


def test_impacket_spnego_handshake():
    acc = make_acceptor()
    blob = SPNEGO_NegTokenInit()
    blob["MechTypes"] = [TypesMech["NTLMSSP - Microsoft NTLM Security Support Provider"]]
    type1 = imp_ntlm.getNTLMSSPType1("WS01", "", signingRequired=True)
    blob["MechToken"] = type1.getData()
    resp = SPNEGO_NegTokenResp(acc.step(blob.getData()))
    type3, exported = imp_ntlm.getNTLMSSPType3(type1, resp["ResponseToken"], "alice", "secret", "WORKGROUP")
    resp2 = SPNEGO_NegTokenResp()
    resp2["ResponseToken"] = type3.getData()
    final = S.parse_token(acc.step(resp2.getData()))
    assert final.neg_state == S.ACCEPT_COMPLETED
    assert acc.result == "ok" and acc.session_key == exported


def test_anonymous_via_spnego():
    acc = make_acceptor()
    blob = SPNEGO_NegTokenInit()
    blob["MechTypes"] = [TypesMech["NTLMSSP - Microsoft NTLM Security Support Provider"]]
    type1 = imp_ntlm.getNTLMSSPType1("", "", signingRequired=False)
    blob["MechToken"] = type1.getData()
    resp = SPNEGO_NegTokenResp(acc.step(blob.getData()))
    type3, _ = imp_ntlm.getNTLMSSPType3(type1, resp["ResponseToken"], "", "", "")
    final = S.parse_token(acc.step(PyResp(response_token=type3.getData()).pack()))
    assert final.neg_state == S.ACCEPT_COMPLETED and final.mech_list_mic is None
    assert acc.result == "anonymous" and acc.session_key is None


# ---------------------------------------------------------------------------
# DER codec
# ---------------------------------------------------------------------------


def test_der_roundtrip_long_lengths():
    for size in (0, 1, 127, 128, 255, 256, 65535, 70000):
        token = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
        enc = S.encode_neg_token_resp(S.ACCEPT_INCOMPLETE, S.NTLMSSP_OID, token, b"m" * 16)
        dec = S.parse_token(enc)
        assert (dec.neg_state, dec.supported_mech, dec.response_token, dec.mech_list_mic) == (
            S.ACCEPT_INCOMPLETE, S.NTLMSSP_OID, token, b"m" * 16)
        theirs = unpack_token(enc)
        assert theirs.response_token == token
    init = S.encode_neg_token_init([MS_KRB5_OID, S.NTLMSSP_OID], b"t" * 300, b"mic")
    theirs = unpack_token(init)
    assert theirs.mech_types == [MS_KRB5_OID, S.NTLMSSP_OID]
    assert theirs.mech_token == b"t" * 300 and theirs.mech_list_mic == b"mic"
    ours = S.parse_token(init)
    assert ours.mech_types_der == S.encode_mech_type_list([MS_KRB5_OID, S.NTLMSSP_OID])


def test_parse_pyspnego_packed_tokens():
    init = S.parse_token(PyInit(mech_types=[KRB5_OID, S.NTLMSSP_OID], mech_token=b"abc",
                                mech_list_mic=b"xyz").pack())
    assert init.mech_types == [KRB5_OID, S.NTLMSSP_OID]
    assert init.mech_token == b"abc" and init.mech_list_mic == b"xyz"
    resp = S.parse_token(PyResp(neg_state=S.REQUEST_MIC, supported_mech=S.NTLMSSP_OID,
                                response_token=b"r", mech_list_mic=b"m").pack())
    assert (resp.neg_state, resp.supported_mech, resp.response_token, resp.mech_list_mic) == (
        S.REQUEST_MIC, S.NTLMSSP_OID, b"r", b"m")


@pytest.mark.parametrize("token", [
    b"",
    b"\x60",
    b"\x60\x80\x00\x00",                     # indefinite length
    b"\x60\x85\x00\x00\x00\x00\x01",         # length too large
    b"\x60\x05\x06\x03\x2a\x03\x04",         # missing inner token
    b"\x60\x0a\x06\x06\x2a\x86\x48\x86\xf7\x12\xa0\x00",  # not the SPNEGO OID
    b"\x30\x00",                             # not a SPNEGO choice
    b"\xa0\x02\x30\x00",                     # NegTokenInit without mechTypes
    b"\xa1\x05\x30\x03\xa0\x01\x0a",         # truncated negState
    b"\xa1\x06\x30\x04\xa0\x02\x0a\x00",     # empty negState
    b"\x9f\x01\x00",                         # multi-byte tag
])
def test_malformed_tokens(token):
    with pytest.raises(SpnegoError):
        make_acceptor().step(token)


def test_sequence_errors():
    acc = make_acceptor()
    with pytest.raises(SpnegoError):  # NegTokenResp before NegTokenInit
        acc.step(S.encode_neg_token_resp(S.ACCEPT_INCOMPLETE, response_token=b"NTLMSSP\x00"))
    acc = make_acceptor()
    acc.step(PyInit(mech_types=[S.NTLMSSP_OID]).pack())
    with pytest.raises(SpnegoError):  # second NegTokenInit
        acc.step(PyInit(mech_types=[S.NTLMSSP_OID]).pack())
    with pytest.raises(SpnegoError):  # raw NTLM inside SPNEGO
        acc.step(b"NTLMSSP\x00\x01\x00\x00\x00" + b"\x00" * 8)
    with pytest.raises(SpnegoError):  # client reject
        acc.step(S.encode_neg_token_resp(S.REJECT))
    acc = make_acceptor()
    acc.step(PyInit(mech_types=[S.NTLMSSP_OID]).pack())
    with pytest.raises(SpnegoError):  # no responseToken
        acc.step(S.encode_neg_token_resp(S.ACCEPT_INCOMPLETE))
    acc = make_acceptor()
    with pytest.raises(SpnegoError):  # garbage NTLM inside mechToken -> wrapped NtlmError
        acc.step(PyInit(mech_types=[S.NTLMSSP_OID], mech_token=b"garbage").pack())
    acc = make_acceptor()
    run(acc, negotiate_client())
    with pytest.raises(SpnegoError):  # after completion
        acc.step(S.encode_neg_token_resp(S.ACCEPT_INCOMPLETE, response_token=b"x"))
    assert issubclass(SpnegoError, ValueError)


def test_fuzz_only_spnego_error():
    rng = random.Random(4178)
    c = negotiate_client()
    a = make_acceptor()
    t1 = c.step()
    t2 = c.step(a.step(t1))
    seeds = [negotiate_hint(), t1, t2,
             PyInit(mech_types=[KRB5_OID, S.NTLMSSP_OID], mech_token=b"k" * 200).pack(),
             S.encode_neg_token_resp(S.ACCEPT_INCOMPLETE, S.NTLMSSP_OID, b"NTLMSSP\x00" + b"\x00" * 300)]
    saw_error = False
    for i in range(3000):
        base = bytearray(rng.choice(seeds))
        mode = i % 3
        if mode == 0:
            data = bytes(base[: rng.randrange(len(base) + 1)])
        elif mode == 1:
            for _ in range(rng.randint(1, 6)):
                base[rng.randrange(len(base))] = rng.randrange(256)
            data = bytes(base)
        else:
            data = bytes([rng.choice([0x60, 0xA0, 0xA1, 0x30])]) + bytes(
                rng.getrandbits(8) for _ in range(rng.randrange(60)))
        acc = make_acceptor()
        try:
            acc.step(data)
            if data[:1] == b"\xa1":
                continue
            # feed a second, also mutated, token
            acc.step(bytes(base[: rng.randrange(len(base) + 1)]))
        except SpnegoError:
            saw_error = True
    assert saw_error

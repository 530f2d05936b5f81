"""Minimal SPNEGO (RFC 4178 / MS-SPNG) acceptor for SMB, NTLM only.

Contains a small, bounds-checked DER encoder/decoder for exactly the ASN.1
SMB needs (RFC 2743 3.1 InitialContextToken, RFC 4178 4.2 NegTokenInit /
NegTokenResp, MS-SPNG 2.2.1 NegTokenInit2) and a state machine that relays
the NTLM messages to :class:`~ksmbd_embedded.auth.ntlm.NtlmAcceptor`.

Mechanism selection (kept simple on purpose):

* NTLMSSP is the only mechanism.  If it is the client's first (preferred)
  mechanism, the optimistic mechToken (an NTLM NEGOTIATE_MESSAGE) is answered
  at once with ``accept-incomplete`` + supportedMech NTLMSSP + CHALLENGE.
* If NTLMSSP is offered but not first (e.g. an optimistic Kerberos token),
  the optimistic token is ignored and we answer ``request-mic`` +
  supportedMech NTLMSSP with no responseToken: the client restarts with an
  NTLM NEGOTIATE in its next NegTokenResp, and RFC 4178 5 requires the
  mechListMIC exchange (which we perform if the client sends its MIC; a
  client that does not is still accepted, since we offer no other mechanism
  to be downgraded from).
* If NTLMSSP is not offered at all, we answer the same way (the lead's
  decision; strictly RFC 4178 would say ``reject``).  A conforming client
  will then abort because it did not offer NTLMSSP.

mechListMIC: when the client's final NegTokenResp carries a mechListMIC and
NTLM produced a signing key (NTLMv2 with extended session security), we
verify it as an NTLM signature (client-to-server keys, seq 0) over the DER
MechTypeList exactly as the client sent it, and put our own signature
(server-to-client keys, seq 0) in the ``accept-completed`` token.  A bad
client mechListMIC gives ``reject`` and ``result == "refused"``.  We never
send a mechListMIC the client did not send: in SMB the server's final token
ends the exchange, so the client could not answer with its own.

Raw NTLMSSP tokens (no SPNEGO wrapping) are passed straight to NTLM and
answered raw.

Malformed input raises :class:`SpnegoError` (a ``ValueError``); NtlmError
from the inner mechanism is re-raised as SpnegoError.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .ntlm import NTLMSSP_SIGNATURE, NtlmAcceptor, NtlmError

__all__ = [
    "SpnegoError",
    "SpnegoAcceptor",
    "negotiate_hint",
    "NegTokenInit",
    "NegTokenResp",
    "parse_token",
    "encode_neg_token_resp",
    "encode_neg_token_init",
    "encode_mech_type_list",
    "SPNEGO_OID",
    "NTLMSSP_OID",
    "HINT_NAME",
    "ACCEPT_COMPLETED",
    "ACCEPT_INCOMPLETE",
    "REJECT",
    "REQUEST_MIC",
]


class SpnegoError(ValueError):
    """Malformed or out-of-sequence SPNEGO token."""


SPNEGO_OID = "1.3.6.1.5.5.2"
NTLMSSP_OID = "1.3.6.1.4.1.311.2.2.10"
HINT_NAME = b"not_defined_in_RFC4178@please_ignore"

# RFC 4178 negState
ACCEPT_COMPLETED = 0
ACCEPT_INCOMPLETE = 1
REJECT = 2
REQUEST_MIC = 3

# DER tags
_T_BIT_STRING = 0x03
_T_OCTET_STRING = 0x04
_T_OID = 0x06
_T_ENUMERATED = 0x0A
_T_GENERAL_STRING = 0x1B
_T_SEQUENCE = 0x30
_T_APPLICATION_0 = 0x60


def _ctx(n: int) -> int:
    """Constructed, context-specific tag [n]."""
    return 0xA0 | n


# ---------------------------------------------------------------------------
# DER encoding
# ---------------------------------------------------------------------------


def _enc_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _enc_len(len(content)) + content


def _enc_oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] >= 40):
        raise ValueError(f"bad OID {dotted!r}")
    values = [arcs[0] * 40 + arcs[1]] + arcs[2:]
    out = bytearray()
    for v in values:
        chunk = [v & 0x7F]
        v >>= 7
        while v:
            chunk.append(0x80 | (v & 0x7F))
            v >>= 7
        out += bytes(reversed(chunk))
    return _tlv(_T_OID, bytes(out))


def encode_mech_type_list(oids: list[str]) -> bytes:
    """DER MechTypeList (SEQUENCE OF OID)."""
    return _tlv(_T_SEQUENCE, b"".join(_enc_oid(o) for o in oids))


def encode_neg_token_resp(
    neg_state: int | None = None,
    supported_mech: str | None = None,
    response_token: bytes | None = None,
    mech_list_mic: bytes | None = None,
) -> bytes:
    """NegotiationToken CHOICE negTokenResp ([1] NegTokenResp)."""
    body = b""
    if neg_state is not None:
        body += _tlv(_ctx(0), _tlv(_T_ENUMERATED, bytes([neg_state])))
    if supported_mech is not None:
        body += _tlv(_ctx(1), _enc_oid(supported_mech))
    if response_token is not None:
        body += _tlv(_ctx(2), _tlv(_T_OCTET_STRING, bytes(response_token)))
    if mech_list_mic is not None:
        body += _tlv(_ctx(3), _tlv(_T_OCTET_STRING, bytes(mech_list_mic)))
    return _tlv(_ctx(1), _tlv(_T_SEQUENCE, body))


def encode_neg_token_init(
    mech_types: list[str],
    mech_token: bytes | None = None,
    mech_list_mic: bytes | None = None,
    hint_name: bytes | None = None,
) -> bytes:
    """GSS InitialContextToken carrying a NegTokenInit (or MS-SPNG
    NegTokenInit2 when ``hint_name`` is given)."""
    body = _tlv(_ctx(0), encode_mech_type_list(mech_types))
    if mech_token is not None:
        body += _tlv(_ctx(2), _tlv(_T_OCTET_STRING, bytes(mech_token)))
    if hint_name is not None:
        hints = _tlv(_T_SEQUENCE, _tlv(_ctx(0), _tlv(_T_GENERAL_STRING, hint_name)))
        body += _tlv(_ctx(3), hints)
        if mech_list_mic is not None:
            body += _tlv(_ctx(4), _tlv(_T_OCTET_STRING, bytes(mech_list_mic)))
    elif mech_list_mic is not None:
        body += _tlv(_ctx(3), _tlv(_T_OCTET_STRING, bytes(mech_list_mic)))
    inner = _tlv(_ctx(0), _tlv(_T_SEQUENCE, body))
    return _tlv(_T_APPLICATION_0, _enc_oid(SPNEGO_OID) + inner)


def negotiate_hint() -> bytes:
    """NegTokenInit2 for the SMB2 NEGOTIATE response SecurityBuffer:
    mechTypes [NTLMSSP], negHints.hintName "not_defined_in_RFC4178@please_ignore"."""
    return encode_neg_token_init([NTLMSSP_OID], hint_name=HINT_NAME)


# ---------------------------------------------------------------------------
# DER decoding (bounds-checked)
# ---------------------------------------------------------------------------


def _read_tlv(data: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """Read one TLV in data[pos:end]; returns (tag, content_start, content_end)."""
    if pos >= end:
        raise SpnegoError("truncated DER: missing tag")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise SpnegoError("multi-byte DER tags are not supported")
    pos += 1
    if pos >= end:
        raise SpnegoError("truncated DER: missing length")
    first = data[pos]
    pos += 1
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise SpnegoError("indefinite length is not DER")
    else:
        n = first & 0x7F
        if n > 4:
            raise SpnegoError("DER length too large")
        if pos + n > end:
            raise SpnegoError("truncated DER length")
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    if pos + length > end:
        raise SpnegoError("DER value runs past the end of its container")
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """All TLVs in data[start:end] as (tag, tlv_start, content_start, content_end)."""
    out = []
    pos = start
    while pos < end:
        tag, cs, ce = _read_tlv(data, pos, end)
        out.append((tag, pos, cs, ce))
        pos = ce
    return out


def _expect(data: bytes, start: int, end: int, tag: int, what: str) -> tuple[int, int]:
    """The content range of the single TLV filling data[start:end]."""
    t, cs, ce = _read_tlv(data, start, end)
    if t != tag:
        raise SpnegoError(f"{what}: expected tag 0x{tag:02x}, got 0x{t:02x}")
    if ce != end:
        raise SpnegoError(f"{what}: trailing data")
    return cs, ce


def _dec_oid(content: bytes) -> str:
    if not content:
        raise SpnegoError("empty OID")
    if content[-1] & 0x80:
        raise SpnegoError("truncated OID")
    values = []
    v = 0
    for b in content:
        v = (v << 7) | (b & 0x7F)
        if v.bit_length() > 128:
            raise SpnegoError("OID arc too large")
        if not b & 0x80:
            values.append(v)
            v = 0
    first = values[0]
    if first < 80:
        arcs = [first // 40, first % 40]
    else:
        arcs = [2, first - 80]
    return ".".join(str(a) for a in arcs + values[1:])


@dataclass
class NegTokenInit:
    mech_types: list[str] = field(default_factory=list)
    mech_types_der: bytes = b""  # the MechTypeList exactly as received
    mech_token: bytes | None = None
    mech_list_mic: bytes | None = None
    hint_name: bytes | None = None


@dataclass
class NegTokenResp:
    neg_state: int | None = None
    supported_mech: str | None = None
    response_token: bytes | None = None
    mech_list_mic: bytes | None = None


def _parse_octet_string(data: bytes, cs: int, ce: int, what: str) -> bytes:
    s, e = _expect(data, cs, ce, _T_OCTET_STRING, what)
    return data[s:e]


def _parse_init(data: bytes, start: int, end: int) -> NegTokenInit:
    s, e = _expect(data, start, end, _T_SEQUENCE, "NegTokenInit")
    tok = NegTokenInit()
    seen_mech_types = False
    for tag, _ts, cs, ce in _children(data, s, e):
        if tag == _ctx(0):
            ms, me = _expect(data, cs, ce, _T_SEQUENCE, "mechTypes")
            tok.mech_types_der = data[cs:ce]
            for otag, _ots, ocs, oce in _children(data, ms, me):
                if otag != _T_OID:
                    raise SpnegoError("mechTypes element is not an OID")
                tok.mech_types.append(_dec_oid(data[ocs:oce]))
            seen_mech_types = True
        elif tag == _ctx(1):
            _expect(data, cs, ce, _T_BIT_STRING, "reqFlags")
        elif tag == _ctx(2):
            tok.mech_token = _parse_octet_string(data, cs, ce, "mechToken")
        elif tag == _ctx(3):
            # RFC 4178: mechListMIC OCTET STRING; MS-SPNG NegTokenInit2: negHints.
            itag, ics, ice = _read_tlv(data, cs, ce)
            if itag == _T_OCTET_STRING:
                tok.mech_list_mic = _parse_octet_string(data, cs, ce, "mechListMIC")
            elif itag == _T_SEQUENCE:
                if ice != ce:
                    raise SpnegoError("negHints: trailing data")
                for htag, _hts, hcs, hce in _children(data, ics, ice):
                    if htag == _ctx(0):
                        gs, ge = _expect(data, hcs, hce, _T_GENERAL_STRING, "hintName")
                        tok.hint_name = data[gs:ge]
            else:
                raise SpnegoError("unexpected element [3] in NegTokenInit")
        elif tag == _ctx(4):
            tok.mech_list_mic = _parse_octet_string(data, cs, ce, "mechListMIC")
        else:
            raise SpnegoError(f"unexpected tag 0x{tag:02x} in NegTokenInit")
    if not seen_mech_types:
        raise SpnegoError("NegTokenInit without mechTypes")
    return tok


def _parse_resp(data: bytes, start: int, end: int) -> NegTokenResp:
    s, e = _expect(data, start, end, _T_SEQUENCE, "NegTokenResp")
    tok = NegTokenResp()
    for tag, _ts, cs, ce in _children(data, s, e):
        if tag == _ctx(0):
            es, ee = _expect(data, cs, ce, _T_ENUMERATED, "negState")
            if ee - es != 1:
                raise SpnegoError("negState must be one byte")
            tok.neg_state = data[es]
        elif tag == _ctx(1):
            os_, oe = _expect(data, cs, ce, _T_OID, "supportedMech")
            tok.supported_mech = _dec_oid(data[os_:oe])
        elif tag == _ctx(2):
            tok.response_token = _parse_octet_string(data, cs, ce, "responseToken")
        elif tag == _ctx(3):
            tok.mech_list_mic = _parse_octet_string(data, cs, ce, "mechListMIC")
        else:
            raise SpnegoError(f"unexpected tag 0x{tag:02x} in NegTokenResp")
    return tok


def parse_token(token: bytes) -> NegTokenInit | NegTokenResp:
    """Decode a SPNEGO token: a GSS InitialContextToken (0x60, SPNEGO OID)
    wrapping negTokenInit, or a bare [0] NegTokenInit / [1] NegTokenResp.
    Bytes after the outermost element are ignored."""
    data = bytes(token)
    if not data:
        raise SpnegoError("empty token")
    tag, cs, ce = _read_tlv(data, 0, len(data))
    if tag == _T_APPLICATION_0:
        otag, ocs, oce = _read_tlv(data, cs, ce)
        if otag != _T_OID:
            raise SpnegoError("InitialContextToken without thisMech OID")
        mech = _dec_oid(data[ocs:oce])
        if mech != SPNEGO_OID:
            raise SpnegoError(f"InitialContextToken for mechanism {mech}, not SPNEGO")
        tag, cs, ce = _read_tlv(data, oce, ce)
    if tag == _ctx(0):
        return _parse_init(data, cs, ce)
    if tag == _ctx(1):
        return _parse_resp(data, cs, ce)
    raise SpnegoError(f"not a SPNEGO token (tag 0x{tag:02x})")


# ---------------------------------------------------------------------------
# Acceptor
# ---------------------------------------------------------------------------


class SpnegoAcceptor:
    """SPNEGO acceptor wrapping one :class:`NtlmAcceptor`.

    ``step(token)`` returns the token to put in the SESSION_SETUP response.
    ``complete`` becomes True with the final token; ``result`` is then the
    NTLM result (``"refused"`` if the client's mechListMIC did not verify)
    and ``reason`` says why in words; ``session_key`` is the
    ExportedSessionKey for ``"ok"``.

    The final token is ``accept-completed`` for results in ``accept_results``
    (default "ok" and "anonymous") and ``reject`` otherwise.
    """

    def __init__(
        self,
        ntlm: NtlmAcceptor,
        *,
        accept_results: frozenset[str] | set[str] = frozenset({"ok", "anonymous"}),
    ) -> None:
        self.ntlm = ntlm
        # NTLM results answered with accept-completed instead of reject; add
        # "unknown_user" / "bad_password" when the server maps them to guest.
        self.accept_results = frozenset(accept_results)
        self.complete = False
        self.raw = False  # client used bare NTLMSSP tokens
        self.client_mech_types: list[str] = []
        self.mech_list_mic_verified = False  # client's MIC checked OK
        self.mech_list_mic_sent = False
        self._state = "initial"  # -> "negotiating" | "raw"
        self._mech_types_der: bytes | None = None
        self._mic_failed = False

    @property
    def result(self) -> str | None:
        if self._mic_failed:
            return "refused"
        return self.ntlm.result

    @property
    def reason(self) -> str:
        """Why the logon was refused (or mapped), in words fit for the log; see
        NtlmAcceptor.reason."""
        if self._mic_failed:
            return "SPNEGO mechListMIC mismatch"
        return self.ntlm.reason

    @property
    def session_key(self) -> bytes | None:
        return self.ntlm.session_key if self.result == "ok" else None

    def step(self, token: bytes) -> bytes:
        if self.complete:
            raise SpnegoError("SPNEGO context already complete")
        try:
            return self._step(bytes(token))
        except NtlmError as e:
            raise SpnegoError(f"NTLM: {e}") from e

    def _step(self, token: bytes) -> bytes:
        if token.startswith(NTLMSSP_SIGNATURE):
            if self._state not in ("initial", "raw"):
                raise SpnegoError("raw NTLMSSP token inside a SPNEGO exchange")
            self._state = "raw"
            self.raw = True
            out = self.ntlm.step(token)
            self.complete = self.ntlm.complete
            return out or b""
        if self._state == "raw":
            raise SpnegoError("SPNEGO token inside a raw NTLMSSP exchange")

        tok = parse_token(token)
        if isinstance(tok, NegTokenInit):
            if self._state != "initial":
                raise SpnegoError("unexpected NegTokenInit")
            return self._on_init(tok)
        if self._state != "negotiating":
            raise SpnegoError("NegTokenResp before NegTokenInit")
        return self._on_resp(tok)

    def _on_init(self, tok: NegTokenInit) -> bytes:
        self._state = "negotiating"
        self.client_mech_types = list(tok.mech_types)
        self._mech_types_der = tok.mech_types_der
        ntlm_first = bool(tok.mech_types) and tok.mech_types[0] == NTLMSSP_OID
        if ntlm_first and tok.mech_token:
            challenge = self.ntlm.step(tok.mech_token)
            return encode_neg_token_resp(ACCEPT_INCOMPLETE, NTLMSSP_OID, challenge)
        if ntlm_first:
            # NTLM preferred but no optimistic token: ask for the NEGOTIATE.
            return encode_neg_token_resp(ACCEPT_INCOMPLETE, NTLMSSP_OID)
        # NTLM not preferred (or not offered): drop the optimistic token,
        # select NTLM and request the mechListMIC exchange (RFC 4178 5).
        return encode_neg_token_resp(REQUEST_MIC, NTLMSSP_OID)

    def _on_resp(self, tok: NegTokenResp) -> bytes:
        if tok.neg_state == REJECT:
            raise SpnegoError("client rejected the negotiation")
        in_token = tok.response_token
        if not in_token:
            raise SpnegoError("NegTokenResp without responseToken")
        mic = tok.mech_list_mic
        if mic is not None and mic == in_token:
            # Some old SPNEGO initiators repeat the responseToken as the
            # mechListMIC; treat it as absent.
            mic = None

        out = self.ntlm.step(in_token)
        if not self.ntlm.complete:
            return encode_neg_token_resp(ACCEPT_INCOMPLETE, response_token=out)

        self.complete = True
        if self.ntlm.result not in self.accept_results:
            return encode_neg_token_resp(REJECT)

        out_mic = None
        if mic is not None and self.ntlm.can_sign and self._mech_types_der is not None:
            if not self.ntlm.verify(self._mech_types_der, mic, 0):
                self._mic_failed = True
                return encode_neg_token_resp(REJECT)
            self.mech_list_mic_verified = True
            out_mic = self.ntlm.sign(self._mech_types_der, 0)
            self.mech_list_mic_sent = True
        return encode_neg_token_resp(ACCEPT_COMPLETED, mech_list_mic=out_mic)

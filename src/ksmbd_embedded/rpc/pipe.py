"""A named pipe on IPC$ that speaks connection-oriented DCE/RPC to one interface.

The contract the SMB2 handlers use (read_write.py, ioctl.py):
  * ``write(data) -> int``: bytes taken; complete PDUs are processed at once and their
    responses queued (one queued message per response fragment).
  * ``read(length) -> (status, bytes)``: the next queued message; when it is longer than
    `length`, the first `length` bytes with STATUS_BUFFER_OVERFLOW and the rest stays queued
    for the next read (message-mode pipe, MS-FSCC / MS-SMB2 3.3.5.12). Nothing queued:
    STATUS_PIPE_EMPTY (a Windows pipe in blocking mode would wait; no client of ours reads
    before it has written a request).
  * ``transceive(data, max_out) -> (status, bytes)``: FSCTL_PIPE_TRANSCEIVE, a write and a
    read; STATUS_PIPE_BUSY when unread data is still queued (MS-FSCC FSCTL_PIPE_TRANSCEIVE).

Association state (C706 12.5 / MS-RPCE 3.3.1.5): the presentation contexts accepted by bind
and alter_context, the negotiated fragment sizes, the association group, and the request
being reassembled from fragments.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from ..status import STATUS_PIPE_BUSY, STATUS_PIPE_EMPTY, STATUS_BUFFER_OVERFLOW, STATUS_SUCCESS
from . import pdu as p
from .ndr import NdrError

log = logging.getLogger("ksmbd.rpc")


MAX_INPUT = 1 << 20  # buffered, unprocessed input per pipe
MAX_REQUEST_STUB = 256 * 1024  # a reassembled request (ours are tiny)
MAX_OUTPUT = 4 << 20  # queued responses the client has not read


class CallContext:
    """What an operation sees: the server (config) and the calling session."""

    __slots__ = ("server", "session")

    def __init__(self, server: Any, session: Any) -> None:
        self.server = server
        self.session = session


_assoc_counter = [0x12340]


def _new_assoc_group() -> int:
    _assoc_counter[0] += 1
    return _assoc_counter[0]


class RpcPipe:
    __slots__ = ("name", "interface", "ctx", "_in", "_out", "_out_bytes", "_contexts",
                 "max_xmit", "max_recv", "assoc_group", "_call")

    def __init__(self, name: str, server: Any, session: Any, interface: Any = None) -> None:
        from . import interface_for
        self.name = name
        self.interface = interface if interface is not None else interface_for(name)
        if self.interface is None:
            raise ValueError(f"no RPC interface behind pipe {name!r}")
        self.ctx = CallContext(server, session)
        self._in = bytearray()
        self._out: deque[bytes] = deque()
        self._out_bytes = 0
        self._contexts: set[int] = set()
        self.max_xmit = p.DEFAULT_MAX_FRAG  # what we send at most per fragment
        self.max_recv = p.DEFAULT_MAX_FRAG
        self.assoc_group = 0
        # the request being reassembled: (call_id, context_id, opnum, stub so far)
        self._call: tuple[int, int, int, bytearray] | None = None

    # -- the pipe contract ------------------------------------------------------------------
    def write(self, data) -> int:
        n = len(data)
        if len(self._in) + n > MAX_INPUT:
            log.info("pipe %s: input overflow, association reset", self.name)
            self._reset()
            return n
        self._in += data
        self._process()
        return n

    def read(self, length: int) -> tuple[int, bytes]:
        if not self._out:
            return STATUS_PIPE_EMPTY, b""
        msg = self._out[0]
        if len(msg) <= length:
            self._out.popleft()
            self._out_bytes -= len(msg)
            return STATUS_SUCCESS, msg
        self._out[0] = msg[length:]
        self._out_bytes -= length
        return STATUS_BUFFER_OVERFLOW, msg[:length]

    def transceive(self, data, max_out: int) -> tuple[int, bytes]:
        if self._out:
            return STATUS_PIPE_BUSY, b""
        self.write(data)
        return self.read(max_out)

    def pending(self) -> int:
        """Bytes queued for the client (FilePipeLocalInformation.ReadDataAvailable)."""
        return self._out_bytes

    # -- PDU processing ---------------------------------------------------------------------
    def _reset(self) -> None:
        self._in.clear()
        self._contexts.clear()
        self._call = None

    def _queue(self, message: bytes) -> None:
        if self._out_bytes + len(message) > MAX_OUTPUT:
            log.info("pipe %s: client does not read its responses; dropped", self.name)
            return
        self._out.append(message)
        self._out_bytes += len(message)

    def _process(self) -> None:
        buf = self._in
        while len(buf) >= p.HEADER_SIZE:
            frag_len = p.frag_length_of(buf)
            if frag_len < p.HEADER_SIZE:
                log.info("pipe %s: bad frag_length %d, association reset", self.name, frag_len)
                self._reset()
                return
            if len(buf) < frag_len:
                return
            data = bytes(buf[:frag_len])
            del buf[:frag_len]
            try:
                self._pdu(data)
            except p.PduError as exc:
                log.info("pipe %s: malformed PDU (%s), association reset", self.name, exc)
                self._reset()
                return

    def _pdu(self, data: bytes) -> None:
        hdr = p.parse_header(data)
        if not hdr.version_ok or not hdr.little_endian:
            # Only NDR little-endian data representation (and RPC version 5) is served.
            if hdr.ptype in (p.BIND, p.ALTER_CONTEXT):
                self._queue(p.bind_nak(hdr.call_id, p.NAK_PROTOCOL_VERSION_NOT_SUPPORTED
                                       if not hdr.version_ok else p.NAK_REASON_NOT_SPECIFIED))
            return
        ptype = hdr.ptype
        if ptype == p.REQUEST:
            self._request(data, hdr)
        elif ptype in (p.BIND, p.ALTER_CONTEXT):
            self._bind(data, hdr)
        elif ptype == p.ORPHANED or ptype == p.CO_CANCEL:
            if self._call is not None and self._call[0] == hdr.call_id:
                self._call = None
        # auth3, shutdown and anything a client should not send are ignored

    def _bind(self, data: bytes, hdr: p.Header) -> None:
        is_bind = hdr.ptype == p.BIND
        if hdr.auth_length:
            # No authenticated RPC on these pipes: the SMB session already authenticated.
            if is_bind:
                self._queue(p.bind_nak(hdr.call_id, p.NAK_AUTHENTICATION_TYPE_NOT_RECOGNIZED))
            else:
                self._queue(p.fault(hdr.call_id, 0, p.NCA_S_PROTO_ERROR))
            return
        bind = p.parse_bind(data, hdr)
        if is_bind:
            self._contexts.clear()
            self._call = None
            # max_recv_frag is what the client can receive, so what we transmit at most
            self.max_xmit = max(p.RESPONSE_HEADER_SIZE + 8,
                                min(bind.max_recv_frag, p.DEFAULT_MAX_FRAG))
            self.max_recv = max(p.MIN_FRAG, min(bind.max_xmit_frag, p.DEFAULT_MAX_FRAG))
            self.assoc_group = bind.assoc_group_id or _new_assoc_group()
        iface = self.interface
        results = []
        for elem in bind.contexts:
            results.append(self._negotiate(elem, iface))
        if log.isEnabledFor(logging.DEBUG):
            log.debug("pipe %s: %s call %d, results %s, frag %d/%d", self.name,
                      "bind" if is_bind else "alter_context", hdr.call_id,
                      [r[:2] for r in results], self.max_xmit, self.max_recv)
        if is_bind:
            self._queue(p.bind_ack(p.BIND_ACK, hdr.call_id, self.max_xmit, self.max_recv,
                                   self.assoc_group, iface.SEC_ADDR, results))
        else:
            self._queue(p.bind_ack(p.ALTER_CONTEXT_RESP, hdr.call_id, self.max_xmit,
                                   self.max_recv, self.assoc_group, "", results))

    def _negotiate(self, elem: p.ContextElem, iface) -> tuple[int, int, bytes]:
        """One presentation context: (result, reason, transfer syntax)."""
        syntaxes = elem.transfer_syntaxes
        if any(uid[:8] == p.BTFN_PREFIX for uid, _ in syntaxes):
            # MS-RPCE 3.3.1.5.3: acknowledge feature negotiation; the reason field carries
            # the features we support of those offered: none.
            return p.NEGOTIATE_ACK, 0, p.NULL_SYNTAX
        if elem.abstract_uuid != iface.UUID or elem.abstract_version[0] != iface.VERSION[0]:
            return p.PROVIDER_REJECTION, p.ABSTRACT_SYNTAX_NOT_SUPPORTED, p.NULL_SYNTAX
        for uid, version in syntaxes:
            if uid == p.NDR20_UUID and version == p.NDR20_VERSION:
                self._contexts.add(elem.context_id)
                return p.ACCEPTANCE, 0, uid + version.to_bytes(4, "little")
        return p.PROVIDER_REJECTION, p.PROPOSED_TRANSFER_SYNTAXES_NOT_SUPPORTED, p.NULL_SYNTAX

    def _request(self, data: bytes, hdr: p.Header) -> None:
        req = p.parse_request(data, hdr)
        call_id = hdr.call_id
        if hdr.flags & p.PFC_FIRST_FRAG:
            self._call = (call_id, req.context_id, req.opnum, bytearray(req.stub))
        elif self._call is None or self._call[0] != call_id:
            self._queue(p.fault(call_id, req.context_id, p.NCA_S_PROTO_ERROR))
            return
        else:
            stub = self._call[3]
            if len(stub) + len(req.stub) > MAX_REQUEST_STUB:
                self._call = None
                self._queue(p.fault(call_id, req.context_id, p.NCA_S_FAULT_REMOTE_NO_MEMORY))
                return
            stub += req.stub
        if not hdr.flags & p.PFC_LAST_FRAG:
            if len(self._call[3]) > MAX_REQUEST_STUB:
                self._call = None
                self._queue(p.fault(call_id, req.context_id, p.NCA_S_FAULT_REMOTE_NO_MEMORY))
            return
        call_id, ctx_id, opnum, stub = self._call
        self._call = None
        if ctx_id not in self._contexts:
            self._queue(p.fault(call_id, ctx_id, p.NCA_S_UNKNOWN_IF))
            return
        try:
            out = self.interface.dispatch(opnum, bytes(stub), self.ctx)
        except p.RpcFault as exc:
            self._queue(p.fault(call_id, ctx_id, exc.status))
            return
        except NdrError as exc:
            log.info("pipe %s: opnum %d: undecodable stub (%s)", self.name, opnum, exc)
            self._queue(p.fault(call_id, ctx_id, p.NCA_S_FAULT_NDR))
            return
        frags = p.response_fragments(call_id, ctx_id, out, self.max_xmit)
        log.debug("pipe %s: call %d opnum %d -> %d stub bytes in %d fragment(s)", self.name,
                  call_id, opnum, len(out), len(frags))
        for frag in frags:
            self._queue(frag)

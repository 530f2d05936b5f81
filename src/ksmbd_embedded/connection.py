"""One client connection: frames in, framed responses out (MS-SMB2 3.3.5.2). No sockets here.

Theory of operation
-------------------
The event loop hands `receive()` one complete transport frame (the bytes after the 4-byte
Direct TCP length). A frame is an SMB2 message (one request or a compound chain), an SMB2
TRANSFORM_HEADER around one (decrypted with the session's key first), or an SMB1 NEGOTIATE
(answered with an SMB2 NEGOTIATE response). Every check that applies to all commands runs here,
once, from the command table in `dispatch.py`: MessageId within the credit window, structure
size, session, signature, encryption policy, tree. A handler starts from a valid request and
returns (status, body) or raises `SmbError(status)`. Responses are packed into one buffer, each
padded to 8 bytes inside a compound, signed one by one, encrypted whole when the request was,
framed and put on `outbox`, which the loop sends. A frame that cannot be trusted (bad magic,
bad lengths, MessageId outside the window, undecryptable) closes this one connection:
`closing` is set and the loop disconnects; nothing raises out of `receive()`.
"""

from __future__ import annotations

import logging
import struct
from typing import TYPE_CHECKING, Any

from . import header as h
from . import io_budget
from .async_work import AsyncWork
from .credits import CreditWindow
from .dispatch import COMMANDS, ERROR_BODY
from .file_range import FileRange
from .request import Request
from .session import VALID
from .status import (
    STATUS_ACCESS_DENIED, STATUS_INTERNAL_ERROR, STATUS_INVALID_PARAMETER,
    STATUS_MORE_PROCESSING_REQUIRED, STATUS_NETWORK_NAME_DELETED, STATUS_NOT_IMPLEMENTED,
    STATUS_PENDING, STATUS_SUCCESS, STATUS_USER_SESSION_DELETED, SmbError, status_name,
)

if TYPE_CHECKING:
    from .server import ServerState
    from .session import Session

log = logging.getLogger("ksmbd.conn")

_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")
_FRAME_LEN = struct.Struct(">I")


class Disconnect(Exception):
    """The client sent something that ends the connection (logged once, then closed)."""


# MS-SMB2 2.2: the requests that carry a FileId (CREATE generates one)
_FILE_ID_COMMANDS = frozenset((
    h.CLOSE, h.FLUSH, h.READ, h.WRITE, h.LOCK, h.IOCTL, h.QUERY_DIRECTORY, h.CHANGE_NOTIFY,
    h.QUERY_INFO, h.SET_INFO, h.OPLOCK_BREAK))


class Chain:
    """State carried between the requests of one compound message (MS-SMB2 3.3.5.2.7).

    `file_error`: the status of a failed CREATE, which every later related request that uses
    its FileId fails with (3.3.5.2.7.2 "SHOULD ... the same error code"; the whole rest of
    the chain, not only the next request, as smbtorture smb2.compound.related4/7/8 expect);
    cleared by a CREATE that succeeds. `has_file_id`: a request since the last
    unrelated one carried or generated a FileId; without one, a related FileId { all ones }
    is STATUS_INVALID_HANDLE (request.py)."""

    __slots__ = ("session", "tree", "open", "file_error", "has_file_id")

    def __init__(self) -> None:
        self.session: Any = None
        self.tree: Any = None
        self.open: Any = None
        self.file_error = STATUS_SUCCESS
        self.has_file_id = False


class Connection:
    """Protocol state of one transport connection (MS-SMB2 3.3.1.7 Per Transport Connection)."""

    __slots__ = (
        "server", "peer", "dialect", "negotiated", "client_guid", "client_capabilities",
        "client_security_mode", "client_dialects", "server_capabilities", "signing_algorithm",
        "cipher_id", "preauth", "max_read", "max_write", "max_trans", "credits", "sessions",
        "outbox", "closing", "close_reason", "created", "bytes_in", "bytes_out",
        "async_ops", "next_async_id", "transport", "suspended",
    )

    def __init__(self, server: ServerState, peer: str, now: float) -> None:
        self.server = server
        self.peer = peer
        self.dialect = 0  # 0: not negotiated; SMB2_WILDCARD after an SMB1 negotiate
        self.negotiated = False
        self.client_guid = b""
        self.client_capabilities = 0
        self.client_security_mode = 0
        self.client_dialects: tuple[int, ...] = ()
        self.server_capabilities = 0
        self.signing_algorithm = 0  # HMAC-SHA256 until 3.0 / the 3.1.1 signing context
        self.cipher_id = 0
        self.preauth: Any = None  # PreauthHash for 3.1.1
        cfg = server.config
        self.max_read = cfg.max_read
        self.max_write = cfg.max_write
        self.max_trans = cfg.max_trans
        self.credits = CreditWindow(cfg.globals.smb2_max_credits)
        self.sessions: dict[int, Session] = {}
        self.outbox: list[Any] = []
        self.closing = False
        self.close_reason = ""
        self.created = now
        self.bytes_in = 0
        self.bytes_out = 0
        self.async_ops: dict[int, AsyncWork] = {}
        self.next_async_id = 1
        self.transport: Any = None  # the loop's socket-side object
        # A compound whose answers filled the output: (frame, offset, chain, enc_session) of
        # the rest, processed by resume() once the loop has sent enough (io_budget.py).
        self.suspended: tuple | None = None

    # -- entry point -------------------------------------------------------------------------

    def receive(self, frame: memoryview) -> None:
        """Process one transport frame; responses go to `outbox`. Never raises."""
        if self.closing:
            return
        self.bytes_in += len(frame) + 4
        try:
            if len(frame) < 4:
                raise Disconnect("frame shorter than a protocol id")
            magic = _U32.unpack_from(frame, 0)[0]
            if magic == h.SMB2_MAGIC:
                self._receive_smb2(frame, None)
            elif magic == h.TRANSFORM_MAGIC:
                self._receive_encrypted(frame)
            elif magic == h.SMB1_MAGIC:
                from .handlers.negotiate import handle_smb1_negotiate
                self.send_frame(handle_smb1_negotiate(self, frame))
            else:
                raise Disconnect(f"unknown protocol id 0x{magic:08x}")
        except Disconnect as exc:
            self.close(str(exc))
        except Exception:  # a bug must cost one connection, never the server
            log.exception("%s: internal error, closing connection", self.peer)
            self.close("internal error")

    def close(self, reason: str) -> None:
        if not self.closing:
            self.closing = True
            self.close_reason = reason
            log.warning("%s: disconnecting: %s", self.peer, reason)

    def send_frame(self, payload: Any) -> None:
        """Queue one transport frame (payload: bytes-like) with its Direct TCP length prefix."""
        n = len(payload)
        self.outbox.append(_FRAME_LEN.pack(n))
        self.outbox.append(payload)
        self.bytes_out += n + 4
        self.server.flush_pending.add(self)

    # -- decryption ----------------------------------------------------------------------------

    def _receive_encrypted(self, frame: memoryview) -> None:
        # MS-SMB2 3.3.5.2.1.1: decrypt with the session named in the transform header.
        from .crypto.encryption import DecryptError, parse_transform_header
        if self.dialect < h.SMB3_00 or self.dialect == h.SMB2_WILDCARD:
            raise Disconnect("encrypted message before SMB 3 was negotiated")
        try:
            session_id = parse_transform_header(frame)[3]
        except (ValueError, struct.error) as exc:
            raise Disconnect(f"bad transform header: {exc}") from None
        session = self.sessions.get(session_id)
        if session is None or session.decryptor is None:
            raise Disconnect(f"encrypted message for unknown session 0x{session_id:x}")
        try:
            _, plain = session.decryptor.decrypt(frame)
        except (DecryptError, ValueError) as exc:
            raise Disconnect(f"decryption failed: {exc}") from None
        view = memoryview(plain)
        if len(view) < h.HEADER_SIZE or _U32.unpack_from(view, 0)[0] != h.SMB2_MAGIC:
            raise Disconnect("decrypted message is not SMB2")
        self._receive_smb2(view, session)

    # -- SMB2 messages ---------------------------------------------------------------------------

    def _receive_smb2(self, frame: memoryview, enc_session: Session | None) -> None:
        total = len(frame)
        if total >= h.HEADER_SIZE and not _U32.unpack_from(frame, h.NEXT_COMMAND_OFFSET)[0]:
            # One request, no compound (the common case).
            fields = h.HEADER.unpack_from(frame, 0)
            if fields[0] != h.SMB2_MAGIC or fields[1] != h.HEADER_SIZE:
                raise Disconnect("bad SMB2 header")
            resp = self._process(frame, fields, Chain(), enc_session, True, True)
            if resp is not None:
                self._send_responses((resp,), enc_session)
            return
        self._run_chain(frame, 0, Chain(), enc_session)

    def _run_chain(self, frame: memoryview, off: int, chain: Chain,
                   enc_session: Session | None) -> None:
        """The requests of a compound from `off` on. Answers go out in parts of about
        io_budget.COMPOUND_PART (MS-SMB2 3.3.4.1.3 lets the server send the responses to
        compounded requests separately), and when the connection's unsent output is full the
        rest waits in `suspended` for resume(): never the whole chain's answers in memory."""
        total = len(frame)
        responses: list[tuple[bytearray, Session | None, bool, FileRange | None]] = []
        part = 0
        while True:
            if total - off < h.HEADER_SIZE:
                raise Disconnect("message shorter than an SMB2 header")
            fields = h.HEADER.unpack_from(frame, off)
            if fields[0] != h.SMB2_MAGIC or fields[1] != h.HEADER_SIZE:
                raise Disconnect("bad SMB2 header in a chain")
            next_cmd = fields[7]
            if next_cmd:
                if next_cmd < h.HEADER_SIZE or next_cmd % 8 or off + next_cmd > total:
                    raise Disconnect(f"bad NextCommand {next_cmd}")
                end = off + next_cmd
            else:
                end = total
            resp = self._process(frame[off:end], fields, chain, enc_session, off == 0,
                                 not next_cmd)
            if resp is not None:
                responses.append(resp)
                part += len(resp[0])
            if not next_cmd:
                break
            off = end
            if part >= io_budget.COMPOUND_PART:
                self._send_responses(responses, enc_session, True)
                responses = []
                part = 0
                if io_budget.output_full(self):
                    # frame[:] outlives the loop's release of the receive buffer's view
                    self.suspended = (frame[:], off, chain, enc_session)
                    return
        if responses:
            self._send_responses(responses, enc_session)

    def resume(self) -> None:
        """Go on with the compound in `suspended` (the loop calls this once the output has
        drained); it may suspend again. Never raises."""
        rest, self.suspended = self.suspended, None
        if rest is None or self.closing:
            return
        try:
            self._run_chain(*rest)
        except Disconnect as exc:
            self.close(str(exc))
        except Exception:  # a bug must cost one connection, never the server
            log.exception("%s: internal error, closing connection", self.peer)
            self.close("internal error")

    def _process(self, msg: memoryview, fields: tuple, chain: Chain,
                 enc_session: Session | None, first: bool, last: bool):
        (_, _, charge, _, command, credit_req, flags, _, msg_id, tree_or_async,
         session_id) = fields
        if command == h.CANCEL:
            # MS-SMB2 3.3.5.16: no response, no credits consumed.
            from .handlers.echo import handle_cancel
            handle_cancel(self, msg_id, flags, tree_or_async, session_id)
            return None
        if not self.credits.consume(msg_id, charge):
            raise Disconnect(f"MessageId {msg_id} (charge {charge}) outside the credit window")
        if not self.negotiated and command != h.NEGOTIATE:
            raise Disconnect(f"{_name(command)} before NEGOTIATE")

        req = Request(self, command, msg_id, flags, charge, msg, chain)
        req.encrypted = enc_session is not None
        req.process_id = tree_or_async & 0xFFFFFFFF
        req.related = bool(flags & h.FLAGS_RELATED_OPERATIONS)
        tree_id = tree_or_async >> 32
        try:
            status, body = self._run(req, command, session_id, tree_id, chain, enc_session, first)
        except SmbError as exc:
            status, body = exc.status, ERROR_BODY
        except Disconnect:
            raise
        except Exception:
            log.exception("%s: %s failed", self.peer, _name(command))
            status, body = STATUS_INTERNAL_ERROR, ERROR_BODY
        interim = False
        if status == STATUS_PENDING and req.async_work is not None:
            if last:
                interim = True  # 3.3.4.2: the interim response now, the final one later
            else:
                # Only the last request of a chain may go async (what Windows does, MS-SMB2
                # <159>); the others are failed (smbtorture smb2.compound.interim2).
                req.async_work.cancel(send=False)
                status, body = STATUS_INTERNAL_ERROR, ERROR_BODY
        if not last:  # what the next request of the compound inherits (3.3.5.2.7)
            chain.session = req.session
            chain.tree = req.tree
            if command == h.CREATE:
                chain.file_error = status
                chain.has_file_id = True
            elif command in _FILE_ID_COMMANDS:
                chain.has_file_id = True
        if status not in (STATUS_SUCCESS, STATUS_MORE_PROCESSING_REQUIRED, STATUS_PENDING) \
                and log.isEnabledFor(logging.DEBUG):
            log.debug("%s: %s -> %s", self.peer, _name(command), status_name(status))

        granted = self.credits.grant(credit_req if credit_req else 1)
        session = req.session
        if req.tree is not None:
            tree_or_async = (req.tree.tree_id << 32) | req.process_id
        rflags = flags & (h.FLAGS_RELATED_OPERATIONS | h.FLAGS_PRIORITY_MASK)
        if interim:
            rflags |= h.FLAGS_ASYNC_COMMAND
            tree_or_async = req.async_work.async_id
            body = ERROR_BODY
        buf = bytearray(h.HEADER_SIZE)  # zeros: NextCommand and Signature stay 0 here
        h.HEADER.pack_into(buf, 0, h.SMB2_MAGIC, h.HEADER_SIZE, charge, status, command,
                           granted, rflags | h.FLAGS_SERVER_TO_REDIR, 0, msg_id, tree_or_async,
                           session.session_id if session is not None else session_id)
        sign = (not interim and session is not None and session.signer is not None
                and enc_session is None
                and (req.sign_response or session.signing_required
                     or bool(flags & h.FLAGS_SIGNED)))
        tail = None  # a READ payload still on disk (FileRange), always the last part
        if isinstance(body, (list, tuple)):
            for part in body:
                if isinstance(part, FileRange):
                    tail = part
                else:
                    buf += part
        else:
            buf += body
        if tail is not None and (sign or enc_session is not None or not (first and last)):
            # The MAC, the cipher or the compound needs the bytes: read them once, straight
            # into their place in the response.
            buf = tail.read_after(buf)
            tail = None
        if req.on_response is not None:
            req.on_response(buf)  # e.g. the 3.1.1 pre-auth hash over NEGOTIATE/SESSION_SETUP
        return buf, session, sign, tail

    def _run(self, req: Request, command: int, session_id: int, tree_id: int, chain: Chain,
             enc_session: Session | None, first: bool):
        """The checks of MS-SMB2 3.3.5.2.x that precede every handler, then the handler."""
        if not req.related:  # an unrelated request starts a new FileId context
            chain.open = None
            chain.file_error = STATUS_SUCCESS
            chain.has_file_id = False
        elif first:
            raise SmbError(STATUS_INVALID_PARAMETER)  # 3.3.5.2.7.2: first of a chain
        if command >= len(COMMANDS):
            raise SmbError(STATUS_INVALID_PARAMETER)
        handler, size, needs_session, needs_tree = COMMANDS[command]
        view = req.view
        if len(view) < h.HEADER_SIZE + (size & ~1) or \
                _U16.unpack_from(view, h.HEADER_SIZE)[0] != size:
            raise SmbError(STATUS_INVALID_PARAMETER)  # 3.3.5.2.6 structure size
        if needs_session or (command == h.SESSION_SETUP and session_id):
            if req.related:
                # 3.3.5.2.7.2: a related request uses the previous request's session; if
                # that one had none (it failed before finding one), the request is invalid.
                session = chain.session
                if session is None:
                    raise SmbError(STATUS_INVALID_PARAMETER)
            else:
                session = self.sessions.get(session_id)
            if session is None:
                raise SmbError(STATUS_USER_SESSION_DELETED)
            req.session = session
            if session.state != VALID and command != h.SESSION_SETUP:
                raise SmbError(STATUS_USER_SESSION_DELETED)
            # 3.3.5.2.4 verifying the signature
            if enc_session is None:
                if req.flags & h.FLAGS_SIGNED:
                    if session.signer is not None and not session.signer.verify(view):
                        log.warning("%s: bad signature on %s, refused", self.peer,
                                    _name(command))
                        req.session = None
                        raise SmbError(STATUS_ACCESS_DENIED)
                elif session.signing_required and command != h.SESSION_SETUP \
                        and session.state == VALID:
                    req.session = None
                    raise SmbError(STATUS_ACCESS_DENIED)
                # 3.3.5.2.9: an encrypting session refuses plain requests
                if session.encrypt_data and command != h.SESSION_SETUP:
                    raise SmbError(STATUS_ACCESS_DENIED)
            session.idle_since = self.server.now()
            if session.first_request_hook is not None and session.state == VALID:
                session.first_request(enc_session is not None)  # the logon's log line
        if needs_tree:
            session = req.session
            if req.related:
                # 3.3.5.2.7.2 / 3.3.5.2.11: the previous request's TreeId, looked up in
                # Session.TreeConnectTable like any other: after a TREE_DISCONNECT earlier in
                # the chain it is gone. The chain keeps that TreeId (req.tree, what the next
                # request inherits), so every later related request fails the same way.
                tree = chain.tree
                if tree is None:
                    raise SmbError(STATUS_INVALID_PARAMETER)
                if tree.closed or session.trees.get(tree.tree_id) is not tree:
                    req.tree = tree
                    raise SmbError(STATUS_NETWORK_NAME_DELETED)
            else:
                tree = session.trees.get(tree_id)
            if tree is None:
                raise SmbError(STATUS_NETWORK_NAME_DELETED)
            req.tree = tree
            if tree.encrypt_data and enc_session is None:
                raise SmbError(STATUS_ACCESS_DENIED)
        if req.related and chain.file_error and command in _FILE_ID_COMMANDS:
            # 3.3.5.2.7.2: the FileId is the failed CREATE's; its status, in the session
            # and tree it ran in
            raise SmbError(chain.file_error)
        if handler is None:
            raise SmbError(STATUS_NOT_IMPLEMENTED)
        return handler(req)

    # -- asynchronous requests (3.3.4.2) ------------------------------------------------------

    def new_async(self, req: Request, on_cancel) -> AsyncWork:
        async_id = self.next_async_id
        self.next_async_id += 1
        work = AsyncWork(self, async_id, req.msg_id, req.command, req.session, req.tree,
                         req.encrypted, on_cancel)
        work.signed = bool(req.flags & h.FLAGS_SIGNED)
        self.async_ops[async_id] = work
        return work

    def complete_async(self, work: AsyncWork, status: int, body) -> None:
        """The final response of a request that went async."""
        self.async_ops.pop(work.async_id, None)
        if self.closing:
            return
        session = work.session
        buf = bytearray(h.HEADER_SIZE)
        h.pack_response_header(buf, 0, work.command, status, 0, h.FLAGS_ASYNC_COMMAND,
                               work.msg_id, work.async_id,
                               session.session_id if session is not None else 0)
        if isinstance(body, (list, tuple)):
            for part in body:
                buf += part.read() if isinstance(part, FileRange) else part
        else:
            buf += body
        if work.encrypted and session is not None and session.encryptor is not None:
            self._send_encrypted(session, buf)
            return
        if session is not None and session.signer is not None and (
                work.signed or session.signing_required):
            session.signer.sign(buf)
        self.send_frame(buf)

    def tear_down(self) -> None:
        """The transport is gone: end pending requests without answers, close every
        session (its trees and opens), as a LOGOFF would."""
        self.cancel_async(lambda work: True, send=False)
        from .handlers.session_setup import close_session
        for session in list(self.sessions.values()):
            try:
                close_session(self.server, session)
            except Exception:
                log.exception("%s: cleaning up a session failed", self.peer)

    def cancel_async(self, match, send: bool = True) -> None:
        """Cancel every pending request for which match(work) is true."""
        for work in [w for w in self.async_ops.values() if match(w)]:
            work.cancel(send)

    def _send_responses(self, responses: list, enc_session: Session | None,
                        compound: bool = False) -> None:
        if len(responses) == 1 and not compound:
            buf, session, sign, tail = responses[0]
            if sign:
                session.signer.sign(buf)
            if enc_session is not None:
                self._send_encrypted(enc_session, buf)  # (never a tail: _process read it)
            elif tail is None:
                self.send_frame(buf)
            else:
                # Zero copy: header and body from memory, then the file range by sendfile.
                try:
                    tail.pin()
                except OSError:  # no descriptor left to pin it with: read it now
                    self.send_frame(tail.read_after(buf))
                    return
                total = len(buf) + tail.length
                self.outbox.append(_FRAME_LEN.pack(total))
                self.outbox.append(buf)
                self.outbox.append(tail)
                self.bytes_out += total + 4
            return
        # MS-SMB2 3.3.4.1.3: every response of a compound is 8-byte aligned, the last one
        # too (what Windows sends; smbtorture smb2.compound.compound-padding), while its
        # NextCommand stays 0. A lone response is not padded.
        last = len(responses) - 1
        for i, (buf, session, sign, _) in enumerate(responses):
            pad = -len(buf) % 8
            if pad:
                buf += bytes(pad)
            if i != last:
                struct.pack_into("<I", buf, h.NEXT_COMMAND_OFFSET, len(buf))
            if sign:
                session.signer.sign(buf)
        payload = bytearray().join(r[0] for r in responses)
        if enc_session is not None:
            self._send_encrypted(enc_session, payload)
        else:
            self.send_frame(payload)

    def _send_encrypted(self, session: Session, buf: bytearray) -> None:
        """One frame: the TRANSFORM_HEADER, then `buf` encrypted where it lies (no copy of a
        READ payload; MS-SMB2 3.1.4.3)."""
        hdr = session.encryptor.encrypt_in_place(session.session_id, buf)
        n = len(hdr) + len(buf)
        self.outbox.append(_FRAME_LEN.pack(n))
        self.outbox.append(hdr)
        self.outbox.append(buf)
        self.bytes_out += n + 4
        self.server.flush_pending.add(self)


def _name(command: int) -> str:
    return h.COMMAND_NAMES[command] if command < len(h.COMMAND_NAMES) else f"0x{command:x}"

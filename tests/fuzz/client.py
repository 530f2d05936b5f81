"""A raw SMB2 client for the fuzzer: Direct TCP framing, response checks, the prefix steps.

`parse_stream` is the fuzzer's oracle for "a response not parseable as SMB2 framing": every
frame must be a whole Direct TCP frame (MS-SMB2 2.1) holding an SMB2 header chain whose
NextCommand offsets stay inside it, and every response body must be the command's response
structure (or the 2.2.2 ERROR response) with its offsets and lengths inside the response.
"""

from __future__ import annotations

import socket
import struct
import time
from dataclasses import dataclass, field

from . import smb2_builders as b
from .smb3_crypto import Preauth, Transform

STATUS_SUCCESS = 0x00000000
STATUS_PENDING = 0x00000103
STATUS_BUFFER_OVERFLOW = 0x80000005
STATUS_MORE_PROCESSING_REQUIRED = 0xC0000016
STATUS_INTERNAL_ERROR = 0xC00000E5
STATUS_CANCELLED = 0xC0000120

# MS-SMB2 2.2 response StructureSize by command (OPLOCK_BREAK: 2.2.23.1 oplock, 2.2.23.2 lease).
RESPONSE_SIZES = {
    b.NEGOTIATE: (65,), b.SESSION_SETUP: (9,), b.LOGOFF: (4,), b.TREE_CONNECT: (16,),
    b.TREE_DISCONNECT: (4,), b.CREATE: (89,), b.CLOSE: (60,), b.FLUSH: (4,), b.READ: (17,),
    b.WRITE: (17,), b.LOCK: (4,), b.IOCTL: (49,), b.ECHO: (4,), b.QUERY_DIRECTORY: (9,),
    b.CHANGE_NOTIFY: (9,), b.QUERY_INFO: (9,), b.SET_INFO: (2,), b.OPLOCK_BREAK: (24, 44),
}
# (offset field, its struct format, length field, its format) of each response's variable part,
# positions from the start of the body; offsets count from the SMB2 header.
RESPONSE_BUFFERS = {
    b.NEGOTIATE: [(56, "<H", 58, "<H")],
    b.SESSION_SETUP: [(4, "<H", 6, "<H")],
    b.CREATE: [(80, "<I", 84, "<I")],
    b.READ: [(2, "<B", 4, "<I")],
    b.IOCTL: [(24, "<I", 28, "<I"), (32, "<I", 36, "<I")],
    b.QUERY_DIRECTORY: [(2, "<H", 4, "<I")],
    b.CHANGE_NOTIFY: [(2, "<H", 4, "<I")],
    b.QUERY_INFO: [(2, "<H", 4, "<I")],
}


class FramingError(Exception):
    """A response that is not valid SMB2 framing (a fuzzer finding)."""


class PrefixFailed(Exception):
    """A step of the request sequence before the fuzzed message did not succeed."""


def is_error(status: int) -> bool:
    """Error severity, except the statuses that carry a normal response body."""
    return status >= 0xC0000000 and status != STATUS_MORE_PROCESSING_REQUIRED


def uses_error_body(status: int) -> bool:
    return status == STATUS_PENDING or (
        status >= 0x80000000 and status not in (STATUS_BUFFER_OVERFLOW,
                                                STATUS_MORE_PROCESSING_REQUIRED))


@dataclass
class Response:
    command: int
    status: int
    flags: int
    msg_id: int
    tree_or_async: int
    session_id: int
    credits: int
    body: bytes  # from the end of the header to the end of this response
    raw: bytes  # the response from its header on

    @property
    def interim(self) -> bool:
        return self.status == STATUS_PENDING and bool(self.flags & b.SMB2_FLAGS_ASYNC_COMMAND)

    @property
    def name(self) -> str:
        return b.COMMAND_NAMES[self.command] if self.command < 19 else f"0x{self.command:x}"


def split_frames(stream: bytes) -> tuple[list[bytes], bytes]:
    """Whole Direct TCP frames of `stream`, and the bytes left over (an unfinished frame)."""
    frames, pos = [], 0
    while len(stream) - pos >= 4:
        (length,) = struct.unpack_from(">I", stream, pos)
        if length >> 24:
            raise FramingError(f"Direct TCP header with a non-zero first byte: {length:#x}")
        if pos + 4 + length > len(stream):
            break
        frames.append(stream[pos + 4:pos + 4 + length])
        pos += 4 + length
    return frames, stream[pos:]


def parse_frame(frame: bytes) -> list[Response]:
    """The responses of one frame, checked (FramingError when not valid SMB2)."""
    out, off = [], 0
    while True:
        if len(frame) - off < b.HEADER_SIZE:
            raise FramingError(f"response of {len(frame) - off} bytes, shorter than a header")
        (magic, size, _, status, command, credits, flags, next_cmd, msg_id, tree_or_async,
         session_id) = struct.unpack_from("<4sHHIHHIIQQQ", frame, off)
        if magic != b"\xfeSMB" or size != 64:
            raise FramingError(f"bad response header (protocol {magic!r}, size {size})")
        if not flags & b.SMB2_FLAGS_SERVER_TO_REDIR:
            raise FramingError("response without SMB2_FLAGS_SERVER_TO_REDIR")
        if next_cmd and (next_cmd % 8 or next_cmd < b.HEADER_SIZE + 2
                         or off + next_cmd > len(frame)):
            raise FramingError(f"bad NextCommand {next_cmd} in a {len(frame)}-byte frame")
        end = off + next_cmd if next_cmd else len(frame)
        raw = frame[off:end]
        resp = Response(command, status, flags, msg_id, tree_or_async, session_id, credits,
                        raw[b.HEADER_SIZE:], raw)
        check_body(resp)
        out.append(resp)
        if not next_cmd:
            return out
        off = end


def check_body(r: Response) -> None:
    body = r.body
    if len(body) < 2:
        raise FramingError(f"{r.name} response without a body")
    (size,) = struct.unpack_from("<H", body, 0)
    expected = RESPONSE_SIZES.get(r.command, ())
    if size == 9 and uses_error_body(r.status):
        # 2.2.2 ERROR: StructureSize, ErrorContextCount, Reserved, ByteCount, ErrorData
        if len(body) < 8:
            raise FramingError(f"{r.name} error response of {len(body)} bytes")
        (byte_count,) = struct.unpack_from("<I", body, 4)
        if 8 + byte_count > len(body):
            raise FramingError(f"{r.name} error response: ByteCount {byte_count} runs past "
                               f"its {len(body)} bytes")
        return
    if size not in expected:
        raise FramingError(f"{r.name} response (status {r.status:#010x}) with StructureSize "
                           f"{size}, expected {expected or 'nothing'} or 9")
    if len(body) < size & ~1:
        raise FramingError(f"{r.name} response body of {len(body)} bytes for StructureSize "
                           f"{size}")
    for off_pos, off_fmt, len_pos, len_fmt in RESPONSE_BUFFERS.get(r.command, ()):
        (offset,) = struct.unpack_from(off_fmt, body, off_pos)
        (length,) = struct.unpack_from(len_fmt, body, len_pos)
        if r.command == b.NEGOTIATE and off_pos == 56 and length == 0:
            continue
        if length and (offset < b.HEADER_SIZE or offset + length > len(r.raw)):
            raise FramingError(f"{r.name} response buffer at {offset}+{length} outside its "
                               f"{len(r.raw)} bytes")
    if r.command == b.NEGOTIATE and struct.unpack_from("<H", body, 6)[0]:
        (ctx_off,) = struct.unpack_from("<I", body, 60)
        if ctx_off < b.HEADER_SIZE or ctx_off + 8 > len(r.raw):
            raise FramingError(f"NEGOTIATE response contexts at {ctx_off} outside the response")


def decode_frame(frame: bytes, transform: Transform | None) -> list[Response]:
    """parse_frame, decrypting a TRANSFORM_HEADER frame first (FramingError if it fails)."""
    if frame[:4] == b"\xfdSMB":
        if transform is None:
            raise FramingError("an encrypted response on a connection that did not encrypt")
        try:
            frame = transform.decrypt(frame)
        except ValueError as exc:
            raise FramingError(str(exc)) from None
    return parse_frame(frame)


def parse_stream(stream: bytes, transform: Transform | None = None) -> list[Response]:
    """Every response in what the server sent after the fuzzed message (FramingError)."""
    frames, rest = split_frames(stream)
    if rest:
        raise FramingError(f"the server's last frame is cut short ({len(rest)} bytes of it)")
    out: list[Response] = []
    for f in frames:
        out += decode_frame(f, transform)
    return out


# -- a connection ---------------------------------------------------------------------------------

@dataclass
class Ctx:
    """What the prefix established: the values the seeds' messages carry."""

    dialect: int = b.SMB3_11
    dialects: tuple[int, ...] = b.ALL_DIALECTS
    msg_id: int = 0
    charge: int = 1
    session_id: int = 0
    tree_id: int = 0
    file_id: bytes = bytes(16)
    file_id2: bytes = bytes(16)
    dir_id: bytes = bytes(16)
    pipe_id: bytes = bytes(16)
    resume_key: bytes = bytes(24)
    negotiate_token: bytes = b""
    challenge: b.Challenge | None = None
    client_guid: bytes = b"ksmbd-fuzz-guid!"
    capabilities: int = b.SMB2_GLOBAL_CAP_LARGE_MTU | b.SMB2_GLOBAL_CAP_ENCRYPTION
    user: str = "alice"
    domain: str = "TESTGROUP"
    nt_hash: bytes = bytes(16)
    file_ino: int = 0
    share: str = "fuzz"
    cipher_id: int = 0  # the 3.1.1 ENCRYPTION_CAPABILITIES answer
    preauth: Preauth | None = None  # the connection's, then the session's (3.1.1)
    transform: Transform | None = None  # the session's encryption keys, once logged on
    extra: dict = field(default_factory=dict)

    def hdr(self, k: int = 0, **kw) -> dict:
        """Header arguments for the k-th request after the prefix."""
        out = dict(msg_id=self.msg_id + k, session_id=self.session_id, tree_id=self.tree_id,
                   credit_charge=self.charge)
        out.update(kw)
        return out


class Client:
    """One TCP connection to the server, speaking just enough SMB2 for the prefix steps."""

    def __init__(self, port: int, timeout: float = 2.0, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.ctx = Ctx()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- frames

    def send_payload(self, payload: bytes) -> None:
        self.sock.sendall(struct.pack(">I", len(payload)) + payload)

    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise PrefixFailed("the server closed the connection")
            buf += chunk
        return bytes(buf)

    def recv_frame(self) -> bytes:
        (length,) = struct.unpack(">I", self._recv_exact(4))
        return self._recv_exact(length)

    def call(self, msg: b.Msg | bytes, step: str, ok=(STATUS_SUCCESS,)) -> list[Response]:
        """Send one message, return its final responses; PrefixFailed unless each status is in
        `ok`. Request ids advance by the number of requests sent."""
        data = bytes(msg.data if isinstance(msg, b.Buf) else msg)
        n = len(msg.headers) if isinstance(msg, b.Msg) and msg.headers else 1
        try:
            self.send_payload(data)
            out: list[Response] = []
            for _ in range(4 * n + 16):  # interim responses come first; a bound all the same
                if len(out) >= n:
                    break
                for r in parse_frame(self.recv_frame()):
                    if not r.interim:
                        out.append(r)
            if len(out) < n:
                raise PrefixFailed(f"{step}: no final response")
        except (OSError, FramingError) as exc:
            raise PrefixFailed(f"{step}: {exc}") from None
        self.ctx.msg_id += n * max(self.ctx.charge, 1)
        for r in out:
            if r.status not in ok:
                raise PrefixFailed(f"{step}: {r.name} answered {r.status:#010x}")
        return out

    # -- the prefix steps (MS-SMB2 3.2.4.2 onwards)

    def negotiate(self, dialect: int = b.SMB3_11) -> Response:
        ctx = self.ctx
        ctx.dialect = dialect
        ctx.charge = 0 if dialect == b.SMB2_02 else 1
        # A real client's list: everything up to the wanted dialect (the server picks the
        # highest), contexts when 3.1.1 is in it.
        ctx.dialects = tuple(d for d in b.ALL_DIALECTS if d <= dialect)
        contexts = b.all_negotiate_contexts() if dialect == b.SMB3_11 else None
        body = b.negotiate_body(ctx.dialects, capabilities=ctx.capabilities,
                                client_guid=ctx.client_guid, contexts=contexts)
        msg = b.request(b.NEGOTIATE, body, **ctx.hdr())
        (r,) = self.call(msg, "NEGOTIATE")
        got = struct.unpack_from("<H", r.body, 4)[0]
        if got != dialect:
            raise PrefixFailed(f"NEGOTIATE chose {got:#06x}, wanted {dialect:#06x}")
        if dialect == b.SMB3_11:
            ctx.preauth = Preauth()
            ctx.preauth.update(msg.data)
            ctx.preauth.update(r.raw)
            ctx.cipher_id = negotiate_cipher(r)
        return r

    def smb1_negotiate(self) -> Response:
        (r,) = self.call(b.smb1_negotiate(), "SMB1 NEGOTIATE")
        self.ctx.msg_id = 1
        return r

    def session_setup_negotiate(self) -> Response:
        ctx = self.ctx
        ntlm = b.ntlm_negotiate()
        ctx.negotiate_token = bytes(ntlm.data)
        body = b.session_setup_body(b.spnego_init(ntlm))
        msg = b.request(b.SESSION_SETUP, body, **ctx.hdr())
        (r,) = self.call(msg, "SESSION_SETUP 1", ok=(STATUS_MORE_PROCESSING_REQUIRED,))
        ctx.session_id = r.session_id
        if ctx.preauth is not None:  # the session's hash starts from the connection's
            ctx.preauth = ctx.preauth.copy()
            ctx.preauth.update(msg.data)
            ctx.preauth.update(r.raw)
        off, length = struct.unpack_from("<HH", r.body, 4)
        token = r.raw[off:off + length]
        ctx.challenge = b.parse_challenge(b.spnego_response_token(token))
        return r

    def session_setup_authenticate(self) -> Response:
        ctx = self.ctx
        auth = b.ntlm_authenticate(ctx.challenge, ctx.negotiate_token, user=ctx.user,
                                   domain=ctx.domain, nt_hash=ctx.nt_hash)
        msg = b.request(b.SESSION_SETUP, b.session_setup_body(b.spnego_resp(auth)), **ctx.hdr())
        (r,) = self.call(msg, "SESSION_SETUP 2")
        if ctx.preauth is not None:
            ctx.preauth.update(msg.data)  # the last request; its response is not hashed
            if ctx.cipher_id in (1, 2, 3, 4):
                ctx.transform = Transform(ctx.cipher_id, auth.exported_session_key,
                                          ctx.preauth.value, ctx.session_id)
        return r

    def logon(self) -> None:
        self.session_setup_negotiate()
        self.session_setup_authenticate()

    def tree_connect(self, share: str) -> int:
        ctx = self.ctx
        body = b.tree_connect_body(f"\\\\127.0.0.1\\{share}")
        (r,) = self.call(b.request(b.TREE_CONNECT, body, **ctx.hdr(tree_id=0)),
                         f"TREE_CONNECT {share}")
        ctx.tree_id = r.tree_or_async >> 32
        return ctx.tree_id

    def create(self, name: str, **kw) -> bytes:
        body = b.create_body(name, **kw)
        (r,) = self.call(b.request(b.CREATE, body, **self.ctx.hdr()), f"CREATE {name!r}")
        return r.body[64:80]

    def write(self, fid: bytes, data: bytes, offset: int = 0) -> Response:
        (r,) = self.call(b.request(b.WRITE, b.write_body(fid, data, offset), **self.ctx.hdr()),
                         "WRITE")
        return r

    def read(self, fid: bytes, length: int, offset: int = 0) -> bytes:
        (r,) = self.call(b.request(b.READ, b.read_body(fid, length, offset), **self.ctx.hdr()),
                         "READ")
        data_off, data_len = r.body[2], struct.unpack_from("<I", r.body, 4)[0]
        return r.raw[data_off:data_off + data_len]

    def close_file(self, fid: bytes) -> Response:
        (r,) = self.call(b.request(b.CLOSE, b.close_body(fid), **self.ctx.hdr()), "CLOSE")
        return r

    def ioctl(self, fid: bytes, code: int, data: b.Buf | bytes = b"", step: str = "IOCTL",
              max_output: int = 4096) -> bytes:
        body = b.ioctl_body(fid, code, data, max_output=max_output)
        (r,) = self.call(b.request(b.IOCTL, body, **self.ctx.hdr()), step)
        off, n = struct.unpack_from("<II", r.body, 32)
        return r.raw[off:off + n]

    def lock(self, fid: bytes, locks) -> Response:
        (r,) = self.call(b.request(b.LOCK, b.lock_body(fid, locks), **self.ctx.hdr()), "LOCK")
        return r

    def echo(self) -> Response:
        (r,) = self.call(b.request(b.ECHO, b.four_byte_body(), **self.ctx.hdr()), "ECHO")
        return r


def negotiate_cipher(r: Response) -> int:
    """The cipher a 3.1.1 NEGOTIATE response chose (2.2.4.1.2), 0 for none."""
    count = struct.unpack_from("<H", r.body, 6)[0]
    pos = struct.unpack_from("<I", r.body, 60)[0]
    for _ in range(count):
        pos += -pos % 8
        if pos + 8 > len(r.raw):
            break
        ctype, length = struct.unpack_from("<HH", r.raw, pos)
        if ctype == b.SMB2_ENCRYPTION_CAPABILITIES and length >= 4:
            return struct.unpack_from("<H", r.raw, pos + 10)[0]
        pos += 8 + length
    return 0


def read_until_eof(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """Everything the server sends until it closes the connection; (bytes, True) when it did
    within `timeout`, (bytes, False) when the time ran out first."""
    deadline = time.monotonic() + timeout
    chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return b"".join(chunks), False
        sock.settimeout(left)
        try:
            chunk = sock.recv(1 << 16)
        except socket.timeout:
            return b"".join(chunks), False
        except OSError:  # reset: the server is gone from this connection
            return b"".join(chunks), True
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)

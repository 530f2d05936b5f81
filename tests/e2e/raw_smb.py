"""A raw SMB 3.1.1 client over one socket, for tests that need what real clients never do:
pipelining without reading the answers, compounds of many READs, frames announced and not
sent. NTLM comes from pyspnego, keys and signatures from the project's own crypto modules.
Every socket operation has a timeout; nothing loops without a bound."""

from __future__ import annotations

import os
import socket
import struct
import time
import uuid

import spnego

from ksmbd_embedded import header as h
from ksmbd_embedded.crypto.kdf import derive_keys
from ksmbd_embedded.crypto.preauth import PreauthHash
from ksmbd_embedded.crypto.signing import Signer

STATUS_SUCCESS = 0
STATUS_MORE_PROCESSING_REQUIRED = 0xC0000016
_READ_REQ = struct.Struct("<HBBIQQQIIIHH")


def rss_kb(pid: int) -> int:
    """The process's resident set (VmRSS, kB)."""
    return _status_field(pid, "VmRSS")


def peak_rss_kb(pid: int) -> int:
    """The process's peak resident set since it started (VmHWM, kB)."""
    return _status_field(pid, "VmHWM")


def _status_field(pid: int, name: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {name} for {pid}")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def header(command: int, msg_id: int, session_id: int = 0, tree_id: int = 0, flags: int = 0,
           charge: int = 1, credits: int = 256, next_cmd: int = 0) -> bytearray:
    buf = bytearray(64)
    h.HEADER.pack_into(buf, 0, h.SMB2_MAGIC, 64, charge, 0, command, credits, flags, next_cmd,
                       msg_id, tree_id << 32, session_id)
    return buf


def status_of(msg) -> int:
    return struct.unpack_from("<I", msg, 8)[0]


def split_compound(frame: bytes) -> list[bytes]:
    """The responses of one frame (a compound answer split at NextCommand)."""
    out, off = [], 0
    while True:
        nxt = struct.unpack_from("<I", frame, off + 20)[0]
        if not nxt:
            out.append(frame[off:])
            return out
        out.append(frame[off:off + nxt])
        off += nxt


class RawSmb:
    def __init__(self, port: int, rcvbuf: int | None = None, timeout: float = 10) -> None:
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.msg_id = 0
        self.granted = 1  # MessageIds the server has allowed so far (NEGOTIATE's 0 is free)
        self.sid = 0
        self.tid = 0
        self.signer: Signer | None = None

    def close(self) -> None:
        self.sock.close()

    # -- framing ---------------------------------------------------------------------------

    def send(self, payload: bytes | bytearray) -> None:
        self.sock.sendall(struct.pack(">I", len(payload)) + bytes(payload))

    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self.sock.recv_into(view[got:])
            if not k:
                raise ConnectionError("closed by server")
            got += k
        return bytes(buf)

    def recv_frame(self) -> bytes:
        length = struct.unpack(">I", self._recv_exact(4))[0]
        frame = self._recv_exact(length)
        if frame[:4] == b"\xfeSMB":
            for msg in split_compound(frame):
                if not struct.unpack_from("<I", msg, 16)[0] & h.FLAGS_ASYNC_COMMAND or \
                        status_of(msg) != 0x103:
                    self.granted += struct.unpack_from("<H", msg, 14)[0]
        return frame

    def send_some(self, data: bytes, seconds: float) -> int:
        """Send what the server takes of `data` within `seconds` (it may stop reading);
        how many bytes went."""
        import select
        sent = 0
        deadline = time.monotonic() + seconds
        self.sock.setblocking(False)
        try:
            while sent < len(data):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                if not select.select([], [self.sock], [], min(left, 0.1))[1]:
                    continue
                try:
                    sent += self.sock.send(data[sent:sent + 65536])
                except BlockingIOError:
                    pass
        finally:
            self.sock.settimeout(10)
        return sent

    def finish(self, data: bytes, sent: int, count: int, seconds: float = 20) -> list[bytes]:
        """Send the rest of `data` while reading `count` response frames."""
        import select
        frames = []
        buf = bytearray()
        deadline = time.monotonic() + seconds
        self.sock.setblocking(False)
        try:
            while len(frames) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(frames)} of {count} responses within {seconds} s"
                want_w = [self.sock] if sent < len(data) else []
                r, w, _ = select.select([self.sock], want_w, [], min(left, 0.2))
                if w:
                    try:
                        sent += self.sock.send(data[sent:sent + 65536])
                    except BlockingIOError:
                        pass
                if r:
                    chunk = self.sock.recv(1 << 20)
                    if not chunk:
                        raise ConnectionError("closed by server")
                    buf += chunk
                    while len(buf) >= 4:
                        n = struct.unpack_from(">I", buf)[0]
                        if len(buf) < 4 + n:
                            break
                        frames.append(bytes(buf[4:4 + n]))
                        del buf[:4 + n]
        finally:
            self.sock.settimeout(10)
        return frames

    def transact(self, msg: bytes | bytearray) -> bytes:
        self.send(msg)
        return self.recv_frame()

    def next_id(self, charge: int = 1) -> int:
        mid = self.msg_id
        self.msg_id += max(charge, 1)
        return mid

    # -- logon -----------------------------------------------------------------------------

    def negotiate(self) -> bytes:
        body = bytearray(struct.pack("<HHHHI16sIHH", 36, 1, 1, 0, 0x7F, uuid.uuid4().bytes,
                                     0, 0, 0))
        body += struct.pack("<H", 0x0311)
        body += bytes(-(64 + len(body)) % 8)
        contexts = [(1, struct.pack("<HHH", 1, 32, 1) + os.urandom(32)),
                    (2, struct.pack("<HH", 1, 2)),      # AES-128-GCM
                    (8, struct.pack("<HH", 1, 1))]      # AES-CMAC
        struct.pack_into("<IH", body, 28, 64 + len(body), len(contexts))
        for i, (ctype, data) in enumerate(contexts):
            if i:
                body += bytes(-(64 + len(body)) % 8)
            body += struct.pack("<HHI", ctype, len(data), 0) + data
        req = header(h.NEGOTIATE, self.next_id(), charge=0) + body
        resp = self.transact(req)
        assert status_of(resp) == STATUS_SUCCESS
        self.preauth = PreauthHash()
        self.preauth.update(req)
        self.preauth.update(resp)
        self.signing_algorithm = 1
        return resp

    def logon(self, user: str = "alice", password: str = "alice-pw") -> None:
        self.negotiate()
        client = spnego.client(user, password, hostname="srv", protocol="ntlm")
        token = client.step()
        for _ in range(4):
            body = struct.pack("<HBBIIHHQ", 25, 0, 1, 0, 0, 64 + 24, len(token), 0) + token
            req = header(h.SESSION_SETUP, self.next_id(), session_id=self.sid) + body
            resp = self.transact(req)
            self.preauth.update(req)
            status = status_of(resp)
            self.sid = struct.unpack_from("<Q", resp, 40)[0]
            if status != STATUS_MORE_PROCESSING_REQUIRED:
                break
            self.preauth.update(resp)
            _, _, off, ln = struct.unpack_from("<HHHH", resp, 64)
            token = client.step(resp[off:off + ln])
        assert status == STATUS_SUCCESS, hex(status)
        keys = derive_keys(0x0311, client.session_key, self.preauth.value, 2)
        self.signer = Signer(self.signing_algorithm, keys.signing_key)

    def signed(self, msg: bytearray) -> bytearray:
        self.signer.sign(msg)
        return msg

    def tree_connect(self, share: str = "share") -> None:
        path = f"\\\\127.0.0.1\\{share}".encode("utf-16-le")
        req = header(h.TREE_CONNECT, self.next_id(), self.sid) + struct.pack(
            "<HHHH", 9, 0, 72, len(path)) + path
        resp = self.transact(self.signed(req))
        assert status_of(resp) == STATUS_SUCCESS, hex(status_of(resp))
        self.tid = struct.unpack_from("<Q", resp, 32)[0] >> 32

    def open(self, name: str, write: bool = False) -> bytes:
        """An existing file opened for reading (or a file opened or created for writing):
        its 16-byte FileId."""
        name_b = name.encode("utf-16-le")
        access, disposition = (0x0012019F, 3) if write else (0x00120089, 1)  # FILE_OPEN(_IF)
        body = struct.pack("<HBBIQQIIIIIHHII", 57, 0, 0, 2, 0, 0, access, 0, 7, disposition,
                           0x40, 64 + 56, len(name_b), 0, 0) + name_b
        resp = self.transact(self.signed(header(h.CREATE, self.next_id(), self.sid,
                                                self.tid) + body))
        assert status_of(resp) == STATUS_SUCCESS, hex(status_of(resp))
        return resp[64 + 64:64 + 80]

    def setup(self, share: str = "share", name: str | None = None) -> bytes | None:
        self.logon()
        self.tree_connect(share)
        return self.open(name) if name else None

    # -- requests --------------------------------------------------------------------------

    def read_msg(self, fid: bytes, offset: int, length: int, sign: bool = False,
                 next_cmd: int = 0, credits: int = 256) -> bytearray:
        charge = max(1, (length + 65535) // 65536)
        msg = header(h.READ, self.next_id(charge), self.sid, self.tid, charge=charge,
                     credits=credits, next_cmd=next_cmd)
        fid_p, fid_v = struct.unpack("<QQ", fid)
        msg += _READ_REQ.pack(49, 0x50, 0, length, offset, fid_p, fid_v, 0, 0, 0, 0, 0) + b"\0"
        if sign:
            self.signer.sign(msg)
        return msg

    def compound_reads(self, fid: bytes, count: int, length: int) -> bytearray:
        """One frame: `count` unrelated READs of `length` bytes from offset 0, each signed."""
        msgs = []
        for i in range(count):
            m = self.read_msg(fid, 0, length, next_cmd=0)
            m += bytes(-len(m) % 8)
            if i != count - 1:
                struct.pack_into("<I", m, 20, len(m))
            self.signer.sign(m)
            msgs.append(m)
        return bytearray().join(msgs)

    def gather_credits(self, n: int) -> None:
        """ECHOs asking for credits until `n` MessageIds may be used at once."""
        for _ in range(64):
            if self.granted - self.msg_id >= n:
                return
            self.transact(self.signed(header(h.ECHO, self.next_id(), self.sid, credits=1024) +
                                      struct.pack("<HH", 4, 0)))
        raise AssertionError(f"the server granted only {self.granted - self.msg_id} credits")

    def echo(self) -> float:
        """Seconds one signed ECHO takes to be answered."""
        t = time.monotonic()
        resp = self.transact(self.signed(header(h.ECHO, self.next_id(), self.sid) +
                                         struct.pack("<HH", 4, 0)))
        assert status_of(resp) == STATUS_SUCCESS
        return time.monotonic() - t

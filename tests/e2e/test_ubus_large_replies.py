"""ubus replies stay under ubusd's message limit (UBUS_MAX_MSGLEN, 1 MiB) however much state the
server holds: a real SMB client keeps 4,000 handles open, and `open_files` is called through
the ubusd stand-in the way `ubus call` does. Every answer comes at once, paging through them
gives every handle exactly once, and the server's ubus connection (its object id) survives."""

import socket
import threading
import time
import uuid

from smbprotocol.connection import Connection, Dialects
from smbprotocol.open import (
    CreateDisposition, CreateOptions, FileAttributes, FilePipePrinterAccessMask,
    ImpersonationLevel, Open, ShareAccess,
)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

from ksmbd_embedded.ubus import blob
from ksmbd_embedded.ubus import message as m

from .fake_ubusd import FakeUbusd, ubus_call
from .harness import start_server

HANDLES = 4_000
BATCH = 100  # creates per compound request
FOLDER = "archive-2024"
UBUS_MAX_MSGLEN = 1024 * 1024


def wait_for(predicate, seconds=20.0, what="condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def file_name(i: int) -> str:
    return f"{FOLDER}\\{i:05d}-quarterly-report-with-a-reasonably-long-name.txt"


def open_many(tree: TreeConnect, count: int) -> list[Open]:
    """`count` handles on one tree, created BATCH at a time in compound requests."""
    conn = tree.session.connection
    opens: list[Open] = []
    for start in range(0, count, BATCH):
        batch = [Open(tree, file_name(i)) for i in range(start, min(start + BATCH, count))]
        pending = [f.create(ImpersonationLevel.Impersonation,
                            FilePipePrinterAccessMask.GENERIC_READ
                            | FilePipePrinterAccessMask.GENERIC_WRITE,
                            FileAttributes.FILE_ATTRIBUTE_NORMAL,
                            ShareAccess.FILE_SHARE_READ | ShareAccess.FILE_SHARE_WRITE,
                            CreateDisposition.FILE_OPEN_IF,
                            CreateOptions.FILE_NON_DIRECTORY_FILE, send=False)
                   for f in batch]
        requests = conn.send_compound([msg for msg, _ in pending], tree.session.session_id,
                                      tree.tree_connect_id)
        for (_, receive), request in zip(pending, requests):
            receive(request)
        opens += batch
    return opens


def timed_call(sock, method, args=None, limit=3.0):
    """One `ubus call`, which must be answered well before the caller's timeout."""
    start = time.monotonic()
    try:
        status, reply = ubus_call(sock, "ksmbd", method, args, timeout=10.0)
    except TimeoutError:
        raise AssertionError(f"{method} {args}: no answer within the 10 s timeout") from None
    elapsed = time.monotonic() - start
    assert elapsed < limit, f"{method} {args} took {elapsed:.1f} s"
    return status, reply


def object_id(ubusd):
    with ubusd._lock:
        return next((o.id for o in ubusd.objects.values() if o.path == "ksmbd"), None)


def test_open_files_pages_through_4000_handles(tmp_path):
    began = time.monotonic()
    sock = str(tmp_path / "ubus.sock")
    ubusd = FakeUbusd(sock).start()
    srv = conn = None
    try:
        srv = start_server(tmp_path / "srv", extra_args=["--ubus-socket", sock])
        obj = wait_for(lambda: object_id(ubusd), what="registration")
        (srv.shares["share"] / FOLDER).mkdir()
        conn = Connection(uuid.uuid4(), "127.0.0.1", srv.port, require_signing=False)
        conn.connect(dialect=Dialects.SMB_3_1_1, timeout=10)
        session = Session(conn, "alice", "alice-pw", require_encryption=False,
                          auth_protocol="ntlm")
        session.connect()
        tree = TreeConnect(session, r"\\127.0.0.1\share")
        tree.connect()
        opens = open_many(tree, HANDLES)
        # the server's volatile ids, as the client holds them (FileId: persistent, volatile)
        held = {int.from_bytes(bytes(f.file_id)[8:16], "little"): f.file_name for f in opens}
        assert len(held) == HANDLES

        status, st = timed_call(sock, "status")
        assert status == 0 and st["opens"] == HANDLES

        # what a plain `ubus call ksmbd open_files` gets: the first page, and how many there are
        status, first = timed_call(sock, "open_files")
        assert status == 0, first
        assert first["total"] == HANDLES and first["offset"] == 0
        assert 0 < len(first["open_files"]) < HANDLES
        assert len(blob.encode_members(first)) < UBUS_MAX_MSGLEN // 2

        seen: list[dict] = []
        offset = 0
        for _ in range(HANDLES):  # bounded: each page holds at least one entry
            if offset >= first["total"]:
                break
            status, page = timed_call(sock, "open_files", {"offset": offset, "limit": 500})
            assert status == 0, page
            assert page["offset"] == offset and page["total"] == HANDLES
            assert 0 < len(page["open_files"]) <= 500
            seen += page["open_files"]
            offset += len(page["open_files"])
        assert len(seen) == HANDLES
        assert {e["id"]: e["path"].replace("/", "\\") for e in seen} == held
        assert all(e["share"] == "share" and e["user"] == "alice" for e in seen)

        # asking for everything at once still gets one bounded page, not a lost reply
        status, big = timed_call(sock, "open_files", {"limit": 1_000_000})
        assert status == 0 and big["total"] == HANDLES
        assert 0 < len(big["open_files"]) < HANDLES
        assert len(blob.encode_members(big)) < UBUS_MAX_MSGLEN // 2
        # past the end: an empty page, still with the total
        status, past = timed_call(sock, "open_files", {"offset": HANDLES})
        assert status == 0 and past["open_files"] == [] and past["total"] == HANDLES

        status, sessions = timed_call(sock, "sessions")
        assert status == 0 and sessions["sessions"][0]["open_count"] == HANDLES

        # the server never lost its ubusd connection: same object, no warning
        assert object_id(ubusd) == obj
        assert "WARNING ksmbd.ubus" not in srv.log(), srv.log()
        assert "registered" in srv.log() and srv.log().count("registered (id") == 1
    finally:
        if conn is not None:
            try:
                conn.disconnect()  # the server closes all 4,000 handles with the connection
            except Exception:
                pass
        code = srv.stop() if srv is not None else 0
        ubusd.stop()
    assert code == 0, srv.log()
    assert "Traceback" not in srv.log(), srv.log()
    assert time.monotonic() - began < 30


def _messages(data: bytes) -> list[m.Message]:
    """Whole messages in a byte stream; the stream must hold nothing else."""
    out, pos = [], 0
    while pos < len(data):
        end = pos + m.message_length(data[pos:pos + 12])
        assert end <= len(data), "a message cut short"
        out.append(m.Message.decode(data[pos:end]))
        pos = end
    return out


def _read(sock: socket.socket) -> m.Message:
    """Exactly one message."""
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            assert chunk, "ubusd closed the connection"
            data += chunk
        return data
    head = exactly(12)
    return m.Message.decode(head + exactly(m.message_length(head) - 12))


def test_fake_ubusd_keeps_ubusds_limits(tmp_path):
    """As ubusd: what a client does not read is queued up to 1 MiB and the rest dropped
    (whole messages), while other clients are served; one announcing a message over 1 MiB
    is disconnected and its object goes."""
    sock = str(tmp_path / "ubus.sock")
    ubusd = FakeUbusd(sock).start()
    slow = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    owner = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        slow.settimeout(5)
        slow.connect(sock)
        assert _read(slow).type == m.UBUS_MSG_HELLO
        ping = m.Message(m.UBUS_MSG_PING, 1, 0, [(m.UBUS_ATTR_DATA, {"x": "p" * 100_000})])
        count = 40  # 4 MB of echoes for a client that reads none of them yet
        sender = threading.Thread(target=lambda: slow.sendall(ping.encode() * count),
                                  daemon=True)
        sender.start()
        sender.join(10)
        assert not sender.is_alive(), "ubusd stopped reading a client that does not read"

        other.settimeout(3)  # meanwhile everyone else is served at once
        other.connect(sock)
        assert _read(other).type == m.UBUS_MSG_HELLO
        other.sendall(m.Message(m.UBUS_MSG_LOOKUP, 1, 0,
                                [(m.UBUS_ATTR_OBJPATH, "nothing")]).encode())
        status = _read(other)
        assert status.get(m.UBUS_ATTR_STATUS) == m.UBUS_STATUS_NOT_FOUND

        received = bytearray()
        slow.settimeout(1)
        for _ in range(10_000):
            try:
                chunk = slow.recv(1 << 20)
            except TimeoutError:
                break
            assert chunk
            received += chunk
        echoes = [x for x in _messages(bytes(received)) if x.type == m.UBUS_MSG_DATA]
        assert 0 < len(echoes) < count  # some were dropped, none was cut
        assert all(x.get(m.UBUS_ATTR_DATA) == {"x": "p" * 100_000} for x in echoes)
        slow.sendall(m.Message(m.UBUS_MSG_PING, 2, 0, []).encode())  # the queue drained
        slow.settimeout(3)
        assert [_read(slow).type, _read(slow).type] == [m.UBUS_MSG_DATA, m.UBUS_MSG_STATUS]

        owner.settimeout(3)
        owner.connect(sock)
        hello = _read(owner)
        owner.sendall(m.Message(m.UBUS_MSG_ADD_OBJECT, 1, 0, [
            (m.UBUS_ATTR_OBJPATH, "big"), (m.UBUS_ATTR_SIGNATURE, {})]).encode())
        assert [_read(owner).type, _read(owner).type] == [m.UBUS_MSG_DATA,
                                                            m.UBUS_MSG_STATUS]
        assert ubusd.object_paths() == ["big"]
        # a header announcing a blob of 1 MiB + 4: ubusd hangs up at once
        owner.sendall(bytes([0, m.UBUS_MSG_DATA, 0, 1, 0, 0, 0, 0])
                      + (UBUS_MAX_MSGLEN + 4).to_bytes(4, "big"))
        assert owner.recv(4096) == b""
        assert ubusd.object_paths() == []
        assert (hello.peer, "bad message length: blob length 1048580") in ubusd.dropped
    finally:
        for s in (slow, other, owner):
            s.close()
        ubusd.stop()

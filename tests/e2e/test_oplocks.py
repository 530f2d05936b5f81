"""Oplock breaks end to end with impacket (real clients on their own connections).

Client A opens with a batch oplock and writes; client B opens the same file; the server
sends A a break notification (to Level II), A acknowledges, and only then does B's CREATE
complete. A client that never acknowledges delays B by `oplock_break_wait` (2 s here) and
no more, while a third client is served without delay meanwhile."""

from __future__ import annotations

import threading
import time

import pytest
from impacket import smb3structs as s3
from impacket.smbconnection import SMBConnection

from .harness import start_server

BREAK_WAIT = 2  # oplock_break_wait of this server, seconds
NOTIFICATION_ID = 0xFFFFFFFFFFFFFFFF
FILE_READ_DATA, FILE_WRITE_DATA = 0x1, 0x2
SHARE_ALL = 0x7


@pytest.fixture
def oplock_server(tmp_path):
    srv = start_server(tmp_path / "srv",
                       extra_globals=f"\toption oplock_break_wait '{BREAK_WAIT}'\n")
    yield srv
    assert srv.stop() == 0, srv.log()
    assert "Traceback" not in srv.log(), srv.log()


def connect(server):
    conn = SMBConnection("127.0.0.1", "127.0.0.1", sess_port=server.port,
                         preferredDialect=s3.SMB2_DIALECT_30, timeout=15)
    conn.login("alice", "alice-pw")
    smb = conn.getSMBServer()
    return conn, smb, smb.connectTree("share")


# (impacket's write() needs bytesToWrite: left 0, it sends CreditCharge 0 and then moves its
# MessageId window back by one when the answer echoes it.)


def open_file(smb, tid, name, oplock=s3.SMB2_OPLOCK_LEVEL_NONE):
    return smb.create(tid, name, FILE_READ_DATA | FILE_WRITE_DATA, SHARE_ALL, 0,
                      s3.FILE_OPEN_IF, s3.FILE_ATTRIBUTE_NORMAL, oplockLevel=oplock)


def wait_for_break(smb):
    """The next break notification on this connection (impacket parks unsolicited
    messages by MessageId)."""
    packet = smb.recvSMB(NOTIFICATION_ID)
    assert packet["Command"] == s3.SMB2_OPLOCK_BREAK
    assert packet["CreditCharge"] == 0  # as Samba and Windows send it
    # impacket moves its MessageId window by CreditCharge - 1 for every message it takes
    # this way, an unsolicited one too: give back the one it took.
    smb._Connection["SequenceWindow"] += 1
    assert packet["SessionID"] == 0 and packet["TreeID"] == 0
    return s3.SMB2OplockBreakNotification(packet["Data"])


def acknowledge(smb, tid, fid, level):
    packet = smb.SMB_PACKET()
    packet["Command"] = s3.SMB2_OPLOCK_BREAK
    packet["TreeID"] = tid
    ack = s3.SMB2OplockBreakAcknowledgment()
    ack["OplockLevel"] = level
    ack["FileID"] = fid
    packet["Data"] = ack
    answer = smb.recvSMB(smb.sendSMB(packet))
    assert answer["Status"] == 0
    return s3.SMB2OplockBreakResponse(answer["Data"])["OplockLevel"]


class Opener(threading.Thread):
    """Client B: opens the file in the background and records when its CREATE finished."""

    def __init__(self, server, name):
        super().__init__(daemon=True)
        self.server, self.name_ = server, name
        self.done_at = None
        self.error = None
        self.conn = None

    def run(self):
        try:
            self.conn, smb, tid = connect(self.server)
            self.started = time.monotonic()
            open_file(smb, tid, self.name_, s3.SMB2_OPLOCK_LEVEL_II)
            self.done_at = time.monotonic()
        except Exception as exc:  # reported by the test
            self.error = exc


def test_break_acknowledged_then_second_open_completes(oplock_server):
    conn_a, a, tid_a = connect(oplock_server)
    try:
        fid = open_file(a, tid_a, "doc.txt", s3.SMB2_OPLOCK_LEVEL_BATCH)
        a.write(tid_a, fid, b"hello from A", 0, 12)
        b = Opener(oplock_server, "doc.txt")
        b.start()
        note = wait_for_break(a)
        assert note["OplockLevel"] == s3.SMB2_OPLOCK_LEVEL_II
        assert note["FileID"].getData() == fid
        time.sleep(0.3)
        assert b.done_at is None and b.error is None  # B waits for the acknowledgment
        acked_at = time.monotonic()
        assert acknowledge(a, tid_a, fid, s3.SMB2_OPLOCK_LEVEL_II) == s3.SMB2_OPLOCK_LEVEL_II
        b.join(10)
        assert b.error is None and b.done_at is not None
        assert b.done_at >= acked_at
        assert b.done_at - acked_at < 1.0  # and right after it, not at the timeout
        assert (oplock_server.shares["share"] / "doc.txt").read_bytes() == b"hello from A"
        b.conn.close()
    finally:
        conn_a.close()


def test_silent_holder_delays_by_break_wait_only(oplock_server):
    conn_a, a, tid_a = connect(oplock_server)
    conn_c, c, tid_c = connect(oplock_server)
    try:
        fid = open_file(a, tid_a, "held.txt", s3.SMB2_OPLOCK_LEVEL_BATCH)
        a.write(tid_a, fid, b"x", 0, 1)
        b = Opener(oplock_server, "held.txt")
        b.start()
        wait_for_break(a)  # and never acknowledge it
        # Meanwhile a third client is served at once.
        slowest = 0.0
        while b.is_alive() and b.done_at is None:
            t0 = time.monotonic()
            other = open_file(c, tid_c, "other.txt")
            c.write(tid_c, other, b"c", 0, 1)
            c.close(tid_c, other)
            slowest = max(slowest, time.monotonic() - t0)
            time.sleep(0.05)
        b.join(10)
        assert b.error is None and b.done_at is not None
        waited = b.done_at - b.started
        assert BREAK_WAIT - 0.2 <= waited <= BREAK_WAIT + 1.5, waited
        assert slowest < 0.5, slowest
        b.conn.close()
    finally:
        conn_a.close()
        conn_c.close()


def test_oplocks_off_per_share(tmp_path):
    srv = start_server(tmp_path / "srv", shares={
        "share": {"read_only": "no", "users": ["alice"], "oplocks": "no"}})
    try:
        conn_a, a, tid_a = connect(srv)
        fid = open_file(a, tid_a, "f.txt", s3.SMB2_OPLOCK_LEVEL_BATCH)
        t0 = time.monotonic()
        b = Opener(srv, "f.txt")
        b.start()
        b.join(10)
        assert b.error is None and b.done_at - t0 < 1.0  # no oplock, so no break to wait for
        assert fid
        conn_a.close()
        b.conn.close()
    finally:
        assert srv.stop() == 0

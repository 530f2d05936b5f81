"""A share on a real exFAT file system (exfat-fuse on a loop device): the "big file copy
stalls" problem (research notes section 3, fs/deferred_size.py).

Windows pre-sizes a copy with SET_INFO FileEndOfFileInformation; on exFAT before Linux 6.8,
vfat and FUSE drivers an extending ftruncate zero-fills the whole file first. The server
defers the extension: the SET_INFO answers at once, the size is reported, reads of the
unwritten part are zeros, and the disk has the right size after the last close.

Needs root, /dev/fuse and /dev/loop-control, and Debian's exfatprogs + exfat-fuse (installed
here when missing, as scripts/install-test-deps does). A machine without them FAILS this test:
it is not skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from smbprotocol.connection import Connection
from smbprotocol.exceptions import EndOfFile
from smbprotocol.file_info import (
    FileEndOfFileInformation, FileInformationClass, FileStandardInformation, InfoType,
)
from smbprotocol.open import (
    CreateDisposition, CreateOptions, FileAttributes, FilePipePrinterAccessMask, ImpersonationLevel,
    Open, ShareAccess, SMB2QueryInfoRequest, SMB2QueryInfoResponse, SMB2SetInfoRequest,
    SMB2SetInfoResponse,
)
from smbprotocol.session import Session
from smbprotocol.tree import TreeConnect

from . import harness
from .harness import start_server

GIB = 1 << 30
MIB = 1 << 20


def _run(*cmd: str, timeout: float = 120) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout.strip()


def _require_tools() -> None:
    if os.geteuid() != 0:
        pytest.fail("test_exfat needs root (losetup and mount of an exFAT image)")
    for dev in ("/dev/fuse", "/dev/loop-control"):
        if not os.path.exists(dev):
            pytest.fail(f"test_exfat needs {dev} (FUSE and loop devices) to mount exFAT")
    if shutil.which("mkfs.exfat") is None or shutil.which("mount.exfat-fuse") is None:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for cmd in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                     "exfatprogs", "exfat-fuse"]):
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
            if proc.returncode != 0:
                pytest.fail(f"installing exfatprogs/exfat-fuse failed: {proc.stderr.strip()}")
    if shutil.which("mkfs.exfat") is None or shutil.which("mount.exfat-fuse") is None:
        pytest.fail("mkfs.exfat / mount.exfat-fuse missing (packages exfatprogs, exfat-fuse)")


@pytest.fixture(scope="module")
def exfat_mount(tmp_path_factory):
    """A 3 GiB exFAT file system (sparse image on a loop device, exfat-fuse), mounted."""
    _require_tools()
    base = tmp_path_factory.mktemp("exfat")
    image = base / "exfat.img"
    mountpoint = base / "mnt"
    mountpoint.mkdir()
    with open(image, "wb") as f:
        f.truncate(3 * GIB)
    _run("mkfs.exfat", "-L", "USBSTICK", str(image))
    loop = _run("losetup", "-f", "--show", str(image))
    mounted = False
    try:
        _run("mount.exfat-fuse", loop, str(mountpoint))
        mounted = True
        fstype = _mount_type(mountpoint)
        assert fstype is not None and fstype.startswith("fuse"), fstype
        yield mountpoint
    finally:
        if mounted:
            subprocess.run(["umount", str(mountpoint)], capture_output=True, timeout=120)
        for _ in range(50):
            if subprocess.run(["losetup", "-d", loop], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        image.unlink(missing_ok=True)


def _mount_type(path: Path) -> str | None:
    real = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if left.split()[4] == real:
                return right.split()[0]
    return None


@pytest.fixture(scope="module")
def exfat_server(exfat_mount, tmp_path_factory):
    saved = harness._next_port[0]
    harness._next_port[0] = 4800 + os.getpid() % 90  # this module's servers: 4800-4899
    try:
        srv = start_server(tmp_path_factory.mktemp("srv"), shares={
            "usb": {"path": str(exfat_mount), "read_only": "no", "users": ["alice"]}})
    finally:
        harness._next_port[0] = saved
    try:
        yield srv
    finally:
        code = srv.stop()
    assert code == 0, f"server did not stop cleanly ({code}):\n{srv.log()}"
    assert "Traceback" not in srv.log(), srv.log()


@pytest.fixture
def tree(exfat_server):
    # Not signed: READ payloads then go out with os.sendfile, the path that pads zeros past
    # the data on disk.
    conn = Connection(uuid.uuid4(), "127.0.0.1", exfat_server.port, require_signing=False)
    conn.connect(timeout=15)
    session = Session(conn, "alice", "alice-pw", require_encryption=False, auth_protocol="ntlm")
    session.connect()
    assert not session.signing_required and not session.encrypt_data
    tree = TreeConnect(session, r"\\127.0.0.1\usb")
    tree.connect()
    try:
        yield tree
    finally:
        tree.disconnect()
        session.disconnect()
        conn.disconnect()


def _create(tree, name: str) -> Open:
    f = Open(tree, name)
    f.create(ImpersonationLevel.Impersonation,
             FilePipePrinterAccessMask.GENERIC_READ | FilePipePrinterAccessMask.GENERIC_WRITE,
             FileAttributes.FILE_ATTRIBUTE_NORMAL, ShareAccess.FILE_SHARE_READ,
             CreateDisposition.FILE_OVERWRITE_IF, CreateOptions.FILE_NON_DIRECTORY_FILE)
    return f


def _set_end_of_file(f: Open, size: int) -> float:
    """SET_INFO FileEndOfFileInformation; returns the seconds it took."""
    info = FileEndOfFileInformation()
    info["end_of_file"] = size
    req = SMB2SetInfoRequest()
    req["info_type"] = info.INFO_TYPE
    req["file_info_class"] = info.INFO_CLASS
    req["file_id"] = f.file_id
    req["buffer"] = info
    conn = f.connection
    start = time.monotonic()
    request = conn.send(req, sid=f.tree_connect.session.session_id,
                        tid=f.tree_connect.tree_connect_id)
    response = conn.receive(request, timeout=600)
    elapsed = time.monotonic() - start
    SMB2SetInfoResponse().unpack(response["data"].get_value())
    return elapsed


def _end_of_file(f: Open) -> int:
    req = SMB2QueryInfoRequest()
    req["info_type"] = InfoType.SMB2_0_INFO_FILE
    req["file_info_class"] = FileInformationClass.FILE_STANDARD_INFORMATION
    req["file_id"] = f.file_id
    req["output_buffer_length"] = 24
    conn = f.connection
    request = conn.send(req, sid=f.tree_connect.session.session_id,
                        tid=f.tree_connect.tree_connect_id)
    resp = SMB2QueryInfoResponse()
    resp.unpack(conn.receive(request)["data"].get_value())
    return resp.parse_buffer(FileStandardInformation)["end_of_file"].get_value()


def _write(f: Open, data: bytes, offset: int) -> None:
    step = f.connection.max_write_size
    for i in range(0, len(data), step):
        assert f.write(data[i:i + step], offset + i) == len(data[i:i + step])


def _read(f: Open, offset: int, length: int) -> bytes:
    step = f.connection.max_read_size
    parts = []
    for i in range(0, length, step):
        parts.append(f.read(offset + i, min(step, length - i)))
    return b"".join(parts)


def test_presize_2gib_then_write_read_close(tree, exfat_mount):
    name = "big.bin"
    path = exfat_mount / name
    f = _create(tree, name)
    try:
        took = _set_end_of_file(f, 2 * GIB)
        print(f"\nSET_INFO FileEndOfFileInformation 2 GiB on exfat-fuse: {took:.3f} s")
        assert os.stat(path).st_size == 0  # nothing written to the disk yet
        assert _end_of_file(f) == 2 * GIB

        head = os.urandom(8 * MIB)
        _write(f, head, 0)
        # the unwritten part reads as zeros (past the data on disk), the end is END_OF_FILE
        assert _read(f, GIB, 4 * MIB) == bytes(4 * MIB)
        assert _read(f, len(head) - 64 * 1024, 128 * 1024) == head[-64 * 1024:] + bytes(64 * 1024)
        assert f.read(2 * GIB - 10, 100) == bytes(10)
        with pytest.raises(EndOfFile):
            f.read(2 * GIB, 1)
        assert _read(f, 0, len(head)) == head
        assert _end_of_file(f) == 2 * GIB

        tail = os.urandom(4 * MIB)
        _write(f, tail, 2 * GIB - len(tail))
        assert _read(f, 0, len(head)) == head
        assert _read(f, 2 * GIB - len(tail), len(tail)) == tail
        assert _read(f, GIB, MIB) == bytes(MIB)
        assert _end_of_file(f) == 2 * GIB
    finally:
        f.close()
    assert os.stat(path).st_size == 2 * GIB
    with open(path, "rb") as disk:
        assert disk.read(len(head)) == head
        disk.seek(2 * GIB - len(tail))
        assert disk.read() == tail
    path.unlink()


def test_presized_but_not_fully_written_gets_its_size_at_close(tree, exfat_mount):
    name = "partial.bin"
    path = exfat_mount / name
    size = 64 * MIB
    f = _create(tree, name)
    try:
        _set_end_of_file(f, size)
        data = os.urandom(3 * MIB + 5)
        _write(f, data, 0)
        assert os.stat(path).st_size == len(data)
        assert _end_of_file(f) == size
        _set_end_of_file(f, size - MIB)  # shrinking the deferred size touches nothing either
        assert os.stat(path).st_size == len(data)
        assert _end_of_file(f) == size - MIB
    finally:
        f.close()
    assert os.stat(path).st_size == size - MIB
    with open(path, "rb") as disk:
        assert disk.read(len(data)) == data
        assert disk.read() == bytes(size - MIB - len(data))
    path.unlink()

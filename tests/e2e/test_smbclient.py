"""End to end with Debian's smbclient: every dialect, signing/encryption, user and guest."""

import os

import pytest

from .smbclient_tool import DIALECTS, assert_ok, output, smbclient

FILE_OPS = ("put upload.bin up.bin; get up.bin down.bin; mkdir newdir; ls; allinfo up.bin; "
            "rename up.bin moved.bin; ls; del moved.bin; rmdir newdir; ls")


def _workdir(tmp_path, size=300_000):
    work = tmp_path / "client"
    work.mkdir()
    data = os.urandom(size)
    (work / "upload.bin").write_bytes(data)
    return work, data


def _check_file_ops(server, work, data, text, share="share"):
    assert (work / "down.bin").read_bytes() == data
    assert "newdir" in text and "up.bin" in text
    assert "create_time:" in text and "attributes:" in text  # allinfo printed
    root = server.shares[share]
    assert not (root / "moved.bin").exists() and not (root / "newdir").exists()


@pytest.mark.parametrize("dialect", DIALECTS)
def test_file_operations_each_dialect(server, tmp_path, dialect):
    work, data = _workdir(tmp_path)
    text = assert_ok(smbclient(server.port, "share", FILE_OPS, dialect=dialect, cwd=work))
    _check_file_ops(server, work, data, text)


@pytest.mark.parametrize("dialect,protection", [
    ("SMB2_10", "sign"), ("SMB3_00", "sign"), ("SMB3_02", "sign"), ("SMB3_11", "sign"),
    ("SMB3_00", "encrypt"), ("SMB3_02", "encrypt"), ("SMB3_11", "encrypt"),
    ("SMB3_11", "off"),
])
def test_file_operations_signed_and_encrypted(server, tmp_path, dialect, protection):
    work, data = _workdir(tmp_path)
    text = assert_ok(smbclient(server.port, "share", FILE_OPS, dialect=dialect,
                               protection=protection, cwd=work))
    _check_file_ops(server, work, data, text)


@pytest.mark.parametrize("dialect", ("SMB2_10", "SMB3_11"))
def test_guest_file_operations(server, tmp_path, dialect):
    work, data = _workdir(tmp_path)
    text = assert_ok(smbclient(server.port, "public", FILE_OPS, user=None, dialect=dialect,
                               cwd=work))
    _check_file_ops(server, work, data, text, share="public")


def test_unknown_user_maps_to_guest_on_guest_share(server, tmp_path):
    assert_ok(smbclient(server.port, "public", "ls", user="nosuchuser", password="x"))


def test_guest_refused_on_user_share(server):
    result = smbclient(server.port, "share", "ls", user=None)
    assert "NT_STATUS_ACCESS_DENIED" in output(result)


def test_wrong_password_refused(server):
    result = smbclient(server.port, "share", "ls", user="alice", password="wrong")
    assert result.returncode != 0
    assert "NT_STATUS_LOGON_FAILURE" in output(result)
    assert "logon failure" in server.log()


def test_read_only_share_refuses_writes(server, tmp_path):
    work, _ = _workdir(tmp_path, 1000)
    (server.shares["readonly"] / "existing.txt").write_text("hello")
    result = smbclient(server.port, "readonly", "put upload.bin x.bin", user=None, cwd=work)
    assert "NT_STATUS_ACCESS_DENIED" in output(result)
    assert not (server.shares["readonly"] / "x.bin").exists()
    text = assert_ok(smbclient(server.port, "readonly", "get existing.txt got.txt",
                               user=None, cwd=work))
    assert (work / "got.txt").read_text() == "hello", text


def test_64mib_file_byte_for_byte(server, tmp_path):
    work = tmp_path / "big"
    work.mkdir()
    data = os.urandom(64 * 1024 * 1024)
    (work / "big.bin").write_bytes(data)
    assert_ok(smbclient(server.port, "share", "put big.bin big.bin; get big.bin back.bin",
                        dialect="SMB3_11", cwd=work, timeout=300))
    assert (server.shares["share"] / "big.bin").read_bytes() == data
    assert (work / "back.bin").read_bytes() == data


def test_64mib_file_encrypted(server, tmp_path):
    work = tmp_path / "bigenc"
    work.mkdir()
    data = os.urandom(64 * 1024 * 1024)
    (work / "big.bin").write_bytes(data)
    assert_ok(smbclient(server.port, "share", "put big.bin big.bin; get big.bin back.bin",
                        dialect="SMB3_11", protection="encrypt", cwd=work, timeout=300))
    assert (work / "back.bin").read_bytes() == data

"""MD4 (RFC 1320 test suite) and the ksmbdpwd.db user database."""

import base64
import os
import stat

import pytest

from ksmbd_embedded.md4 import md4
from ksmbd_embedded.pwddb import (PasswordDb, nt_hash, validate_password,
                                  validate_user_name)

# RFC 1320 appendix A.5
RFC1320 = [
    (b"", "31d6cfe0d16ae931b73c59d7e0c089c0"),
    (b"a", "bde52cb31de33e46245e05fbdbd6fb24"),
    (b"abc", "a448017aaf21d8525fc10ae87aa6729d"),
    (b"message digest", "d9130a8164549fe818874806e1c7014b"),
    (b"abcdefghijklmnopqrstuvwxyz", "d79e1c308aa5bbcdeea8ed63df412da9"),
    (b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
     "043f8582f241db351ce627e153e7f0e4"),
    (b"1234567890" * 8, "e33b4ddc9c38f2199c3e7b164fcc0536"),
]

PASSWORD_HASH = bytes.fromhex("8846F7EAEE8FB117AD06BDD830B7586C")


@pytest.mark.parametrize("data,digest", RFC1320)
def test_md4_rfc1320(data, digest):
    assert md4(data).hex() == digest


def test_md4_padding_boundaries():
    # lengths around the 56-byte padding boundary and a multi-block message all work
    # and differ from each other
    digests = {md4(b"x" * n) for n in range(50, 130)}
    assert len(digests) == 80
    assert all(len(d) == 16 for d in digests)


def test_nt_hash():
    assert nt_hash("password") == PASSWORD_HASH
    assert nt_hash("") == bytes.fromhex("31d6cfe0d16ae931b73c59d7e0c089c0")


def test_load_missing_is_empty(tmp_path):
    db = PasswordDb.load(tmp_path / "nope.db")
    assert db.names() == [] and len(db) == 0 and db.warnings == []


def test_round_trip_and_format(tmp_path):
    path = tmp_path / "etc" / "ksmbd" / "ksmbdpwd.db"
    db = PasswordDb()
    db.set("alice", nt_hash("password"))
    db.set("Bob", nt_hash("secret"))
    db.save(path)
    text = path.read_text()
    assert text == ("alice:iEb36u6PsRetBr3YMLdYbA==\n"
                    f"Bob:{base64.b64encode(nt_hash('secret')).decode()}\n")
    again = PasswordDb.load(path)
    assert again.names() == ["alice", "Bob"]
    assert again.get("ALICE") == PASSWORD_HASH
    assert again.get("bob") == nt_hash("secret")
    assert "BOB" in again and "carol" not in again


def test_save_mode_and_atomic(tmp_path):
    path = tmp_path / "sub" / "ksmbdpwd.db"
    db = PasswordDb()
    db.set("u", PASSWORD_HASH)
    old = os.umask(0)
    try:
        db.save(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    db.save(path)  # replaced file gets 0600 again
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["ksmbdpwd.db"]  # no temp left


def test_malformed_lines_skipped(tmp_path):
    path = tmp_path / "db"
    good = base64.b64encode(PASSWORD_HASH).decode()
    path.write_bytes(
        f"alice:{good}\n"
        "\n"
        "nocolon\n"
        f":{good}\n"
        "bob:not-base64!\n"
        f"carol:{base64.b64encode(b'short').decode()}\n"
        f"ALICE:{good}\n"
        f"dave:{good}\r\n".encode() + b"\xff\xfe:" + good.encode() + b"\n")
    db = PasswordDb.load(path)
    assert db.names() == ["alice", "dave"]
    assert len(db.warnings) == 6
    assert db.warnings[0].startswith(f"{path}:3: no ':'")
    assert all("line skipped" in w for w in db.warnings)


def test_set_replace_delete():
    db = PasswordDb()
    db.set("Alice", PASSWORD_HASH)
    db.set("alice", nt_hash("x"))
    assert db.names() == ["alice"]
    assert db.get("ALICE") == nt_hash("x")
    assert db.delete("ALICE") is True
    assert db.delete("alice") is False
    with pytest.raises(ValueError):
        db.set("bob", b"short")


@pytest.mark.parametrize("name", ["", "a:b", "a\nb", "x" * 48, "é" * 24])
def test_bad_user_names(name):
    with pytest.raises(ValueError):
        validate_user_name(name)
    with pytest.raises(ValueError):
        PasswordDb().set(name, PASSWORD_HASH)


@pytest.mark.parametrize("name", ["a", "x" * 47, "é" * 23, "user.name-1", "Grüße"])
def test_good_user_names(name):
    validate_user_name(name)


def test_password_length():
    validate_password("")
    validate_password("p" * 128)
    with pytest.raises(ValueError):
        validate_password("p" * 129)

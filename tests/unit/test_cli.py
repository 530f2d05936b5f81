"""The console command, run in-process: user management, check-config, serve wiring."""

import io
import logging
import sys
import types

import pytest

from ksmbd_embedded import cli
from ksmbd_embedded.pwddb import PasswordDb, nt_hash

PASSWORD_HASH = bytes.fromhex("8846F7EAEE8FB117AD06BDD830B7586C")


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "etc" / "ksmbd" / "ksmbdpwd.db"


def run(capsys, *argv, stdin=None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_user_add_list_update_del(capsys, monkeypatch, db_path):
    rc, out, _ = run(capsys, "user", "add", "alice", "--pwddb", db_path,
                     "--password", "password")
    assert rc == 0 and "added" in out
    assert PasswordDb.load(db_path).get("alice") == PASSWORD_HASH

    rc, _, _ = run(capsys, "user", "add", "bob", "--pwddb", db_path, "--password-stdin",
                   stdin="s3cret\nignored\n", monkeypatch=monkeypatch)
    assert rc == 0 and PasswordDb.load(db_path).get("BOB") == nt_hash("s3cret")

    rc, out, _ = run(capsys, "user", "list", "--pwddb", db_path)
    assert (rc, out) == (0, "alice\nbob\n")

    rc, _, err = run(capsys, "user", "add", "ALICE", "--pwddb", db_path, "--password", "x")
    assert rc == 1 and "already exists" in err

    rc, _, _ = run(capsys, "user", "update", "Alice", "--pwddb", db_path, "--password", "n")
    db = PasswordDb.load(db_path)
    assert rc == 0 and db.get("alice") == nt_hash("n") and db.names() == ["alice", "bob"]

    rc, _, err = run(capsys, "user", "update", "carol", "--pwddb", db_path,
                     "--password", "x")
    assert rc == 1 and "does not exist" in err

    rc, out, _ = run(capsys, "user", "del", "BOB", "--pwddb", db_path)
    assert rc == 0 and "deleted" in out and PasswordDb.load(db_path).names() == ["alice"]
    rc, _, err = run(capsys, "user", "del", "bob", "--pwddb", db_path)
    assert rc == 1 and "does not exist" in err


def test_user_prompts_twice(capsys, monkeypatch, db_path):
    answers = iter(["pw1", "pw1"])
    monkeypatch.setattr(cli.getpass, "getpass", lambda prompt="": next(answers))
    assert run(capsys, "user", "add", "u", "--pwddb", db_path)[0] == 0
    assert PasswordDb.load(db_path).get("u") == nt_hash("pw1")

    answers = iter(["pw2", "typo"])
    rc, _, err = run(capsys, "user", "update", "u", "--pwddb", db_path)
    assert rc == 1 and "do not match" in err
    assert PasswordDb.load(db_path).get("u") == nt_hash("pw1")


@pytest.mark.parametrize("name", ["a:b", "x" * 48])
def test_user_bad_name(capsys, db_path, name):
    rc, _, err = run(capsys, "user", "add", name, "--pwddb", db_path, "--password", "x")
    assert rc == 1 and "user name" in err
    assert not db_path.exists()


def test_user_bad_password(capsys, db_path):
    rc, _, err = run(capsys, "user", "add", "u", "--pwddb", db_path, "--password", "p" * 129)
    assert rc == 1 and "128" in err


def test_user_missing_name(capsys, db_path):
    rc, _, err = run(capsys, "user", "add", "--pwddb", db_path, "--password", "x")
    assert rc == 2 and "needs a user name" in err


def test_user_list_empty_and_warnings(capsys, db_path):
    assert run(capsys, "user", "list", "--pwddb", db_path)[:2] == (0, "")
    db_path.parent.mkdir(parents=True)
    db_path.write_text("garbage\nok:iEb36u6PsRetBr3YMLdYbA==\n")
    rc, out, err = run(capsys, "user", "list", "--pwddb", db_path)
    assert (rc, out) == (0, "ok\n") and "line skipped" in err


def test_password_options_exclusive(capsys, db_path):
    with pytest.raises(SystemExit) as info:
        cli.main(["user", "add", "u", "--pwddb", str(db_path), "--password", "x",
                  "--password-stdin"])
    assert info.value.code == 2


def test_check_config(capsys, tmp_path):
    conf = tmp_path / "ksmbd"
    conf.write_text(f"config share 'a'\n\toption path '{tmp_path}'\n\toption foo 'x'\n")
    rc, out, err = run(capsys, "check-config", "--config", conf)
    assert rc == 0 and "OK, 1 share(s)" in out
    assert f"warning: {conf}:3: unknown option 'foo' in share 'a'" in err

    conf.write_text("config share 'a'\n\toption path '/definitely/not/here'\n")
    rc, out, err = run(capsys, "check-config", "--config", conf)
    assert rc == 0 and "OK, 0 share(s)" in out
    assert f"warning: {conf}:2: " in err and "does not exist" in err
    assert run(capsys, "check-config", "--config", conf, "--no-check-paths")[0] == 0
    (tmp_path / "file").write_text("x")
    conf.write_text(f"config share 'a'\n\toption path '{tmp_path / 'file'}'\n")
    rc, out, err = run(capsys, "check-config", "--config", conf)
    assert rc == 2 and err.startswith(f"error: {conf}:2: ") and "not a directory" in err

    extra = tmp_path / "runtime"
    extra.write_text("config share 'b'\n\toption guest_ok 'perhaps'\n\toption path '/x'\n")
    rc, _, err = run(capsys, "check-config", "--config", conf, "--config-extra", extra,
                     "--no-check-paths")
    assert rc == 2 and f"{extra}:2:" in err

    rc, _, err = run(capsys, "check-config", "--config", tmp_path / "missing")
    assert rc == 2 and "not found" in err


def test_serve_calls_run_server(capsys, monkeypatch, tmp_path):
    calls = []
    fake = types.ModuleType("ksmbd_embedded.server")
    fake.run_server = lambda **kw: calls.append(kw) or 0
    monkeypatch.setitem(sys.modules, "ksmbd_embedded.server", fake)
    monkeypatch.setattr(logging.getLogger(), "level", logging.WARNING)
    conf = tmp_path / "ksmbd"
    conf.write_text(f"config share 'a'\n\toption path '{tmp_path}'\n")

    rc = cli.main(["serve", "--config", str(conf), "--config-extra", "/x/1",
                   "--config-extra", "/x/2", "--pwddb", "/p.db", "--listen", "127.0.0.1",
                   "--listen", "::1", "--port", "4445", "--log-level", "debug"])
    assert rc == 0
    assert calls == [dict(config_path=str(conf), extra_paths=["/x/1", "/x/2"],
                          pwddb_path="/p.db", listen=["127.0.0.1", "::1"], port=4445,
                          ubus_socket=None, user_conf=None, generated_conf=None,
                          pid_file=None)]
    assert logging.getLogger().level == logging.DEBUG

    assert cli.main(["serve", "--config", str(conf)]) == 0
    assert calls[-1] == dict(config_path=str(conf), extra_paths=[],
                             pwddb_path="/etc/ksmbd/ksmbdpwd.db", listen=None, port=None,
                             ubus_socket=None, user_conf=None, generated_conf=None,
                             pid_file=None)

    conf.write_text("config bogus\n")
    assert cli.main(["serve", "--config", str(conf)]) == 2
    assert "unknown section type" in capsys.readouterr().err
    assert len(calls) == 2

"""A short run of the project's fuzzer (`make fuzz` runs the long one).

Every seed, sent unmutated, must get the answers its builder expects (so the builders, the NTLMv2
logon and the prefixes are right and the fuzzer really reaches the post-logon handlers); then
~1,000 mutated cases, bounded to 20 s, must find nothing and leave the server healthy, with at
least 10 different commands answered without an error status to the fuzzed requests.

Two more check the oracle itself: a traceback in the log and a killed server are seen, and
malformed response streams are refused as SMB2 framing.

KSMBD_FUZZ_SEED=N runs the smoke with another seed (default 11, the issue's number, so a failure
reproduces: `scripts/fuzz --seed 11 --count 1000`).
"""

from __future__ import annotations

import json
import os
import struct

import pytest

from . import smb2_builders as b
from .client import FramingError, parse_stream
from .engine import Fuzzer, signature

SMOKE_CASES = 1000
SMOKE_SECONDS = 20
SMOKE_SEED = int(os.environ.get("KSMBD_FUZZ_SEED", "11"))


@pytest.fixture(scope="module")
def fuzzer(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    fz = Fuzzer(tmp / "work", out_dir=tmp / "findings", seed=SMOKE_SEED, batch=100)
    fz.start()
    yield fz
    server = fz.server
    fz.stop()
    assert server.proc.returncode == 0, f"server did not stop cleanly:\n{server.log()[-4000:]}"


def test_every_seed_is_valid(fuzzer):
    failures, answered = fuzzer.check_seeds()
    assert not failures, "\n".join(failures)
    # every command the server implements answers some seed with success
    assert set(answered) >= {
        "NEGOTIATE", "SESSION_SETUP", "LOGOFF", "TREE_CONNECT", "TREE_DISCONNECT", "CREATE",
        "CLOSE", "FLUSH", "READ", "WRITE", "LOCK", "IOCTL", "ECHO", "QUERY_DIRECTORY",
        "QUERY_INFO", "SET_INFO"}, sorted(answered)


def test_fuzz_smoke(fuzzer):
    stats = fuzzer.run(SMOKE_CASES, SMOKE_SECONDS)
    found = [json.loads(p.read_text()) for p in stats.new_findings]
    assert stats.findings == 0, (
        f"{stats.line(SMOKE_SEED)}\n{stats.signatures}\n" + json.dumps(found, indent=1))
    assert stats.cases >= min(SMOKE_CASES, 200), stats.line(SMOKE_SEED)
    assert stats.health_checks >= 2 and stats.unhealthy == 0, stats.line(SMOKE_SEED)
    # The mutated requests get past logon: at least 10 commands answered without an error.
    assert len(stats.answered) >= 10, (dict(stats.answered), dict(stats.errors))
    assert fuzzer.health_check() is None
    assert fuzzer.server.alive()


def test_the_oracle_sees_a_traceback_and_a_dead_server(tmp_path):
    """The fuzzer notices what it is there to notice: a traceback in the log (with a signature
    that names where), and a server that died (restarted, reported)."""
    fz = Fuzzer(tmp_path / "work", out_dir=tmp_path / "found", seed=1, corpus=None)
    fz.start()
    try:
        fz.new_log()
        with open(fz.server.log_path, "a") as log:
            log.write('2026-01-01 00:00:00,000 ERROR ksmbd.conn: 127.0.0.1:5: ECHO failed\n'
                      'Traceback (most recent call last):\n'
                      '  File "/x/ksmbd_embedded/connection.py", line 9, in _process\n'
                      '  File "/x/ksmbd_embedded/handlers/echo.py", line 17, in handle_echo\n'
                      'ValueError: injected by the test\n')
        (kind, detail), = fz.server_problems()
        assert kind == "traceback" and "ValueError: injected" in detail
        assert signature(kind, detail) == "traceback:ECHO failed:ValueError:echo.py:handle_echo"

        dead = fz.server
        dead.proc.kill()  # the server this test started
        dead.proc.wait(timeout=10)
        stats = fz.run(1, 20)
        assert "died" in stats.signatures, stats.signatures
        assert stats.restarts >= 1 and fz.server is not dead and fz.server.alive()
        assert fz.health_check() is None
        saved = [json.loads(p.read_text())["kind"] for p in stats.new_findings]
        assert "died" in saved, saved
    finally:
        fz.stop()


def _response(command: int, status: int, body: bytes, next_command: int = 0) -> bytes:
    header = struct.pack("<4sHHIHHIIQQQ16s", b"\xfeSMB", 64, 1, status, command, 1,
                         b.SMB2_FLAGS_SERVER_TO_REDIR, next_command, 7, 0, 0, bytes(16))
    return header + body


def test_the_framing_oracle():
    """What counts as "not parseable as SMB2" (client.parse_stream)."""
    echo = _response(b.ECHO, 0, b"\x04\x00\x00\x00")
    error = _response(b.READ, 0xC0000011, b"\x09\x00\x00\x00" + bytes(4) + b"\x00")
    frame = lambda payload: struct.pack(">I", len(payload)) + payload  # noqa: E731
    assert [r.name for r in parse_stream(frame(echo) + frame(error))] == ["ECHO", "READ"]
    padded = echo + bytes(4)
    chained = padded[:20] + struct.pack("<I", len(padded)) + padded[24:] + error
    assert len(parse_stream(frame(chained))) == 2
    read_ok = _response(b.READ, 0, struct.pack("<HBBIII", 17, 80, 0, 4, 0, 0) + b"data")
    assert parse_stream(frame(read_ok))[0].status == 0
    bad = {
        "cut short": frame(echo)[:-1],
        "not Direct TCP": b"\x85" + frame(echo)[1:],
        "shorter than a header": frame(echo[:40]),
        "bad NextCommand": frame(echo[:20] + struct.pack("<I", 12) + echo[24:]),
        "StructureSize": frame(_response(b.ECHO, 0, b"\x05\x00\x00\x00")),
        "ByteCount": frame(_response(b.READ, 0xC0000011, b"\x09\x00\x00\x00\xff\x00\x00\x00")),
        "outside": frame(_response(b.READ, 0, struct.pack("<HBBIII", 17, 80, 0, 400, 0, 0))),
        "SERVER_TO_REDIR": frame(echo[:16] + bytes(4) + echo[20:]),
    }
    for what, stream in bad.items():
        with pytest.raises(FramingError):
            parse_stream(stream)
            pytest.fail(f"{what}: accepted")

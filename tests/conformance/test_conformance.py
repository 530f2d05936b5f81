"""The conformance ratchet: every smbtorture test in expected-pass.txt must still pass."""

import fnmatch
import re
from pathlib import Path

import pytest

from tests.e2e.harness import start_server

from .smbtorture_run import OPLOCK_TIMEOUT, run_smbtorture

HERE = Path(__file__).parent


def _test_name(line):
    """A list line's test name: up to two spaces or a tab (smbtorture names may hold one space,
    e.g. "smb2.ioctl.copy-chunk streams")."""
    return re.split(r"\s{2,}|\t", line.strip())[0]


def _listed(name):
    lines = (HERE / name).read_text().splitlines()
    return [_test_name(ln) for ln in lines if ln.strip() and not ln.startswith("#")]


EXPECTED = _listed("expected-pass.txt")


@pytest.fixture(scope="module")
def torture_server(tmp_path_factory):
    # A short oplock break timeout: smb2.oplock.batch22a waits for it (smbtorture is told
    # the same value, torture:oplocktimeout, in smbtorture_run.py).
    srv = start_server(tmp_path_factory.mktemp("torture"),
                       extra_globals=f"\toption oplock_break_wait '{OPLOCK_TIMEOUT}'\n")
    yield srv
    assert srv.stop() == 0, srv.log()


@pytest.mark.parametrize("test", EXPECTED)
def test_expected_pass(torture_server, test):
    verdict, text = run_smbtorture(torture_server.port, test)
    assert verdict == "PASS", f"{test}: {verdict}\n{text[-4000:]}"
    assert torture_server.alive(), torture_server.log()[-4000:]


def test_lists_do_not_overlap():
    assert not set(EXPECTED) & set(_listed("known-gaps.txt"))


def test_ksmbd_ci_list_accounted_for():
    """Every test of ksmbd's own CI list (ksmbd-ci-smbtorture.txt, copied into the repository)
    either passes here or is a known gap with its reason."""
    gaps = _listed("known-gaps.txt")
    missing = [t for t in _listed("ksmbd-ci-smbtorture.txt") if t not in set(EXPECTED)
               and not any(fnmatch.fnmatchcase(t, g) for g in gaps)]
    assert not missing, missing

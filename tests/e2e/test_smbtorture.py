"""smbtorture (Samba's conformance suite) against the server."""

import subprocess

import pytest

from .harness import USERS


@pytest.mark.parametrize("test", ["smb2.connect"])
def test_smbtorture(server, test):
    result = subprocess.run(
        ["smbtorture", "//127.0.0.1/share", "-p", str(server.port),
         "-U", f"alice%{USERS['alice']}", "--configfile=/dev/null", test],
        capture_output=True, text=True, timeout=300)
    text = result.stdout + result.stderr
    assert result.returncode == 0, text
    assert "success:" in text and "failure:" not in text and "error:" not in text, text

"""Run one smbtorture test against a server and classify the result."""

from __future__ import annotations

import re
import subprocess

from tests.e2e.harness import USERS

# Seconds the conformance server waits for an oplock break acknowledgment (its
# oplock_break_wait) and what smbtorture expects (smb2.oplock.batch22a times it).
OPLOCK_TIMEOUT = 3

_RESULT = re.compile(r"^(success|failure|error|skip|xfail|uxsuccess): (.+?)(?: \[|$)", re.M)


def run_smbtorture(port: int, test: str, share: str = "share", timeout: float = 300) -> tuple[str, str]:
    """Returns (PASS|FAIL|SKIP|TIMEOUT, output)."""
    args = ["smbtorture", f"//127.0.0.1/{share}", "-p", str(port), "-U",
            f"alice%{USERS['alice']}", "--configfile=/dev/null",
            "--option=torture:sharedelay=10000",
            f"--option=torture:oplocktimeout={OPLOCK_TIMEOUT}", test]
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        return "TIMEOUT", (exc.stdout or b"").decode(errors="replace") if isinstance(
            exc.stdout, bytes) else (exc.stdout or "")
    text = result.stdout + result.stderr
    kinds = [m.group(1) for m in _RESULT.finditer(text)]
    if result.returncode == 0 and "success" in kinds and not {"failure", "error"} & set(kinds):
        return "PASS", text
    if kinds and set(kinds) <= {"skip"}:
        return "SKIP", text
    return "FAIL", text

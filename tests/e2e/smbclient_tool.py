"""Run Debian's smbclient against a test server."""

from __future__ import annotations

import subprocess

DIALECTS = ("SMB2_02", "SMB2_10", "SMB3_00", "SMB3_02", "SMB3_11")


def smbclient(port: int, share: str, commands: str, user: str | None = "alice",
              password: str = "alice-pw", dialect: str | None = None,
              protection: str | None = None, cwd=None, timeout: float = 120,
              extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run `smbclient //127.0.0.1/share -c commands`; returns the completed process."""
    args = ["smbclient", f"//127.0.0.1/{share}", "-p", str(port), "--configfile=/dev/null",
            "-c", commands]
    if user is None:
        args.append("-N")
    else:
        args += ["-U", f"{user}%{password}"]
    if dialect:
        args += [f"--option=client min protocol={dialect}",
                 f"--option=client max protocol={dialect}"]
    if protection:
        args.append(f"--client-protection={protection}")
    args += list(extra)
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=cwd)


def output(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


# No 8.3 short names are generated (like Windows with 8dot3name disabled), so `allinfo`'s
# FileAlternateNameInformation query gets STATUS_OBJECT_NAME_NOT_FOUND; smbclient prints it
# and goes on. That one line is expected; any other NT_STATUS is a failure.
_EXPECTED = "NT_STATUS_OBJECT_NAME_NOT_FOUND getting alt name for"


def assert_ok(result: subprocess.CompletedProcess) -> str:
    """The run succeeded and no command printed an NT_STATUS error."""
    text = output(result)
    assert result.returncode == 0, f"smbclient exited {result.returncode}:\n{text}"
    unexpected = [ln for ln in text.splitlines() if "NT_STATUS_" in ln and _EXPECTED not in ln]
    assert not unexpected, text
    return text

"""The servers the tests start run on the tests' own interpreter and venv.

`make test` runs the unit and end-to-end suites under Python 3.11 (.venv) and 3.13
(.venv-py3.13): a 3.13 run that started its servers with another Python would test that one.
"""

import os
import sys
import sysconfig
import uuid
from pathlib import Path

from smbprotocol.connection import Connection, Dialects
from smbprotocol.session import Session


def mapped_files(pid: int) -> set[Path]:
    """The files mapped into process `pid` (its executable, shared libraries, extensions)."""
    files = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5].startswith("/"):
            files.add(Path(fields[5]))
    return files


def test_server_runs_on_the_tests_interpreter(server):
    pid = server.proc.pid
    # started as this venv's python (a symlink to the interpreter the venv was made from)
    argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    assert argv0 == sys.executable
    assert Path(os.readlink(f"/proc/{pid}/exe")) == Path(sys.executable).resolve()
    # a signed and encrypted 3.1.1 session makes the server import cryptography
    conn = Connection(uuid.uuid4(), "127.0.0.1", server.port, require_signing=True)
    conn.connect(dialect=Dialects.SMB_3_1_1, timeout=15)
    try:
        session = Session(conn, "alice", "alice-pw", require_encryption=True,
                          auth_protocol="ntlm")
        session.connect()
        session.disconnect()
    finally:
        conn.disconnect()
    files = mapped_files(pid)
    # extension modules built for this interpreter's version (cpython-313-... under 3.13)
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    assert any(f.name.endswith(suffix) for f in files), sorted(map(str, files))
    # and cryptography's Rust extension from this venv's site-packages
    site = Path(sysconfig.get_path("platlib")).resolve()
    assert any(site in f.parents and f.name.startswith("_rust") for f in files), \
        (site, sorted(map(str, files)))

"""The README's Python examples run as printed against a server configured like `make run`'s.

Only the port (4445 in the README) and alice's password (the harness's) are substituted.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from .harness import USERS, start_server

README = Path(__file__).resolve().parents[2] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


@pytest.fixture(scope="module")
def dev_like_server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("readme"), shares={
        "public": {"read_only": "no", "guest_ok": "yes"},
        "private": {"read_only": "no", "users": ["alice"]},
    })
    yield srv
    assert srv.stop() == 0, srv.log()


def run_example(code: str, port: int) -> str:
    assert "4445" in code, "the README example must show the port"
    code = code.replace("4445", str(port))
    code = code.replace('password="alice"', f'password="{USERS["alice"]}"')
    code = code.replace('login("alice", "alice")', f'login("alice", "{USERS["alice"]}")')
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_readme_has_both_examples():
    blocks = python_blocks()
    assert any("import smbclient" in b for b in blocks)
    assert any("impacket" in b for b in blocks)


def test_smbprotocol_example(dev_like_server):
    code = next(b for b in python_blocks() if "import smbclient" in b)
    out = run_example(code, dev_like_server.port)
    assert "hello.txt" in out and "hello from Python" in out
    assert not (dev_like_server.shares["private"] / "hello.txt").exists()  # removed again


def test_impacket_example(dev_like_server):
    code = next(b for b in python_blocks() if "impacket" in b)
    out = run_example(code, dev_like_server.port)
    assert "'private'" in out and "'public'" in out and "'IPC$'" in out

"""`scripts/bench --smoke`: the benchmark still runs end to end (a few MB, one round).

The bench is not a test; this only keeps it from rotting. It needs Debian's smbd, smbclient and
smbtorture (scripts/install-test-deps) and matplotlib (the `bench` extra, installed by make setup).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]


def test_bench_smoke(tmp_path: Path) -> None:
    # make test installs these (scripts/install-test-deps, the bench extra): a missing one is
    # a failure to see, not a reason to skip.
    for tool in ("smbclient", "smbtorture"):
        assert shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/usr/bin"), \
            f"{tool} missing: run scripts/install-test-deps"
    assert shutil.which("smbd") or shutil.which("smbd", path="/usr/sbin"), \
        "smbd missing: run scripts/install-test-deps"
    import matplotlib  # noqa: F401  (the bench extra, installed by make setup)
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "bench"), "--smoke", "--out",
                        str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["machine"]["nproc"] >= 1 and results["machine"]["cpu"]
    assert results["ceiling"]["median"] > 0
    expected = {"read_plain", "read_sign", "read_encrypt", "write_plain", "write_sign",
                "write_encrypt", "create", "listdir", "torture_echo", "torture_path", "cpu_torture_echo",
                "cpu_torture_path", "startup",
                "pss_idle", "pss_transfer", "pss_conns", "pss_per_conn", "heap_peak",
                "read_warm", "cpu_read_warm",
                *(f"{w}_{k}" for w in ("clients", "pss_clients", "pss_after_clients")
                  for k in ("a", "b")),
                *(f"cpu_{d}_{m}" for d in ("read", "write") for m in ("plain", "sign", "encrypt"))}
    assert set(results["workloads"]) == expected
    for key, entry in results["workloads"].items():
        servers = ["ksmbd"] if entry["ksmbd_only"] else ["ksmbd", "samba"]
        for server in servers:
            values = entry[server]["values"]
            assert len(values) == 1, (key, server, values)
            if key == "pss_per_conn":
                # A difference of two PSS samples over 5 connections: it can be within noise
                # (even below 0) for ksmbd-embedded, whose connections cost a few KiB.
                assert isinstance(values[0], float), (key, server, values)
            elif key.startswith("cpu_"):
                # CPU seconds come in clock ticks (10 ms): a few MB can take less than one.
                assert values[0] >= 0, (key, server, values)
            else:
                assert values[0] > 0, (key, server, values)
    assert "ksmbd-embedded" in r.stdout and "Samba" in r.stdout
    assert (tmp_path / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

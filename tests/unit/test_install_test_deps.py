"""scripts/install-test-deps waits for apt's lock instead of failing on it.

The script runs for real (/bin/sh) with a PATH of stand-ins: an `apt-get` that answers the way
apt does while another apt holds the lock, then succeeds and "installs" the tools.
"""

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install-test-deps"
TOOLS = ("smbclient", "smbtorture", "smbd", "mkfs.exfat", "mount.exfat-fuse", "shellcheck",
         "chromium")

APT_GET = """#!/bin/sh
# Stand-in for apt-get: records its arguments; fails like apt with the lock held while
# $BUSY_FILE still has calls to refuse, then succeeds ("install" creates the tools).
echo "$*" >> "$LOG"
n=$(cat "$BUSY_FILE")
if [ "$n" -gt 0 ]; then
  echo $((n - 1)) > "$BUSY_FILE"
  echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)" >&2
  echo "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?" >&2
  exit 100
fi
case " $* " in
  *" install "*) for t in TOOLS; do printf '#!/bin/sh\\n' > "$BIN/$t"; chmod +x "$BIN/$t"; done ;;
esac
exit 0
"""


def run(tmp_path, busy: int, fail_with: str | None = None):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = APT_GET.replace("TOOLS", " ".join(TOOLS))
    if fail_with:
        script = script.replace('echo "$*" >> "$LOG"',
                                f'echo "$*" >> "$LOG"; echo "{fail_with}" >&2; exit 100')
    for name, text in (("apt-get", script), ("sleep", "#!/bin/sh\nexit 0\n"),
                       ("id", "#!/bin/sh\necho 0\n")):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    for name in ("cat", "chmod"):
        (bin_dir / name).symlink_to(f"/bin/{name}")
    (tmp_path / "busy").write_text(f"{busy}\n")
    env = {"PATH": str(bin_dir), "LOG": str(tmp_path / "log"), "BUSY_FILE": str(tmp_path / "busy"),
           "BIN": str(bin_dir)}
    # The script appends /usr/sbin and /sbin itself, so smbd or mkfs.exfat may be found there;
    # smbclient, smbtorture and chromium never are, so apt-get is always called.
    proc = subprocess.run(["/bin/sh", str(SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=60)
    calls = (tmp_path / "log").read_text().splitlines() if (tmp_path / "log").exists() else []
    return proc, calls


def test_waits_for_the_lock_then_installs(tmp_path):
    proc, calls = run(tmp_path, busy=3)
    assert proc.returncode == 0, proc.stderr
    assert "waiting for apt's lock" in proc.stderr
    assert proc.stderr.count("waiting for apt's lock") == 1  # said once, not per retry
    updates = [c for c in calls if " update" in f" {c}"]
    installs = [c for c in calls if " install " in f" {c} "]
    assert len(updates) == 4 and len(installs) == 1  # three refusals, then the update passed
    assert calls.index(updates[-1]) < calls.index(installs[0])
    assert all("DPkg::Lock::Timeout=" in c for c in calls)  # apt waits for dpkg's lock itself
    assert "smbclient" in installs[0]


def test_other_errors_fail_at_once(tmp_path):
    proc, calls = run(tmp_path, busy=0, fail_with="E: Unable to locate package smbclient")
    assert proc.returncode != 0
    assert len(calls) == 1
    assert "Unable to locate package smbclient" in proc.stderr
    assert "waiting" not in proc.stderr


def test_nothing_to_do_when_everything_is_there(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for t in TOOLS:
        (bin_dir / t).write_text("#!/bin/sh\n")
        (bin_dir / t).chmod(0o755)
    proc = subprocess.run(["/bin/sh", str(SCRIPT)], env={"PATH": str(bin_dir)},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == ""

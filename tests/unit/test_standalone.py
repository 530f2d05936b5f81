"""The repository stands alone: a bare clone, with nothing beside it, builds and passes its tests.

No tracked file may read or name the folder of notes and vectors that sits beside the working
tree on the developers' machines; what the tests need is copied into tests/vectors/ and
tests/conformance/ instead.
"""

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Spelled in pieces so that this file does not match itself.
OUTSIDE = ("../" + "shared", "/work/" + "shared", "shared" + "/vectors", "shared" + "/notes",
           "parents[3] / \"" + "shared\"", ".parent / \"" + "shared\"")


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.fail("not a git checkout: the standalone check needs `git ls-files`")
    return [REPO / name for name in out.decode().split("\0") if name]


def test_no_tracked_file_names_the_folder_outside():
    offenders = []
    for path in tracked_files():
        if path.is_symlink() or not path.is_file():
            continue
        text = path.read_bytes()
        if b"\0" in text[:8192]:
            continue  # binary
        for lineno, line in enumerate(text.decode(errors="replace").splitlines(), 1):
            if any(needle in line for needle in OUTSIDE):
                offenders.append(f"{path.relative_to(REPO)}:{lineno}: {line.strip()[:100]}")
    assert not offenders, "files that reach outside the repository:\n" + "\n".join(offenders)


def test_vectors_are_in_the_repository():
    vectors = REPO / "tests" / "vectors"
    for folder in ("uci/grammar", "uci/ksmbd-session", "ubus/cli-session", "ubus/notify-session"):
        assert any((vectors / folder).iterdir()), f"tests/vectors/{folder} is empty"
    assert (REPO / "tests" / "conformance" / "ksmbd-ci-smbtorture.txt").is_file()

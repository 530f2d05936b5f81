"""README.md says what the program does: its synopsis names every command-line option, its
options table gives the defaults the code has."""

import argparse
import dataclasses
import re
from pathlib import Path

import pytest

from ksmbd_embedded import cli
from ksmbd_embedded.config import GlobalConfig

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = cli._parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def synopsis() -> str:
    return README.split("## Running it", 1)[1].split("```", 2)[1]


@pytest.mark.parametrize("command", ["serve", "user", "check-config"])
def test_synopsis_names_every_option(command):
    lines = [ln for ln in synopsis().splitlines() if f"ksmbd-embedded {command}" in ln]
    assert lines, f"no synopsis line for {command}"
    start = synopsis().index(lines[0])
    text = synopsis()[start:].split("\nksmbd-embedded ", 1)[0]
    options = {s for a in subcommands()[command]._actions for s in a.option_strings
               if s.startswith("--") and s != "--help"}
    missing = sorted(o for o in options if o not in text)
    assert not missing, f"README synopsis of {command} lacks {missing}"


def test_dialect_defaults_match_the_code():
    row = next(ln for ln in README.splitlines() if ln.startswith("| `server_min_protocol`"))
    low, high = re.search(r"\[(\w+) / (\w+)\]", row).groups()
    defaults = {f.name: f.default for f in dataclasses.fields(GlobalConfig)}
    assert (low, high) == (defaults["server_min_protocol"], defaults["server_max_protocol"])


def test_intro_names_the_dialects_served():
    assert "SMB 2.0.2–3.1.1" in README.split("\n\n", 2)[1]

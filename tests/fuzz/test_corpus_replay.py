"""Every malformed input the fuzzer ever found (tests/fuzz/corpus/*.json) is replayed and must
no longer show its problem. A finding not fixed yet carries "xfail": "<reason>" in its .json:
its test is a strict xfail, so the day it passes the test fails until the mark is removed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .engine import CORPUS_DIR, Fuzzer, load_xfail
from .seeds import BY_NAME, LEVEL_PREFIX

METAS = sorted(CORPUS_DIR.glob("*.json"))


def _param(meta: Path):
    reason = load_xfail(meta)
    marks = [pytest.mark.xfail(reason=f"{reason} (open finding: remove \"xfail\" from "
                                      f"{meta.name} once fixed)", strict=True)] if reason else []
    return pytest.param(meta, id=meta.stem[:12], marks=marks)


@pytest.fixture(scope="module")
def fuzzer(tmp_path_factory):
    fz = Fuzzer(tmp_path_factory.mktemp("replay"), out_dir=None)
    fz.start()
    yield fz
    fz.stop()


def test_corpus_is_well_formed():
    assert (CORPUS_DIR / "README.md").is_file()
    for meta in METAS:
        recipe = json.loads(meta.read_text())
        assert meta.with_suffix(".bin").is_file(), f"{meta.name} has no .bin"
        assert recipe.get("kind") and recipe.get("signature"), meta.name
        assert (recipe.get("seed") in BY_NAME or recipe.get("level") in LEVEL_PREFIX
                or "batch" in recipe), f"{meta.name}: no seed, level or batch to replay"


@pytest.mark.parametrize("meta", [_param(m) for m in METAS])
def test_replay_finding(fuzzer, meta):
    result = fuzzer.replay(meta)
    assert not result.prefix_failed, result.prefix_failed
    assert not result.problems, "\n".join(f"{k}: {d}" for k, d in result.problems)
    assert fuzzer.health_check() is None

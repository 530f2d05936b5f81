"""Sequential large READs ask the kernel to read ahead of the client (POSIX_FADV_WILLNEED on
the ranges that follow); random or small reads do not."""

import os

import pytest
from handler_fixtures import HandlerEnv
from test_read_write import read_body

from ksmbd_embedded import header as h
from ksmbd_embedded.handlers.read_write import handle_read
from ksmbd_embedded.status import STATUS_SUCCESS
from ksmbd_embedded.tree import FILE_READ_DATA

CHUNK = 1024 * 1024


@pytest.fixture
def big(tmp_path):
    env = HandlerEnv(str(tmp_path))
    with open(os.path.join(env.root, "big.bin"), "wb") as f:
        f.truncate(16 * CHUNK)
    return env


def _reads(env, monkeypatch, ranges):
    calls = []
    real = os.posix_fadvise
    monkeypatch.setattr(os, "posix_fadvise",
                        lambda fd, off, n, advice: calls.append((off, n, advice))
                        or real(fd, off, n, advice))
    op = env.open("big.bin", FILE_READ_DATA)
    for offset, length in ranges:
        req = env.request(h.READ, read_body(op, length, offset),
                          credit_charge=(length + 65535) // 65536)
        assert handle_read(req)[0] == STATUS_SUCCESS
    return calls


def test_sequential_reads_prefetch_what_follows(big, monkeypatch):
    env = big
    calls = _reads(env, monkeypatch, [(0, CHUNK), (CHUNK, CHUNK), (2 * CHUNK, CHUNK)])
    assert calls == [(off + CHUNK, 4 * CHUNK, os.POSIX_FADV_WILLNEED)
                     for off in (0, CHUNK, 2 * CHUNK)]


def test_random_and_small_reads_do_not(big, monkeypatch):
    env = big
    calls = _reads(env, monkeypatch, [(5 * CHUNK, CHUNK), (0, 4096), (4096, 4096)])
    assert calls == []

"""A directory of 100,000 entries is listed in full with Python memory that does not grow with
it: the enumeration streams from os.scandir (fs/dir_scan.py), it never holds the names."""

import os
import tracemalloc

from handler_fixtures import HandlerEnv
from test_query_directory import LIST, STATUS_NO_MORE_FILES, STATUS_SUCCESS, parse, query

ENTRIES = 100_000


def test_100k_entries_listed_in_bounded_memory(tmp_path):
    root = tmp_path / "s"
    big = root / "big"
    big.mkdir(parents=True)
    for i in range(ENTRIES):  # empty files: os.mknod is the cheapest way to make them
        os.mknod(big / f"entry{i:06d}.dat")
    env = HandlerEnv(str(root))
    op = env.open("big", LIST)
    seen = 0
    tracemalloc.start()
    try:
        while True:
            status, body = query(env, op, out_len=65536)
            if status == STATUS_NO_MORE_FILES:
                break
            assert status == STATUS_SUCCESS
            seen += len(parse(body))
            del body
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert seen == ENTRIES + 2  # ".", ".." and every file once
    # 100,000 names would be ~10 MB as Python strings; the scan holds a few 64 KiB responses.
    assert peak < 2 * 1024 * 1024, peak

"""The oplock options: `oplock_break_wait` (globals) and `oplocks` (per share), in UCI and in
ksmbd.conf (`oplock break wait`, `oplocks`), and back out in the generated ksmbd.conf."""

import pytest

from ksmbd_embedded.config import ConfigError, config_from_text
from ksmbd_embedded.ksmbd_conf import config_from_ksmbd_conf, render

UCI = """
config globals
\toption oplock_break_wait '5'

config share
\toption name 'a'
\toption path '/tmp'
\toption oplocks 'no'

config share
\toption name 'b'
\toption path '/tmp'
"""


def cfg(text):
    return config_from_text(text, "ksmbd", False, hostname="router", mem_total_kb=1 << 20)


def test_uci_options_and_defaults():
    c = cfg(UCI)
    assert c.globals.oplock_break_wait == 5
    assert [s.oplocks for s in c.shares] == [False, True]
    assert cfg("config globals\n").globals.oplock_break_wait == 35


@pytest.mark.parametrize("value", ["0", "3601", "soon"])
def test_uci_break_wait_range(value):
    with pytest.raises(ConfigError):
        cfg(f"config globals\n\toption oplock_break_wait '{value}'\n")


def test_ksmbd_conf_options_round_trip():
    text = ("[global]\n\toplock break wait = 7\n\toplocks = no\n"
            "[a]\n\tpath = /tmp\n[b]\n\tpath = /tmp\n\toplocks = yes\n")
    c = config_from_ksmbd_conf(text, check_paths=False, hostname="router",
                               mem_total_kb=1 << 20)
    assert c.globals.oplock_break_wait == 7
    assert [s.oplocks for s in c.shares] == [False, True]  # [global] is the shares' default
    out = render(c)
    assert "oplock break wait = 7" in out and out.count("oplocks = no") == 1
    again = config_from_ksmbd_conf(out, check_paths=False, hostname="router",
                                   mem_total_kb=1 << 20)
    assert again.globals.oplock_break_wait == 7
    assert [s.oplocks for s in again.shares] == [False, True]

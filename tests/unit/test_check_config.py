"""Every configuration error is reported, each at its own file:line (check-config, serve)."""

import re

import pytest

from ksmbd_embedded import cli
from ksmbd_embedded.config import ConfigError, config_from_text, load_config
from ksmbd_embedded.ksmbd_conf import config_from_ksmbd_conf

THREE_BAD_VALUES = """\
config globals
\toption server_signing 'sometimes'
\toption port 'http'
\toption smb2_max_credits '0'
"""

# line 3 opens a quote that is never closed; the file has 6 lines
UNTERMINATED_ON_LINE_3 = """\
config share 'a'
\toption path '/srv'
\toption comment 'oops
\toption read_only 'no'
config share 'b'
\toption path '/srv/b'
"""


def run(capsys, *argv):
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error: ")]


def test_three_bad_values_three_lines(capsys, tmp_path):
    conf = tmp_path / "ksmbd"
    conf.write_text(THREE_BAD_VALUES)
    rc, out, err = run(capsys, "check-config", "--config", conf)
    assert rc == 2 and out == ""
    lines = error_lines(err)
    assert len(lines) == 3, err
    assert lines[0].startswith(f"error: {conf}:2: option 'server_signing'")
    assert lines[1].startswith(f"error: {conf}:3: option 'port'")
    assert lines[2].startswith(f"error: {conf}:4: option 'smb2_max_credits'")
    assert "Traceback" not in err


def test_unterminated_quote_reported_at_its_line(capsys, tmp_path):
    conf = tmp_path / "ksmbd"
    conf.write_text(UNTERMINATED_ON_LINE_3)
    assert conf.read_text().count("\n") == 6
    rc, _, err = run(capsys, "check-config", "--config", conf, "--no-check-paths")
    assert rc == 2
    # the open quote pairs with line 4's first quote, and so on: uci itself says line 6
    assert error_lines(err) == [f"error: {conf}:3: parse error: EOF with unterminated ' "
                                "(the quote opened on this line is closed only on line 4: "
                                "one missing here?)"]


def test_unterminated_quote_with_no_quote_after_it(capsys, tmp_path):
    conf = tmp_path / "ksmbd"
    conf.write_text("config share\n\toption name a\n\toption comment 'oops\n"
                    "\toption path /srv\n\toption read_only no\n\n")
    rc, _, err = run(capsys, "check-config", "--config", conf, "--no-check-paths")
    assert rc == 2
    assert error_lines(err) == [f"error: {conf}:3: parse error: EOF with unterminated ' "
                                "(the quote opened on this line is never closed)"]


def test_unterminated_double_quote_line():
    text = 'config share\n\toption name "x\n\toption path /srv\n\n'
    with pytest.raises(ConfigError) as info:
        config_from_text(text, "ksmbd", False)
    assert info.value.line == 2 and 'unterminated "' in info.value.message


def test_serve_lists_every_error(capsys, tmp_path):
    conf = tmp_path / "ksmbd"
    conf.write_text(THREE_BAD_VALUES)
    rc, _, err = run(capsys, "serve", "--config", conf, "--pwddb", tmp_path / "db")
    assert rc == 2
    assert [re.match(r"error: .*:(\d+): ", line).group(1) for line in error_lines(err)] \
        == ["2", "3", "4"]


def test_errors_of_several_sections_and_files(tmp_path):
    main = tmp_path / "ksmbd"
    main.write_text("config share 'a'\n\toption path '/srv'\n\toption guest_ok 'maybe'\n"
                    "config bogus\n"
                    "config share 'b'\n\toption browseable 'perhaps'\n")
    extra = tmp_path / "runtime"
    extra.write_text("config share 'c'\n\toption path 'x\n")  # a parse error
    with pytest.raises(ConfigError) as info:
        load_config(main, [extra], check_paths=False)
    where = [(e.filename, e.line) for e in info.value.errors]
    assert where == [(str(main), 3), (str(main), 4), (str(main), 5), (str(main), 6),
                     (str(extra), 2)]
    assert str(info.value).splitlines() == [str(e) for e in info.value.errors]
    # the first error's fields, as for a single error
    assert (info.value.filename, info.value.line) == (str(main), 3)


def test_bad_path_value_is_not_also_missing(tmp_path):
    """A bad value is one error: not also 'has no path' for the same share."""
    with pytest.raises(ConfigError) as info:
        config_from_text("config share 'a'\n\tlist path '/x'\n\tlist path '/y'\n"
                         "\toption read_only 'nope'\n", "ksmbd", False)
    assert [e.line for e in info.value.errors] == [3, 4]
    assert not any("no 'path'" in e.message for e in info.value.errors)


def test_ksmbd_conf_every_bad_share(tmp_path):
    text = ("[global]\n\tworkgroup = W\n"
            "[one]\n\tcomment = no path here\n"
            "[two]\n\tpath = /srv\n\tforce user = alice\n")
    with pytest.raises(ConfigError) as info:
        config_from_ksmbd_conf(text, "ksmbd.conf", False)
    assert [(e.line, e.message.split(":")[0]) for e in info.value.errors] == [
        (3, "share 'one' has no 'path'"), (7, "share 'two'")]

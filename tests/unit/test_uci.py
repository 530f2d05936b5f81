"""UCI parser and printers against the real-uci vectors in tests/vectors/uci."""

import re
from pathlib import Path

import pytest

from ksmbd_embedded.uci import UciError, export, parse_uci, section_names, show

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "uci"
GRAMMAR = VECTORS / "grammar"
GOOD = ["anon_index", "duplicates", "option_list_mix", "packageline", "quoting",
        "semicolons", "smbtest"]
BAD = ["badname", "badoption", "optionfirst", "unterminated"]
STDERR_RE = re.compile(r"uci: Parse error \((.*)\) at line (\d+), byte (\d+)\n\Z")


def read(path: Path) -> str:
    return path.read_bytes().decode()


def test_vectors_present():
    """The vectors must exist (missing vectors are a failure, not a skip), and every
    case in them must be one this file tests."""
    assert GRAMMAR.is_dir(), f"missing UCI vectors at {GRAMMAR}"
    cases = {p.stem for p in GRAMMAR.glob("*.conf")}
    assert cases == set(GOOD) | set(BAD)


@pytest.mark.parametrize("case", GOOD)
def test_grammar_show_and_export(case):
    pkg = parse_uci(read(GRAMMAR / f"{case}.conf"), case, f"{case}.conf")
    assert read(GRAMMAR / f"{case}.show.rc").strip() == "0"
    assert show(pkg) == read(GRAMMAR / f"{case}.show")
    assert show(pkg, extended=False) == read(GRAMMAR / f"{case}.show-X")
    assert export(pkg) == read(GRAMMAR / f"{case}.export")


@pytest.mark.parametrize("case", BAD)
def test_grammar_errors(case):
    assert read(GRAMMAR / f"{case}.show.rc").strip() == "1"
    m = STDERR_RE.match(read(GRAMMAR / f"{case}.show.stderr"))
    assert m, "unexpected stderr format"
    reason, line, byte = m.group(1), int(m.group(2)), int(m.group(3))
    with pytest.raises(UciError) as info:
        parse_uci(read(GRAMMAR / f"{case}.conf"), case, f"{case}.conf")
    err = info.value
    assert (err.filename, err.line, err.byte) == (f"{case}.conf", line, byte)
    assert err.message.startswith(reason)
    assert str(err) == f"{case}.conf:{line}: {err.message}"


def test_anon_index_get():
    """`@type[N]` counting as in anon_index.get.txt: named sections count too."""
    pkg = parse_uci(read(GRAMMAR / "anon_index.conf"), "anon_index")
    names = section_names(pkg)
    assert names == ["@s[0]", "@s[1]", "@other[0]", "named"]
    got = {}
    for text in re.findall(r"\$ uci get anon_index\.(\S+)\n(.*)\n\[rc=0\]", read(
            GRAMMAR / "anon_index.get.txt")):
        got[text[0]] = text[1]
    s_sections = [sec for sec in pkg.sections if sec.type == "s"]
    assert got["@s[0].o"] == s_sections[0].options["o"]
    assert got["@s[2].o"] == s_sections[2].options["o"] == got["@s[-1].o"]
    assert got["@[2]"] == pkg.sections[2].type


def test_ksmbd_session_file_after_commit():
    session = VECTORS / "ksmbd-session"
    pkg = parse_uci(read(session / "02-file-after-commit.txt"), "ksmbd")
    assert show(pkg) == read(session / "02-show.txt")
    assert show(pkg, extended=False) == read(session / "02-show-X.txt")
    assert export(pkg) == read(session / "02-export.txt")
    # uci commit writes the export text without its package line
    assert export(pkg).split("\n", 1)[1] == read(session / "02-file-after-commit.txt")


def test_session_input_smbtest_is_smbtest():
    assert read(VECTORS / "session-input-smbtest.conf") == read(GRAMMAR / "smbtest.conf")


# --- behaviour beyond the vectors -------------------------------------------------------

def parse(text):
    return parse_uci(text, "t", "t.conf")


def test_line_numbers():
    pkg = parse("# c\n\nconfig share 'a'\n\toption path '/x'\n\tlist users u1\n"
                "\tlist users u2\nconfig share\n\toption name 'b\nc'\n\toption path /y\n")
    a, b = pkg.sections
    assert (a.line, a.option_lines) == (3, {"path": 4, "users": 6})
    assert (b.line, b.option_lines) == (7, {"name": 8, "path": 10})
    assert b.options["name"] == "b\nc"


def test_abbreviations_and_full_words_only():
    pkg = parse("c t 'n'\no a 1\nl b 2\np ignored\n")
    assert pkg.sections[0].options == {"a": "1", "b": ["2"]}
    with pytest.raises(UciError) as info:
        parse("conf t\n")
    assert info.value.message == "invalid command"


def test_semicolon_rules():
    pkg = parse("config t 'n'; option a 'x'; option b y ; option c z; option d w\n"
                "config u ;option e \\v; option f 1\n")
    n, u = pkg.sections
    assert n.options == {"a": "x", "b": "y", "c": "z"}  # `z;` drops the rest of the line
    assert u.options == {"e": "v", "f": "1"}  # `\v;` lost a backslash: `;` still separates


def test_comments_and_crlf():
    pkg = parse("config t 'n' # comment\r\n\toption a 'x'#c\r\n\toption b 'y#z' # c\r\n")
    assert pkg.sections[0].options == {"a": "x", "b": "y#z"}


def test_escapes_and_continuation():
    pkg = parse('config t\n\toption a a\\ b\n\toption b "x\\\ny"\n\toption c \\\n  val\n'
                "\toption d 'x\\y'\n")
    assert pkg.sections[0].options == {"a": "a b", "b": "xy", "c": "val", "d": "x\\y"}


def test_empty_option_deletes():
    pkg = parse("config t\n\toption a 1\n\toption b 2\n\toption a ''\n\toption b\n")
    assert pkg.sections[0].options == {}
    assert pkg.sections[0].option_lines == {}


def test_list_then_option_and_back():
    pkg = parse("config t\n\tlist a 1\n\tlist a 2\n\toption a 3\n\tlist a 4\n")
    assert pkg.sections[0].options == {"a": ["3", "4"]}


@pytest.mark.parametrize("text,line,message", [
    ("config\n", 1, "missing section type"),
    ("config t n x\n", 1, "too many arguments"),
    ("config t\n\toption a b c\n", 2, "too many arguments"),
    ("config t\n\toption\n", 2, "missing option name"),
    ("config 't y'\n", 1, "invalid character in type field"),
    ("config t 'a'\nconfig u 'a'\n", 2, "section 'a' redefined"),
    ("\n\nconfig t\n\toption a \"x\n", 4, 'EOF with unterminated "'),
    ("config t\nbogus x\n", 2, "invalid command"),
    ("config t\n\tlist 'a b' x\n", 2, "invalid character in name field"),
])
def test_errors(text, line, message):
    with pytest.raises(UciError) as info:
        parse(text)
    assert info.value.line == line
    assert info.value.message.startswith(message)
    assert str(info.value).startswith(f"t.conf:{line}: ")


def test_empty_file():
    pkg = parse("")
    assert pkg.sections == []
    assert show(pkg) == ""
    assert export(pkg) == "package t\n\n"


def test_export_round_trip():
    text = read(GRAMMAR / "smbtest.conf")
    pkg = parse_uci(text, "smbtest")
    again = parse_uci(export(pkg), "smbtest")
    assert show(again) == show(pkg)
    assert export(again) == export(pkg)

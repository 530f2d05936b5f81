"""Search patterns for QUERY_DIRECTORY (MS-FSA 2.1.4.4, case-insensitive)."""

import time

import pytest

from ksmbd_embedded.fs.dir_info import compile_pattern, match_pattern, upcase

CASES = [
    # Part 1 special cases
    ("*", "a", True),
    ("*", ".", True),
    ("*", "..", True),
    ("*", "", False),            # empty name, non-empty expression
    ("", "a", False),            # empty expression, non-empty name
    ("", "", True),
    ("*.*", "abc", True),        # "*.*" matches everything, dot or not
    ("*.*", "a.b", True),
    # literal (no wildcards): case-insensitive equality
    ("readme.TXT", "README.txt", True),
    ("readme", "readme.txt", False),
    ("readme.txt", "readme", False),
    # '*' + literal: suffix comparison
    ("*.txt", "a.txt", True),
    ("*.txt", "A.TXT", True),
    ("*.txt", ".txt", True),
    ("*.txt", "txt", False),
    ("*.txt", "a.txt.bak", False),
    ("*.TXT", "notes.tar.txt", True),
    # '*' and '?'
    ("a?c", "abc", True),
    ("a?c", "aXc", True),
    ("a?c", "ac", False),
    ("a?c", "abbc", False),
    ("?", "a", True),
    ("?", "ab", False),
    ("?", ".", True),
    ("a*", "a", True),
    ("a*", "abc.def", True),
    ("a*", "ba", False),
    ("*a*", "xxaxx", True),
    ("*a*", "xxbxx", False),
    ("a*b*c", "aXXbYYc", True),
    ("a*b*c", "aXXcYYb", False),
    ("*.t?t", "x.txt", True),
    ("*.t?t", "x.tt", False),
    ("**", "x", True),
    ("*?", "x", True),
    ("*?", "", False),
    ("?*?", "x", False),
    # DOS_STAR '<': any run up to the name's final '.'
    ("<.txt", "a.txt", True),
    ("<.txt", "a.b.txt", True),           # earlier dots are consumed
    ("<.txt", "a.b.TXT", True),
    ("<.txt", "a.txt.bak", False),        # ".txt" is not at the final dot
    ("<.txt", ".txt", True),
    ("<", "abc", True),
    ("<", "a.b", False),                  # cannot consume the final '.'
    ("<.<", "a.b.c", True),
    ("<.<", "abc", False),
    ('<"', "abc", True),                  # "*." : names without an extension
    ('<"', "a.b", False),
    ('<"', "a.", True),
    ("<b", "a.b", False),
    ("<.b", "x.y.b", True),
    # DOS_DOT '"': a '.' or nothing at the end of the name
    ('a"', "a", True),
    ('a"', "a.", True),
    ('a"', "ab", False),
    ('a"b', "a.b", True),
    ('a"b', "ab", False),                 # nothing only at the end
    ('a"*', "a.txt", True),
    ('a"*', "a", True),
    # DOS_QM '>': one character, or nothing at a '.' or the end of the name
    (">", "a", True),
    (">", "ab", False),
    (">", ".", False),
    (">>>", "abc", True),
    (">>>", "ab", True),
    (">>>", "", False),
    (">>>", "abcd", False),
    (">>>", "a.b", False),
    ("file.>>>", "file.t", True),
    ("file.>>>", "file.txt", True),
    ("file.>>>", "FILE.TXT", True),
    ("file.>>>", "file.", True),
    ("file.>>>", "file.text", False),
    ("file.>>>", "file", False),
    ("a>>.txt", "a.txt", True),
    ("a>>.txt", "ab.txt", True),
    ("a>>.txt", "abc.txt", True),
    ("a>>.txt", "abcd.txt", False),
    ('>>>>>>>>">>>', "readme.txt", True),  # "????????.???" as Windows sends it
    ('>>>>>>>>">>>', "readme", True),
    ('>>>>>>>>">>>', "longfilename.txt", False),
    ('>>>>>>>>">>>', "a.b.c", False),
    # case-insensitivity beyond ASCII
    ("É*", "école", True),
    ("*.Ü?", "x.üb", True),
    ("STRAßE", "straße", True),           # ß has no single-character uppercase
    ("STRASSE", "straße", False),
    ("ΣΊΣΥΦΟΣ", "σίσυφος", True),
]


@pytest.mark.parametrize("pattern,name,expected", CASES)
def test_match_pattern(pattern, name, expected):
    assert match_pattern(pattern, name) is expected


@pytest.mark.parametrize("pattern,name,expected", CASES)
def test_general_matcher_agrees_with_fast_paths(pattern, name, expected):
    """The general (NFA) matcher, run without the fast paths, gives the same answers.

    "*.*" is the exception: matching names without a dot is a Part 1 special
    case of MS-FSA 2.1.4.4, not what the wildcard rules alone would give.
    """
    from ksmbd_embedded.fs.dir_info import _compile_nfa
    if not pattern:
        return
    if pattern == "*.*" and "." not in name:
        assert _compile_nfa(pattern)(name) is False
        return
    assert _compile_nfa(pattern)(name) is expected


def test_compile_is_cached_and_reusable():
    m = compile_pattern("<.jpg")
    assert compile_pattern("<.jpg") is m
    names = ["a.jpg", "b.JPG", "c.jpeg", "d.e.jpg", "jpg"]
    assert [n for n in names if m(n)] == ["a.jpg", "b.JPG", "d.e.jpg"]


def test_no_catastrophic_backtracking():
    pattern = "*a" * 40 + "*b"
    name = "a" * 255
    start = time.perf_counter()
    assert match_pattern(pattern, name) is False
    assert match_pattern(pattern, name + "b") is True
    assert match_pattern("<" * 50 + "x", "." * 200 + "y") is False
    assert time.perf_counter() - start < 1.0


def test_upcase_keeps_length():
    for s in ["abc", "straße", "ǆ", "ﬁle", "İstanbul", "x\udcff"]:
        assert len(upcase(s)) == len(s)
    assert upcase("abc") == "ABC"
    assert upcase("éß") == "Éß"


@pytest.mark.parametrize("pattern,name,expected", [
    ("rep*", "Report.pdf", True),
    ("rep*", "rep", True),
    ("rep*", "re", False),
    ("rep*", "xrep", False),
])
def test_prefix_fast_path(pattern, name, expected):
    from ksmbd_embedded.fs.dir_info import _compile_nfa
    assert match_pattern(pattern, name) is expected
    assert _compile_nfa(pattern)(name) is expected

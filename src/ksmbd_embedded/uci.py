"""UCI configuration files: parser, `uci show` and `uci export` printers.

Written from the grammar as observed with the real `uci` tool (docs/notes/ubus-uci-opkg.md
B2-B4 and the vectors in tests/vectors/uci).  Summary of the rules implemented here:

* Commands: ``config TYPE [NAME]``, ``option NAME VALUE``, ``list NAME VALUE`` and
  ``package NAME`` (ignored), each keyword also accepted as its first letter.
* An argument is any mix of 'single-quoted' (literal), "double-quoted" (backslash escapes)
  and unquoted (backslash escapes, ends at whitespace) pieces, glued together.  Quoted text
  may span lines (the newline is kept); backslash-newline joins lines.  ``#`` outside quotes
  starts a comment.
* ``;`` separates commands when it follows whitespace or a token that lost characters to
  quotes or escapes.  uci parses in place and writes the token terminator over the ``;``
  when nothing was removed from the token, so ``config c z; option o v`` ends the line at
  ``z`` and the rest is silently dropped.  We reproduce that: see ``_Lexer.read_token``.
* ``option N ''`` (or no value) creates nothing and deletes an existing option; repeated
  options keep the last value; ``option`` then ``list`` makes a list; ``list`` then
  ``option`` makes a plain option.  Named sections given twice merge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["UciError", "UciSection", "UciPackage", "parse_uci", "show", "export"]

_NAME_RE = re.compile(r"[A-Za-z0-9_]+\Z")
_INLINE_WS = " \t\r\v\f"
_KEYWORDS = {"config": "config", "c": "config", "option": "option", "o": "option",
             "list": "list", "l": "list", "package": "package", "p": "package"}


class UciError(Exception):
    """A UCI parse error; ``byte`` is the offset in the line as uci reports it."""

    def __init__(self, filename: str, line: int, message: str, byte: int = 0) -> None:
        super().__init__(f"{filename}:{line}: {message}")
        self.filename = filename
        self.line = line
        self.message = message
        self.byte = byte


@dataclass(slots=True)
class UciSection:
    """One ``config`` block; ``name`` is None for an anonymous section."""

    type: str
    name: str | None
    options: dict[str, str | list[str]] = field(default_factory=dict)
    line: int = 0
    option_lines: dict[str, int] = field(default_factory=dict)
    # the line of each value of an option (one for an option, one per item of a list)
    item_lines: dict[str, list[int]] = field(default_factory=dict)


@dataclass(slots=True)
class UciPackage:
    """A parsed config file; the package name comes from the file name."""

    name: str
    sections: list[UciSection] = field(default_factory=list)


class _Lexer:
    """Splits the text into commands (lists of tokens), tracking positions for errors."""

    __slots__ = ("text", "filename", "pos", "first_span")

    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        self.pos = 0
        # (open, close) of the first quoted piece holding a raw newline: legal, but rare in
        # config files, and what a quote left open mid-file turns into (see unterminated).
        self.first_span: tuple[int, int] | None = None

    def where(self, pos: int) -> tuple[int, int]:
        """(line, byte) of ``pos`` the way uci counts: a position just past a newline
        still belongs to the line that newline ends."""
        ref = max(pos - 1, 0)
        line = self.text.count("\n", 0, ref) + 1
        start = self.text.rfind("\n", 0, ref) + 1
        return line, pos - start

    def error(self, reason: str, pos: int) -> UciError:
        line, byte = self.where(pos)
        return UciError(self.filename, line, reason, byte)

    def unterminated(self, quote: str, opened: int) -> UciError:
        """uci's "EOF with unterminated" error, put where the mistake probably is (uci names
        the file's last line; ``byte`` stays uci's).  A quote left open mid-file pairs with
        the next line's opening quote, and so on to the end, so the culprit is the first
        quoted value that ran over a line end; without one, the quote left open itself."""
        _, byte = self.where(len(self.text))
        line_of = lambda pos: self.text.count("\n", 0, pos) + 1  # noqa: E731
        if self.first_span is not None and self.first_span[0] < opened:
            start, end = self.first_span
            return UciError(self.filename, line_of(start),
                            f"EOF with unterminated {quote} (the quote opened on this line "
                            f"is closed only on line {line_of(end)}: one missing here?)",
                            byte)
        return UciError(self.filename, line_of(opened),
                        f"EOF with unterminated {quote} (the quote opened on this line is "
                        "never closed)", byte)

    def _skip_blanks(self) -> None:
        text, n = self.text, len(self.text)
        while self.pos < n:
            c = text[self.pos]
            if c in _INLINE_WS:
                self.pos += 1
            elif c == "\\" and text.startswith("\n", self.pos + 1):
                self.pos += 2  # line continuation between tokens
            else:
                return

    def _skip_line(self) -> None:
        end = self.text.find("\n", self.pos)
        self.pos = len(self.text) if end < 0 else end + 1

    def next_command(self) -> tuple[list[tuple[str, int]], int] | None:
        """Return ([(token, end_pos), ...], start_pos) for the next command, None at EOF.

        ``end_pos`` is where uci's cursor stands after the token (for error bytes)."""
        text, n = self.text, len(self.text)
        tokens: list[tuple[str, int]] = []
        start = -1
        while True:
            self._skip_blanks()
            if self.pos >= n:
                break
            c = text[self.pos]
            if c == "\n":
                self.pos += 1
                break
            if c == "#":
                self._skip_line()
                break
            if c == ";":
                self.pos += 1
                break
            if start < 0:
                start = self.pos
            value, stop, clobbered = self.read_token()
            tokens.append((value, stop))
            if clobbered:
                self._skip_line()
                break
        if not tokens and self.pos >= n:
            return None
        return tokens, start

    def read_token(self) -> tuple[str, int, bool]:
        """Read one argument at ``pos``.

        Returns (value, end position, clobbered); ``clobbered`` is True when an unquoted
        ``;`` ended a token from which nothing had been removed: uci's terminator then
        overwrites the ``;`` and the rest of the line is lost."""
        text, n = self.text, len(self.text)
        out: list[str] = []
        removed = 0
        i = self.pos
        while i < n:
            c = text[i]
            if c == "'":
                j = text.find("'", i + 1)
                if j < 0:
                    raise self.unterminated("'", i)
                if self.first_span is None and text.find("\n", i + 1, j) >= 0:
                    self.first_span = (i, j)
                out.append(text[i + 1:j])
                removed += 2
                i = j + 1
            elif c == '"':
                opened = i
                multiline = False
                i += 1
                removed += 2
                while True:
                    if i >= n:
                        raise self.unterminated('"', opened)
                    c = text[i]
                    if c == '"':
                        if multiline and self.first_span is None:
                            self.first_span = (opened, i)
                        i += 1
                        break
                    if c == "\n":
                        multiline = True
                    if c == "\\" and i + 1 < n:
                        removed += 1 if text[i + 1] != "\n" else 2
                        if text[i + 1] != "\n":
                            out.append(text[i + 1])
                        i += 2
                    else:
                        out.append(c)
                        i += 1
            elif c == "\\":
                if i + 1 < n and text[i + 1] != "\n":
                    out.append(text[i + 1])
                    removed += 1
                else:  # backslash-newline joins lines; a final backslash vanishes
                    removed += 2
                i = min(i + 2, n)
            elif c in _INLINE_WS or c in "\n#;":
                break
            else:
                out.append(c)
                i += 1
        self.pos = i
        if i < n and text[i] == ";":
            return "".join(out), i, removed == 0
        end = i + 1 if i < n and text[i] != "#" else i
        return "".join(out), end, False


def parse_uci(text: str, name: str, filename: str = "<string>") -> UciPackage:
    """Parse UCI file text into a package named ``name``; raise UciError on bad input."""
    lexer = _Lexer(text, filename)
    pkg = UciPackage(name)
    by_name: dict[str, UciSection] = {}
    current: UciSection | None = None
    while (cmd := lexer.next_command()) is not None:
        tokens, start = cmd
        if not tokens:
            continue
        word, word_end = tokens[0]
        kind = _KEYWORDS.get(word)
        if kind is None:
            raise lexer.error("invalid command", word_end)
        args = tokens[1:]
        line = lexer.where(start + 1)[0]
        if kind == "package":
            continue
        if kind == "config":
            current = _config(lexer, pkg, by_name, args, word_end, line)
            continue
        if current is None:
            column = start - (lexer.text.rfind("\n", 0, start) + 1)
            raise UciError(filename, line,
                           "option/list command found before the first section", column)
        if not args:
            raise lexer.error("missing option name", word_end)
        if len(args) > 2:
            raise lexer.error("too many arguments", args[2][1])
        opt, opt_end = args[0]
        if not _NAME_RE.match(opt):
            raise lexer.error(f"invalid character in name field ({opt!r})", opt_end)
        value = args[1][0] if len(args) == 2 else ""
        _apply(current, kind, opt, value, line)
    return pkg


def _config(lexer: _Lexer, pkg: UciPackage, by_name: dict[str, UciSection],
            args: list[tuple[str, int]], word_end: int, line: int) -> UciSection:
    """Handle ``config TYPE [NAME]``: a new section, or merge into a named one."""
    if not args:
        raise lexer.error("missing section type", word_end)
    if len(args) > 2:
        raise lexer.error("too many arguments", args[2][1])
    stype, type_end = args[0]
    if not stype or any(not "\x21" <= c <= "\x7e" for c in stype):
        raise lexer.error(f"invalid character in type field ({stype!r})", type_end)
    sname = args[1][0] if len(args) == 2 else ""
    if not sname:
        section = UciSection(stype, None, line=line)
        pkg.sections.append(section)
        return section
    if not _NAME_RE.match(sname):
        raise lexer.error(f"invalid character in name field ({sname!r})", args[1][1])
    section = by_name.get(sname)
    if section is None:
        section = by_name[sname] = UciSection(stype, sname, line=line)
        pkg.sections.append(section)
    elif section.type != stype:
        raise lexer.error(f"section {sname!r} redefined with type {stype!r} "
                          f"(was {section.type!r})", args[1][1])
    return section


def _apply(section: UciSection, kind: str, opt: str, value: str, line: int) -> None:
    """Apply one option/list command with uci's set/add_list semantics."""
    options = section.options
    if kind == "option":
        if value:
            options[opt] = value
            section.option_lines[opt] = line
            section.item_lines[opt] = [line]
        else:  # an empty value deletes (uci_set semantics)
            options.pop(opt, None)
            section.option_lines.pop(opt, None)
            section.item_lines.pop(opt, None)
        return
    old = options.get(opt)
    if old is None:
        options[opt] = [value]
        section.item_lines[opt] = [line]
    elif isinstance(old, list):
        old.append(value)
        section.item_lines.setdefault(opt, []).append(line)
    else:
        options[opt] = [old, value]
        section.item_lines.setdefault(opt, []).append(line)
    section.option_lines[opt] = line


def _quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def _cfg_name(index: int, stype: str) -> str:
    """uci's generated name: cfg + section number + low 16 bits of djb2(type)."""
    h = 5381
    for b in stype.encode():
        h = (h * 33 + b) & 0xFFFFFFFF
    return f"cfg{index & 0xFF:02x}{h & 0xFFFF:04x}"


def section_names(pkg: UciPackage, extended: bool = True) -> list[str]:
    """Display names: the real name, else ``@type[N]`` (extended) or ``cfg`` + six hex digits.

    The cfg names match uci for files as parsed (no later add/delete/reorder)."""
    names: list[str] = []
    counts: dict[str, int] = {}
    for number, sec in enumerate(pkg.sections, 1):
        n = counts.get(sec.type, 0)
        counts[sec.type] = n + 1
        if sec.name is not None:
            names.append(sec.name)
        elif extended:
            names.append(f"@{sec.type}[{n}]")
        else:
            names.append(_cfg_name(number, sec.type))
    return names


def show(pkg: UciPackage, extended: bool = True) -> str:
    """The output of ``uci show PKG`` (``extended=False``: ``uci -X show PKG``)."""
    out: list[str] = []
    for sec, sname in zip(pkg.sections, section_names(pkg, extended)):
        prefix = f"{pkg.name}.{sname}"
        out.append(f"{prefix}={sec.type}\n")
        for opt, value in sec.options.items():
            if isinstance(value, list):
                text = " ".join(_quote(v) for v in value)
            else:
                text = _quote(value)
            out.append(f"{prefix}.{opt}={text}\n")
    return "".join(out)


def export(pkg: UciPackage) -> str:
    """The output of ``uci export PKG``; without its first line it is what commit writes."""
    out = [f"package {pkg.name}\n"]
    for sec in pkg.sections:
        head = f"config {sec.type}" + (f" {_quote(sec.name)}" if sec.name else "")
        out.append(f"\n{head}\n")
        for opt, value in sec.options.items():
            if isinstance(value, list):
                out.extend(f"\tlist {opt} {_quote(v)}\n" for v in value)
            else:
                out.append(f"\toption {opt} {_quote(value)}\n")
    out.append("\n")
    return "".join(out)

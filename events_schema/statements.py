"""Migration files as the Supabase CLI records them: one array element per SQL statement.

`supabase db push` (supabase/cli, pkg/parser and pkg/migration) runs a file statement by statement
and records it in supabase_migrations.schema_migrations.statements as that list. Its splitter, as
its source defines it: a statement ends at a `;` outside single or double quotes, `--` and nested
`/* */` comments, dollar quotes (`$tag$`, where a `$` right after a letter, digit, `_` or `$`
opens none), parentheses and BEGIN ATOMIC ... END bodies; a backslash outside those hides the next
character. Two quirks are kept so that both tools split alike: the first `)` closes every open
parenthesis, and inside BEGIN ATOMIC the first word END (a CASE's too) ends the body. Each piece
is trimmed of trailing `;`, then of white space; empty pieces are dropped; comments stay in the
statement that follows them.

Comparing a record with a file does not depend on where the cuts fell (CLI versions differ at
the edges, and this project's runner once recorded whole files): each recorded statement must
appear verbatim, in order, in the file, with only white space and at least one `;` between them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Go's unicode.IsSpace, which the CLI trims with (Python's str.isspace also takes \x1c-\x1f).
GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


def _identifier(ch: str) -> bool:
    return ch >= "\x80" or ch.isalnum() or ch in "_$"


@dataclass
class _Scan:
    """The text of the statement being read, up to and including the current character."""

    text: str
    start: int
    end: int = 0

    def endswith(self, suffix: str, *, fold: bool = False) -> bool:
        if self.end - self.start < len(suffix):
            return False
        window = self.text[self.end - len(suffix) : self.end]
        return window.lower() == suffix.lower() if fold else window == suffix

    def identifier_before(self, position: int) -> bool:
        return position > self.start and _identifier(self.text[position - 1])


class _State:
    def next(self, ch: str, scan: _Scan) -> _State | None:
        """The state after `ch`; None ends the statement."""
        raise NotImplementedError


class _Ready(_State):
    def next(self, ch: str, scan: _Scan) -> _State | None:
        if ch == "$":
            return self if scan.identifier_before(scan.end - 1) else _Tag(scan.end - 1)
        if ch in "'\"":
            return _Quote(ch)
        if ch == "-":
            return _MaybeComment("-", _Until("\n"))
        if ch == "/":
            return _Block()
        if ch == "\\":
            return _Escaped()
        if ch == ";":
            return None
        if ch == "(":
            return _Group(self, ")")
        if ch in "cC" and _begins_atomic(scan):
            return _Group(self, "END")
        return self


def _begins_atomic(scan: _Scan) -> bool:
    """`BEGIN ATOMIC` just read, each word standing alone."""
    if not scan.endswith("ATOMIC", fold=True) or scan.identifier_before(scan.end - 6):
        return False
    before = scan.text[scan.start : scan.end - 6].rstrip(GO_SPACE)
    if not before.lower().endswith("begin"):
        return False
    return not _Scan(before, 0, len(before)).identifier_before(len(before) - 5)


@dataclass
class _MaybeComment(_State):
    second: str
    then: _State

    def next(self, ch: str, scan: _Scan) -> _State | None:
        return self.then if ch == self.second else _Ready().next(ch, scan)


@dataclass
class _Block(_State):
    depth: int = 0

    def next(self, ch: str, scan: _Scan) -> _State | None:
        if scan.endswith("/*"):
            self.depth += 1
            return self
        if self.depth == 0:
            return _Ready().next(ch, scan)
        if scan.endswith("*/"):
            self.depth -= 1
            if self.depth == 0:
                return _Ready()
        return self


@dataclass
class _Quote(_State):
    """A doubled delimiter needs no rule: closing and reopening at once splits alike."""

    delimiter: str

    def next(self, ch: str, scan: _Scan) -> _State | None:
        return _Ready() if ch == self.delimiter else self


@dataclass
class _Until(_State):
    """Inside a dollar quote or a line comment: nothing is special until the closing text."""

    closing: str

    def next(self, ch: str, scan: _Scan) -> _State | None:
        return _Ready() if scan.endswith(self.closing) else self


@dataclass
class _Tag(_State):
    offset: int

    def next(self, ch: str, scan: _Scan) -> _State | None:
        if ch == "$":
            return _Until(scan.text[self.offset : scan.end])
        return self if _identifier(ch) else _Ready().next(ch, scan)


class _Escaped(_State):
    def next(self, ch: str, scan: _Scan) -> _State | None:
        return _Ready()


@dataclass
class _Group(_State):
    """Parentheses or a BEGIN ATOMIC body: `;` does not end the statement until `closing`."""

    inner: _State
    closing: str
    ending: bool = False

    def next(self, ch: str, scan: _Scan) -> _State | None:
        if self.ending:  # END just read: it closes the body unless a word goes on
            self.ending = False
            return self if _identifier(ch) else _Ready().next(ch, scan)
        self.inner = self.inner.next(ch, scan) or self.inner
        if isinstance(self.inner, _Ready) and self._closes(scan):
            if self.closing == ")":
                return _Ready()
            self.ending = True
        return self

    def _closes(self, scan: _Scan) -> bool:
        if not scan.endswith(self.closing, fold=True):
            return False
        return self.closing == ")" or not scan.identifier_before(scan.end - len(self.closing))


def split(sql: str) -> list[str]:
    """The statements of `sql` exactly as the Supabase CLI records them."""
    pieces: list[str] = []
    scan = _Scan(sql, 0)
    state: _State = _Ready()
    for position, ch in enumerate(sql):
        scan.end = position + 1
        following = state.next(ch, scan)
        if following is None:
            pieces.append(sql[scan.start : scan.end])
            scan, following = _Scan(sql, scan.end), _Ready()
        state = following
    pieces.append(sql[scan.start :])
    trimmed = (piece.rstrip(";").strip(GO_SPACE) for piece in pieces)
    return [piece for piece in trimmed if piece]


def matches(recorded: Sequence[str], sql: str) -> bool:
    """Whether `recorded` statements are `sql`, however it was cut (CLI, older CLIs, whole file)."""
    separators = GO_SPACE + ";"
    statements = [piece for piece in (piece.strip(separators) for piece in recorded) if piece]
    position = 0
    for number, statement in enumerate(statements):
        gap_start = position
        while position < len(sql) and sql[position] in separators:
            position += 1
        if (number and ";" not in sql[gap_start:position]) or not sql.startswith(statement, position):
            return False
        position += len(statement)
    return sql[position:].strip(separators) == ""

"""The splitter agrees with the Supabase CLI's (supabase/cli pkg/parser), rule by rule.

Each case is an input and the statements the CLI's rules give for it (trimmed of the final `;`
and white space, empty pieces dropped), worked out from its source.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from events_schema.migrate import discover
from events_schema.statements import matches, split

SHAPES = Path(__file__).resolve().parents[2] / "integration" / "schema" / "cli_shapes" / "20990101000000_cli_shapes.sql"
# What the CLI records for that file, worked out by hand.
SHAPES_STATEMENTS = [
    "-- What the Supabase CLI's splitter must see through; this comment; has semicolons.\n"
    "create table public.cli_shapes (\n  id int primary key,\n  note text default 'a;b' -- a default with ; inside\n)",
    "alter table public.cli_shapes enable row level security",
    "/* a block comment; with /* nested; */ semicolons */\n"
    "create function public.cli_shapes_count() returns bigint\nlanguage plpgsql set search_path = ''\n"
    "as $body$\nbegin\n  perform 1; -- statements inside a dollar-quoted body\n"
    "  return (select count(*) from public.cli_shapes);\nend\n$body$",
    "do $$ begin raise notice 'done; really'; end $$",
    "comment on table public.cli_shapes is 'shapes; for \"the CLI\"'",
    "insert into public.cli_shapes (id, note) values (1, 'it''s; fine'), (2, $$dollar; quoted$$)",
    "-- a comment after the last statement is a statement of its own",
]

CASES = {
    "separator, spaces trimmed": ("select 1 ;  select 2;", ["select 1", "select 2"]),
    "empty pieces dropped": (";;select 1;;\n;", ["select 1"]),
    "line comment hides ;": ("select --; 1\n2; end", ["select --; 1\n2", "end"]),
    "one dash is no comment": ("- ; end", ["-", "end"]),
    "comment stays with the next statement": ("a;\n-- why\nb;", ["a", "-- why\nb"]),
    "nested block comment": ("select /*; /*;*/ ;*/ 1; x", ["select /*; /*;*/ ;*/ 1", "x"]),
    "slash star apart is no comment": ("/ * ; */ end", ["/ *", "*/ end"]),
    "doubled single quote": ("select ';'';' 1; x", ["select ';'';' 1", "x"]),
    "double quotes": ('create policy "cats;dogs" on t; x', ['create policy "cats;dogs" on t', "x"]),
    "backslash outside quotes hides the next character": ("a\\;b; c\\;", ["a\\;b", "c\\"]),
    "backslash inside quotes is plain": ("select '\\'; 1'", ["select '\\'", "1'"]),
    "named dollar tag": ("$tag$ any ; $x$ string$tag$; y", ["$tag$ any ; $x$ string$tag$", "y"]),
    "$ after an identifier opens nothing": (
        "select 1 as a$b$; select 2 as c$b$",
        ["select 1 as a$b$", "select 2 as c$b$"],
    ),
    "positional parameter is no tag": ("select $1; x", ["select $1", "x"]),
    "parentheses": (
        "create rule r as on update to t do (notify t; select 1); x",
        ["create rule r as on update to t do (notify t; select 1)", "x"],
    ),
    "the first ) closes every parenthesis": ("do ((a); b); c", ["do ((a)", "b)", "c"]),
    "begin atomic": (
        "create function f() returns int language sql begin atomic select 1; select 2; end; x",
        ["create function f() returns int language sql begin atomic select 1; select 2; end", "x"],
    ),
    "begin atomic, any case and spacing": (
        "BEGIN\n  Atomic; select 'end'; END; x",
        ["BEGIN\n  Atomic; select 'end'; END", "x"],
    ),
    "end inside a word does not close": (
        "begin atomic; select append; end; x",
        ["begin atomic; select append; end", "x"],
    ),
    "atomic in a name": ("select is_atomic from t; x", ["select is_atomic from t", "x"]),
    "atomic without begin": ("select atomic; x", ["select atomic", "x"]),
}


@pytest.mark.parametrize("sql, expected", CASES.values(), ids=CASES.keys())
def test_splits_as_the_cli_does(sql: str, expected: list[str]) -> None:
    assert split(sql) == expected


def test_the_shapes_file_splits_as_the_cli_records_it() -> None:
    assert split(SHAPES.read_text()) == SHAPES_STATEMENTS


@pytest.mark.parametrize("migration", discover(), ids=lambda m: m.path.name)
def test_every_migration_matches_both_ways_it_can_be_recorded(migration) -> None:
    assert matches(migration.statements, migration.sql)
    assert matches([migration.sql], migration.sql), "the runner's records before issue 9: the whole file"


def test_a_record_matches_however_the_file_was_cut() -> None:
    sql = "select 'a;b';\nselect 2;\n"
    assert matches(["select 'a;b'", "select 2"], sql)
    assert matches(["select 'a;b';\n", "\nselect 2;"], sql), "untrimmed pieces"
    assert matches(["select 'a", "b';\nselect 2"], sql), "cut at a ; the CLI would not cut at"


@pytest.mark.parametrize(
    "recorded",
    [
        ["select 'a;c'", "select 2"],  # a literal changed
        ["select 'a;b'"],  # a statement added to the file
        ["select 'a;b'", "select 2", "select 3"],  # a statement removed from the file
        ["select 2", "select 'a;b'"],  # reordered
        ["select 'a;b' select 2"],  # the separator is part of what was applied
        [],
    ],
)
def test_a_record_of_other_content_does_not_match(recorded: list[str]) -> None:
    assert not matches(recorded, "select 'a;b';\nselect 2;\n")


def test_white_space_and_extra_semicolons_between_statements_do_not_count() -> None:
    assert matches(["select 1", "select 2"], "\n  select 1 ;;\n\n select 2\n")
    assert not matches(["select 1", "select 2"], "select  1; select 2"), "inside a statement they do"
    assert not matches(["select 1", "select 2"], "select 1\nselect 2"), "the ; between them is part of the file"

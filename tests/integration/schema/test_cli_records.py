"""The runner and the Supabase CLI take turns on one database, in either order.

Records written the CLI's way (one element per statement) are accepted, the runner writes them
that way too, and a file really changed after either applied it is still refused.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from events_schema.db import connect
from events_schema.migrate import COMPAT_SQL, REALTIME_COMPAT_SQL, MigrationError, discover, migrate, status
from tests.integration.schema.supabase_cli import push, run_alone
from tests.unit.schema.test_statements import SHAPES, SHAPES_STATEMENTS

VERSION = "20990101000000"


def recorded(url: str) -> dict[str, list[str]]:
    with connect(url) as conn:
        return dict(conn.execute("select version, statements from supabase_migrations.schema_migrations").fetchall())


@pytest.fixture
def shapes(tmp_path: Path) -> Path:
    """A migrations folder holding only the file full of `;` in odd places."""
    shutil.copy(SHAPES, tmp_path / SHAPES.name)
    return tmp_path


def test_cli_first_then_the_runner_accepts_its_records(empty_db_url: str, shapes: Path) -> None:
    push(empty_db_url, shapes, {VERSION: SHAPES_STATEMENTS})
    assert [entry.applied for entry in status(empty_db_url, shapes)] == [True]
    assert migrate(empty_db_url, shapes) == []


def test_runner_first_writes_what_the_cli_writes(empty_db_url: str, shapes: Path) -> None:
    migrate(empty_db_url, shapes)
    assert recorded(empty_db_url) == {VERSION: SHAPES_STATEMENTS}


@pytest.mark.parametrize(
    "edit",
    [
        lambda sql: sql.replace("'a;b'", "'a;c'"),
        lambda sql: sql.replace("perform 1;", "perform 2;"),
        lambda sql: sql + "\nselect 1;\n",
        lambda sql: sql.replace("'done; really'", "'done;  really'"),
    ],
    ids=["default", "function body", "added statement", "space inside a string"],
)
def test_a_changed_file_is_refused_after_the_cli_applied_it(empty_db_url: str, shapes: Path, edit) -> None:
    push(empty_db_url, shapes, {VERSION: SHAPES_STATEMENTS})
    path = shapes / SHAPES.name
    path.write_text(edit(path.read_text()))
    with pytest.raises(MigrationError, match=f"{SHAPES.name} was changed after it was applied"):
        status(empty_db_url, shapes)


def test_space_between_statements_is_no_change(empty_db_url: str, shapes: Path) -> None:
    push(empty_db_url, shapes, {VERSION: SHAPES_STATEMENTS})
    path = shapes / SHAPES.name
    path.write_text("\n" + path.read_text().replace("security;\n", "security ;\n\n"))
    assert [entry.applied for entry in status(empty_db_url, shapes)] == [True]


def test_the_project_pushed_by_the_cli_is_up_to_date_for_the_runner(empty_db_url: str) -> None:
    """On Supabase the platform provides what the compat layer stands in for; then `db push`."""
    with connect(empty_db_url, autocommit=True) as conn:
        conn.execute(COMPAT_SQL.read_text())
        conn.execute(REALTIME_COMPAT_SQL.read_text())
    push(empty_db_url, discover()[0].path.parent)
    assert all(entry.applied for entry in status(empty_db_url))
    assert migrate(empty_db_url) == []


def test_the_runners_records_run_statement_by_statement_as_the_cli_runs_them(db_url: str, empty_db_url: str) -> None:
    """What `migration fetch` would write back and `db push` would run: every record element alone."""
    records = recorded(db_url)
    assert set(records) == {m.version for m in discover()}
    with connect(empty_db_url, autocommit=True) as conn:
        conn.execute(COMPAT_SQL.read_text())
        conn.execute(REALTIME_COMPAT_SQL.read_text())
        for migration in discover():
            with conn.transaction():
                for statement in records[migration.version]:
                    run_alone(conn, statement)
        assert conn.execute("select to_regclass('public.nudge_pending_user_id_idx') is not null").fetchone() == (True,)


def test_records_of_the_runner_before_issue_9_are_still_accepted(db_url: str) -> None:
    with connect(db_url, autocommit=True) as conn:
        for migration in discover():
            conn.execute(
                "update supabase_migrations.schema_migrations set statements = %s where version = %s",
                ([migration.sql], migration.version),
            )
    assert all(entry.applied for entry in status(db_url))


def test_one_statement_per_element_is_what_the_cli_needs(empty_db_url: str) -> None:
    """Why the split matters: the extended protocol refuses a file sent as one element."""
    with connect(empty_db_url, autocommit=True) as conn, pytest.raises(AssertionError, match="multiple commands"):
        run_alone(conn, "select 1; select 2")

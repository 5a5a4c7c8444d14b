"""`supabase db push`, as its source (supabase/cli pkg/migration) does it, for tests of the runner.

The CLI creates its history table in four statements, then per file sends each recorded
statement on its own (extended protocol: one statement each) and the history row, all in one
transaction. Statements come from events_schema.statements.split, pinned to the CLI's rules by
tests/unit/schema/test_statements.py.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg import pq

from events_schema.db import connect
from events_schema.migrate import discover

HISTORY_TABLE = (
    "create schema if not exists supabase_migrations",
    "create table if not exists supabase_migrations.schema_migrations (version text not null primary key)",
    "alter table supabase_migrations.schema_migrations add column if not exists statements text[]",
    "alter table supabase_migrations.schema_migrations add column if not exists name text",
)
DONE = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK, pq.ExecStatus.EMPTY_QUERY)


def run_alone(conn: psycopg.Connection, statement: str) -> None:
    """One statement through the extended protocol, which refuses two statements in one string."""
    result = conn.pgconn.exec_params(statement.encode(), [])
    if result.status not in DONE:
        raise AssertionError(f"{statement[:60]!r}: {result.error_message.decode().strip()}")


def push(url: str, directory: Path, records: dict[str, list[str]] | None = None) -> None:
    """Apply every file of `directory` as the CLI does; `records` overrides what a version records."""
    with connect(url, autocommit=True) as conn:
        for statement in HISTORY_TABLE:
            run_alone(conn, statement)
        for migration in discover(directory):
            statements = (records or {}).get(migration.version, migration.statements)
            with conn.transaction():
                for statement in statements:
                    run_alone(conn, statement)
                conn.execute(
                    "insert into supabase_migrations.schema_migrations (version, name, statements) values (%s, %s, %s)",
                    (migration.version, migration.name, statements),
                )

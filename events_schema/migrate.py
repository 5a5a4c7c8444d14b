"""Migration runner: applies the Supabase compatibility layer where needed, then every pending
migration in order, recording versions where the Supabase CLI records them.

Each migration runs in its own transaction. A session-level advisory lock serialises concurrent
runners: the second waits, then finds nothing pending. That lock needs one server session
throughout: the runner uses DATABASE_SESSION_URL (default DATABASE_URL) and refuses a
transaction-mode pooler (events_schema/pooler.py). A file changed after it was applied is
refused, since the database no longer matches what the file says. Records are written as the
Supabase CLI writes them (one element per statement, events_schema/statements.py) and compared in
a form both agree on, so `supabase db push` and this runner can take turns on one database.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import errors
from sqlalchemy.engine import make_url

from events_schema.db import DatabaseUnavailable, connect, one_row
from events_schema.errors import CommandError
from events_schema.pooler import require_session, session_setting
from events_schema.settings import get_settings
from events_schema.statements import matches, split

PACKAGE_DIR = Path(__file__).resolve().parent
MIGRATIONS_DIR = PACKAGE_DIR / "migrations"
COMPAT_SQL = PACKAGE_DIR / "compat" / "supabase_compat.sql"
# Supabase Realtime's schema, where Realtime has not made it (plain PostgreSQL).
REALTIME_COMPAT_SQL = PACKAGE_DIR / "compat" / "realtime_compat.sql"
# Supabase CLI naming: <YYYYMMDDHHMMSS>_<name>.sql
MIGRATION_NAME = re.compile(r"^(?P<version>\d{14})_(?P<name>[a-z0-9_]+)\.sql$")
# Any constant both runners agree on; the text makes it greppable in pg_locks.
LOCK_KEY = int.from_bytes(hashlib.sha256(b"events_schema.migrate").digest()[:8], "big", signed=True)

SCHEMA_MIGRATIONS_DDL = """
create schema if not exists supabase_migrations;
create table if not exists supabase_migrations.schema_migrations (
  version text not null primary key,
  statements text[],
  name text
);
"""


class MigrationError(CommandError):
    """A migration could not be applied or verified (exit 1)."""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:12]

    @property
    def statements(self) -> list[str]:
        """The file as the Supabase CLI records it in schema_migrations.statements."""
        return split(self.sql)


@dataclass(frozen=True)
class MigrationStatus:
    migration: Migration
    applied: bool


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in version order; a badly named `.sql` file is an error, not skipped."""
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named <YYYYMMDDHHMMSS>_<name>.sql")
        found.append(Migration(match["version"], match["name"], path))
    versions = [m.version for m in found]
    if len(versions) != len(set(versions)):
        raise MigrationError(f"duplicate migration versions in {directory.name}/")
    return found


def ensure_database(url: str) -> None:
    """Create the target database when the server has none of that name (first run)."""
    try:
        connect(url).close()
        return
    except DatabaseUnavailable as exc:
        cause = exc.__cause__
        if not (isinstance(cause, psycopg.OperationalError) and "does not exist" in str(cause)):
            raise
    target = make_url(url)
    if not target.database:
        raise MigrationError("the database URL names no database to create")
    with connect(target.set(database="postgres").render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("create database {}").format(psycopg.sql.Identifier(target.database)))


def _applied(conn: psycopg.Connection) -> dict[str, list[str] | None]:
    rows = conn.execute("select version, statements from supabase_migrations.schema_migrations").fetchall()
    return {version: statements for version, statements in rows}


def _verify_unchanged(migrations: list[Migration], applied: dict[str, list[str] | None]) -> None:
    for migration in migrations:
        # No statements (NULL, or an empty array) records nothing to compare against.
        recorded = applied.get(migration.version)
        if recorded and not matches(recorded, migration.sql):
            raise MigrationError(
                f"{migration.path.name} was changed after it was applied; "
                "add a new migration instead of editing an applied one"
            )


def migrate(url: str | None = None, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Bring the database up to date; returns the migrations applied by this call."""
    migrations = discover(directory)
    explicit = url is not None
    url = url or get_settings().session_url
    ensure_database(url)
    with connect(url, autocommit=True) as conn:
        require_session(url, conn, session_setting(explicit), "the migration runner (its advisory lock, its DDL)")
        conn.execute("select pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            with conn.transaction():
                if one_row(conn.execute("select to_regnamespace('auth') is null"))[0]:
                    _run_sql(conn, COMPAT_SQL.read_text(encoding="utf-8"), COMPAT_SQL.name)
                if one_row(conn.execute("select to_regclass('realtime.messages') is null"))[0]:
                    _run_sql(conn, REALTIME_COMPAT_SQL.read_text(encoding="utf-8"), REALTIME_COMPAT_SQL.name)
                conn.execute(SCHEMA_MIGRATIONS_DDL)
            applied = _applied(conn)
            _verify_unchanged(migrations, applied)
            done: list[Migration] = []
            for migration in migrations:
                if migration.version in applied:
                    continue
                with conn.transaction():
                    _run_sql(conn, migration.sql, migration.path.name)
                    conn.execute(
                        "insert into supabase_migrations.schema_migrations (version, name, statements)"
                        " values (%s, %s, %s)",
                        (migration.version, migration.name, migration.statements),
                    )
                done.append(migration)
            return done
        finally:
            conn.execute("select pg_advisory_unlock(%s)", (LOCK_KEY,))


def status(url: str | None = None, directory: Path = MIGRATIONS_DIR) -> list[MigrationStatus]:
    """Applied and pending migrations, without changing anything."""
    migrations = discover(directory)
    with connect(url) as conn:
        exists = one_row(conn.execute("select to_regclass('supabase_migrations.schema_migrations') is not null"))[0]
        applied = _applied(conn) if exists else {}
    _verify_unchanged(migrations, applied)
    return [MigrationStatus(m, m.version in applied) for m in migrations]


def _run_sql(conn: psycopg.Connection, sql: str, label: str) -> None:
    try:
        conn.execute(sql)
    except errors.Error as exc:
        detail = (exc.diag.message_primary or str(exc)).strip().splitlines()[0]
        raise MigrationError(f"{label}: {detail} (SQLSTATE {exc.sqlstate})") from exc

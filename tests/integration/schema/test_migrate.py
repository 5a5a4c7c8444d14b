"""The migration runner and the schema it produces, checked against the real server."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import psycopg
import pytest

from events_schema.__main__ import main
from events_schema.db import connect
from events_schema.migrate import MigrationError, discover, migrate, status
from tests.waiting import join

PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/engagement"


def cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "events_schema", "--database-url", url, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def public_tables(conn: psycopg.Connection) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = 'public' and c.relkind in ('r', 'p') order by 1"
        )
    ]


# the schema


def test_engagement_events_columns(admin: psycopg.Connection) -> None:
    columns = admin.execute(
        "select column_name, data_type, is_nullable, column_default from information_schema.columns "
        "where table_schema = 'public' and table_name = 'engagement_events' order by ordinal_position"
    ).fetchall()
    assert columns == [
        ("id", "uuid", "NO", "uuid_time_ordered()"),
        ("user_id", "uuid", "NO", None),
        ("timestamp", "timestamp with time zone", "NO", "now()"),
        ("event_type", "text", "NO", None),
        ("value", "jsonb", "NO", "'{}'::jsonb"),
        ("is_deleted", "boolean", "NO", "false"),
        ("feed_xid", "xid8", "NO", "pg_current_xact_id()"),
        ("feed_seq", "bigint", "NO", None),
    ]
    fk = admin.execute(
        "select confrelid::regclass::text, confdeltype from pg_constraint "
        "where conrelid = 'public.engagement_events'::regclass and contype = 'f'"
    ).fetchall()
    assert fk == [("auth.users", "c")], "deleting a user erases their events"


def test_event_ids_grow_with_time_and_are_version_7_uuids(admin: psycopg.Connection) -> None:
    """The id default puts Unix milliseconds first (RFC 9562 version 7), so new rows go to the
    right-hand edge of the primary key's index; the rest stays random."""
    user = admin.execute("insert into auth.users (id) values (gen_random_uuid()) returning id").fetchone()[0]
    before = admin.execute("select floor(extract(epoch from clock_timestamp()) * 1000)::bigint").fetchone()[0]
    ids = [
        admin.execute(
            "insert into engagement_events (user_id, event_type) values (%s, 'app_open') returning id", (user,)
        ).fetchone()[0]
        for _ in range(50)
    ]
    after = admin.execute("select floor(extract(epoch from clock_timestamp()) * 1000)::bigint").fetchone()[0]
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert all(before <= int.from_bytes(i.bytes[:6], "big") <= after for i in ids)
    millis = [int.from_bytes(i.bytes[:6], "big") for i in ids]
    assert millis == sorted(millis) and len(set(ids)) == 50
    assert len({i.bytes[6:] for i in ids}) == 50  # the random part differs within a millisecond too


def test_engagement_events_indexes(admin: psycopg.Connection) -> None:
    definitions = {
        r[0]: r[1]
        for r in admin.execute(
            "select indexname, indexdef from pg_indexes where schemaname = 'public' and tablename = 'engagement_events'"
        )
    }
    assert "USING btree (id)" in definitions["engagement_events_pkey"]
    assert 'USING btree (user_id, "timestamp" DESC)' in definitions["engagement_events_user_id_timestamp_idx"]
    assert "USING gin (value jsonb_path_ops)" in definitions["engagement_events_value_idx"]
    assert "USING btree (feed_xid, feed_seq)" in definitions["engagement_events_feed_idx"]


def test_engagement_events_policies(admin: psycopg.Connection) -> None:
    policies = admin.execute(
        "select policyname, cmd, roles::text[], coalesce(qual, with_check), permissive from pg_policies "
        "where schemaname = 'public' and tablename = 'engagement_events' order by cmd, policyname"
    ).fetchall()
    # PostgreSQL cuts identifiers at 63 bytes (NAMEDATALEN): the insert policy's name is stored cut.
    assert [(name, cmd, roles, kind) for name, cmd, roles, _, kind in policies] == [
        ("Users can log own events, not future-dated, not reserved types", "INSERT", ["authenticated"], "PERMISSIVE"),
        ("Users can read their own events that are not deleted", "SELECT", ["authenticated"], "PERMISSIVE"),
        ("Users never see the engine's private events", "SELECT", ["authenticated"], "RESTRICTIVE"),
    ]
    for *_, expression, kind in policies:
        if kind == "RESTRICTIVE":
            assert expression == "(event_type <> ALL (engagement_private_event_types()))"
            continue
        assert "( SELECT auth.uid() AS uid) = user_id" in expression, "wrapped: evaluated once per statement"


def test_grants(admin: psycopg.Connection) -> None:
    def granted(role: str, table: str) -> set[str]:
        return {
            p
            for p in PRIVILEGES
            if admin.execute("select has_table_privilege(%s, %s, %s)", (role, f"public.{table}", p)).fetchone()[0]
        }

    # Users remove their own device tokens (docs/delivery.md); nothing else of theirs is ever deleted.
    deletable = {"device_tokens"}
    for table in public_tables(admin):
        assert granted("anon", table) == set(), table
        allowed = {"SELECT", "INSERT"} | ({"DELETE"} if table in deletable else set())
        assert granted("authenticated", table) <= allowed, table
    assert granted("authenticated", "device_tokens") == {"SELECT", "DELETE"}
    assert granted("authenticated", "engagement_events") == {"SELECT"}
    assert granted("service_role", "engagement_events") == {"SELECT", "DELETE"}
    # Writes are granted per column: the feed's position is the database's to set.
    written = {"id", "user_id", "timestamp", "event_type", "value", "is_deleted"}
    for role, privilege, columns in (
        ("authenticated", "INSERT", written),
        ("authenticated", "UPDATE", set()),
        ("service_role", "INSERT", written),
        ("service_role", "UPDATE", written - {"id"}),
    ):
        assert {
            c
            for c in written | {"feed_xid", "feed_seq"}
            if admin.execute(
                "select has_column_privilege(%s, 'public.engagement_events', %s, %s)", (role, c, privilege)
            ).fetchone()[0]
        } == columns, (role, privilege)


def test_every_table_users_can_read_has_a_policy_for_them(admin: psycopg.Connection) -> None:
    for table in public_tables(admin):
        if admin.execute("select has_table_privilege('authenticated', %s, 'select')", (f"public.{table}",)).fetchone()[
            0
        ]:
            policies = admin.execute(
                "select count(*) from pg_policies where schemaname = 'public' and tablename = %s "
                "and 'authenticated' = any(roles) and cmd in ('SELECT', 'ALL')",
                (table,),
            ).fetchone()[0]
            assert policies, f"{table}: readable by authenticated without a policy"


def test_events_stream_through_supabase_realtime(admin: psycopg.Connection) -> None:
    tables = admin.execute(
        "select schemaname, tablename from pg_publication_tables where pubname = 'supabase_realtime'"
    ).fetchall()
    assert ("public", "engagement_events") in tables


# the runner


def test_records_versions_where_the_supabase_cli_does(admin: psycopg.Connection) -> None:
    recorded = admin.execute(
        "select version, name, statements from supabase_migrations.schema_migrations order by version"
    ).fetchall()
    assert recorded == [(m.version, m.name, m.statements) for m in discover()]


def test_second_run_applies_nothing(db_url: str) -> None:
    assert migrate(db_url) == []
    assert all(entry.applied for entry in status(db_url))


def test_status_lists_pending_then_applied(empty_db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert not any(entry.applied for entry in status(empty_db_url))
    migrate(empty_db_url)
    assert main(["--database-url", empty_db_url, "status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [["applied", m.path.name] for m in discover()]


def test_an_edited_migration_is_refused(empty_db_url: str, tmp_path: Path) -> None:
    directory = tmp_path / "migrations"
    shutil.copytree(discover()[0].path.parent, directory)
    assert len(migrate(empty_db_url, directory)) == len(discover(directory))
    edited = discover(directory)[0].path
    edited.write_text(edited.read_text() + "\n-- a harmless-looking edit\n")
    with pytest.raises(MigrationError, match=f"{edited.name} was changed after it was applied"):
        migrate(empty_db_url, directory)
    with pytest.raises(MigrationError, match="changed after it was applied"):
        status(empty_db_url, directory)


def test_two_concurrent_runs_apply_each_migration_once(empty_db_url: str) -> None:
    start, results, failures = threading.Barrier(2), [], []

    def run() -> None:
        start.wait(timeout=60)
        try:
            results.append(migrate(empty_db_url))
        except Exception as exc:  # reported below, with the other thread's outcome  # noqa: BLE001
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    join(*threads, timeout=120)
    assert failures == []
    applied = sorted(m.version for result in results for m in result)
    assert applied == [m.version for m in discover()], "each migration applied by exactly one runner"
    with connect(empty_db_url) as conn:
        assert conn.execute("select count(*) from supabase_migrations.schema_migrations").fetchone() == (len(applied),)


def test_bad_sql_is_one_line_and_keeps_what_was_applied(empty_db_url: str, tmp_path: Path) -> None:
    first = discover()[0]
    shutil.copy(first.path, tmp_path / first.path.name)
    (tmp_path / "20990101000000_broken.sql").write_text("create tabel oops ();\n")
    with pytest.raises(MigrationError) as raised:
        migrate(empty_db_url, tmp_path)
    message = str(raised.value)
    assert message.startswith("20990101000000_broken.sql: syntax error") and "42601" in message
    assert "\n" not in message
    with connect(empty_db_url) as conn:
        versions = conn.execute("select version from supabase_migrations.schema_migrations").fetchall()
    assert versions == [(first.version,)]


def test_failing_migration_from_the_command_line(empty_db_url: str) -> None:
    """A statement the server rejects: one line on stderr, exit 1, no traceback."""
    with connect(empty_db_url, autocommit=True) as conn:
        conn.execute("create table public.engagement_events (squatter int)")
    result = cli("migrate", url=empty_db_url)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f'error: {discover()[0].path.name}: relation "engagement_events" already exists')


def test_unreachable_database_from_the_command_line() -> None:
    result = cli("migrate", url=UNREACHABLE)
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot connect to the database:")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", [["status"], ["seed", "--users", "1", "--days", "1"], ["audit"]])
def test_unreachable_database_for_every_command(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--database-url", UNREACHABLE, *command]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot connect to the database:") and err.count("\n") == 1

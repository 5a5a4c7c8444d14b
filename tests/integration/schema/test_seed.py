"""Seeding a real database: what it loads, that it is deterministic, and when it refuses."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from events_schema.__main__ import main
from events_schema.seed.seed import SeedError, seed

NOW = datetime(2026, 11, 26, 10, tzinfo=UTC)
FINGERPRINT = """
select (select md5(string_agg(concat_ws('|', id, email, created_at, raw_user_meta_data), ',' order by id))
        from auth.users),
       (select md5(string_agg(concat_ws('|', id, user_id, "timestamp", event_type, value, is_deleted), ','
                              order by id))
        from public.engagement_events)
"""


def count(conn: psycopg.Connection, sql: str, *params: object) -> int:
    return conn.execute(sql, params or None).fetchone()[0]


def test_loads_users_and_events_as_reported(db_url: str, admin: psycopg.Connection) -> None:
    report = seed(db_url, users=150, days=10, seed=3, now=NOW)
    assert count(admin, "select count(*) from auth.users") == 150
    assert count(admin, "select count(*) from public.engagement_events") == report.events > 150 * 10 * 0.5
    # The auth.users trigger filled the engine's projection, metadata included.
    assert count(admin, "select count(*) from public.engagement_users") == 150
    assert count(admin, "select count(*) from public.engagement_users where nudges_opt_out") == report.opted_out
    assert (
        count(admin, "select count(*) from public.engagement_users where timezone is null") == report.without_timezone
    )
    assert (
        count(
            admin,
            "select count(*) from public.engagement_users where timezone is not null "
            "and timezone not in (select name from pg_timezone_names)",
        )
        == 0
    )
    # The statement trigger kept last activity, and the scan will find quiet users.
    quiet = count(
        admin,
        """
        select count(*) from public.engagement_users u
        where not exists (select 1 from public.engagement_last_activity a
                          where a.user_id = u.user_id and a.last_at >= %s - interval '48 hours')
    """,
        NOW,
    )
    assert quiet == report.quiet_48h > 0
    span = admin.execute('select min("timestamp"), max("timestamp") from public.engagement_events').fetchone()
    assert (NOW - span[0]).days < 10 and span[1] < NOW


def test_same_seed_same_rows_another_seed_other_rows(db_url: str, admin: psycopg.Connection) -> None:
    fingerprints = []
    for seed_value in (11, 11, 12):
        seed(db_url, users=40, days=5, seed=seed_value, now=NOW)
        fingerprints.append(admin.execute(FINGERPRINT).fetchone())
        admin.execute("delete from auth.users")  # erasure cascades to the events
    assert fingerprints[0] == fingerprints[1]
    assert fingerprints[2][0] != fingerprints[0][0] and fingerprints[2][1] != fingerprints[0][1]


def test_the_same_seed_twice_is_refused_and_loads_nothing(db_url: str, admin: psycopg.Connection) -> None:
    report = seed(db_url, users=20, days=3, seed=1, now=NOW)
    with pytest.raises(SeedError, match="users of seed 1 are already in this database"):
        seed(db_url, users=30, days=3, seed=1, now=NOW)
    assert count(admin, "select count(*) from auth.users") == 20
    assert count(admin, "select count(*) from public.engagement_events") == report.events


def test_refuses_where_supabase_auth_owns_the_users(db_url: str, admin: psycopg.Connection) -> None:
    admin.execute("create table auth.identities (id uuid primary key)")  # as GoTrue has
    with pytest.raises(SeedError, match="--into-auth"):
        seed(db_url, users=5, days=2, now=NOW)
    assert seed(db_url, users=5, days=2, now=NOW, into_auth=True).users == 5


def test_command_line(settings_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["seed", "--users", "25", "--days", "3", "--seed", "9", "--now", "2026-11-20T08:00:00Z"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("seeded 25 users and ") and "ending 2026-11-20T08:00:00Z (seed 9)" in out


def test_command_line_on_an_unmigrated_database(empty_db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--database-url", empty_db_url, "seed", "--users", "5", "--days", "1"]) == 1
    assert (
        capsys.readouterr().err == "error: the database is not migrated: run `python -m events_schema migrate` first\n"
    )


def test_if_empty_seeds_a_fresh_database_once(db_url: str, admin: psycopg.Connection) -> None:
    first = seed(db_url, users=10, days=2, seed=7, now=NOW, if_empty=True)
    assert first is not None and first.events > 0
    count = admin.execute("select count(*) from engagement_events").fetchone()[0]
    assert seed(db_url, users=10, days=2, seed=8, now=NOW, if_empty=True) is None
    assert admin.execute("select count(*) from engagement_events").fetchone()[0] == count

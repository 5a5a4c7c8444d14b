"""Retention, forget_user and the hard delete, as the user sees them through RLS (a PostgREST-style
request with their token) and as the engine sees them (engagement_last_activity)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import psycopg
import pytest

from events_schema.postgrest import claims_for, request
from events_schema.settings import get_settings
from tests.integration.ingest.import_helpers import NOW, add_users, quarantined
from worker.app import app
from worker.retention.retention import apply_retention, forget_user
from worker.tasks import import_events

# Every test runs the engine against its own database (settings_env closes its connections).
pytestmark = pytest.mark.usefixtures("settings_env")


def add_events(conn: psycopg.Connection, user: uuid.UUID, stamps: list[datetime], event_type: str = "app_open") -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "insert into engagement_events (user_id, timestamp, event_type) values (%s, %s, %s)",
            [(user, stamp, event_type) for stamp in stamps],
        )


def seen_by_user(api: psycopg.Connection, user: uuid.UUID) -> list[datetime]:
    """The user's events as the app reads them: their token, RLS applied."""
    with request(api, "authenticated", claims_for("authenticated", user)) as conn:
        return [row[0] for row in conn.execute("select timestamp from engagement_events order by timestamp").fetchall()]


def last_activity(admin: psycopg.Connection, user: uuid.UUID) -> dict[str, datetime]:
    """As the engine sees it: inserts reach the summary by the fold every scan runs first."""
    admin.execute("select public.fold_engagement_summaries()")
    return dict(
        admin.execute("select event_type, last_at from engagement_last_activity where user_id = %s", (user,)).fetchall()
    )


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def test_retention_is_off_unless_configured(admin: psycopg.Connection, api: psycopg.Connection) -> None:
    [user] = add_users(admin)
    add_events(admin, user, [days_ago(400)])
    assert apply_retention(NOW) == {
        "soft_deleted": 0,
        "chunks": 0,
        "cutoff": None,
        "note": "retention is off (RETENTION_DAYS unset)",
        "messages_deleted": 0,
    }
    assert seen_by_user(api, user) == [days_ago(400)]


def test_retention_hides_old_events_from_the_user_and_the_engine_in_bounded_chunks(
    admin: psycopg.Connection, api: psycopg.Connection
) -> None:
    alice, bob = add_users(admin, 2)
    # Alice: 300 old app opens, then recent ones; Bob: only old goal completions.
    add_events(admin, alice, [days_ago(100 + i / 100) for i in range(300)])
    add_events(admin, alice, [days_ago(5), days_ago(1)])
    add_events(admin, bob, [days_ago(45), days_ago(31)], "goal_complete")
    add_events(admin, bob, [days_ago(29)], "app_open")
    assert last_activity(admin, bob) == {"goal_complete": days_ago(31), "app_open": days_ago(29)}

    pages = admin.execute(
        "select pg_relation_size('engagement_events') / current_setting('block_size')::int"
    ).fetchone()[0]
    assert pages >= 3

    # One page (at most 107 rows) per chunk: one transaction per page of this table.
    summary = apply_retention(NOW, retention_days=30, chunk_size=1)

    assert (summary["soft_deleted"], summary["chunks"]) == (302, pages)
    assert summary["cutoff"] == days_ago(30).isoformat()
    assert seen_by_user(api, alice) == [days_ago(5), days_ago(1)]
    assert seen_by_user(api, bob) == [days_ago(29)]
    assert last_activity(admin, alice) == {"app_open": days_ago(1)}
    assert last_activity(admin, bob) == {"app_open": days_ago(29)}  # goal_complete is gone

    # Safe to re-run: nothing left to do, nothing changes.
    assert apply_retention(NOW, retention_days=30)["soft_deleted"] == 0
    assert admin.execute("select count(*) from engagement_events where is_deleted").fetchone()[0] == 302


def test_retention_days_come_from_the_settings(
    admin: psycopg.Connection, api: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETENTION_DAYS", "7")
    get_settings.cache_clear()
    [user] = add_users(admin)
    add_events(admin, user, [days_ago(8), days_ago(6)])
    assert apply_retention(NOW)["soft_deleted"] == 1
    assert seen_by_user(api, user) == [days_ago(6)]


def test_forget_user_hides_all_their_events_and_drops_their_quarantined_input(
    admin: psycopg.Connection, api: psycopg.Connection
) -> None:
    alice, bob = add_users(admin, 2)
    # More events than one chunk, many sharing one timestamp (the chunk boundary falls in a tie).
    add_events(admin, alice, [days_ago(3)] * 25 + [days_ago(2 + i / 1000) for i in range(20)])
    add_events(admin, alice, [days_ago(1)], "goal_complete")
    add_events(admin, bob, [days_ago(1)])
    import_events([{"user_id": str(alice), "event_type": "App Open"}], now=NOW.isoformat())
    assert len(quarantined(admin)) == 1

    summary = forget_user(alice, chunk_size=10)

    assert summary["soft_deleted"] == 46 and summary["chunks"] > 4
    assert summary["quarantine_purged"] == 1 and quarantined(admin) == []
    assert seen_by_user(api, alice) == []
    assert last_activity(admin, alice) == {}
    assert seen_by_user(api, bob) == [days_ago(1)]
    assert last_activity(admin, bob) == {"app_open": days_ago(1)}

    # Safe to re-run; and the user's later activity is theirs again (forgetting is of the past).
    assert forget_user(alice)["soft_deleted"] == 0
    add_events(admin, alice, [days_ago(0)])
    assert seen_by_user(api, alice) == [days_ago(0)]


def test_hard_delete_is_deleting_the_auth_user(admin: psycopg.Connection, api: psycopg.Connection) -> None:
    alice, bob = add_users(admin, 2)
    add_events(admin, alice, [days_ago(2), days_ago(1)])
    add_events(admin, bob, [days_ago(1)])
    import_events([{"user_id": str(alice), "event_type": "App Open"}], now=NOW.isoformat())

    admin.execute("select public.fold_engagement_summaries()")  # the summaries hold her rows
    admin.execute("delete from auth.users where id = %s", (alice,))

    counts = admin.execute(
        "select (select count(*) from engagement_events where user_id = %(u)s),"
        " (select count(*) from engagement_last_activity where user_id = %(u)s),"
        " (select count(*) from engagement_users where user_id = %(u)s),"
        " (select count(*) from engagement_import_quarantine where user_id = %(u)s)",
        {"u": alice},
    ).fetchone()
    assert counts == (0, 0, 0, 0)
    assert seen_by_user(api, alice) == []
    assert seen_by_user(api, bob) == [days_ago(1)]


def test_the_tasks_are_registered_under_their_names() -> None:
    assert {"import_events", "apply_retention", "forget_user"} <= set(app.tasks)

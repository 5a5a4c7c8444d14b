"""Work for the fault tests, and exact checks of what the database holds afterwards."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from celery import Celery

from tests.integration.ingest.import_helpers import add_users

# One row in REJECT_EVERY is refused (a reserved type): the quarantine must hold each once.
REJECT_EVERY = 500
AS_OF = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def client(redis_url: str) -> Celery:
    """A sender of our own (not the app under test), as another service would send tasks."""
    return Celery(broker=redis_url, backend=redis_url)


def big_batch(conn: psycopg.Connection, rows: int) -> tuple[list[dict[str, Any]], int]:
    """`rows` events over 50 users, ids derived from the batch id; returns (batch, valid count)."""
    users = [str(u) for u in add_users(conn, 50)]
    batch = [
        {
            "user_id": users[n % 50],
            "event_type": "nudge_sent" if n % REJECT_EVERY == 7 else "app_open",
            "timestamp": "2026-03-01T10:00:00Z",
            "value": {"n": n},
        }
        for n in range(rows)
    ]
    return batch, rows - sum(1 for n in range(rows) if n % REJECT_EVERY == 7)


def assert_imported_exactly(conn: psycopg.Connection, batch_id: str, valid: int, rejected: int) -> None:
    """Every valid row present once (by its derived id and by its position), every refused one
    quarantined once."""
    events, distinct_ids, distinct_n = conn.execute(
        "select count(*), count(distinct id), count(distinct value->>'n') from engagement_events"
        " where event_type = 'app_open'"
    ).fetchone()
    assert (events, distinct_ids, distinct_n) == (valid, valid, valid)
    assert conn.execute(
        "select count(*), count(distinct position) from engagement_import_quarantine where batch_id = %s", (batch_id,)
    ).fetchone() == (rejected, rejected)


def imported(conn: psycopg.Connection) -> int:
    return conn.execute("select count(*) from engagement_events").fetchone()[0]


def due_users(conn: psycopg.Connection, count: int) -> list[uuid.UUID]:
    """`count` users who signed up before, and were last seen 3 days before, AS_OF: all due."""
    signed_up = AS_OF - timedelta(days=9)
    users = [
        row[0]
        for row in conn.execute(
            "insert into auth.users (id, created_at, raw_user_meta_data) select gen_random_uuid(), %s, '{}' from generate_series(1, %s)"
            " returning id",
            (signed_up, count),
        ).fetchall()
    ]
    conn.execute(
        "insert into engagement_events (user_id, timestamp, event_type) select unnest(%s::uuid[]), %s, 'app_open'",
        (users, AS_OF - timedelta(days=3)),
    )
    return users


def nudge_counts(conn: psycopg.Connection) -> dict[uuid.UUID, int]:
    return dict(
        conn.execute(
            "select user_id, count(*) from engagement_events where event_type = 'nudge_sent' group by user_id"
        ).fetchall()
    )


def assert_nudged_once(conn: psycopg.Connection, users: list[uuid.UUID]) -> None:
    counts = nudge_counts(conn)
    assert sorted(counts) == sorted(users), f"{len(counts)} users nudged, {len(users)} due"
    assert set(counts.values()) == {1}


def terminate_busy_backend(conn: psycopg.Connection, timeout: float = 30) -> int:
    """pg_terminate_backend on a backend of this test's own database that is inside a
    transaction (an idle pooled one would just be replaced by the pool's ping); returns its pid."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute(
            "select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()"
            " and backend_type = 'client backend' and state in ('active', 'idle in transaction')"
            " limit 1"
        ).fetchone()
        if row and conn.execute("select pg_terminate_backend(%s)", (row[0],)).fetchone()[0]:
            return row[0]
        time.sleep(0.005)
    raise AssertionError("no busy backend of the worker to terminate")

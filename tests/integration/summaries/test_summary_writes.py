"""Every kind of write to engagement_events keeps the scan's summaries equal to the event log.

The summaries (docs/scaling.md): engagement_last_activity, the latest counted activity per user
and type, and engagement_users.last_activity_at, per user; statement-level triggers keep them.
Each case starts from the same small world and makes one kind of write: insert, an update of
each column they depend on (user_id, event_type, "timestamp", is_deleted), soft delete,
un-delete, delete, TRUNCATE, and the same as one statement over many rows. After it the log's
own answer (public.engagement_summary_drift(), what `python -m events_schema summaries` prints)
finds no drift, and a rebuild from the log changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
import pytest

Write = Callable[[psycopg.Connection, dict[str, uuid.UUID]], None]


def arrange(conn: psycopg.Connection) -> dict[str, uuid.UUID]:
    """Three users; each with counted events of two types, a newer nudge (reserved: not
    activity) and a newer soft-deleted event; `latest`, u1's latest counted event, and `old`,
    an older one. u3 has no events at all."""
    ids: dict[str, uuid.UUID] = {}
    for name in ("u1", "u2", "u3"):
        ids[name] = conn.execute(
            "insert into auth.users (id, created_at) values (gen_random_uuid(), '2026-01-01T00:00Z') returning id"
        ).fetchone()[0]
    for name, hours in (("u1", 0), ("u2", 5)):
        user = ids[name]
        for kind, stamp, event_type, deleted in (
            ("old", "2026-03-01T10:00Z", "app_open", False),
            ("mid", "2026-03-02T10:00Z", "goal_complete", False),
            ("latest", "2026-03-03T10:00Z", "app_open", False),
            ("nudge", "2026-03-04T10:00Z", "nudge_sent", False),
            ("deleted", "2026-03-05T10:00Z", "coach_message", True),
        ):
            event = conn.execute(
                "insert into engagement_events (user_id, timestamp, event_type, is_deleted)"
                " values (%s, %s::timestamptz + %s * interval '1 hour', %s, %s) returning id",
                (user, stamp, hours, event_type, deleted),
            ).fetchone()[0]
            ids[f"{name}_{kind}"] = event
    return ids


def run(sql: str) -> Write:
    return lambda conn, ids: conn.execute(sql, ids)


CASES: dict[str, Write] = {
    # Inserts
    "insert a newer event": run(
        "insert into engagement_events (user_id, timestamp, event_type) values (%(u1)s, '2026-03-06Z', 'app_open')"
    ),
    "insert an older event": run(
        "insert into engagement_events (user_id, timestamp, event_type) values (%(u1)s, '2026-02-01Z', 'app_open')"
    ),
    "insert a first event of a type": run(
        "insert into engagement_events (user_id, timestamp, event_type) values (%(u1)s, '2026-02-01Z', 'steps')"
    ),
    "insert a user's first event": run(
        "insert into engagement_events (user_id, timestamp, event_type) values (%(u3)s, '2026-02-01Z', 'app_open')"
    ),
    "insert a newer reserved event": run(
        "insert into engagement_events (user_id, timestamp, event_type) values (%(u1)s, '2026-03-09Z', 'nudge_sent')"
    ),
    "insert a newer soft-deleted event": run(
        "insert into engagement_events (user_id, timestamp, event_type, is_deleted)"
        " values (%(u1)s, '2026-03-09Z', 'app_open', true)"
    ),
    "insert many rows in one statement": run(
        "insert into engagement_events (user_id, timestamp, event_type, is_deleted) values"
        " (%(u1)s, '2026-03-07Z', 'app_open', false), (%(u1)s, '2026-03-08Z', 'app_open', true),"
        " (%(u1)s, '2026-03-09Z', 'nudge_sent', false), (%(u2)s, '2026-02-01Z', 'steps', false),"
        " (%(u3)s, '2026-03-01Z', 'goal_complete', false), (%(u3)s, '2026-03-02Z', 'goal_complete', false)"
    ),
    "copy rows in": lambda conn, ids: _copy(conn, ids),
    "upsert an existing id (insert on conflict do update)": run(
        "insert into engagement_events (id, user_id, timestamp, event_type) values"
        " (%(u1_latest)s, %(u1)s, '2026-02-01Z', 'app_open'), (gen_random_uuid(), %(u2)s, '2026-03-10Z', 'app_open')"
        " on conflict (id) do update set timestamp = excluded.timestamp"
    ),
    # Updates of each column the summaries depend on
    "move the latest event to another user (user_id)": run(
        "update engagement_events set user_id = %(u3)s where id = %(u1_latest)s"
    ),
    "change the latest event's type (event_type)": run(
        "update engagement_events set event_type = 'steps' where id = %(u1_latest)s"
    ),
    "turn the latest event into a reserved type": run(
        "update engagement_events set event_type = 'nudge_sent' where id = %(u1_latest)s"
    ),
    "turn a reserved event into a counted type": run(
        "update engagement_events set event_type = 'app_open' where id = %(u1_nudge)s"
    ),
    "move the latest event earlier (timestamp)": run(
        "update engagement_events set timestamp = '2026-02-01Z' where id = %(u1_latest)s"
    ),
    "move an old event later (timestamp)": run(
        "update engagement_events set timestamp = '2026-03-08Z' where id = %(u1_old)s"
    ),
    "soft-delete the latest event": run("update engagement_events set is_deleted = true where id = %(u1_latest)s"),
    "un-delete a newer event": run("update engagement_events set is_deleted = false where id = %(u1_deleted)s"),
    "soft-delete every counted event of a user": run(
        "update engagement_events set is_deleted = true where user_id = %(u1)s"
    ),
    "update a column the summaries ignore (value)": run(
        "update engagement_events set value = '{\"k\": 1}' where user_id = %(u1)s"
    ),
    "change user, type, time and deletion at once": run(
        "update engagement_events set user_id = %(u2)s, event_type = 'steps', timestamp = '2026-03-20Z',"
        " is_deleted = false where id = %(u1_deleted)s"
    ),
    # Deletes
    "delete the latest event": run("delete from engagement_events where id = %(u1_latest)s"),
    "delete every event of a user": run("delete from engagement_events where user_id = %(u1)s"),
    "delete the auth user (cascade)": run("delete from auth.users where id = %(u1)s"),
    "truncate the log": run("truncate engagement_events"),
    # The same as one statement over many rows and users
    "one update shifting every event's time": run(
        "update engagement_events set timestamp = timestamp - (extract(day from timestamp)::int %% 3) * interval '5 days'"
    ),
    "one update soft-deleting and restoring across users": run(
        "update engagement_events set is_deleted = not is_deleted where event_type <> 'goal_complete'"
    ),
    "one update changing types across users": run(
        "update engagement_events set event_type = case event_type when 'app_open' then 'goal_complete'"
        " when 'goal_complete' then 'nudge_sent' else 'app_open' end"
    ),
    "one update moving events between users": run(
        "update engagement_events set user_id = case user_id when %(u1)s then %(u2)s else %(u1)s end"
    ),
    "one delete across users": run("delete from engagement_events where event_type in ('app_open', 'coach_message')"),
}


def _copy(conn: psycopg.Connection, ids: dict[str, uuid.UUID]) -> None:
    with conn.cursor().copy("copy engagement_events (user_id, timestamp, event_type, is_deleted) from stdin") as copy:
        for user, day, event_type, deleted in (
            (ids["u1"], 7, "app_open", False),
            (ids["u2"], 8, "goal_complete", True),
            (ids["u3"], 1, "steps", False),
        ):
            copy.write_row((user, datetime(2026, 3, day, tzinfo=UTC), event_type, deleted))


def drift(conn: psycopg.Connection) -> list[tuple]:
    return conn.execute("select * from public.engagement_summary_drift() order by 1, 2, 3").fetchall()


def summaries(conn: psycopg.Connection) -> tuple[list[tuple], list[tuple]]:
    return (
        conn.execute("select user_id, event_type, last_at from engagement_last_activity order by 1, 2").fetchall(),
        conn.execute("select user_id, last_activity_at from engagement_users order by 1").fetchall(),
    )


@pytest.mark.parametrize("write", list(CASES), ids=list(CASES))
def test_the_summaries_follow_the_log_through(admin: psycopg.Connection, write: str) -> None:
    ids = arrange(admin)
    assert drift(admin) == []
    with admin.transaction():
        CASES[write](admin, ids)
    assert drift(admin) == []
    kept = summaries(admin)
    assert admin.execute("select public.rebuild_engagement_summaries()").fetchone()[0] == 0
    assert summaries(admin) == kept

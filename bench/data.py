"""The benchmark's dataset: built once with set-based SQL, reused by name, reset between runs."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from psycopg import sql
from sqlalchemy.engine import make_url

from events_schema.db import connect
from events_schema.migrate import migrate
from events_schema.settings import get_settings

# The instant every measurement decides at (a Thursday, winter time in Berlin and New York).
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TIME_ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo")

FILL_USERS = """
insert into auth.users (id, created_at, raw_user_meta_data)
select gen_random_uuid(), %(now)s::timestamptz - interval '60 days' + (random() * interval '29 days'),
       jsonb_build_object('timezone', (array['UTC','Europe/Berlin','America/New_York','Asia/Tokyo'])[1 + (g %% 4)])
from generate_series(1, %(n)s) g
"""
# Each user is active until a personal "last day", then quiet; a quarter go quiet early.
FILL_EVENTS = """
insert into engagement_events (user_id, "timestamp", event_type, value)
select u.id,
       u.last_day - (random() * interval '30 days') * (k::float / %(k)s),
       (array['app_open','app_open','goal_complete','steps_import','coach_message'])[1 + (k %% 5)],
       '{}'::jsonb
from (select id, %(now)s::timestamptz - case when random() < 0.25 then random() * interval '20 days'
                                              else random() * interval '40 hours' end as last_day
        from auth.users order by id offset %(offset)s limit %(limit)s) u,
     generate_series(1, %(k)s) k
"""
# Where the schema folds the summaries off the insert path (issue 21), everything written so far
# folded: the watermark moves past the whole log and the unfolded tail is empty, as after any fold.
# A schema without the fold (summaries kept by the insert trigger) has nothing to do.
FOLD_SUMMARIES = """
do $$ begin
  if to_regprocedure('public.fold_engagement_summaries()') is not null then
    perform public.fold_engagement_summaries();
  end if;
end $$
"""
# The summaries, built from the log in one pass after a load with triggers off, then folded.
REBUILD_SUMMARIES = "select public.rebuild_engagement_summaries();" + FOLD_SUMMARIES
# What a naive engine would run: every user's latest activity, by aggregating the whole log.
BASELINE = """
select count(*) from (
  select e.user_id from engagement_events e
  where not e.is_deleted and e.event_type <> all (public.engagement_reserved_event_types())
    and e."timestamp" <= %(as_of)s
  group by e.user_id
  having max(e."timestamp") <= %(cutoff)s
) due
"""
# Everything a previous run's scans left behind (every decision the scan writes: sent, withheld,
# a shadow rule's would-be nudge), each by its partial index; the events and users stay.
RESET_ENGINE = """
delete from engagement_events where event_type in ('nudge_sent', 'nudge_withheld');
delete from engagement_events where event_type = 'nudge_shadow';
truncate nudge_pending, nudge_scan_state, nudge_scan_leases;
"""


def fill(url: str, users: int, events_per_user: int) -> dict[str, Any]:
    """Users in four time zones and their events, as a bulk load (triggers off, the activity
    summaries built once afterwards); returns the dataset's shape."""
    start = time.perf_counter()
    with connect(url, autocommit=True) as conn:
        conn.execute(FILL_USERS, {"now": NOW, "n": users})
        conn.execute("set session_replication_role = replica")
        step = 50_000
        for offset in range(0, users, step):
            conn.execute(FILL_EVENTS, {"now": NOW, "k": events_per_user, "offset": offset, "limit": step})
            print(f"\rfilling: {min(offset + step, users):,}/{users:,} users", end="", file=sys.stderr)
        conn.execute("reset session_replication_role")
        conn.execute(REBUILD_SUMMARIES)
        conn.execute("vacuum analyze")
    print(f"\rfilled {users:,} users in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return shape(url)


def shape(url: str) -> dict[str, Any]:
    with connect(url, autocommit=True) as conn:
        users, events, schema = conn.execute(
            "select (select count(*) from engagement_users), (select count(*) from engagement_events),"
            " (select max(version) from supabase_migrations.schema_migrations)"
        ).fetchone()
    return {"users": users, "events": events, "schema": schema}


def reset_engine(url: str) -> None:
    """Forget the nudges, holds, scan state and leases of earlier runs, without firing the event
    triggers (nudges are reserved events: the activity summary never counted them); then fold
    whatever is unfolded (a dataset built or last run by code before the fold, or rows written
    since), so every run starts from the state a fresh build leaves: summaries equal to the log
    and an empty tail. Reset twice, the state is the same."""
    with connect(url, autocommit=True) as conn:
        conn.execute("set session_replication_role = replica")
        conn.execute(RESET_ENGINE)
        conn.execute("reset session_replication_role")
        conn.execute(FOLD_SUMMARIES)
        conn.execute("vacuum analyze engagement_events")


@contextmanager
def dataset(users: int, events_per_user: int, reuse: str | None, keep: bool) -> Iterator[tuple[str, bool]]:
    """(url, reused): the database named `reuse` if it exists (built under that name and kept
    otherwise), else a scratch database dropped afterwards unless `keep`."""
    server = make_url(get_settings().database_url)
    admin_url = server.set(database="postgres").render_as_string(hide_password=False)
    name = reuse or f"bench_{users}u_{time.strftime('%H%M%S')}"
    url = server.set(database=name).render_as_string(hide_password=False)
    with connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone() is not None
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        applied = migrate(url)
        if exists and applied:
            # A kept dataset measured by newer code: its schema first, then fresh statistics for
            # whatever the new migrations added, before anything is measured.
            print(f"migrated {name}: {', '.join(m.path.name for m in applied)}", file=sys.stderr)
            with connect(url, autocommit=True) as conn:
                conn.execute("vacuum analyze")
        yield url, exists
    finally:
        if reuse or keep:
            print(f"kept database {name}", file=sys.stderr)
        else:
            with connect(admin_url, autocommit=True) as conn:
                conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))

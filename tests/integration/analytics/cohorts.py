"""Hand-built worlds for the analytics tests, arranged as the owner (never used for RLS claims).

Every number the tests expect is worked out in the docstrings here, from the rows themselves.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from events_schema.analytics.report import Range, Result, parameters, report_range, run_queries
from events_schema.settings import NudgeRule

RULE = NudgeRule(name="inactive_48h", threshold_hours=48)
GRACE = timedelta(minutes=30)


def at(iso: str) -> datetime:
    parsed = datetime.fromisoformat(iso)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def add_user(conn: psycopg.Connection, signed_up: str, *, opt_out: bool = False) -> uuid.UUID:
    meta = {"nudges_opt_out": "true"} if opt_out else {}
    return conn.execute(
        "insert into auth.users (id, created_at, raw_user_meta_data) values (gen_random_uuid(), %s, %s) returning id",
        (at(signed_up), json.dumps(meta)),
    ).fetchone()[0]


def add_event(
    conn: psycopg.Connection, user: uuid.UUID, when: str, event_type: str = "app_open", *, deleted: bool = False
) -> None:
    conn.execute(
        "insert into public.engagement_events (user_id, timestamp, event_type, is_deleted) values (%s, %s, %s, %s)",
        (user, at(when), event_type, deleted),
    )


def add_nudge(conn: psycopg.Connection, user: uuid.UUID, when: str, last_active: str) -> None:
    """A nudge exactly as the engine writes it (docs/engine.md, "Nudge event")."""
    conn.execute(
        "insert into public.engagement_events (user_id, timestamp, event_type, value) values "
        "(%s, %s, 'nudge_sent', jsonb_build_object('rule', 'inactive_48h', 'threshold_hours', 48, "
        "'last_active_at', public.nudge_episode_time(%s), 'scan_id', 'test'))",
        (user, at(when), at(last_active)),
    )


def come_back(conn: psycopg.Connection, user: uuid.UUID, when: str, days: int = 10) -> None:
    """Activity at `when` and daily after it, so the user is not due again inside the range."""
    for day in range(days):
        add_event(conn, user, (at(when) + timedelta(days=day)).isoformat())


@dataclass
class Cohorts:
    """Four ISO weeks 2026-11-02 .. 2026-11-25 12:00 (as_of, a Wednesday: the last week is partial).

    Cohort 2026-11-02 (4 users):
      a1 active in weeks 0, 1 and 3, not 2;
      a2 signed up and never came back;
      a3 active in week 0; week 1 only soft-deleted; week 2 only a nudge (reserved: no activity);
         week 3 a nudge_opened (the user's own reaction: activity);
      a4 signed up on Sunday 23:00, first activity Monday 01:00: week 1, not week 0.
      -> week 0: 2/4 = 50.0%, week 1: 50.0% (a1, a4), week 2: 0.0% (a true zero), week 3: 50.0%.
    Cohort 2026-11-16 (2 users): b1 active weeks 0 and 1; b2 active week 0 and after as_of only.
      -> 100.0%, 50.0%, NULL, NULL (weeks 2 and 3 start past the range).
    Cohort 2026-11-23 (1 user): c1 signed up, no activity since; a back-dated import stamped
      before the sign-up (same week) is not activity of this user yet -> 0.0%, NULL, NULL, NULL.
    Nobody signed up in week 2026-11-09: no row. o1 signed up before the range, active 11-10;
    late signed up after as_of: in no cohort.
    Weekly actives: 2 (a1, a3), 3 (a1, a4, o1), 2 (b1, b2), 3 (a1, a3, b1).
    """

    period: Range
    users: dict[str, uuid.UUID]


def build_cohorts(conn: psycopg.Connection) -> Cohorts:
    u = {
        name: add_user(conn, signed_up)
        for name, signed_up in (
            ("a1", "2026-11-02T10:00"),
            ("a2", "2026-11-03T09:00"),
            ("a3", "2026-11-04T08:00"),
            ("a4", "2026-11-08T23:00"),
            ("b1", "2026-11-16T12:00"),
            ("b2", "2026-11-20T07:00"),
            ("c1", "2026-11-24T15:00"),
            ("o1", "2026-10-01T00:00"),
            ("late", "2026-11-25T18:00"),
        )
    }
    for name, when, event_type, deleted in (
        ("a1", "2026-11-02T11:00", "app_open", False),
        ("a1", "2026-11-10T08:00", "goal_complete", False),
        ("a1", "2026-11-24T20:00", "app_open", False),
        ("a3", "2026-11-04T08:30", "app_open", False),
        ("a3", "2026-11-11T08:00", "app_open", True),
        ("a3", "2026-11-18T09:00", "nudge_sent", False),
        ("a3", "2026-11-23T09:00", "nudge_opened", False),
        ("a4", "2026-11-09T01:00", "app_open", False),
        ("b1", "2026-11-16T12:05", "app_open", False),
        ("b1", "2026-11-23T00:00", "steps_import", False),
        ("b2", "2026-11-20T07:10", "app_open", False),
        ("b2", "2026-11-25T13:00", "app_open", False),
        ("c1", "2026-11-23T10:00", "steps_import", False),
        ("o1", "2026-11-10T10:00", "coach_message", False),
        ("late", "2026-11-25T18:05", "app_open", False),
    ):
        add_event(conn, u[name], when, event_type, deleted=deleted)
    period = report_range(at("2026-11-25T12:00"), start=at("2026-11-02").date())
    return Cohorts(period, u)


@dataclass
class Nudges:
    """Rule inactive_48h over the week 2026-11-02 (range end 11-09 00:00), observed until 11-25.

    Everyone signed up 2026-10-01 and was first active again on 11-03/11-04 (due 48 h later):
      n1 nudged promptly at due (+10 min), back 12 h later;
      n2 nudged promptly at due (+5 min), back 48 h later: not within 24 h, within 72 h;
      h1 due 22:00 (quiet hours), nudged only at 08:00 next day, back 10:00: held at 22:00 AND
         nudged at 08:00 (both groups, as documented);
      h2 due 23:00, came back at 03:00 before any nudge: held, never nudged;
      h3 opted out, never back: in neither group;
      h4 due 11-06 12:00, never nudged, never back: held, not back;
      h5 nudged promptly; its only later rows are a soft-deleted app_open and a nudge_delivered
         (reserved), and a soft-deleted row before the due time does not move it: not back.
    -> nudged: 4 members (n1, n2, h1, h5), back 24 h 2/4, back 72 h 3/4.
       held:   3 members (h1, h2, h4), back 24 h 2/3, back 72 h 2/3.
    """

    period: Range
    users: dict[str, uuid.UUID]


def build_nudges(conn: psycopg.Connection) -> Nudges:
    u = {
        name: add_user(conn, "2026-10-01T00:00", opt_out=name == "h3")
        for name in ("n1", "n2", "h1", "h2", "h3", "h4", "h5")
    }
    add_event(conn, u["n1"], "2026-11-03T08:00")
    add_nudge(conn, u["n1"], "2026-11-05T08:10", "2026-11-03T08:00")
    come_back(conn, u["n1"], "2026-11-05T20:00")
    add_event(conn, u["n2"], "2026-11-03T09:00")
    add_nudge(conn, u["n2"], "2026-11-05T09:05", "2026-11-03T09:00")
    come_back(conn, u["n2"], "2026-11-07T09:00")
    add_event(conn, u["h1"], "2026-11-03T22:00")
    add_nudge(conn, u["h1"], "2026-11-06T08:00", "2026-11-03T22:00")
    come_back(conn, u["h1"], "2026-11-06T10:00")
    add_event(conn, u["h2"], "2026-11-03T23:00")
    come_back(conn, u["h2"], "2026-11-06T03:00")
    add_event(conn, u["h3"], "2026-11-03T10:00")
    add_event(conn, u["h4"], "2026-11-04T12:00")
    add_event(conn, u["h5"], "2026-11-03T12:00")
    add_event(conn, u["h5"], "2026-11-04T12:00", deleted=True)
    add_nudge(conn, u["h5"], "2026-11-05T12:05", "2026-11-03T12:00")
    add_event(conn, u["h5"], "2026-11-05T12:06", "nudge_delivered")
    add_event(conn, u["h5"], "2026-11-05T18:00", deleted=True)
    period = report_range(at("2026-11-25T12:00"), start=at("2026-11-02").date(), end=at("2026-11-08").date())
    return Nudges(period, u)


def run_as_service(conn: psycopg.Connection, period: Range) -> dict[str, Result]:
    """The report's queries in its own analyst transaction (read-only, service role)."""
    from events_schema.analytics.report import analyst_transaction

    with conn.transaction():
        analyst_transaction(conn)
        return run_queries(conn, parameters(period, [RULE], GRACE))


def by(rows: list[dict[str, Any]], *keys: str) -> dict[tuple, dict[str, Any]]:
    return {tuple(row[k] for k in keys): row for row in rows}

"""The analyst SQL gives the same answer whatever the session's TimeZone: weeks are ISO weeks in
UTC (Monday 00:00 UTC, exactly 168 hours), and cells past the range stay NULL. docs/analytics.md
shows analysts running the files by hand, in sessions whose zone is their own; the report's
connection sets UTC and would hide a query that steps weeks in the session's zone.

The world spans Sydney's switch to summer time (2026-10-04) and Los Angeles' switch back
(2026-11-01), with activity minutes either side of Monday 00:00 UTC and of the range's end."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest

from events_schema.analytics.report import analyst_transaction, parameters, report_range, run_queries
from tests.integration.analytics.cohorts import GRACE, RULE, add_event, add_nudge, add_user, at

ZONES = ["Australia/Sydney", "America/Los_Angeles", "Asia/Kolkata"]
AS_OF = at("2026-11-12T13:00")  # mid-week: the last week is cut, later retention cells are NULL


def arrange(conn: psycopg.Connection) -> None:
    """Users signed up every 29 hours from the range's first Monday; each active around the
    Monday 00:00 UTC boundaries (10 minutes before or after, by user) and now and then between,
    some nudged after a lapse."""
    first = at("2026-09-21T00:00")
    for n in range(36):
        signed_up = first + timedelta(hours=29 * n, minutes=7)
        user = add_user(conn, signed_up.isoformat())
        for week in range(9):
            monday = first + timedelta(weeks=week)
            edge = monday + timedelta(minutes=10 if n % 2 else -10)
            if edge > signed_up and (n + week) % 3:
                add_event(conn, user, edge.isoformat(), ("app_open", "goal_complete")[week % 2])
            lapse_end = monday + timedelta(days=3, hours=n % 24)
            if lapse_end > signed_up and (n + week) % 4 == 0:
                add_event(conn, user, lapse_end.isoformat())
                add_nudge(conn, user, (lapse_end + timedelta(hours=48, minutes=5)).isoformat(), lapse_end.isoformat())
                add_event(conn, user, (lapse_end + timedelta(hours=60)).isoformat())


def results(conn: psycopg.Connection, zone: str) -> dict[str, list[dict[str, Any]]]:
    """Every analyst query, as run by hand in a session whose TimeZone is `zone`."""
    conn.execute("select set_config('TimeZone', %s, false)", (zone,))
    period = report_range(AS_OF, start=at("2026-09-21").date())
    with conn.transaction():
        analyst_transaction(conn)
        found = run_queries(conn, parameters(period, [RULE], GRACE))
    return {name: result.rows for name, result in found.items()}


@pytest.mark.parametrize("zone", ZONES)
def test_every_query_answers_as_in_utc_whatever_the_sessions_time_zone(admin: psycopg.Connection, zone: str) -> None:
    arrange(admin)
    utc = results(admin, "UTC")
    # The world is what the test means: several weeks, a NULL cell past the range, nudges.
    weeks = {row["week_start"] for row in utc["weekly_active"]}
    assert len(weeks) == 8 and all(w.weekday() == 0 and w.hour == 0 for w in weeks)
    assert any(row["active_users"] is None for row in utc["retention"])
    assert any(row["active_users"] == 0 for row in utc["retention"])
    assert utc["nudge_effect"] and utc["event_mix"]
    there = results(admin, zone)
    for name, rows in utc.items():
        assert there[name] == rows, name

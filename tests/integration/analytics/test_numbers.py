"""The analytics queries on hand-built worlds (tests/integration/analytics/cohorts.py): exact numbers."""

from __future__ import annotations

import psycopg

from events_schema.analytics.report import analyst_transaction, parameters, report_range, run_queries
from events_schema.settings import NudgeRule
from tests.integration.analytics.cohorts import (
    GRACE,
    add_event,
    add_user,
    at,
    build_cohorts,
    build_nudges,
    by,
    run_as_service,
)


def test_retention_cells_are_exact_with_null_for_weeks_past_the_range(admin: psycopg.Connection) -> None:
    world = build_cohorts(admin)
    rows = run_as_service(admin, world.period)["retention"].rows
    cells = {(row["cohort_week"].date().isoformat(), row["week_offset"]): row for row in rows}
    expected = {
        "2026-11-02": (4, [2, 2, 0, 2]),
        "2026-11-16": (2, [2, 1, None, None]),
        "2026-11-23": (1, [0, None, None, None]),
    }
    assert {week for week, _ in cells} == set(expected)  # no row for the week nobody signed up in
    for week, (size, active) in expected.items():
        for offset, count in enumerate(active):
            cell = cells[(week, offset)]
            assert cell["cohort_size"] == size
            assert cell["active_users"] == count, (week, offset)
            assert cell["retention"] == (None if count is None else count / size), (week, offset)


def test_weekly_active_users_count_activity_only(admin: psycopg.Connection) -> None:
    world = build_cohorts(admin)
    rows = run_as_service(admin, world.period)["weekly_active"].rows
    assert [(r["week_start"], r["active_users"]) for r in rows] == [
        (at("2026-11-02"), 2),
        (at("2026-11-09"), 3),
        (at("2026-11-16"), 2),
        (at("2026-11-23"), 3),
    ]
    assert rows[-1]["week_end"] == at("2026-11-25T12:00")  # the partial week ends at as_of


def test_event_mix_leaves_out_soft_deleted_rows_and_flags_the_engine_types(admin: psycopg.Connection) -> None:
    world = build_cohorts(admin)
    rows = by(run_as_service(admin, world.period)["event_mix"].rows, "week_start", "event_type")
    week2 = {k[1]: v for k, v in rows.items() if k[0] == at("2026-11-16")}
    assert {t: (r["events"], r["users"], r["counts_as_activity"]) for t, r in week2.items()} == {
        "app_open": (2, 2, True),
        "nudge_sent": (1, 1, False),
    }
    assert week2["app_open"]["share"] == 2 / 3
    week1 = {k[1]: v["events"] for k, v in rows.items() if k[0] == at("2026-11-09")}
    assert week1 == {"app_open": 1, "goal_complete": 1, "coach_message": 1}  # a3's deleted one is not there


def test_nudged_and_held_shares_within_24_and_72_hours(admin: psycopg.Connection) -> None:
    world = build_nudges(admin)
    rows = by(run_as_service(admin, world.period)["nudge_effect"].rows, "week_start", "rule", "group")
    week = at("2026-11-02")
    assert set(rows) == {(week, "inactive_48h", "nudged"), (week, "inactive_48h", "held")}
    nudged, held = rows[(week, "inactive_48h", "nudged")], rows[(week, "inactive_48h", "held")]
    assert (nudged["members"], nudged["observed_24h"], nudged["back_24h"], nudged["back_72h"]) == (4, 4, 2, 3)
    assert (nudged["share_24h"], nudged["share_72h"]) == (0.5, 0.75)
    assert (held["members"], held["observed_72h"], held["back_24h"], held["back_72h"]) == (3, 3, 2, 2)
    assert held["share_24h"] == held["share_72h"] == 2 / 3


def test_windows_not_over_at_as_of_are_left_out_not_counted_as_gone(admin: psycopg.Connection) -> None:
    """Made at 11-06 09:00: only n1's 24 h window (from 11-05 08:10) has ended; no 72 h one has."""
    build_nudges(admin)
    period = report_range(at("2026-11-06T09:00"), start=at("2026-11-02").date())
    rows = by(run_as_service(admin, period)["nudge_effect"].rows, "group")
    nudged, held = rows[("nudged",)], rows[("held",)]
    assert (nudged["members"], nudged["observed_24h"], nudged["back_24h"], nudged["share_24h"]) == (4, 1, 1, 1.0)
    assert (nudged["observed_72h"], nudged["share_72h"]) == (0, None)
    assert (held["members"], held["observed_24h"], held["share_24h"]) == (2, 0, None)  # h1, h2; h4 due later


def test_a_rule_that_narrows_the_counted_types_counts_only_them(admin: psycopg.Connection) -> None:
    """Rule goals_48h counts goal_complete only: the app opens neither end the lapse nor count as back.

    Last goal 11-03 07:00 -> due 11-05 07:00 (app opens on 11-04 and 11-05 10:00 do not count);
    next goal 11-06 12:00, 29 h after: back within 72 h, not within 24 h.
    """
    user = add_user(admin, "2026-10-01T00:00")
    for when, event_type in (
        ("2026-11-03T07:00", "goal_complete"),
        ("2026-11-04T09:00", "app_open"),
        ("2026-11-05T10:00", "app_open"),
        ("2026-11-06T12:00", "goal_complete"),
    ):
        add_event(admin, user, when, event_type)
    rule = NudgeRule(name="goals_48h", threshold_hours=48, event_types=["goal_complete"])
    period = report_range(at("2026-11-25T12:00"), start=at("2026-11-02").date(), end=at("2026-11-07").date())
    with admin.transaction():
        analyst_transaction(admin)
        rows = run_queries(admin, parameters(period, [rule], GRACE))["nudge_effect"].rows
    assert [(r["rule"], r["group"], r["members"], r["back_24h"], r["back_72h"]) for r in rows] == [
        ("goals_48h", "held", 1, 0, 1)
    ]

"""analytics_holdout_lift.sql on hand-built arms: shares, the lift and Newcombe's interval against
the published worked examples (Newcombe 1998, Statistics in Medicine 17:873, table II, method 10),
the "not enough data" line on both sides, and weeks in UTC whatever the session's time zone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest

from events_schema.analytics.report import MIN_ARM, analyst_transaction, parameters, report_range, run_queries
from events_schema.settings import NudgeRule
from tests.integration.analytics.cohorts import GRACE, at, by

RULE = NudgeRule(name="inactive_48h", threshold_hours=48, holdout_percent=50, holdout_salt="s1")
AS_OF = "2026-11-30T00:00"


def arm(
    conn: psycopg.Connection,
    kind: str,
    n: int,
    back: int,
    when: str,
    *,
    after: timedelta = timedelta(hours=10),
    holdout: dict[str, Any] | None = None,
) -> None:
    """n users decided at `when` (nudge_sent or nudge_withheld, as the engine writes them for a
    rule with a holdout); the first `back` of them log an app_open `after` the decision."""
    extra = {"holdout_percent": 50, "holdout_salt": "s1"} if holdout is None else holdout
    conn.execute(
        """
        with u as (
          insert into auth.users (id, created_at)
          select gen_random_uuid(), %(when)s::timestamptz - interval '30 days' from generate_series(1, %(n)s)
          returning id),
        numbered as (select id, row_number() over (order by id) as i from u),
        decided as (
          insert into public.engagement_events (user_id, "timestamp", event_type, value)
          select id, %(when)s, %(kind)s,
                 jsonb_build_object('rule', 'inactive_48h', 'threshold_hours', 48,
                                    'last_active_at', public.nudge_episode_time(%(when)s::timestamptz - interval '3 days'),
                                    'scan_id', 'test') || %(extra)s::jsonb
          from numbered)
        insert into public.engagement_events (user_id, "timestamp", event_type)
        select id, %(when)s::timestamptz + %(after)s, 'app_open' from numbered where i <= %(back)s
        """,
        {
            "when": at(when),
            "n": n,
            "back": back,
            "kind": kind,
            "after": after,
            "extra": psycopg.types.json.Jsonb(extra),
        },
    )


def lift_rows(conn: psycopg.Connection, min_arm: int = MIN_ARM, as_of: str = AS_OF) -> list[dict[str, Any]]:
    params = parameters(report_range(at(as_of), start=at("2026-10-12").date()), [RULE], GRACE)
    params["min_arm"] = min_arm
    with conn.transaction():
        analyst_transaction(conn)
        return run_queries(conn, params)["holdout_lift"].rows


@pytest.mark.parametrize(
    ("nudged", "withheld", "expected"),
    [
        ((56, 70), (48, 80), (0.2, 0.0524, 0.3339)),
        ((9, 10), (3, 10), (0.6, 0.1705, 0.8090)),
        ((5, 56), (0, 29), (0.0893, -0.0381, 0.1926)),  # a share of 0
    ],
    ids=["56of70-48of80", "9of10-3of10", "5of56-0of29"],
)
def test_the_lift_and_its_interval_are_newcombes_hybrid_score(
    admin: psycopg.Connection,
    nudged: tuple[int, int],
    withheld: tuple[int, int],
    expected: tuple[float, float, float],
) -> None:
    arm(admin, "nudge_sent", nudged[1], nudged[0], "2026-11-03T10:00")
    arm(admin, "nudge_withheld", withheld[1], withheld[0], "2026-11-03T10:00")
    rows = by(lift_rows(admin, min_arm=1), "week_start", "window_hours")
    for week in (at("2026-11-02"), None):  # the week, and the whole range
        row = rows[(week, 24)]
        assert (row["nudged_back"], row["nudged_n"], row["withheld_back"], row["withheld_n"]) == (*nudged, *withheld)
        assert (row["nudged_share"], row["withheld_share"]) == (nudged[0] / nudged[1], withheld[0] / withheld[1])
        assert (row["lift"], row["lift_low"], row["lift_high"]) == pytest.approx(expected, abs=5e-5)
        assert row["note"] == ""
        assert rows[(week, 72)]["lift"] == row["lift"]  # back at +10 h is back within 72 h too


@pytest.mark.parametrize(("withheld", "enough"), [(MIN_ARM - 1, False), (MIN_ARM, True)])
def test_below_the_minimum_in_either_arm_there_is_no_lift(
    admin: psycopg.Connection, withheld: int, enough: bool
) -> None:
    arm(admin, "nudge_sent", 40, 20, "2026-11-03T10:00")
    arm(admin, "nudge_withheld", withheld, 10, "2026-11-03T10:00")
    row = by(lift_rows(admin), "week_start", "window_hours")[(at("2026-11-02"), 24)]
    assert (row["nudged_n"], row["withheld_n"]) == (40, withheld)
    assert row["nudged_share"] == 0.5 and row["withheld_share"] == 10 / withheld  # shares are always shown
    if enough:
        assert row["note"] == "" and None not in (row["lift"], row["lift_low"], row["lift_high"])
    else:
        assert row["note"] == "not enough data" and (row["lift"], row["lift_low"], row["lift_high"]) == (None,) * 3


def test_windows_not_over_are_left_out_and_returns_count_only_inside_the_window(admin: psycopg.Connection) -> None:
    """Back 30 h after the decision: not back within 24 h, back within 72 h. Made 48 h after the
    decision, the 72 h window has not ended: nobody observed, so no shares."""
    arm(admin, "nudge_sent", 30, 30, "2026-11-03T10:00", after=timedelta(hours=30))
    arm(admin, "nudge_withheld", 30, 0, "2026-11-03T10:00")
    rows = by(lift_rows(admin), "week_start", "window_hours")
    week = at("2026-11-02")
    assert (rows[(week, 24)]["nudged_share"], rows[(week, 72)]["nudged_share"]) == (0.0, 1.0)
    early = by(lift_rows(admin, as_of="2026-11-05T10:00"), "week_start", "window_hours")
    assert (early[(week, 24)]["nudged_n"], early[(week, 72)]["nudged_n"]) == (30, 0)
    assert early[(week, 72)]["nudged_members"] == 30
    assert early[(week, 72)]["nudged_share"] is None and early[(week, 72)]["note"] == "not enough data"


def test_each_experiment_is_its_own_row_and_plain_nudges_are_no_arm(admin: psycopg.Connection) -> None:
    arm(admin, "nudge_sent", 3, 1, "2026-11-03T10:00")
    arm(admin, "nudge_withheld", 2, 1, "2026-11-03T10:00", holdout={"holdout_percent": 10, "holdout_salt": "s2"})
    arm(admin, "nudge_sent", 4, 4, "2026-11-03T10:00", holdout={})  # a rule without a holdout
    rows = by(lift_rows(admin), "week_start", "holdout_salt", "holdout_percent", "window_hours")
    week = at("2026-11-02")
    assert set(rows) == {(w, s, p, h) for w in (week, None) for s, p in (("s1", 50), ("s2", 10)) for h in (24, 72)}
    assert (rows[(week, "s1", 50, 24)]["nudged_n"], rows[(week, "s1", 50, 24)]["withheld_n"]) == (3, 0)
    assert (rows[(week, "s2", 10, 24)]["nudged_n"], rows[(week, "s2", 10, 24)]["withheld_n"]) == (0, 2)


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/Los_Angeles", "Pacific/Kiritimati"])
def test_weeks_are_utc_weeks_whatever_the_sessions_time_zone(admin: psycopg.Connection, zone: str) -> None:
    """Europe's clocks went back on Sunday 2026-10-25: 23:30 UTC that night is Monday 00:30 in
    Berlin, yet the decision belongs to the UTC week of Monday 10-19; 00:30 UTC on 10-26 starts
    the next week (Sunday afternoon in Los Angeles)."""
    arm(admin, "nudge_sent", 2, 1, "2026-10-25T23:30")
    arm(admin, "nudge_withheld", 1, 0, "2026-10-26T00:30")
    admin.execute("select set_config('TimeZone', %s, false)", (zone,))
    rows = by(lift_rows(admin), "week_start", "window_hours")
    assert set(rows) == {(w, h) for w in (at("2026-10-19"), at("2026-10-26"), None) for h in (24, 72)}
    assert (rows[(at("2026-10-19"), 24)]["nudged_members"], rows[(at("2026-10-19"), 24)]["withheld_members"]) == (2, 0)
    assert (rows[(at("2026-10-26"), 24)]["nudged_members"], rows[(at("2026-10-26"), 24)]["withheld_members"]) == (0, 1)


def test_a_withheld_episode_is_not_in_the_old_comparisons_held_group(admin: psycopg.Connection) -> None:
    """analytics_nudge_effect.sql's "held" are due users nobody decided about promptly; a control
    user withheld at once was decided (withheld) and belongs to the lift's comparison instead."""
    user = admin.execute(
        "insert into auth.users (id, created_at) values (gen_random_uuid(), %s) returning id", (at("2026-11-01"),)
    ).fetchone()[0]
    admin.execute(
        "insert into public.engagement_events (user_id, timestamp, event_type, value) values (%s, %s, 'nudge_withheld',"
        " jsonb_build_object('rule', 'inactive_48h', 'last_active_at', public.nudge_episode_time(%s)))",
        (user, at("2026-11-03T00:10"), at("2026-11-01")),
    )
    params = parameters(report_range(at(AS_OF), start=at("2026-11-02").date()), [RULE], GRACE)
    with admin.transaction():
        analyst_transaction(admin)
        assert run_queries(admin, params)["nudge_effect"].rows == []


def test_each_user_counts_once_per_experiment_at_their_first_decision(admin: psycopg.Connection) -> None:
    """A user decided again later (a second lapse) is not a second member; a user whose first
    decision came before the range is in none of the range's weeks."""
    arm(admin, "nudge_sent", 3, 3, "2026-11-03T10:00")
    again = admin.execute(
        "select user_id, value from engagement_events where event_type = 'nudge_sent' order by user_id limit 1"
    ).fetchone()
    admin.execute(
        "insert into engagement_events (user_id, timestamp, event_type, value) values (%s, %s, 'nudge_sent', %s)",
        (again[0], at("2026-11-10T10:00"), psycopg.types.json.Jsonb({**again[1], "last_active_at": "later"})),
    )
    arm(admin, "nudge_withheld", 2, 0, "2026-10-01T10:00")  # before the range (from 10-12)
    rows = by(lift_rows(admin), "week_start", "window_hours")
    assert set(rows) == {(w, h) for w in (at("2026-11-02"), None) for h in (24, 72)}
    assert (rows[(None, 24)]["nudged_members"], rows[(None, 24)]["withheld_members"]) == (3, 0)

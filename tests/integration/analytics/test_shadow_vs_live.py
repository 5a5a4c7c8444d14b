"""analytics_shadow_vs_live.sql, in the report's table and CSV, on a hand-built case: a shadow
rule's records (nudge_shadow) against a live rule's decisions (nudge_sent and nudge_withheld),
per week and over the range; and the same figures from records the scan itself wrote."""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from events_schema.analytics.report import analyst_transaction, parameters, report_range, run_queries
from events_schema.settings import get_settings
from tests.integration.analytics.cohorts import GRACE, RULE, add_user, at
from tests.integration.analytics.test_report_cli import report

AS_OF = "2026-11-30T00:00:00+00:00"
COLUMNS = (
    "shadow_nudges",
    "shadow_users",
    "live_nudges",
    "live_users",
    "both_users",
    "shadow_only_users",
    "live_only_users",
)


def decide(
    conn: psycopg.Connection, user: uuid.UUID, rule: str, event_type: str, when: str, *, deleted: bool = False
) -> None:
    """A decision event as the engine writes it (the episode is a day before: any value does)."""
    value = {"rule": rule, "threshold_hours": 48, "last_active_at": f"{when}-episode", "scan_id": "t"}
    if event_type == "nudge_shadow":
        value["mode"] = "shadow"
    conn.execute(
        "insert into public.engagement_events (user_id, timestamp, event_type, value, is_deleted)"
        " values (%s, %s, %s, %s, %s)",
        (user, at(when), event_type, json.dumps(value), deleted),
    )


def build(conn: psycopg.Connection) -> None:
    """Weeks of 2026-11-02 and 2026-11-09; live rule inactive_48h, shadow rules proposed_36h and
    proposed_72h. Worked out by hand:

    week 1, proposed_36h: A, B, C on Tue; G on Tue and Fri (two lapses); F on Sun 23:00
      -> 6 records, 5 users. inactive_48h: A, B, D sent on Wed, E withheld (its holdout) on Thu
      -> 4 decisions, 4 users. Both: A, B (2); shadow only: C, F, G (3); live only: D, E (2).
    week 2, proposed_36h: H -> 1 / 1; inactive_48h: F (Mon 11:00: F crossed the week's edge), H
      -> 2 / 2. Both: H; shadow only: none; live only: F.
      proposed_72h: A -> 1 / 1; against the same live decisions: both 0, shadow only A, live only
      F and H (2);
      in week 1 proposed_72h recorded nobody: 0 / 0 against 4 / 4, live only 4.
    Whole range (each user once), proposed_36h: 7 records of A B C F G H (6), live 6 decisions of
      A B D E F H (6), both A B F H (4), shadow only C G, live only D E.
      proposed_72h: 1 of A; both A (live in week 1); live only B D E F H (5).
    Left out: a soft-deleted record (I), a record after the range (J, 2026-11-20).
    """
    u = {name: add_user(conn, "2026-10-01T00:00") for name in "ABCDEFGHIJ"}
    for name in "ABC":
        decide(conn, u[name], "proposed_36h", "nudge_shadow", "2026-11-03T10:00")
    decide(conn, u["G"], "proposed_36h", "nudge_shadow", "2026-11-03T10:00")
    decide(conn, u["G"], "proposed_36h", "nudge_shadow", "2026-11-06T10:00")
    decide(conn, u["F"], "proposed_36h", "nudge_shadow", "2026-11-08T23:00")
    for name in "ABD":
        decide(conn, u[name], "inactive_48h", "nudge_sent", "2026-11-04T10:00")
    decide(conn, u["E"], "inactive_48h", "nudge_withheld", "2026-11-05T10:00")
    decide(conn, u["F"], "inactive_48h", "nudge_sent", "2026-11-09T11:00")
    decide(conn, u["H"], "proposed_36h", "nudge_shadow", "2026-11-10T10:00")
    decide(conn, u["H"], "inactive_48h", "nudge_sent", "2026-11-11T10:00")
    decide(conn, u["A"], "proposed_72h", "nudge_shadow", "2026-11-12T10:00")
    decide(conn, u["I"], "proposed_36h", "nudge_shadow", "2026-11-12T10:00", deleted=True)
    decide(conn, u["J"], "proposed_36h", "nudge_shadow", "2026-11-20T10:00")


EXPECTED = [
    ("2026-11-02", "proposed_36h", "inactive_48h", 6, 5, 4, 4, 2, 3, 2),
    ("2026-11-02", "proposed_72h", "inactive_48h", 0, 0, 4, 4, 0, 0, 4),
    ("2026-11-09", "proposed_36h", "inactive_48h", 1, 1, 2, 2, 1, 0, 1),
    ("2026-11-09", "proposed_72h", "inactive_48h", 1, 1, 2, 2, 0, 1, 2),
    (None, "proposed_36h", "inactive_48h", 7, 6, 6, 6, 4, 2, 2),
    (None, "proposed_72h", "inactive_48h", 1, 1, 6, 6, 1, 0, 5),
]


def figures(conn: psycopg.Connection, start: str, end: str) -> list[tuple[object, ...]]:
    period = report_range(at(AS_OF), start=at(start).date(), end=at(end).date())
    with conn.transaction():
        analyst_transaction(conn)
        rows = run_queries(conn, parameters(period, [RULE], GRACE))["shadow_vs_live"].rows
    return [
        (
            None if r["week_start"] is None else f"{r['week_start']:%Y-%m-%d}",
            r["shadow_rule"],
            r["live_rule"],
            *(r[c] for c in COLUMNS),
        )
        for r in rows
    ]


def test_shadow_against_live_on_a_hand_computed_case(admin: psycopg.Connection) -> None:
    build(admin)
    assert figures(admin, "2026-11-02", "2026-11-15") == EXPECTED


def test_a_shadow_rule_without_a_live_one_is_all_shadow_only(admin: psycopg.Connection) -> None:
    user = add_user(admin, "2026-10-01T00:00")
    decide(admin, user, "proposed_36h", "nudge_shadow", "2026-11-03T10:00")
    assert figures(admin, "2026-11-02", "2026-11-08") == [
        ("2026-11-02", "proposed_36h", None, 1, 1, 0, 0, 0, 1, 0),
        (None, "proposed_36h", None, 1, 1, 0, 0, 0, 1, 0),
    ]


def test_the_report_prints_and_writes_shadow_against_live(
    admin: psycopg.Connection, db_url: str, tmp_path: Path
) -> None:
    build(admin)
    result = report(db_url, "--from", "2026-11-02", "--to", "2026-11-15", "--as-of", AS_OF, "--csv", str(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("Shadow against live")) + 4 :]
    assert [" ".join(line.split()) for line in table] == [
        "2026-11-02 proposed_36h inactive_48h 6 / 5 4 / 4 2 3 2",
        "2026-11-02 proposed_72h inactive_48h 0 / 0 4 / 4 0 0 4",
        "2026-11-09 proposed_36h inactive_48h 1 / 1 2 / 2 1 0 1",
        "2026-11-09 proposed_72h inactive_48h 1 / 1 2 / 2 0 1 2",
        "all proposed_36h inactive_48h 7 / 6 6 / 6 4 2 2",
        "all proposed_72h inactive_48h 1 / 1 6 / 6 1 0 5",
    ]
    with (tmp_path / "shadow_vs_live.csv").open(newline="") as handle:
        written = list(csv.DictReader(handle))
    assert [
        (r["week_start"][:10] or None, r["shadow_rule"], r["live_rule"], *(int(r[c]) for c in COLUMNS)) for r in written
    ] == EXPECTED


# From the engine's own records


@pytest.fixture
def engine_rules(settings_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from worker.database import dispose_engines

    for name in ("NUDGE_MAX_PER_SCAN", "QUIET_HOURS_ENABLED", "NUDGE_COOLDOWN_HOURS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(
        "NUDGE_RULES",
        json.dumps(
            [
                {"name": "inactive_48h", "threshold_hours": 48},
                {"name": "proposed_36h", "threshold_hours": 36, "mode": "shadow"},
            ]
        ),
    )
    get_settings.cache_clear()
    yield
    dispose_engines()


def test_the_figures_of_records_the_scan_wrote(admin: psycopg.Connection, engine_rules: None) -> None:
    """Three users (UTC) signed up on Monday 2026-11-02 00:00 and active 2026-11-02 at 00:00, 10:00 and 20:00; the first comes
    back on Tuesday at 13:00. Scans every hour through Friday, quiet hours 22:00-08:00:
    shadow (36 h): the first on Tue 12:00 (before coming back) and Thu 08:00 (36 h after it is
    01:00, held till 08:00); the second Wed 08:00 (22:00 held); the third Wed 08:00. Live (48 h):
    the first Thu 13:00 (its first lapse ended before 48 h), the second Wed 10:00, the third Wed
    20:00. Whole range: shadow 4 records of 3 users, live 3 of 3, all three reached by both."""
    from datetime import timedelta

    from worker.scan.scanner import run_scan

    # Signed up at the first scan: no lapse from sign-up before their first event.
    users = [add_user(admin, "2026-11-02T00:00") for _ in range(3)]
    for user, hour in zip(users, ("00", "10", "20"), strict=True):
        admin.execute(
            "insert into engagement_events (user_id, timestamp, event_type) values (%s, %s, 'app_open')",
            (user, at(f"2026-11-02T{hour}:00")),
        )
    admin.execute(
        "insert into engagement_events (user_id, timestamp, event_type) values (%s, %s, 'app_open')",
        (users[0], at("2026-11-03T13:00")),
    )
    t = at("2026-11-02T00:00")
    while t <= at("2026-11-06T23:00"):
        run_scan(t)
        t += timedelta(hours=1)
    shadow, live = (
        admin.execute("select count(*) from engagement_events where event_type = any(%s)", (types,)).fetchone()[0]
        for types in (["nudge_shadow"], ["nudge_sent", "nudge_withheld"])
    )
    assert (shadow, live) == (4, 3)
    assert figures(admin, "2026-11-02", "2026-11-08")[-1] == (None, "proposed_36h", "inactive_48h", 4, 3, 3, 3, 3, 0, 0)

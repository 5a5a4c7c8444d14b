"""Time-frozen scenarios that pin the nudge engine's definitions, on a real database."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import psycopg
import pytest

from events_schema.settings import get_settings
from tests.integration.scan.scan_helpers import add_event, add_user, at, nudges, scan_at
from tests.waiting import join
from worker.database import dispose_engines
from worker.scan.scanner import run_scan


@pytest.fixture(autouse=True)
def engine_settings(settings_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Default rules, quiet hours on; each test's own database."""
    monkeypatch.delenv("NUDGE_RULES", raising=False)
    yield
    dispose_engines()


def test_nudged_at_exactly_48_hours_not_a_second_before(admin: psycopg.Connection) -> None:
    user = add_user(admin, "2026-03-01T00:00:00")
    add_event(admin, user, "2026-03-02T10:00:00")

    early = scan_at("2026-03-04T09:59:59")
    assert early.totals()["due"] == 0 and nudges(admin) == []

    summary = scan_at("2026-03-04T10:00:00")
    assert summary.totals()["nudged"] == 1
    [(stamp, value)] = nudges(admin, user)
    assert stamp == at("2026-03-04T10:00:00")
    assert value["rule"] == "inactive_48h"
    assert value["threshold_hours"] == 48
    assert value["last_active_at"] == "2026-03-02T10:00:00.000000Z"
    assert value["scan_id"] == summary.scan_id


def test_second_scan_an_hour_later_writes_nothing(admin: psycopg.Connection) -> None:
    user = add_user(admin, "2026-03-01T00:00:00")
    add_event(admin, user, "2026-03-02T10:00:00")
    assert scan_at("2026-03-04T10:00:00").totals()["nudged"] == 1

    later = scan_at("2026-03-04T11:00:00", full=True)
    assert later.totals()["nudged"] == 0
    assert later.totals()["skipped"]["already_nudged"] == 1
    assert len(nudges(admin)) == 1


def test_user_returns_and_lapses_again_gets_a_second_nudge(admin: psycopg.Connection) -> None:
    user = add_user(admin, "2026-03-01T00:00:00")
    add_event(admin, user, "2026-03-02T10:00:00")
    scan_at("2026-03-04T10:00:00")
    add_event(admin, user, "2026-03-05T09:00:00")
    assert scan_at("2026-03-06T12:00:00").totals()["due"] == 0
    assert scan_at("2026-03-07T09:00:00").totals()["nudged"] == 1
    episodes = [value["last_active_at"] for _, value in nudges(admin, user)]
    assert episodes == ["2026-03-02T10:00:00.000000Z", "2026-03-05T09:00:00.000000Z"]


def test_soft_deleted_event_is_not_activity(admin: psycopg.Connection) -> None:
    user = add_user(admin, "2026-03-01T00:00:00")
    add_event(admin, user, "2026-03-02T10:00:00")
    late = add_event(admin, user, "2026-03-03T10:00:00")
    admin.execute("update engagement_events set is_deleted = true where id = %s", (late,))
    assert scan_at("2026-03-04T10:00:00").totals()["nudged"] == 1
    [(_, value)] = nudges(admin, user)
    assert value["last_active_at"] == "2026-03-02T10:00:00.000000Z"


def test_a_nudge_is_not_activity_but_opening_it_is(admin: psycopg.Connection) -> None:
    user = add_user(admin, "2026-03-01T00:00:00")
    add_event(admin, user, "2026-03-02T10:00:00")
    scan_at("2026-03-04T10:00:00")
    # Two days after the nudge, the nudge itself has not reset the clock: same episode.
    again = scan_at("2026-03-06T10:00:00", full=True)
    assert again.totals()["nudged"] == 0 and again.totals()["skipped"]["already_nudged"] == 1

    add_event(admin, user, "2026-03-06T11:00:00", "nudge_opened")
    assert scan_at("2026-03-08T10:59:59").totals()["due"] == 0
    assert scan_at("2026-03-08T11:00:00").totals()["nudged"] == 1


def test_never_active_user_is_nudged_48_hours_after_sign_up(admin: psycopg.Connection) -> None:
    user = add_user(admin, "2026-03-01T09:30:00")
    assert scan_at("2026-03-03T09:29:59").totals()["due"] == 0
    assert scan_at("2026-03-03T09:30:00").totals()["nudged"] == 1
    [(_, value)] = nudges(admin, user)
    assert value["last_active_at"] == "2026-03-01T09:30:00.000000Z"


def test_back_dated_import_after_a_nudge_waits_for_the_cool_down(admin: psycopg.Connection) -> None:
    user = add_user(admin, "2026-03-01T00:00:00")
    add_event(admin, user, "2026-03-02T10:00:00")
    scan_at("2026-03-04T10:00:00")
    # A late wearable import lands a step count from before the nudge: a "new" lapse.
    add_event(admin, user, "2026-03-02T10:15:00", "steps_import")
    held = scan_at("2026-03-04T10:30:00", full=True)
    assert held.totals()["nudged"] == 0
    assert held.totals()["skipped"]["cooldown"] == 1
    [(reason, hold_until)] = admin.execute("select reason, hold_until from nudge_pending").fetchall()
    assert (reason, hold_until) == ("cooldown", at("2026-03-05T10:00:00"))
    assert scan_at("2026-03-05T09:59:59").totals()["nudged"] == 0  # held: not even examined
    after = scan_at("2026-03-05T10:00:00")  # 24 h after the first nudge
    assert after.totals()["nudged"] == 1
    assert len(nudges(admin, user)) == 2


@pytest.mark.parametrize(
    ("tz", "last_active", "held_at", "still_held_at", "released_at"),
    [
        # Tokyo is UTC+9: due at 23:00 local, released at 08:00 local (23:00 UTC).
        ("Asia/Tokyo", "2026-03-01T14:00:00", "2026-03-03T14:00:00", "2026-03-03T22:59:00", "2026-03-03T23:00:00"),
        # Los Angeles is UTC-8 in January: due at 23:00 local, released at 08:00 local.
        (
            "America/Los_Angeles",
            "2026-01-10T07:00:00",
            "2026-01-12T07:00:00",
            "2026-01-12T15:59:00",
            "2026-01-12T16:00:00",
        ),
    ],
)
def test_quiet_hours_hold_the_nudge_until_eight_local(
    admin: psycopg.Connection, tz: str, last_active: str, held_at: str, still_held_at: str, released_at: str
) -> None:
    user = add_user(admin, "2026-01-01T00:00:00", tz=tz)
    add_event(admin, user, last_active)
    first = scan_at(held_at)
    assert first.totals()["skipped"]["quiet_hours"] == 1 and nudges(admin) == []
    [(hold_until,)] = admin.execute("select hold_until from nudge_pending").fetchall()
    assert hold_until == at(released_at)  # 08:00 local
    # Incremental scans leave a held user alone until the hold ends.
    assert scan_at(still_held_at).totals()["examined"] == 0
    assert scan_at(still_held_at, full=True).totals()["skipped"]["quiet_hours"] == 1
    released = scan_at(released_at)
    assert released.rules[0].mode == "incremental"
    assert released.totals()["nudged"] == 1
    [(stamp, _)] = nudges(admin, user)
    assert stamp == at(released_at)


def test_invalid_time_zone_falls_back_to_utc(admin: psycopg.Connection) -> None:
    user = add_user(admin, "2026-03-01T00:00:00", tz="Mars/Olympus_Mons")
    add_event(admin, user, "2026-03-01T23:00:00")
    assert scan_at("2026-03-03T23:00:00").totals()["skipped"]["quiet_hours"] == 1  # 23:00 UTC
    assert scan_at("2026-03-04T08:00:00").totals()["nudged"] == 1


def test_opted_out_user_is_never_nudged(admin: psycopg.Connection) -> None:
    add_user(admin, "2026-03-01T00:00:00", opt_out=True)
    summary = scan_at("2026-03-05T12:00:00")
    assert summary.totals()["due"] == 1
    assert summary.totals()["skipped"]["opted_out"] == 1
    assert nudges(admin) == []


def test_dry_run_writes_nothing_and_reports_the_same_decisions(admin: psycopg.Connection) -> None:
    for hour in range(3):
        user = add_user(admin, "2026-03-01T00:00:00")
        add_event(admin, user, f"2026-03-02T0{hour}:00:00")
    add_user(admin, "2026-03-01T00:00:00", opt_out=True)
    before = admin.execute("select count(*) from engagement_events").fetchone()[0]
    dry = scan_at("2026-03-05T12:00:00", dry_run=True)
    assert admin.execute("select count(*) from engagement_events").fetchone()[0] == before
    assert admin.execute("select count(*) from nudge_scan_state").fetchone()[0] == 0
    wet = scan_at("2026-03-05T12:00:00")
    assert dry.totals() == wet.totals()
    assert wet.totals()["nudged"] == 3


def test_a_second_rule_works_from_settings_alone(admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    rules = [
        {"name": "inactive_48h", "threshold_hours": 48},
        # Background wearable syncs do not count as coming back for the weekly rule.
        {"name": "inactive_7d", "threshold_hours": 168, "event_types": ["app_open", "goal_complete"]},
    ]
    monkeypatch.setenv("NUDGE_RULES", json.dumps(rules))
    monkeypatch.setenv("NUDGE_COOLDOWN_HOURS", "0")
    get_settings.cache_clear()
    user = add_user(admin, "2026-03-01T00:00:00")
    add_event(admin, user, "2026-03-02T10:00:00")
    add_event(admin, user, "2026-03-08T10:00:00", "steps_import")
    summary = scan_at("2026-03-09T10:00:00")
    by_rule = {r.rule: r for r in summary.rules}
    assert by_rule["inactive_48h"].nudged == 0  # steps_import counts for the default rule
    assert by_rule["inactive_7d"].nudged == 1
    [(_, value)] = nudges(admin, user)
    assert value["rule"] == "inactive_7d" and value["threshold_hours"] == 168


def test_a_live_lease_turns_an_overlapping_scan_away_after_one_lease_period(
    admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_user(admin, "2026-03-01T00:00:00")
    monkeypatch.setenv("SCAN_LEASE_SECONDS", "1")
    get_settings.cache_clear()
    # Another scan, alive: its lease ends after the frozen instant, however long this one waits.
    admin.execute(
        "insert into nudge_scan_leases values ('inactive_48h', gen_random_uuid(), 'task other', %s, %s)",
        (at("2026-03-05T12:00:00"), at("2026-03-05T12:00:01")),
    )
    summary = scan_at("2026-03-05T12:00:00")
    assert not summary.ran and "another scan holds the lease on rule inactive_48h" in summary.note
    assert "task other" in summary.note
    assert nudges(admin) == []
    # One second on, the same lease has expired: a dead scan's lease blocks nobody for longer.
    assert scan_at("2026-03-05T12:00:01").totals()["nudged"] == 1
    assert admin.execute("select count(*) from nudge_scan_leases").fetchone()[0] == 0


def test_the_same_owner_takes_its_own_lease_back_at_once(admin: psycopg.Connection) -> None:
    """A re-delivered task (same Celery task id) resumes at once; another owner would wait."""
    add_user(admin, "2026-03-01T00:00:00")
    admin.execute(
        "insert into nudge_scan_leases values ('inactive_48h', gen_random_uuid(), 'task 42', %s, %s)",
        (at("2026-03-05T12:00:00"), at("2026-03-05T13:00:00")),
    )
    summary = scan_at("2026-03-05T12:00:00", owner="task 42")
    assert summary.ran and summary.totals()["nudged"] == 1


def test_a_scan_whose_expired_lease_was_taken_over_stops_at_its_next_batch(
    admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(6):
        add_user(admin, "2026-03-01T00:00:00")
    monkeypatch.setenv("SCAN_BATCH_SIZE", "2")
    get_settings.cache_clear()

    def another_scan_takes_over(_: object) -> None:
        admin.execute("update nudge_scan_leases set scan_id = gen_random_uuid(), owner = 'task other'")

    summary = scan_at("2026-03-05T12:00:00", on_decision=another_scan_takes_over)
    assert not summary.ran and "took over the lease on rule inactive_48h" in summary.note
    assert len(nudges(admin)) == 2  # the first batch only
    assert admin.execute("select owner from nudge_scan_leases").fetchall() == [("task other",)]


@pytest.mark.parametrize("lock", [True, False], ids=["with-lock", "database-alone"])
def test_eight_concurrent_scans_nudge_each_due_user_once(admin: psycopg.Connection, lock: bool) -> None:
    users = [add_user(admin, "2026-03-01T00:00:00") for _ in range(40)]
    for user in users[:30]:
        add_event(admin, user, "2026-03-02T10:00:00")
    as_of = at("2026-03-05T12:00:00")
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def scan() -> None:
        try:
            barrier.wait(timeout=60)
            run_scan(as_of, lock=lock, full=True)
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=scan) for _ in range(8)]
    for t in threads:
        t.start()
    join(*threads, timeout=120)
    assert errors == []
    per_user = admin.execute(
        "select user_id, count(*) from engagement_events where event_type = 'nudge_sent' group by user_id"
    ).fetchall()
    assert sorted(u for u, _ in per_user) == sorted(users)
    assert {n for _, n in per_user} == {1}


def test_incremental_scan_examines_only_users_who_crossed(admin: psycopg.Connection) -> None:
    for day in range(1, 6):
        for _ in range(3):
            user = add_user(admin, "2026-02-01T00:00:00")
            add_event(admin, user, f"2026-03-0{day}T12:00:00")
    first = scan_at("2026-03-05T12:00:00")
    assert first.rules[0].mode == "full"
    assert first.totals()["nudged"] == 9  # last active on days 1-3: 48 h or more
    nxt = scan_at("2026-03-06T12:00:00")
    assert nxt.rules[0].mode == "incremental"
    assert nxt.totals()["examined"] == 3 and nxt.totals()["nudged"] == 3

"""Both sides of each boundary the engine promises: quiet hours to the microsecond (DST days,
other windows, off), the cool-down across rules, a changed rule, reconciliation, and users whose
settings change after sign-up. `as_of` is passed from Python; the database's clock never decides.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest

from events_schema.settings import get_settings
from tests.integration.scan.scan_helpers import add_event, add_user, at, nudges
from worker.database import dispose_engines
from worker.scan.scanner import Decision, run_scan

TWO_RULES = [{"name": "inactive_48h", "threshold_hours": 48}, {"name": "inactive_7d", "threshold_hours": 168}]


@pytest.fixture(autouse=True)
def engine_settings(settings_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in (
        "NUDGE_RULES",
        "NUDGE_COOLDOWN_HOURS",
        "QUIET_HOURS_ENABLED",
        "QUIET_HOURS_START",
        "QUIET_HOURS_END",
        "RECONCILE_INTERVAL_HOURS",
        "SCAN_INTERVAL_SECONDS",
    ):
        monkeypatch.delenv(name, raising=False)
    yield
    dispose_engines()


def configure(monkeypatch: pytest.MonkeyPatch, **settings: str) -> None:
    for name, value in settings.items():
        monkeypatch.setenv(name.upper(), value)
    get_settings.cache_clear()


def decide(iso: str, **kwargs: object) -> list[Decision]:
    """Every due candidate's decision at `iso` (a dry, full scan: nothing is written)."""
    seen: list[Decision] = []
    run_scan(at(iso), dry_run=True, full=True, on_decision=seen.append, **kwargs)
    return seen


def lapsed_user(admin: psycopg.Connection, tz: str | None) -> None:
    """A user long due whenever a test looks (last active 2026-01-01), in time zone `tz`."""
    user = add_user(admin, "2025-12-01T00:00:00", tz=tz)
    add_event(admin, user, "2026-01-01T00:00:00")


QUIET_EDGES = [
    # (time zone, the scan's instant in UTC, expected decision): the default window 22:00-08:00.
    ("UTC", "2026-02-10T21:59:59.999999", "nudge"),
    ("UTC", "2026-02-10T22:00:00", "quiet_hours"),
    ("UTC", "2026-02-11T07:59:59.999999", "quiet_hours"),
    ("UTC", "2026-02-11T08:00:00", "nudge"),
    # New York springs forward on 2026-03-08 (EST -5 -> EDT -4 at 02:00 local).
    ("America/New_York", "2026-03-08T11:59:59.999999", "quiet_hours"),  # 07:59:59.999999 EDT
    ("America/New_York", "2026-03-08T12:00:00", "nudge"),  # 08:00 EDT (13:00Z would be EST)
    ("America/New_York", "2026-03-09T01:59:59.999999", "nudge"),  # 21:59:59.999999 EDT
    ("America/New_York", "2026-03-09T02:00:00", "quiet_hours"),  # 22:00 EDT
    # ... and falls back on 2026-11-01 (EDT -4 -> EST -5 at 02:00 local).
    ("America/New_York", "2026-11-01T12:59:59.999999", "quiet_hours"),  # 07:59:59.999999 EST
    ("America/New_York", "2026-11-01T13:00:00", "nudge"),  # 08:00 EST
    ("America/New_York", "2026-11-02T02:59:59.999999", "nudge"),  # 21:59:59.999999 EST
    ("America/New_York", "2026-11-02T03:00:00", "quiet_hours"),  # 22:00 EST
    # Berlin: CET +1 -> CEST +2 on 2026-03-29, back on 2026-10-25.
    ("Europe/Berlin", "2026-03-29T05:59:59.999999", "quiet_hours"),  # 07:59:59.999999 CEST
    ("Europe/Berlin", "2026-03-29T06:00:00", "nudge"),
    ("Europe/Berlin", "2026-10-25T06:59:59.999999", "quiet_hours"),  # 07:59:59.999999 CET
    ("Europe/Berlin", "2026-10-25T07:00:00", "nudge"),
    ("Europe/Berlin", "2026-10-25T20:59:59.999999", "nudge"),  # 21:59:59.999999 CET
    ("Europe/Berlin", "2026-10-25T21:00:00", "quiet_hours"),
]


@pytest.mark.parametrize(("tz", "instant", "expected"), QUIET_EDGES, ids=[f"{t}-{i}" for t, i, _ in QUIET_EDGES])
def test_quiet_hours_start_at_22_and_end_at_8_local_to_the_microsecond(
    admin: psycopg.Connection, tz: str, instant: str, expected: str
) -> None:
    lapsed_user(admin, tz)
    [decision] = decide(instant)
    assert decision.decision == expected, (decision.local_time, decision.timezone)


@pytest.mark.parametrize(
    ("instant", "release"),
    [
        ("2026-03-08T05:00:00", "2026-03-08T12:00:00"),  # midnight EST; 08:00 is already EDT
        ("2026-11-01T04:30:00", "2026-11-01T13:00:00"),  # 00:30 EDT; 08:00 is already EST
    ],
    ids=["spring-forward", "fall-back"],
)
def test_a_hold_on_a_dst_day_ends_at_eight_local_in_the_new_offset(
    admin: psycopg.Connection, instant: str, release: str
) -> None:
    lapsed_user(admin, "America/New_York")
    [decision] = decide(instant)
    assert (decision.decision, decision.hold_until) == ("quiet_hours", at(release))


@pytest.mark.parametrize(
    ("start", "end", "instant", "expected"),
    [
        # A window that does not wrap past midnight: 01:00-05:00.
        ("01:00", "05:00", "2026-02-10T00:59:59.999999", "nudge"),
        ("01:00", "05:00", "2026-02-10T01:00:00", "quiet_hours"),
        ("01:00", "05:00", "2026-02-10T04:59:59.999999", "quiet_hours"),
        ("01:00", "05:00", "2026-02-10T05:00:00", "nudge"),
        ("01:00", "05:00", "2026-02-10T23:00:00", "nudge"),
        ("01:00", "05:00", "2026-02-10T12:00:00", "nudge"),
        # A custom wrapping window: 21:30-06:45.
        ("21:30", "06:45", "2026-02-10T21:29:59.999999", "nudge"),
        ("21:30", "06:45", "2026-02-10T21:30:00", "quiet_hours"),
        ("21:30", "06:45", "2026-02-11T06:44:59.999999", "quiet_hours"),
        ("21:30", "06:45", "2026-02-11T06:45:00", "nudge"),
        ("21:30", "06:45", "2026-02-10T22:00:00", "quiet_hours"),
        ("21:30", "06:45", "2026-02-11T07:59:00", "nudge"),
    ],
)
def test_quiet_hours_follow_the_configured_window(
    admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch, start: str, end: str, instant: str, expected: str
) -> None:
    configure(monkeypatch, quiet_hours_start=start, quiet_hours_end=end)
    lapsed_user(admin, "UTC")
    [decision] = decide(instant)
    assert decision.decision == expected


def test_a_hold_in_a_custom_window_ends_at_its_end(admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, quiet_hours_start="21:30", quiet_hours_end="06:45")
    lapsed_user(admin, "Asia/Tokyo")  # UTC+9
    [before_midnight] = decide("2026-02-10T13:00:00")  # 22:00 local
    [after_midnight] = decide("2026-02-10T16:00:00")  # 01:00 local, the next day
    assert before_midnight.hold_until == after_midnight.hold_until == at("2026-02-10T21:45:00")


@pytest.mark.parametrize(("enabled", "expected"), [("false", "nudge"), ("true", "quiet_hours")])
def test_quiet_hours_can_be_turned_off(
    admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch, enabled: str, expected: str
) -> None:
    configure(monkeypatch, quiet_hours_enabled=enabled)
    lapsed_user(admin, "UTC")
    [decision] = decide("2026-02-10T23:00:00")
    assert decision.decision == expected


@pytest.mark.parametrize(("cooldown", "nudged"), [(None, 1), ("0", 2)], ids=["default-cooldown", "no-cooldown"])
def test_two_rules_due_at_once_give_one_nudge_under_the_cool_down(
    admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch, cooldown: str | None, nudged: int
) -> None:
    configure(
        monkeypatch, nudge_rules=json.dumps(TWO_RULES), **({"nudge_cooldown_hours": cooldown} if cooldown else {})
    )
    user = add_user(admin, "2026-03-01T00:00:00")
    add_event(admin, user, "2026-03-02T10:00:00")
    summary = run_scan(at("2026-03-10T12:00:00"))
    assert [r.rule for r in summary.rules] == ["inactive_48h", "inactive_7d"]
    rules = sorted(value["rule"] for _, value in nudges(admin, user))
    assert rules == ["inactive_48h", "inactive_7d"][:nudged]  # the first rule in configuration order
    assert summary.rules[1].skipped["cooldown"] == 2 - nudged


def test_the_cool_down_ends_exactly_after_its_hours(admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, nudge_rules=json.dumps(TWO_RULES), nudge_cooldown_hours="30", quiet_hours_enabled="false")
    user = add_user(admin, "2026-03-01T00:00:00")
    add_event(admin, user, "2026-03-02T10:00:00")  # due for the weekly rule from 03-09 10:00
    assert run_scan(at("2026-03-08T20:00:00"), rule_names=["inactive_48h"]).totals()["nudged"] == 1
    [held] = decide("2026-03-10T01:59:59.999999", rule_names=["inactive_7d"])
    assert (held.decision, held.hold_until) == ("cooldown", at("2026-03-10T02:00:00"))
    [free] = decide("2026-03-10T02:00:00", rule_names=["inactive_7d"])  # 30 h after the nudge
    assert free.decision == "nudge"


def test_a_changed_threshold_gets_a_full_scan(admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    user = add_user(admin, "2026-03-01T00:00:00")
    add_event(admin, user, "2026-03-04T06:00:00")  # 30 h before the scan below: not due at 48 h
    assert run_scan(at("2026-03-05T12:00:00")).totals()["nudged"] == 0
    configure(monkeypatch, nudge_rules=json.dumps([{"name": "inactive_48h", "threshold_hours": 24}]))
    # Crossed 24 h long before the previous scan: an incremental window would not look at them.
    summary = run_scan(at("2026-03-05T12:15:00"))
    assert summary.rules[0].mode == "full"
    assert summary.totals()["nudged"] == 1
    assert run_scan(at("2026-03-05T12:30:00")).rules[0].mode == "incremental"


def test_changed_event_types_get_a_full_scan(admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    user = add_user(admin, "2026-03-01T00:00:00")
    add_event(admin, user, "2026-03-02T10:00:00", "app_open")
    add_event(admin, user, "2026-03-05T10:00:00", "steps_import")
    assert run_scan(at("2026-03-05T12:00:00")).totals()["due"] == 0
    configure(
        monkeypatch,
        nudge_rules=json.dumps([{"name": "inactive_48h", "threshold_hours": 48, "event_types": ["app_open"]}]),
    )
    summary = run_scan(at("2026-03-05T12:15:00"))
    assert summary.rules[0].mode == "full"
    [(_, value)] = nudges(admin, user)
    assert value["last_active_at"] == "2026-03-02T10:00:00.000000Z"


def test_reconciliation_catches_a_back_dated_import_that_incremental_scans_miss(
    admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, reconcile_interval_hours="48")  # no reconcile unless asked for
    user = add_user(admin, "2026-03-01T00:00:00")
    add_event(admin, user, "2026-03-02T10:00:00")
    assert run_scan(at("2026-03-04T10:00:00")).totals()["nudged"] == 1
    assert run_scan(at("2026-03-05T12:00:00")).rules[0].mode == "incremental"
    # A late import lands a step count from 03-03 09:00: a new lapse, older than the next window.
    add_event(admin, user, "2026-03-03T09:00:00", "steps_import")
    missed = run_scan(at("2026-03-05T12:15:00"))
    assert (missed.rules[0].mode, missed.totals()["examined"], missed.totals()["nudged"]) == ("incremental", 0, 0)
    caught = run_scan(at("2026-03-05T12:30:00"), full=True)
    assert caught.totals()["nudged"] == 1
    assert [v["last_active_at"] for _, v in nudges(admin, user)] == [
        "2026-03-02T10:00:00.000000Z",
        "2026-03-03T09:00:00.000000Z",
    ]


def test_reconciliation_catches_a_soft_delete_that_moves_last_active_back(admin: psycopg.Connection) -> None:
    user = add_user(admin, "2026-03-01T00:00:00")
    add_event(admin, user, "2026-03-02T10:00:00")
    recent = add_event(admin, user, "2026-03-04T10:00:00")
    assert run_scan(at("2026-03-05T12:00:00")).totals()["due"] == 0
    assert run_scan(at("2026-03-05T12:15:00")).rules[0].mode == "incremental"
    admin.execute("update engagement_events set is_deleted = true where id = %s", (recent,))
    missed = run_scan(at("2026-03-05T12:30:00"))
    assert (missed.rules[0].mode, missed.totals()["nudged"]) == ("incremental", 0)
    caught = run_scan(at("2026-03-05T12:45:00"), full=True)
    assert caught.totals()["nudged"] == 1
    [(_, value)] = nudges(admin, user)
    assert value["last_active_at"] == "2026-03-02T10:00:00.000000Z"


def test_a_scan_reconciles_by_itself_when_the_last_full_scan_is_overdue(
    admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nudge_scan_state.full_scan_at: a missed reconcile (beat restarted, its schedule lost) is
    made up by the first scan RECONCILE_INTERVAL_HOURS + SCAN_INTERVAL_SECONDS after the last
    full one, the beat's own reconcile having had a scan interval to come first."""
    configure(monkeypatch, reconcile_interval_hours="6", scan_interval_seconds="900")
    add_user(admin, "2026-03-01T00:00:00")
    assert run_scan(at("2026-03-05T12:00:00")).rules[0].mode == "full"
    assert run_scan(at("2026-03-05T18:14:59.999999")).rules[0].mode == "incremental"
    assert run_scan(at("2026-03-05T18:15:00")).rules[0].mode == "full"
    assert run_scan(at("2026-03-05T18:30:00")).rules[0].mode == "incremental"
    # A full scan asked for resets the clock too.
    assert run_scan(at("2026-03-05T20:00:00"), full=True).rules[0].mode == "full"
    assert run_scan(at("2026-03-06T02:14:59.999999")).rules[0].mode == "incremental"


def test_a_user_who_opts_out_after_sign_up_is_not_nudged_and_can_opt_back_in(admin: psycopg.Connection) -> None:
    user = add_user(admin, "2026-03-01T00:00:00")
    admin.execute("""update auth.users set raw_user_meta_data = '{"nudges_opt_out": "true"}' where id = %s""", (user,))
    assert [d.decision for d in decide("2026-03-05T12:00:00")] == ["opted_out"]
    admin.execute("""update auth.users set raw_user_meta_data = '{"nudges_opt_out": "false"}' where id = %s""", (user,))
    assert [d.decision for d in decide("2026-03-05T12:00:00")] == ["nudge"]


def test_a_user_who_changes_time_zone_after_sign_up_gets_quiet_hours_in_the_new_one(admin: psycopg.Connection) -> None:
    user = add_user(admin, "2026-03-01T00:00:00")
    assert [d.decision for d in decide("2026-03-05T14:00:00")] == ["nudge"]  # 14:00 UTC
    admin.execute("""update auth.users set raw_user_meta_data = '{"timezone": "Asia/Tokyo"}' where id = %s""", (user,))
    [decision] = decide("2026-03-05T14:00:00")  # 23:00 in Tokyo
    assert (decision.timezone, decision.decision) == ("Asia/Tokyo", "quiet_hours")


def test_activity_after_the_scans_instant_does_not_count(admin: psycopg.Connection) -> None:
    """Last active at T is the latest activity at or before T: a scan replayed for a past instant
    decides as it would have then."""
    user = add_user(admin, "2026-03-01T00:00:00")
    add_event(admin, user, "2026-03-02T10:00:00")
    add_event(admin, user, "2026-03-04T10:00:00.000001")
    [decision] = decide("2026-03-04T10:00:00")
    assert (decision.decision, decision.last_active_at) == ("nudge", at("2026-03-02T10:00:00"))
    add_event(admin, user, "2026-03-04T10:00:00")
    assert decide("2026-03-04T10:00:00") == []  # at T itself it counts: not due

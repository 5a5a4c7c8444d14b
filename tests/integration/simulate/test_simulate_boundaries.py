"""Both sides of each boundary a replayed decision turns on, each checked against the live scan
run at every beat of the same short window: due exactly at a beat or a microsecond after; an
episode that ends (activity) exactly at a beat; quiet hours starting at 22:00 and ending at 08:00
local; the cool-down from a decision before the window ending exactly at a beat; two rules due
at the same beat (configuration order); and the replay's transaction is read only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, timedelta

import psycopg
import pytest

from events_schema.settings import get_settings
from tests.integration.scan.scan_helpers import add_event, add_user, at
from tests.integration.simulate.test_simulate_exact import BEAT, Row, live
from worker.database import connection, dispose_engines
from worker.simulate.policy import Policy
from worker.simulate.replay import Window, begin_read_only, decisions

MICRO = timedelta(microseconds=1)


@pytest.fixture(autouse=True)
def engine_settings(settings_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("NUDGE_RULES", "NUDGE_MAX_PER_SCAN", "QUIET_HOURS_ENABLED", "NUDGE_COOLDOWN_HOURS"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    dispose_engines()


def both(start: str, end: str) -> list[Row]:
    """The replay of [start, end) before the live engine runs it, asserted equal to what the live
    engine then writes; returns those decisions."""
    window = Window(at(start), at(end), BEAT)
    with connection() as conn:
        conn.rollback()
        replayed = [
            (s.at, s.user_id, s.rule, s.last_active_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "nudge_sent")
            for s in decisions(conn, Policy.configured(get_settings()), window)
        ]
    live(window.start, window.end)
    with connection() as conn:
        written = conn.execute(
            "select timestamp, user_id, value ->> 'rule', value ->> 'last_active_at', event_type from engagement_events"
            " where event_type = 'nudge_sent' and timestamp >= %s and timestamp < %s"
            " order by timestamp, user_id, value ->> 'rule'",
            (window.start, window.end),
        ).fetchall()
        conn.rollback()
    assert replayed == written
    return replayed


def test_due_exactly_at_a_beat_or_a_microsecond_after(admin: psycopg.Connection) -> None:
    on_beat, after = add_user(admin, "2026-03-01T00:00:00"), add_user(admin, "2026-03-01T00:00:00")
    add_event(admin, on_beat, "2026-03-02T12:00:00")
    admin.execute(
        "insert into engagement_events (user_id, timestamp, event_type) values (%s, %s, 'app_open')",
        (after, at("2026-03-02T12:00:00") + MICRO),
    )
    sent = {user: when for when, user, *_ in both("2026-03-04T11:30:00", "2026-03-04T13:00:00")}
    assert sent == {on_beat: at("2026-03-04T12:00:00"), after: at("2026-03-04T12:15:00")}


def test_activity_exactly_at_a_beat_ends_the_episode_there(admin: psycopg.Connection) -> None:
    # Due at 22:00 local (Berlin, UTC+1), held by quiet hours until 08:00 local (07:00 UTC).
    back, late = (add_user(admin, "2026-03-01T00:00:00", tz="Europe/Berlin") for _ in range(2))
    for user in (back, late):
        add_event(admin, user, "2026-03-02T21:00:00")
    add_event(admin, back, "2026-03-05T07:00:00")  # back exactly at the beat it would be sent
    admin.execute(
        "insert into engagement_events (user_id, timestamp, event_type) values (%s, %s, 'app_open')",
        (late, at("2026-03-05T07:00:00") + MICRO),  # back a microsecond too late
    )
    sent = both("2026-03-04T20:30:00", "2026-03-05T07:30:00")
    assert [(when, user) for when, user, *_ in sent] == [(at("2026-03-05T07:00:00"), late)]


def test_quiet_hours_start_at_22_and_end_at_08_local(admin: psycopg.Connection) -> None:
    # Berlin is UTC+1 in March: 22:00 local is 21:00 UTC, 08:00 local is 07:00 UTC.
    before, at_22 = (
        add_user(admin, "2026-03-01T00:00:00", tz="Europe/Berlin"),
        add_user(admin, "2026-03-01T00:00:00", tz="Europe/Berlin"),
    )
    add_event(admin, before, "2026-03-02T20:45:00")  # due 21:45 local: sent
    add_event(admin, at_22, "2026-03-02T21:00:00")  # due 22:00 local: held until 08:00 local
    sent = {user: when for when, user, *_ in both("2026-03-04T20:30:00", "2026-03-05T07:30:00")}
    assert sent == {before: at("2026-03-04T20:45:00"), at_22: at("2026-03-05T07:00:00")}


def test_the_cool_down_from_before_the_window_ends_exactly_at_a_beat(
    admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NUDGE_RULES", json.dumps([{"name": "short", "threshold_hours": 2}]))
    get_settings.cache_clear()
    user = add_user(admin, "2026-03-01T00:00:00")
    add_event(admin, user, "2026-03-02T08:00:00")
    live(at("2026-03-02T10:00:00"), at("2026-03-02T10:15:00"))  # nudged at 10:00, before the window
    add_event(admin, user, "2026-03-02T12:00:00")  # a new lapse, due 14:00, inside the cool-down
    sent = both("2026-03-02T13:00:00", "2026-03-03T11:00:00")
    assert [when for when, *_ in sent] == [at("2026-03-03T10:00:00")]  # 24 h after, not a beat sooner


def test_two_rules_due_at_the_same_beat_go_in_configuration_order(
    admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules = [
        {"name": "opens", "threshold_hours": 48, "event_types": ["app_open"]},
        {"name": "goals", "threshold_hours": 24, "event_types": ["goal_complete"]},
    ]
    monkeypatch.setenv("NUDGE_RULES", json.dumps(rules))
    get_settings.cache_clear()
    user = add_user(admin, "2026-03-01T00:00:00")
    add_event(admin, user, "2026-03-02T12:00:00", "app_open")  # opens: due 2026-03-04T12:00
    add_event(admin, user, "2026-03-03T12:00:00", "goal_complete")  # goals: due then too
    sent = both("2026-03-04T11:00:00", "2026-03-04T13:00:00")
    assert [(when, rule) for when, _, rule, *_ in sent] == [(at("2026-03-04T12:00:00"), "opens")]


def test_the_replay_runs_in_a_read_only_transaction() -> None:
    with connection() as conn:
        conn.rollback()
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction), conn.transaction():
            begin_read_only(conn)
            conn.execute(
                "insert into engagement_events (user_id, event_type) select user_id, 'x' from engagement_users"
            )
        conn.rollback()

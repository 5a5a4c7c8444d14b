"""The seed's generator, without a database: deterministic, realistic in shape."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, available_timezones

import pytest

from events_schema.seed.seed import DAY, format_timestamp, plan_users, user_events

NOW = int(datetime(2026, 11, 26, 10, tzinfo=UTC).timestamp())
DAYS = 14
TYPES = {"app_open", "goal_complete", "steps_import", "coach_message"}


def generate(users: int, seed: int, days: int = DAYS) -> list[tuple]:
    profiles = plan_users(users, days, seed, NOW)
    return [(p, user_events(p, days, NOW)) for p in profiles]


@pytest.fixture(scope="module")
def world() -> list[tuple]:
    return generate(400, seed=7)


def test_same_seed_and_now_give_the_same_data() -> None:
    assert generate(60, seed=3) == generate(60, seed=3)


def test_another_seed_gives_other_data() -> None:
    first, second = generate(60, seed=3), generate(60, seed=4)
    assert {p.id for p, _ in first}.isdisjoint({p.id for p, _ in second})
    assert [len(e) for _, e in first] != [len(e) for _, e in second]


def test_fewer_users_are_a_prefix_of_more() -> None:
    """Each user's data depends on the seed and their position only: a small seed previews a big one."""
    assert generate(20, seed=5) == generate(40, seed=5)[:20]


def test_ids_are_version_4_uuids_and_unique(world: list[tuple]) -> None:
    ids = [p.id for p, _ in world] + [e[0] for _, events in world for e in events]
    assert len(ids) == len(set(ids))
    for text in ids[:500]:
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)


def test_events_lie_in_the_period_after_sign_up(world: list[tuple]) -> None:
    for profile, events in world:
        for _, ts, event_type, value, _ in events:
            assert max(NOW - DAYS * DAY, profile.created) <= ts < NOW
            assert event_type in TYPES
            assert isinstance(json.loads(value), dict)
        if profile.churn is not None:
            assert all(ts < profile.churn for _, ts, *_ in events)


def test_every_event_type_with_a_plausible_payload(world: list[tuple]) -> None:
    events = [e for _, user_events_ in world for e in user_events_]
    assert {e[2] for e in events} == TYPES
    per_user_day = len(events) / (len(world) * DAYS)
    assert 0.5 < per_user_day < 5, "a few events per user per day"
    for profile, user_events_ in world:
        for _, ts, event_type, value, _ in user_events_:
            check_payload(event_type, json.loads(value), datetime.fromtimestamp(ts, ZoneInfo(profile.timezone)))
    assert sum(e[4] for e in events) > 0, "a few events are soft-deleted"


def check_payload(event_type: str, payload: dict, local: datetime) -> None:
    if event_type == "steps_import":
        assert set(payload) == {"steps", "source", "date"}
        assert 300 <= payload["steps"] <= 60000
        assert payload["source"] in {"fitbit", "apple_health", "google_fit", "garmin"}
        # Yesterday's total in the user's calendar; the import may land just after midnight.
        yesterday = (local + timedelta(hours=1)).date() - timedelta(days=1)
        assert payload["date"] in {yesterday.isoformat(), (yesterday - timedelta(days=1)).isoformat()}
    elif event_type == "goal_complete":
        assert payload["streak"] >= 1 and payload["goal"]
    elif event_type == "coach_message":
        assert payload["direction"] in {"to_coach", "from_coach"}
    else:
        assert payload["platform"] in {"ios", "android"}


def test_users_metadata(world: list[tuple]) -> None:
    profiles = [p for p, _ in world]
    zones = available_timezones()
    with_zone = [p for p in profiles if "timezone" in p.meta]
    assert 0.75 * len(profiles) < len(with_zone) < len(profiles), "most users have a time zone, some none"
    assert all(p.meta["timezone"] in zones for p in with_zone)
    opted_out = [p for p in profiles if p.meta.get("nudges_opt_out") == "true"]
    assert 0 < len(opted_out) < 0.15 * len(profiles)
    assert any(p.created >= NOW - DAYS * DAY for p in profiles), "some sign up during the period"
    assert any(p.created < NOW - DAYS * DAY for p in profiles), "most signed up before it"


def test_some_users_go_quiet_for_more_than_48_hours(world: list[tuple]) -> None:
    def last(events: list[tuple]) -> int:
        return max((ts for _, ts, _, _, deleted in events if not deleted), default=0)

    quiet = [p for p, events in world if last(events) < NOW - 2 * DAY]
    active = [p for p, events in world if last(events) >= NOW - 2 * DAY]
    assert len(quiet) > 0.1 * len(world) and len(active) > 0.3 * len(world)
    assert any(p.churn is not None for p in quiet), "some drifted off"


def test_daily_rhythm_in_local_time_differs_on_weekends(world: list[tuple]) -> None:
    hours: dict[bool, Counter[int]] = {False: Counter(), True: Counter()}
    for profile, events in world:
        zone = ZoneInfo(profile.timezone)
        for _, ts, event_type, _, _ in events:
            if event_type == "app_open":
                local = datetime.fromtimestamp(ts, zone)
                hours[local.weekday() >= 5][local.hour] += 1
    for counter in hours.values():
        night = sum(counter[h] for h in range(1, 5)) / sum(counter.values())
        assert night < 0.05, "few app opens between 1 and 5 am local time"
    share = {weekend: (c[7] + c[8]) / sum(c.values()) for weekend, c in hours.items()}
    assert share[False] > 1.5 * share[True], "weekday mornings start earlier"


def test_timestamps_are_formatted_as_utc() -> None:
    instant = datetime(2026, 3, 29, 1, 2, 3, tzinfo=UTC)
    assert format_timestamp(int(instant.timestamp())) == "2026-03-29 01:02:03+00"

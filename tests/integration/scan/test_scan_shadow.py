"""Shadow mode: a rule with "mode": "shadow" decides on every beat as a live rule would and
records each would-be nudge once per episode as a private `nudge_shadow` event: never a
`nudge_sent`, never visible to the user, never broadcast, never activity; its episodes,
cool-down and cap are its own, so the live rules decide exactly as they would without it."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta

import psycopg
import pytest

from events_schema.postgrest import claims_for, request
from events_schema.settings import get_settings
from tests.integration.realtime.realtime_helpers import messages
from tests.integration.scan.scan_helpers import add_event, add_user, at
from worker.database import dispose_engines
from worker.scan.scanner import ScanSummary, run_scan
from worker.scan.shards import Shard

LIVE = {"name": "inactive_48h", "threshold_hours": 48}
SHADOW = {"name": "proposed_36h", "threshold_hours": 36, "mode": "shadow"}
LAPSED_AT = "2026-03-01T00:00:00"
SCAN = "2026-03-04T12:00:00"  # 84 h after LAPSED_AT, noon UTC


@pytest.fixture(autouse=True)
def engine_settings(settings_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("NUDGE_RULES", "NUDGE_MAX_PER_SCAN", "QUIET_HOURS_ENABLED", "NUDGE_COOLDOWN_HOURS", "SCAN_SHARDS"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    dispose_engines()


def rules(monkeypatch: pytest.MonkeyPatch, *rules: dict[str, object]) -> None:
    monkeypatch.setenv("NUDGE_RULES", json.dumps(list(rules)))
    get_settings.cache_clear()


def lapsed(admin: psycopg.Connection, n: int, tz: str | None = None, when: str = LAPSED_AT) -> list[uuid.UUID]:
    users = []
    for _ in range(n):
        user = add_user(admin, "2026-01-01T00:00:00", tz=tz)
        add_event(admin, user, when)
        users.append(user)
    return users


def decisions(admin: psycopg.Connection) -> list[tuple[uuid.UUID, str, str, str, datetime]]:
    """(user, rule, event type, episode, instant) of every decision event, sent, withheld or shadow."""
    return admin.execute(
        "select user_id, value ->> 'rule', event_type, value ->> 'last_active_at', timestamp from engagement_events"
        " where event_type in ('nudge_sent', 'nudge_withheld', 'nudge_shadow')"
        " order by timestamp, user_id, value ->> 'rule'"
    ).fetchall()


def live_decisions(admin: psycopg.Connection) -> list[tuple[uuid.UUID, str, str, str, datetime]]:
    return [d for d in decisions(admin) if d[2] != "nudge_shadow"]


def beats(start: str, hours: float) -> Iterator[datetime]:
    t, end = at(start), at(start) + timedelta(hours=hours)
    while t <= end:
        yield t
        t += timedelta(minutes=15)


def traffic(admin: psycopg.Connection) -> list[uuid.UUID]:
    """Users lapsing at different times and zones, a wave lapsing at once, one who comes back and
    lapses again, one opted out: what a few days of beats decide about."""
    users = []
    for i, tz in enumerate([None, "Asia/Tokyo", "America/New_York", "Europe/Berlin", "Australia/Sydney"] * 2):
        # Signed up with their first event: no earlier lapse (from sign-up) to decide about.
        first = (at("2026-03-01T00:00:00") + timedelta(hours=5 * i + 0.25)).isoformat()
        user = add_user(admin, first, tz=tz)
        add_event(admin, user, first)
        users.append(user)
    # A wave: six users in UTC lapsing at the same instant (36 h later is noon: one beat; 48 h
    # later is midnight: held by quiet hours until 08:00), so a cap of 3 a scan binds.
    for _ in range(6):
        user = add_user(admin, "2026-03-01T00:00:00")
        add_event(admin, user, "2026-03-01T00:00:00")
        users.append(user)
    comeback = users[0]
    add_event(admin, comeback, "2026-03-03T06:00:00")  # after its first lapse's shadow record (36 h)
    add_user(admin, "2026-03-01T00:00:00", opt_out=True)
    return users


def run_beats(start: str, hours: float, **kwargs: object) -> list[ScanSummary]:
    return [run_scan(t, **kwargs) for t in beats(start, hours)]


# Beside a live rule, over several beats


def test_a_shadow_rule_records_each_episode_once_over_many_beats_and_never_sends(
    admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules(monkeypatch, LIVE, SHADOW)
    users = traffic(admin)
    summaries = run_beats("2026-03-01T00:00:00", 5 * 24)
    shadow = [d for d in decisions(admin) if d[1] == "proposed_36h"]
    assert {t for _, _, t, _, _ in shadow} == {"nudge_shadow"}, "a shadow rule never writes nudge_sent"
    episodes = [(u, e) for u, _, _, e, _ in shadow]
    assert len(episodes) == len(set(episodes)), "one shadow record per episode"
    # Every lapsed user once, the one who came back twice (two episodes); not the opted-out user.
    assert sorted(u for u, _ in episodes) == sorted([*users, users[0]])
    assert sum(s.totals()["shadow"] for s in summaries) == len(shadow)
    assert sum(s.totals()["nudged"] for s in summaries) == len(live_decisions(admin))
    assert all(r.nudged == 0 for s in summaries for r in s.rules if r.rule == "proposed_36h")
    # Quiet hours hold a shadow record as they hold a nudge: none written at night locally.
    local_hours = admin.execute(
        "select extract(hour from e.timestamp at time zone coalesce(u.timezone, 'UTC'))::int"
        " from engagement_events e join engagement_users u using (user_id) where e.event_type = 'nudge_shadow'"
    ).fetchall()
    assert all(8 <= h < 22 for (h,) in local_hours)
    # The same beats again change nothing: every episode is already recorded.
    again = run_scan(at("2026-03-06T00:00:00"), full=True)
    assert again.totals()["shadow"] == 0


def test_the_live_rules_decide_exactly_as_without_the_shadow_rule(
    admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same users, same beats, a cap of 3 nudges a scan: first the live rule alone, then with a
    shadow rule of a shorter threshold placed before it (were it to take the cap, or its records
    to count as the live rule's cool-down or episodes, the live rule's nudges would change)."""
    monkeypatch.setenv("NUDGE_MAX_PER_SCAN", "3")
    rules(monkeypatch, LIVE)
    traffic(admin)
    run_beats("2026-03-01T00:00:00", 5 * 24)
    alone = live_decisions(admin)
    assert len(alone) >= 16
    assert max(Counter(ts for *_, ts in alone).values()) == 3, "the cap binds the morning wave"
    admin.execute(
        "delete from engagement_events where event_type in ('nudge_sent', 'nudge_withheld', 'nudge_shadow');"
        " truncate nudge_pending, nudge_scan_state, nudge_scan_leases"
    )
    rules(monkeypatch, SHADOW, LIVE)
    summaries = run_beats("2026-03-01T00:00:00", 5 * 24)
    beside = live_decisions(admin)
    assert [(u, r, t, e, ts) for u, r, t, e, ts in beside] == alone
    assert sum(s.totals()["shadow"] for s in summaries) >= 16
    # The shadow rule's own cap: at most 3 records a scan, as if it were the only rule.
    assert max(r.shadow for s in summaries for r in s.rules) == 3


def test_a_shadow_rules_cool_down_is_its_own_records(
    admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A live nudge does not hold the shadow rule (it simulates itself), a shadow record does not
    hold a live rule, and the shadow rule's own record holds its next episode for the cool-down."""
    rules(monkeypatch, LIVE, SHADOW)
    monkeypatch.setenv("NUDGE_COOLDOWN_HOURS", "48")
    get_settings.cache_clear()
    [user] = lapsed(admin, 1)
    first = run_scan(at(SCAN))
    assert [(r.rule, r.nudged, r.shadow) for r in first.rules] == [("inactive_48h", 1, 0), ("proposed_36h", 0, 1)]
    add_event(admin, user, "2026-03-04T13:00:00")  # back an hour later; lapses again
    # 36 h later the shadow rule is due again; its own record (37 h old) holds it until 48 h.
    held = run_scan(at("2026-03-06T01:00:00"))
    assert (held.rules[1].shadow, held.rules[1].skipped["cooldown"]) == (0, 1)
    assert run_scan(at("2026-03-06T11:45:00")).rules[1].shadow == 0
    assert run_scan(at("2026-03-06T12:00:00")).rules[1].shadow == 1  # 48 h after its record
    # The live rule, due at 13:00 and past its own cool-down, is not held by that record (1 h old).
    assert run_scan(at("2026-03-06T13:00:00")).rules[0].nudged == 1


def test_two_shadow_rules_each_simulate_themselves(admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    """One shadow rule's record is not another's cool-down nor episode."""
    rules(monkeypatch, SHADOW, {"name": "proposed_48h", "threshold_hours": 48, "mode": "shadow"})
    lapsed(admin, 2)
    summary = run_scan(at(SCAN))
    assert [(r.rule, r.shadow, r.skipped["cooldown"]) for r in summary.rules] == [
        ("proposed_36h", 2, 0),
        ("proposed_48h", 2, 0),
    ]


def test_a_shadow_record_neither_settles_nor_holds_a_live_episode(
    admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The shadow rule goes first and records the user; the live rule still nudges them in the
    same scan, and a rule promoted from shadow to live under the same name nudges its open episode."""
    rules(monkeypatch, SHADOW, LIVE)
    [user] = lapsed(admin, 1)
    summary = run_scan(at(SCAN))
    assert [(r.rule, r.nudged, r.shadow) for r in summary.rules] == [("proposed_36h", 0, 1), ("inactive_48h", 1, 0)]
    rules(monkeypatch, LIVE, {**SHADOW, "mode": "live"})
    monkeypatch.setenv("NUDGE_COOLDOWN_HOURS", "0")
    get_settings.cache_clear()
    promoted = run_scan(at("2026-03-04T12:15:00"))
    assert [(r.rule, r.mode, r.nudged) for r in promoted.rules][1] == ("proposed_36h", "full", 1)
    assert [(r, t) for u, r, t, _, _ in decisions(admin) if u == user] == [
        ("inactive_48h", "nudge_sent"),
        ("proposed_36h", "nudge_shadow"),
        ("proposed_36h", "nudge_sent"),
    ]


def test_one_record_per_episode_whoever_writes_it(admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two scans without the lease, every shard twice, a dry run: still one record per episode."""
    rules(monkeypatch, SHADOW)
    users = lapsed(admin, 12)
    dry = run_scan(at(SCAN), dry_run=True)
    assert dry.totals()["shadow"] == 12 and decisions(admin) == []
    run_scan(at(SCAN), lock=False, full=True)
    second = run_scan(at(SCAN), lock=False, full=True)
    assert second.totals()["skipped"]["already_nudged"] == 12
    for _ in range(2):
        for i in range(3):
            run_scan(at("2026-03-04T12:15:00"), full=True, shard=Shard(i, 3))
    assert sorted(u for u, *_ in decisions(admin)) == sorted(users)


def test_a_rule_whose_mode_changes_gets_a_full_scan(admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    rules(monkeypatch, SHADOW)
    run_scan(at(SCAN))
    assert run_scan(at("2026-03-04T12:15:00")).rules[0].mode == "incremental"
    rules(monkeypatch, {**SHADOW, "mode": "live"})
    assert run_scan(at("2026-03-04T12:30:00")).rules[0].mode == "full"
    assert admin.execute("select mode from nudge_scan_state").fetchall() == [("live",)]


# Never seen, never sent, never activity


def test_a_shadow_record_is_not_activity(admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    rules(monkeypatch, SHADOW)
    [user] = lapsed(admin, 1)
    run_scan(at(SCAN))
    admin.execute("select public.fold_engagement_summaries()")  # the record into the summaries, if it counted
    assert admin.execute("select last_activity_at from engagement_users where user_id = %s", (user,)).fetchone() == (
        at(LAPSED_AT),
    )
    assert admin.execute("select count(*) from engagement_last_activity where user_id = %s", (user,)).fetchone() == (1,)
    assert run_scan(at("2026-03-05T12:00:00"), full=True).totals()["skipped"]["already_nudged"] == 1


def test_the_user_never_sees_nor_hears_of_a_shadow_record(
    admin: psycopg.Connection, api: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules(monkeypatch, LIVE, SHADOW)
    [user] = lapsed(admin, 1)
    run_scan(at(SCAN))
    assert sorted(t for _, _, t, _, _ in decisions(admin)) == ["nudge_sent", "nudge_shadow"]

    def types(role: str, who: uuid.UUID | None, statement: str) -> list[str]:
        with request(api, role, claims_for(role, who)):
            return sorted(row[0] for row in api.execute(statement).fetchall())

    own = "select event_type from public.engagement_events"
    assert types("authenticated", user, own) == ["app_open", "nudge_sent"]
    assert types("authenticated", user, own + " where event_type = 'nudge_shadow'") == []
    assert types("service_role", None, own) == ["app_open", "nudge_sent", "nudge_shadow"]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        types("anon", None, own)
    # Realtime Broadcast: the app hears of the live nudge only.
    broadcast = [e["event_type"] for m in messages(admin, user) for e in m["payload"]["events"]]
    assert broadcast == ["app_open", "nudge_sent"]

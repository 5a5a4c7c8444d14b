"""The replay equals the live engine, nudge for nudge (user, rule, episode, instant, arm), when
the engine's scan runs at every 15-minute beat of the same window over the same log.

One seeded history holds the situations a decision turns on: two DST changes (Berlin, New York)
and zones with 30- and 45-minute offsets, morning waves (users lapsing at night, released together
at 08:00 local), back-dated events (older than rows written before them, some with their own
ids), soft-deleted events, opt-outs, a rule narrowing the counted types, a holdout, users who sign
up inside the window and never come back, and decisions made before the window (the live engine
runs a day ahead of it), so the cool-down and the episode index reach into the window. Run once
with NUDGE_MAX_PER_SCAN and once without: two code paths of the replay.

The live side is the scan's public entry point (run_scan, full at every beat: each beat decides
from the log as it is, as the replay does; docs/simulate.md says why not incremental).
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from events_schema.settings import get_settings
from tests.integration.scan.scan_helpers import add_user
from worker.database import connection, dispose_engines
from worker.scan.scanner import run_scan
from worker.simulate.policy import Policy
from worker.simulate.replay import Window, decisions

BEAT = timedelta(minutes=15)
# Seven days with both DST changes: Europe leaves summer time on 2026-10-25 (01:00 UTC), New
# York on 2026-11-01 (06:00 UTC).
START = datetime(2026, 10, 25, 0, 0, tzinfo=UTC)
END = datetime(2026, 11, 1, 18, 0, tzinfo=UTC)
AHEAD = timedelta(hours=12)  # the live engine's head start, for decisions before the window
ZONES = ["Europe/Berlin", "America/New_York", "Asia/Kathmandu", "Asia/Kolkata", None, "Not/AZone"]
RULES = [
    {"name": "lapsed", "threshold_hours": 48, "holdout_percent": 30, "holdout_salt": "t"},
    {"name": "goals", "threshold_hours": 20, "event_types": ["goal_complete"]},
]


@pytest.fixture(autouse=True)
def engine_settings(settings_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("NUDGE_RULES", json.dumps(RULES))
    for name in ("NUDGE_MAX_PER_SCAN", "QUIET_HOURS_ENABLED", "NUDGE_COOLDOWN_HOURS"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    dispose_engines()


def insert(
    conn: psycopg.Connection, user: uuid.UUID, at: datetime, event_type: str, event_id: uuid.UUID | None = None
) -> uuid.UUID:
    return conn.execute(
        "insert into engagement_events (id, user_id, timestamp, event_type)"
        " values (coalesce(%s, public.uuid_time_ordered()), %s, %s, %s) returning id",
        (event_id, user, at, event_type),
    ).fetchone()[0]


def seed(conn: psycopg.Connection, rng: random.Random) -> None:
    """About 30 users; every time on or off the beat grid, in and around the window."""
    t0 = START - AHEAD - timedelta(days=4)
    late: list[tuple[uuid.UUID, datetime, str]] = []
    for i in range(24):
        zone = ZONES[i % len(ZONES)]
        user = add_user(conn, (t0 - timedelta(hours=rng.randrange(0, 200))).isoformat(), tz=zone, opt_out=i % 11 == 5)
        at = t0 + timedelta(minutes=rng.randrange(0, 3000))
        while at < END + timedelta(days=1):
            kind = rng.choice(["app_open", "app_open", "goal_complete", "nudge_opened", "steps_import"])
            event = insert(conn, user, at, kind)
            if rng.random() < 0.08:  # soft-deleted later: last active moves back
                conn.execute("update engagement_events set is_deleted = true where id = %s", (event,))
            if rng.random() < 0.1:  # written after later rows: back-dated
                late.append((user, at - timedelta(hours=rng.choice([3, 30, 55]), seconds=rng.randrange(0, 900)), kind))
            at += timedelta(
                hours=rng.choice([2, 9, 19, 21, 26, 47, 49, 50, 60, 75]),
                minutes=rng.randrange(0, 60),
                seconds=rng.randrange(0, 60),
            )
    # Morning waves: Berlin users who go quiet late one evening (22:30 local and after) are due in
    # quiet hours together and released together at 08:00 local, where the cap spreads them in the
    # scan's order (last active, then user id). Two of them opted out.
    for i in range(10):
        user = add_user(conn, (t0 - timedelta(days=3)).isoformat(), tz="Europe/Berlin", opt_out=i in (3, 7))
        insert(conn, user, START + timedelta(hours=21, minutes=30 + 3 * i), "app_open")
        insert(conn, user, START + timedelta(days=4, hours=21, minutes=30 + 5 * (9 - i)), "goal_complete")
    # Signed up inside the window, never active: due (sign-up) 48 h later.
    for i in range(3):
        add_user(conn, (START + timedelta(days=1, hours=5 * i, minutes=11)).isoformat(), tz=ZONES[i])
    for user, at, kind in late:
        insert(conn, user, at, kind, uuid.uuid4())


def live(start: datetime, end: datetime) -> None:
    at = start
    while at < end:
        run_scan(at, full=True, lock=False)  # one scan at a time: no lease needed
        at += BEAT


Row = tuple[datetime, uuid.UUID, str, str, str]


def written(conn: psycopg.Connection, end: datetime = END) -> list[Row]:
    return conn.execute(
        "select timestamp, user_id, value ->> 'rule', value ->> 'last_active_at', event_type from engagement_events"
        " where event_type in ('nudge_sent', 'nudge_withheld') and timestamp >= %s and timestamp < %s"
        " order by timestamp, user_id, value ->> 'rule'",
        (START, end),
    ).fetchall()


def replayed(end: datetime = END, policy: Policy | None = None) -> list[Row]:
    policy = policy or Policy.configured(get_settings())
    with connection() as conn:
        conn.rollback()
        sent = decisions(conn, policy, Window(START, end, BEAT))
    return [
        (
            s.at,
            s.user_id,
            s.rule,
            s.last_active_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "nudge_withheld" if s.withheld else "nudge_sent",
        )
        for s in sent
    ]


def test_the_replay_equals_the_live_engine_at_every_beat_of_seven_days(
    admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With NUDGE_MAX_PER_SCAN: every user's decisions depend on the others' at each beat."""
    monkeypatch.setenv("NUDGE_MAX_PER_SCAN", "3")
    get_settings.cache_clear()
    seed(admin, random.Random(25))
    live(START - AHEAD, START)
    before = replayed()  # the window's decisions not written yet
    live(START, END)
    after = replayed()  # the live decisions in the window are left out of its history
    truth = written(admin)
    assert {kind for *_, kind in truth} == {"nudge_sent", "nudge_withheld"}
    assert len({rule for _, _, rule, _, _ in truth}) == 2
    assert len(truth) > 60
    assert before == truth
    assert after == truth
    per_beat: dict[datetime, int] = {}
    for at, *_ in truth:
        per_beat[at] = per_beat.get(at, 0) + 1
    assert max(per_beat.values()) == 3  # the cap bound, at the morning waves


def test_without_a_cap_the_replay_equals_the_live_engine(admin: psycopg.Connection) -> None:
    """Without a cap users are replayed one by one, streaming (another code path): a day and a
    half of live beats over the same history, across Berlin's DST change."""
    seed(admin, random.Random(25))
    end = START + timedelta(hours=36)
    live(START - AHEAD, START)
    before = replayed(end)
    live(START, end)
    truth = written(admin, end)
    assert len(truth) > 20
    assert max(sum(1 for t in truth if t[0] == at) for at, *_ in truth) > 3  # a wave no cap holds
    assert before == truth == replayed(end)


def test_an_unbinding_cap_replays_as_no_cap(admin: psycopg.Connection) -> None:
    """The beat-by-beat path (a cap) and the per-user path (none) agree where the cap never binds."""
    seed(admin, random.Random(25))
    live(START - AHEAD, START)
    policy = Policy.configured(get_settings())
    streamed = replayed(policy=policy)
    assert len(streamed) > 60
    assert replayed(policy=replace(policy, max_per_scan=10**9)) == streamed
    assert replayed(policy=replace(policy, max_per_scan=2)) != streamed
    # A policy of one rule is decided in one pass over its episodes: the same as the search.
    for rule in policy.rules:
        alone = replace(policy, rules=(rule,))
        assert replayed(policy=alone) == replayed(policy=replace(alone, max_per_scan=10**9))

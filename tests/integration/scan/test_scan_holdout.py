"""A rule's randomised holdout: the arm is a pure function of salt, rule and user; the control
arm's due episodes are recorded once as `nudge_withheld` and never nudged, decided exactly as
nudges are (cool-down, quiet hours, opt-out, the per-scan cap), and invisible to the user."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from events_schema.postgrest import claims_for, request
from events_schema.settings import get_settings
from tests.integration.realtime.realtime_helpers import messages
from tests.integration.scan.scan_helpers import add_event, add_user, at
from worker.database import dispose_engines
from worker.scan.scanner import run_scan
from worker.scan.shards import Shard

LAPSED_AT = "2026-03-01T00:00:00"
SCAN = "2026-03-04T12:00:00"  # 84 h after LAPSED_AT, noon UTC


@pytest.fixture(autouse=True)
def engine_settings(settings_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("NUDGE_RULES", "NUDGE_MAX_PER_SCAN", "QUIET_HOURS_ENABLED", "NUDGE_COOLDOWN_HOURS"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    dispose_engines()


def rules(monkeypatch: pytest.MonkeyPatch, *rules: dict[str, object]) -> None:
    monkeypatch.setenv("NUDGE_RULES", json.dumps(list(rules)))
    get_settings.cache_clear()


def lapsed(admin: psycopg.Connection, n: int, tz: str | None = None) -> list[uuid.UUID]:
    users = []
    for _ in range(n):
        user = add_user(admin, "2026-01-01T00:00:00", tz=tz)
        add_event(admin, user, LAPSED_AT)
        users.append(user)
    return users


def decisions(admin: psycopg.Connection) -> list[tuple[uuid.UUID, str, str]]:
    """(user, event type, rule) of every decision event, in user order."""
    return admin.execute(
        "select user_id, event_type, value ->> 'rule' from engagement_events"
        " where event_type in ('nudge_sent', 'nudge_withheld') order by user_id, timestamp"
    ).fetchall()


def bucket(admin: psycopg.Connection, salt: str, rule: str, user: uuid.UUID) -> int:
    return admin.execute("select public.engagement_holdout_bucket(%s, %s, %s)", (salt, rule, user)).fetchone()[0]


# The arm: a documented function of salt, rule and user


def test_the_bucket_is_the_documented_hash_and_the_same_every_time(admin: psycopg.Connection) -> None:
    """docs/engine.md gives the formula so an analyst can recompute any user's arm."""
    for i in range(50):
        user = uuid.UUID(hashlib.md5(str(i).encode()).hexdigest())
        expected = int(hashlib.sha256(f"s1/inactive_48h/{user}".encode()).hexdigest()[:15], 16) % 10000
        assert bucket(admin, "s1", "inactive_48h", user) == expected == bucket(admin, "s1", "inactive_48h", user)


def test_a_tenth_of_100000_users_is_within_its_binomial_bound_and_the_buckets_are_uniform(
    admin: psycopg.Connection,
) -> None:
    rows = admin.execute(
        """
        with b as (
          select public.engagement_holdout_bucket('s1', 'inactive_48h', md5(i::text)::uuid) as k,
                 public.engagement_holdout_bucket('s2', 'inactive_48h', md5(i::text)::uuid) as k_salt,
                 public.engagement_holdout_bucket('s1', 'inactive_7d', md5(i::text)::uuid) as k_rule
          from generate_series(1, 100000) i)
        select (select count(*) from b where k < 1000),
               (select array_agg(n order by d) from (select k / 1000 as d, count(*) as n from b group by 1) t),
               (select count(*) from b where k < 5000 and k_salt < 5000),
               (select count(*) from b where k < 5000 and k_rule < 5000)
        """
    ).fetchone()
    control, deciles, both_salts, both_rules = rows
    # Binomial(100000, 0.1): sd = 94.9; four sd either side.
    assert abs(control - 10_000) <= 380
    # Ten equal bins of 10,000 expected: chi-square with 9 degrees of freedom, 27.9 is p = 0.001.
    assert len(deciles) == 10
    assert sum((n - 10_000) ** 2 / 10_000 for n in deciles) < 27.9
    # Independent across salts and rules: a quarter of the users are in both 50 % arms
    # (Binomial(100000, 0.25): sd = 137).
    assert abs(both_salts - 25_000) <= 550
    assert abs(both_rules - 25_000) <= 550


# Decisions


def test_no_holdout_leaves_every_decision_and_nudge_as_it_was(
    admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules(monkeypatch, {"name": "inactive_48h", "threshold_hours": 48, "holdout_percent": 0, "holdout_salt": "x"})
    users = lapsed(admin, 20)
    summary = run_scan(at(SCAN))
    assert (summary.totals()["nudged"], summary.totals()["withheld"]) == (20, 0)
    assert sorted(u for u, _, _ in decisions(admin)) == sorted(users)
    values = admin.execute("select value from engagement_events where event_type = 'nudge_sent'").fetchall()
    assert {tuple(sorted(v)) for (v,) in values} == {("last_active_at", "rule", "scan_id", "threshold_hours")}


def test_every_due_user_of_a_full_holdout_is_withheld_once_and_never_nudged(
    admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules(monkeypatch, {"name": "inactive_48h", "threshold_hours": 48, "holdout_percent": 100, "holdout_salt": "x"})
    users = lapsed(admin, 5)
    first = run_scan(at(SCAN))
    again = run_scan(at(SCAN), full=True, lock=False)
    later = run_scan(at("2026-03-06T12:00:00"), full=True)
    assert (first.totals()["nudged"], first.totals()["withheld"]) == (0, 5)
    assert again.totals()["skipped"]["already_nudged"] == later.totals()["skipped"]["already_nudged"] == 5
    assert decisions(admin) == [(u, "nudge_withheld", "inactive_48h") for u in sorted(users)]
    value = admin.execute("select value from engagement_events where event_type = 'nudge_withheld' limit 1").fetchone()
    assert (value[0]["holdout_percent"], value[0]["holdout_salt"]) == (100, "x")


def test_the_arms_follow_the_bucket_whichever_shard_decides(
    admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Half the users held out, scanned in two shards: each user's event is the one their
    bucket gives, the same as an unsharded scan's, and exactly one per user."""
    rules(monkeypatch, {"name": "inactive_48h", "threshold_hours": 48, "holdout_percent": 50, "holdout_salt": "ab"})
    users = lapsed(admin, 40)
    for index in range(2):
        run_scan(at(SCAN), shard=Shard(index, 2))
    run_scan(at(SCAN), full=True, lock=False)  # a re-delivered, unsharded scan: nothing new
    expected = sorted(
        (u, "nudge_withheld" if bucket(admin, "ab", "inactive_48h", u) < 5000 else "nudge_sent", "inactive_48h")
        for u in users
    )
    assert decisions(admin) == expected
    assert {t for _, t, _ in expected} == {"nudge_sent", "nudge_withheld"}


def test_the_percent_boundary_is_strict(admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user whose bucket is b is held out at (b + 1) / 100 % and nudged at b / 100 %."""
    [user] = lapsed(admin, 1)
    b = bucket(admin, "edge", "r", user)
    for percent, expected in ((b / 100, "nudge_sent"), ((b + 1) / 100, "nudge_withheld")):
        admin.execute("delete from engagement_events where event_type in ('nudge_sent', 'nudge_withheld')")
        rules(monkeypatch, {"name": "r", "threshold_hours": 48, "holdout_percent": percent, "holdout_salt": "edge"})
        run_scan(at(SCAN), full=True)
        assert decisions(admin) == [(user, expected, "r")], percent


def test_a_withheld_nudge_takes_the_cool_down_as_a_nudge_does(
    admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A withheld nudge holds the user's next decision (any rule) for the cool-down: none a
    microsecond before 24 h, one at 24 h exactly, which in turn holds the next rule."""
    rules(
        monkeypatch,
        {"name": "held", "threshold_hours": 48, "holdout_percent": 100},
        {"name": "later", "threshold_hours": 60},
    )
    [user] = lapsed(admin, 1)
    admin.execute(
        "insert into engagement_events (user_id, timestamp, event_type, value) values"
        " (%s, %s, 'nudge_withheld', jsonb_build_object('rule', 'held', 'last_active_at', 'x'))",
        (user, at("2026-03-03T12:00:00")),
    )
    before = run_scan(at("2026-03-04T11:59:59.999999"), full=True)
    assert [(r.skipped["cooldown"], r.withheld, r.nudged) for r in before.rules] == [(1, 0, 0), (1, 0, 0)]
    at_end = run_scan(at("2026-03-04T12:00:00"), full=True)
    assert [(r.rule, r.nudged, r.withheld) for r in at_end.rules] == [("held", 0, 1), ("later", 0, 0)]
    assert at_end.rules[1].skipped["cooldown"] == 1  # the withheld decision just written, for "held"


def test_quiet_hours_hold_the_control_arm_too(admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    rules(monkeypatch, {"name": "inactive_48h", "threshold_hours": 48, "holdout_percent": 100})
    [user] = lapsed(admin, 1, tz="Asia/Tokyo")  # 12:00 UTC is 21:00 in Tokyo; 13:00 UTC is 22:00
    assert run_scan(at("2026-03-04T12:59:59")).totals()["withheld"] == 1
    admin.execute("delete from engagement_events where event_type = 'nudge_withheld'")
    night = run_scan(at("2026-03-04T13:00:00"), full=True)
    assert (night.totals()["withheld"], night.totals()["skipped"]["quiet_hours"]) == (0, 1)
    assert run_scan(at("2026-03-04T22:59:59")).totals()["withheld"] == 0  # 07:59:59 in Tokyo
    morning = run_scan(at("2026-03-04T23:00:00"))  # 08:00 in Tokyo
    assert morning.totals()["withheld"] == 1
    assert decisions(admin) == [(user, "nudge_withheld", "inactive_48h")]


def test_opted_out_users_are_in_neither_arm(admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    rules(monkeypatch, {"name": "inactive_48h", "threshold_hours": 48, "holdout_percent": 100})
    user = add_user(admin, "2026-01-01T00:00:00", opt_out=True)
    add_event(admin, user, LAPSED_AT)
    summary = run_scan(at(SCAN))
    assert (summary.totals()["withheld"], summary.totals()["skipped"]["opted_out"]) == (0, 1)
    assert decisions(admin) == []


@pytest.mark.parametrize(("limit", "withheld", "deferred"), [(2, 2, 1), (3, 3, 0)])
def test_withheld_nudges_count_against_the_cap(
    admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch, limit: int, withheld: int, deferred: int
) -> None:
    rules(monkeypatch, {"name": "inactive_48h", "threshold_hours": 48, "holdout_percent": 100})
    monkeypatch.setenv("NUDGE_MAX_PER_SCAN", str(limit))
    get_settings.cache_clear()
    lapsed(admin, 3)
    summary = run_scan(at(SCAN))
    assert (summary.totals()["withheld"], summary.totals()["skipped"]["rate_limited"]) == (withheld, deferred)


def test_a_withheld_nudge_is_not_activity(admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    """The user stays lapsed: the next scan finds the same episode, already decided."""
    rules(monkeypatch, {"name": "inactive_48h", "threshold_hours": 48, "holdout_percent": 100})
    [user] = lapsed(admin, 1)
    run_scan(at(SCAN))
    assert admin.execute("select last_activity_at from engagement_users where user_id = %s", (user,)).fetchone() == (
        at(LAPSED_AT),
    )
    assert run_scan(at("2026-03-05T12:00:00")).totals()["skipped"]["already_nudged"] == 0  # incremental: not seen
    assert run_scan(at("2026-03-05T12:15:00"), full=True).totals()["skipped"]["already_nudged"] == 1


# Never visible to the user


def test_the_user_never_sees_their_withheld_nudge_through_the_api(
    admin: psycopg.Connection, api: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules(
        monkeypatch,
        {"name": "held", "threshold_hours": 48, "holdout_percent": 100},
        {"name": "sent", "threshold_hours": 48},
    )
    monkeypatch.setenv("NUDGE_COOLDOWN_HOURS", "0")
    get_settings.cache_clear()
    [user] = lapsed(admin, 1)
    run_scan(at(SCAN))
    assert sorted(t for _, t, _ in decisions(admin)) == ["nudge_sent", "nudge_withheld"]

    def types(role: str, who: uuid.UUID | None, statement: str) -> list[str]:
        with request(api, role, claims_for(role, who)):
            return sorted(row[0] for row in api.execute(statement).fetchall())

    own = "select event_type from public.engagement_events"
    assert types("authenticated", user, own) == ["app_open", "nudge_sent"]
    assert types("service_role", None, own) == ["app_open", "nudge_sent", "nudge_withheld"]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        types("anon", None, own)
    # Realtime Broadcast: the app hears of the nudge, never of the withheld one.
    broadcast = [e["event_type"] for m in messages(admin, user) for e in m["payload"]["events"]]
    assert broadcast == ["app_open", "nudge_sent"]


def test_a_decided_episode_keeps_its_arm_when_the_holdout_changes(
    admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/engine.md: withheld under the old settings, not nudged for that lapse under the new
    ones; the user's next lapse is decided by the new settings."""
    rules(monkeypatch, {"name": "inactive_48h", "threshold_hours": 48, "holdout_percent": 100, "holdout_salt": "a"})
    [user] = lapsed(admin, 1)
    run_scan(at(SCAN))
    rules(monkeypatch, {"name": "inactive_48h", "threshold_hours": 48, "holdout_percent": 0, "holdout_salt": "b"})
    assert run_scan(at("2026-03-06T12:00:00"), full=True).totals()["skipped"]["already_nudged"] == 1
    add_event(admin, user, "2026-03-07T00:00:00")
    run_scan(at("2026-03-09T12:00:00"))
    assert [t for _, t, _ in decisions(admin)] == ["nudge_withheld", "nudge_sent"]

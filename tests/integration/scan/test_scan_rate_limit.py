"""NUDGE_MAX_PER_SCAN: a scan sends at most that many nudges; the rest are held for the next
scan and go out there, each exactly once, and with no cap every due nudge goes out at once."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from events_schema.settings import get_settings
from tests.integration.scan.scan_helpers import add_event, add_user, at, nudges
from worker.database import dispose_engines
from worker.scan.scanner import run_scan


@pytest.fixture(autouse=True)
def engine_settings(settings_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("NUDGE_RULES", "NUDGE_MAX_PER_SCAN", "QUIET_HOURS_ENABLED", "NUDGE_COOLDOWN_HOURS"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield
    dispose_engines()


def cap(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    monkeypatch.setenv("NUDGE_MAX_PER_SCAN", str(n))
    get_settings.cache_clear()


def lapsed(admin: psycopg.Connection, n: int) -> None:
    for _ in range(n):
        add_event(admin, add_user(admin, "2026-01-01T00:00:00"), "2026-03-01T00:00:00")


@pytest.mark.parametrize(("due", "limit", "first"), [(3, 3, 3), (4, 3, 3), (2, 0, 2)])
def test_a_scan_sends_at_most_the_cap(
    admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch, due: int, limit: int, first: int
) -> None:
    cap(monkeypatch, limit)
    lapsed(admin, due)
    summary = run_scan(at("2026-03-04T12:00:00"))
    assert (summary.totals()["nudged"], summary.totals()["skipped"]["rate_limited"]) == (first, due - first)
    held = admin.execute("select reason, hold_until from nudge_pending order by user_id").fetchall()
    assert held == [("rate_limited", at("2026-03-04T12:00:00"))] * (due - first)


def test_the_deferred_go_out_in_the_next_scans_once_each(
    admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    cap(monkeypatch, 2)
    lapsed(admin, 5)
    sent = [
        run_scan(at(t)).totals()["nudged"]
        for t in ("2026-03-04T12:00:00", "2026-03-04T12:15:00", "2026-03-04T12:30:00", "2026-03-04T12:45:00")
    ]
    assert sent == [2, 2, 1, 0]
    assert len({value["scan_id"] for _, value in nudges(admin)}) == 3
    assert admin.execute(
        "select count(distinct user_id), count(*) from engagement_events where event_type = 'nudge_sent'"
    ).fetchone() == (5, 5)
    assert admin.execute("select count(*) from nudge_pending").fetchone()[0] == 0


def test_the_cap_is_shared_by_the_rules_of_a_scan(admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUDGE_RULES", '[{"name": "a", "threshold_hours": 48}, {"name": "b", "threshold_hours": 24}]')
    monkeypatch.setenv("NUDGE_COOLDOWN_HOURS", "0")
    cap(monkeypatch, 3)
    lapsed(admin, 2)  # due for both rules: four nudges wanted, three allowed
    summary = run_scan(at("2026-03-04T12:00:00"))
    assert [(r.rule, r.nudged, r.skipped["rate_limited"]) for r in summary.rules] == [("a", 2, 0), ("b", 1, 1)]


def test_once_the_budget_is_spent_the_deferred_wait_without_being_decided_again(
    admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scan whose budget is spent skips the users it holds for the rate limit (their hold row
    is left as it is), so a backlog costs a beat only what it can send."""
    cap(monkeypatch, 1)
    monkeypatch.setenv("SCAN_BATCH_SIZE", "1")
    get_settings.cache_clear()
    lapsed(admin, 3)
    scans = [run_scan(at(t)).totals() for t in ("2026-03-04T12:00:00", "2026-03-04T12:15:00", "2026-03-04T12:30:00")]
    assert [(s["examined"], s["nudged"], s["skipped"]["rate_limited"]) for s in scans] == [
        (3, 1, 2),
        (1, 1, 0),
        (1, 1, 0),
    ]
    assert (
        admin.execute(
            "select count(distinct user_id) from engagement_events where event_type = 'nudge_sent'"
        ).fetchone()[0]
        == 3
    )


def test_a_deferred_user_keeps_its_hold_row(admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    cap(monkeypatch, 1)
    lapsed(admin, 3)
    run_scan(at("2026-03-04T12:00:00"))
    first = admin.execute(
        "select user_id, since, hold_until, xmin::text from nudge_pending order by user_id"
    ).fetchall()
    run_scan(at("2026-03-04T12:15:00"))  # one nudged, the other deferred again
    second = admin.execute(
        "select user_id, since, hold_until, xmin::text from nudge_pending order by user_id"
    ).fetchall()
    assert len(first) == 2 and len(second) == 1 and second[0] in first

"""The batch statement (worker/scan/sql/scan_batch.sql): what it writes and counts in the
database is what the definitions say, whether or not a caller lists the decisions."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from events_schema.settings import get_settings
from tests.integration.scan.scan_helpers import add_event, add_user, scan_at
from worker.database import dispose_engines
from worker.scan.scanner import Decision, ScanSummary


@pytest.fixture(autouse=True)
def engine_settings(settings_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("NUDGE_RULES", "NUDGE_MAX_PER_SCAN", "QUIET_HOURS_ENABLED", "NUDGE_COOLDOWN_HOURS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SCAN_BATCH_SIZE", "2")
    get_settings.cache_clear()
    yield
    dispose_engines()


def every_kind(admin: psycopg.Connection) -> None:
    """Users of every kind at 2026-03-05T12:00Z: three to nudge, one in quiet hours (01:00 in
    Auckland), one opted out, one active an hour ago (not due)."""
    for hour in range(3):
        add_event(admin, add_user(admin, "2026-03-01T00:00:00"), f"2026-03-02T0{hour}:00:00")
    add_event(admin, add_user(admin, "2026-03-01T00:00:00", tz="Pacific/Auckland"), "2026-03-02T05:00:00")
    add_user(admin, "2026-03-01T00:00:00", opt_out=True)
    add_event(admin, add_user(admin, "2026-03-01T00:00:00"), "2026-03-05T11:00:00")


def state(admin: psycopg.Connection) -> tuple[object, ...]:
    return (
        admin.execute("select count(*) from engagement_events").fetchone()[0],
        admin.execute("select rule, user_id, reason, hold_until from nudge_pending order by user_id").fetchall(),
    )


def test_a_dry_run_writes_no_hold_and_releases_none(admin: psycopg.Connection) -> None:
    every_kind(admin)
    held = scan_at("2026-03-05T12:00:00")
    assert held.totals()["skipped"]["quiet_hours"] == 1
    # Later the held user is no longer in quiet hours, and a new one is: a real scan would
    # release the one and hold the other.
    add_event(admin, add_user(admin, "2026-03-01T00:00:00", tz="Asia/Tokyo"), "2026-03-03T14:00:00")
    before = state(admin)
    dry = scan_at("2026-03-05T19:30:00", dry_run=True, full=True)
    assert dry.totals()["nudged"] >= 1 and dry.totals()["skipped"]["quiet_hours"] == 1
    assert state(admin) == before


def totals_without_ids(summary: ScanSummary) -> list[tuple[object, ...]]:
    return [(r.rule, r.mode, r.examined, r.due, r.nudged, r.withheld, r.shadow, r.skipped) for r in summary.rules]


@pytest.mark.parametrize("dry_run", [False, True], ids=["writing", "dry-run"])
def test_listing_the_decisions_counts_and_writes_the_same(admin: psycopg.Connection, dry_run: bool) -> None:
    """The listing statement (on_decision) and the counting one decide, write and count alike."""
    every_kind(admin)
    listed: list[Decision] = []
    with_list = scan_at("2026-03-05T12:00:00", dry_run=dry_run, full=True, on_decision=listed.append)
    after_list = state(admin)
    admin.execute("delete from engagement_events where event_type = 'nudge_sent'")
    admin.execute("truncate nudge_pending, nudge_scan_state")
    counted = scan_at("2026-03-05T12:00:00", dry_run=dry_run, full=True)
    assert totals_without_ids(with_list) == totals_without_ids(counted)
    assert state(admin)[1] == after_list[1]
    kinds = sorted(d.decision for d in listed)
    assert kinds == ["nudge"] * 3 + ["opted_out", "quiet_hours"]


def test_the_cap_goes_to_who_lapsed_first_in_a_full_scan(
    admin: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within a scan, the batch order decides who goes first: last active, for a full scan of a
    rule counting every type (docs/engine.md, "Rate limit")."""
    monkeypatch.setenv("NUDGE_MAX_PER_SCAN", "3")
    get_settings.cache_clear()
    users = [add_user(admin, "2026-03-01T00:00:00") for _ in range(5)]
    for hour, user in enumerate(users):
        add_event(admin, user, f"2026-03-02T0{hour}:00:00")
    # Batches of two: the budget runs out inside the second batch.
    summary = scan_at("2026-03-05T12:00:00", full=True)
    # Each due user decided once: three sent, two deferred.
    assert (summary.totals()["examined"], summary.totals()["nudged"]) == (5, 3)
    assert summary.totals()["skipped"] == {**dict.fromkeys(summary.totals()["skipped"], 0), "rate_limited": 2}
    sent = {u for (u,) in admin.execute("select user_id from engagement_events where event_type = 'nudge_sent'")}
    assert sent == set(users[:3])


def test_the_episode_key_is_spelt_as_nudge_episode_time(admin: psycopg.Connection) -> None:
    """The batch writes the episode key itself (written out, not a call): it must equal
    public.nudge_episode_time(last active), which other writers and analysts use, to the
    microsecond and for instants before 1970; a second scan finds each episode decided."""
    instants = ["2026-03-02T10:00:00.123456", "2026-03-02T10:00:00.000001", "1969-07-20T20:17:40.5"]
    for when in instants:
        user = add_user(admin, "1969-01-01T00:00:00")
        add_event(admin, user, when)
    scan_at("2026-03-05T12:00:00", full=True)
    rows = admin.execute(
        "select n.value ->> 'last_active_at', public.nudge_episode_time(e.latest)"
        " from engagement_events n"
        " join lateral (select max(timestamp) as latest from engagement_events a"
        "   where a.user_id = n.user_id and a.event_type = 'app_open') e on true"
        " where n.event_type = 'nudge_sent'"
    ).fetchall()
    assert len(rows) == 3 and all(written == spelt for written, spelt in rows), rows
    again = scan_at("2026-03-06T13:00:00", full=True)
    assert again.totals()["skipped"]["already_nudged"] == 3 and again.totals()["nudged"] == 0

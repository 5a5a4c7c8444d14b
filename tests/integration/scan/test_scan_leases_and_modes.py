"""Two promises of the scan's bookkeeping, each held here on its own: every batch pushes the
scan's lease on (a long scan keeps it), and a scan at or before the previous scan's instant runs
full (an incremental window would be empty or run backwards)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest

from events_schema.settings import get_settings
from tests.integration.scan.scan_helpers import add_user, at, scan_at
from worker.database import dispose_engines

T = "2026-03-05T12:00:00"


@pytest.fixture(autouse=True)
def engine_settings(settings_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("NUDGE_RULES", raising=False)
    monkeypatch.setenv("SCAN_BATCH_SIZE", "2")
    monkeypatch.setenv("SCAN_LEASE_SECONDS", "120")
    get_settings.cache_clear()
    yield
    dispose_engines()


def test_each_batch_pushes_the_lease_on(admin: psycopg.Connection) -> None:
    """After each batch the lease is made to look expired; the next batch renews it to its
    instant plus SCAN_LEASE_SECONDS, so no other scan may take it over meanwhile."""
    for _ in range(6):
        add_user(admin, "2026-03-01T00:00:00")
    seen: list[object] = []

    def after_each_batch(_: object) -> None:
        seen.append(admin.execute("select expires_at from nudge_scan_leases").fetchone()[0])
        admin.execute("update nudge_scan_leases set expires_at = %s", (at(T) - timedelta(seconds=1),))

    summary = scan_at(T, on_decision=after_each_batch)
    assert summary.ran and summary.totals()["nudged"] == 6
    # Three batches of two decisions: the lease read at each decision is the batch's renewal.
    renewed = at(T) + timedelta(seconds=120)
    assert seen[::2] == [renewed] * 3, seen


@pytest.mark.parametrize(
    ("later", "mode"),
    [(timedelta(0), "full"), (-timedelta(microseconds=1), "full"), (timedelta(microseconds=1), "incremental")],
    ids=["same-instant", "a-microsecond-before", "a-microsecond-after"],
)
def test_a_scan_at_or_before_the_previous_scans_instant_runs_full(
    admin: psycopg.Connection, later: timedelta, mode: str
) -> None:
    add_user(admin, "2026-03-01T00:00:00")
    [first] = scan_at(T).rules
    assert first.mode == "full"  # no state yet
    [second] = scan_at((at(T) + later).isoformat()).rules
    assert second.mode == mode

"""The report chart's decisions, apart from the drawing: which week is partial, where the default
range starts, and what each nudge bar says (a share with its counts, or why there is none)."""

from __future__ import annotations

from datetime import UTC, datetime

from events_schema.analytics.chart import bar_label, nudge_totals, partial_week
from events_schema.analytics.report import Range, fitted


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_the_last_week_is_partial_only_when_the_range_ends_inside_it() -> None:
    assert partial_week(Range(utc(2026, 11, 9), utc(2026, 12, 1, 22, 48), utc(2026, 12, 1, 22, 48))) == utc(
        2026, 11, 30
    )
    assert partial_week(Range(utc(2026, 11, 9), utc(2026, 11, 30), utc(2026, 12, 1))) is None
    assert partial_week(Range(utc(2026, 11, 9), utc(2026, 11, 30, 0, 0, 1), utc(2026, 12, 1))) == utc(2026, 11, 30)


def test_the_default_range_starts_at_the_first_week_with_activity() -> None:
    period = Range(utc(2026, 10, 12), utc(2026, 12, 1, 22, 48), utc(2026, 12, 1, 22, 48))
    weeks = [utc(2026, 10, 12), utc(2026, 10, 19), utc(2026, 11, 9), utc(2026, 11, 16)]

    def active(*counts: int) -> list[dict[str, object]]:
        return [{"week_start": w, "active_users": n} for w, n in zip(weeks, counts, strict=True)]

    assert fitted(period, active(0, 0, 5, 7)).start == utc(2026, 11, 9)
    assert fitted(period, active(0, 1, 5, 7)).start == utc(2026, 10, 19)
    assert fitted(period, active(3, 0, 5, 7)) == period
    assert fitted(period, active(0, 0, 0, 0)) == period  # no data at all: the range asked for
    assert fitted(period, active(0, 0, 5, 7)).end == period.end


def test_a_bar_says_its_share_and_counts_or_why_it_has_none() -> None:
    row = {"rule": "r", "group": "held", "members": 10, "observed_24h": 8, "back_24h": 3}
    totals = nudge_totals([{**row, "observed_72h": 0, "back_72h": 0}, {**row, "observed_72h": 0, "back_72h": 0}])
    assert bar_label(totals, "r", "held", 24) == (37.5, "38%\n6 of 16")
    assert bar_label(totals, "r", "held", 72) == (0.0, "no 72 h window\nended yet")
    assert bar_label(totals, "r", "nudged", 24) == (0.0, "none sent")
    assert bar_label({}, "r", "held", 24) == (0.0, "none held")

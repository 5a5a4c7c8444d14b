"""The report's pure parts: which weeks a range covers, and how results become tables."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from events_schema.analytics.report import ReportError, report_range
from events_schema.analytics.tables import aligned, percent, retention_grid, retention_lines

AS_OF = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_the_last_n_weeks_end_now_and_start_on_a_monday() -> None:
    period = report_range(AS_OF, weeks=3)
    assert (period.start, period.end, period.weeks) == (utc(2026, 11, 9), AS_OF, 3)
    assert report_range(AS_OF).weeks == 8


def test_from_and_to_are_whole_days_aligned_to_iso_weeks_and_never_past_as_of() -> None:
    period = report_range(AS_OF, start=date(2026, 11, 4), end=date(2026, 11, 15))
    assert (period.start, period.end, period.weeks) == (utc(2026, 11, 2), utc(2026, 11, 16), 2)
    assert report_range(AS_OF, start=date(2026, 11, 4), end=date(2026, 11, 30)).end == AS_OF
    assert report_range(AS_OF, start=date(2026, 11, 4)).end == AS_OF
    assert report_range(AS_OF, start=date(2026, 11, 23), end=date(2026, 11, 23)).end == utc(2026, 11, 24)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (date(2026, 11, 10), date(2026, 11, 9), "before --from"),
        (date(2026, 11, 30), None, "in the future"),
    ],
)
def test_impossible_ranges_are_refused(start: date, end: date | None, message: str) -> None:
    with pytest.raises(ReportError, match=message):
        report_range(AS_OF, start=start, end=end)


def test_a_monday_in_the_week_of_as_of_is_not_the_future() -> None:
    assert report_range(AS_OF, start=date(2026, 11, 25)).start == utc(2026, 11, 23)


ROWS = [
    {"cohort_week": utc(2026, 11, 2), "cohort_size": 4, "week_offset": 0, "retention": 0.5},
    {"cohort_week": utc(2026, 11, 2), "cohort_size": 4, "week_offset": 1, "retention": 0.0},
    {"cohort_week": utc(2026, 11, 9), "cohort_size": 1200, "week_offset": 0, "retention": 1 / 3},
    {"cohort_week": utc(2026, 11, 9), "cohort_size": 1200, "week_offset": 1, "retention": None},
]


def test_zero_and_null_stay_apart() -> None:
    assert (percent(0.0), percent(None), percent(1 / 3)) == ("0.0", "", "33.3")
    header, grid = retention_grid(ROWS)
    assert header == ["cohort_week", "cohort_size", "week_0", "week_1"]
    assert grid == [("2026-11-02", 4, [0.5, 0.0]), ("2026-11-09", 1200, [1 / 3, None])]


def test_the_terminal_table_is_aligned() -> None:
    lines = retention_lines(ROWS)
    assert lines == [
        "cohort (week of)  users  week 0  week 1",
        "----------------  -----  ------  ------",
        "2026-11-02            4   50.0%    0.0%",
        "2026-11-09         1200   33.3%       -",
    ]
    assert aligned(["a", "bb"], [["xyz", "1"]], left=2) == ["a    bb", "---  --", "xyz  1"]

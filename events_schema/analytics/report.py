"""The analyst's questions of the event log, run together: one read-only snapshot, service role.

The report reads every user's data, so it runs as the service role (BYPASSRLS, as the engine
does) rather than as a user; the transaction is READ ONLY, so the analyst's path cannot write
even with that role, and REPEATABLE READ, so the results describe one instant. It adds no
view, function or role to the database: nothing new that `anon` or `authenticated` could reach.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from events_schema.db import connect
from events_schema.errors import UsageError
from events_schema.progress import Progress
from events_schema.queries import QueryFolder
from events_schema.settings import NudgeRule, get_settings

query = QueryFolder(Path(__file__).resolve().parent / "sql")

# (result name, query file), in the order they run and are written as CSV.
QUERIES = (
    ("retention", "analytics_retention"),
    ("weekly_active", "analytics_weekly_active"),
    ("event_mix", "analytics_event_mix"),
    ("nudge_effect", "analytics_nudge_effect"),
    ("holdout_lift", "analytics_holdout_lift"),
    ("shadow_vs_live", "analytics_shadow_vs_live"),
)

# The holdout lift's "not enough data" line: fewer observed members than this in either arm
# (docs/analytics.md, "Holdout lift": below it the 95 % interval is too wide to tell any
# plausible effect from none).
MIN_ARM = 30

Row = dict[str, Any]


@dataclass(frozen=True)
class Result:
    """One query's columns (in order, even when no row came back) and rows."""

    columns: list[str]
    rows: list[Row]


class ReportError(UsageError):
    """The report cannot run as asked: a range that makes no sense (exit 2)."""


@dataclass(frozen=True)
class Range:
    """Whole ISO weeks from `start` (a Monday, 00:00 UTC) to `end` (exclusive; may cut a week)."""

    start: datetime
    end: datetime
    as_of: datetime  # how far the data is observed: return windows ending later are left out

    @property
    def weeks(self) -> int:
        return -(-(self.end - self.start) // timedelta(weeks=1))


def _monday(day: date) -> datetime:
    return datetime.combine(day - timedelta(days=day.weekday()), time(), UTC)


def report_range(
    as_of: datetime, weeks: int | None = None, start: date | None = None, end: date | None = None
) -> Range:
    """The last `weeks` ISO weeks up to `as_of`, or the weeks from `start` through day `end`.

    Either way the range never reaches past `as_of`: later cells are the future, shown as NULL.
    """
    as_of = as_of.astimezone(UTC)
    if start is None:
        first = _monday(as_of.date()) - timedelta(weeks=(weeks or 8) - 1)
        return Range(first, as_of, as_of)
    last = datetime.combine(end, time(), UTC) + timedelta(days=1) if end else as_of
    if end is not None and end < start:
        raise ReportError(f"--to {end} is before --from {start}")
    first = _monday(start)
    if first >= as_of:
        raise ReportError(f"--from {start} is in the future (as of {as_of:%Y-%m-%d %H:%M} UTC)")
    return Range(first, min(last, as_of), as_of)


def parameters(period: Range, rules: list[NudgeRule], grace: timedelta) -> dict[str, Any]:
    """The queries' parameters; every time comes from Python, never the database's now()."""
    return {
        "range_start": period.start,
        "range_end": period.end,
        "as_of": period.as_of,
        "rules": json.dumps([rule.model_dump() for rule in rules]),
        "grace": grace,
        "min_arm": MIN_ARM,
    }


def analyst_transaction(conn: psycopg.Connection) -> None:
    """Inside a fresh transaction: one read-only snapshot, acting as the service role.

    JIT is off: the plans are per-row index probes whose row estimates (generate_series, CTEs)
    look large enough to trigger compilation that costs more than the query (bench/analytics_plans.py).
    """
    conn.execute("set transaction isolation level repeatable read, read only")
    conn.execute("set local jit = off")
    role = get_settings().db_service_role
    conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def run_queries(
    conn: psycopg.Connection,
    params: dict[str, Any],
    stream: TextIO | None = None,
    done_already: dict[str, Result] | None = None,
) -> dict[str, Result]:
    """Every analytics query on `conn` (inside an analyst transaction), with a progress line;
    those in `done_already` are taken as they are."""
    progress = Progress(len(QUERIES), "report", stream)
    results: dict[str, Result] = dict(done_already or {})
    try:
        for done, (name, file) in enumerate(QUERIES):
            if name in results:
                continue
            progress.update(done, f"running {name}", force=True)
            with conn.cursor(row_factory=dict_row) as cur:
                cur.execute(query(file), params)
                rows = [{k: _plain(v) for k, v in row.items()} for row in cur]
                results[name] = Result([column.name for column in cur.description or ()], rows)
        progress.update(len(QUERIES), "done", force=True)
    finally:
        progress.close()
    return results


def fitted(period: Range, weekly_active: list[Row]) -> Range:
    """The range from its first week with any activity on: leading weeks without data (before the
    history starts) would only add cohorts of zeros. Unchanged when the first week has activity or
    no week has."""
    active = [row["week_start"] for row in weekly_active if row["active_users"]]
    if not active or active[0] <= period.start:
        return period
    return Range(active[0], period.end, period.as_of)


def collect(
    url: str | None, period: Range, stream: TextIO | None = None, fit: bool = False
) -> tuple[Range, dict[str, Result]]:
    """Run the report against the database at `url` with the configured rules; with `fit`, over
    `period` cut to the data (fitted()). Returns the range reported and the results.

    Fitting costs nothing extra: weekly actives run first, over the whole range, and their rows
    from the first active week on are exactly what the cut range would return (each week's count
    depends on that week alone)."""
    settings = get_settings()
    grace = timedelta(seconds=2 * settings.scan_interval_seconds)
    with connect(url) as conn, conn.transaction():
        analyst_transaction(conn)
        done: dict[str, Result] = {}
        if fit:
            weekly = run_queries(
                conn, parameters(period, settings.nudge_rules, grace), stream, _all_but("weekly_active")
            )
            active = weekly["weekly_active"]
            period = fitted(period, active.rows)
            done["weekly_active"] = Result(active.columns, [r for r in active.rows if r["week_start"] >= period.start])
        return period, run_queries(conn, parameters(period, settings.nudge_rules, grace), stream, done)


def _all_but(name: str) -> dict[str, Result]:
    """Placeholders that make run_queries run only `name`."""
    return {other: Result([], []) for other, _ in QUERIES if other != name}

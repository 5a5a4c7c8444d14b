"""The report's results as aligned terminal tables and as CSV files.

The retention table and its CSV come from one grid of shares (`retention_grid`), so what the
terminal shows and what the CSV holds cannot drift apart: the terminal prints each share as a
percentage with one decimal, the CSV holds the share itself as a fraction (0.5 is 50%), the unit
of every share in nudge_effect.csv too; NULL (the future, or past the range) is '-' / empty.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from events_schema.analytics.report import QUERIES, Range, Result, Row

NULL_CELL = "-"  # on the terminal; empty in CSV


def percent(share: float | None) -> str:
    """A share as the table prints it (`45.2`), or empty for NULL."""
    return "" if share is None else f"{100 * share:.1f}"


def _day(value: datetime) -> str:
    return f"{value:%Y-%m-%d}"


Grid = list[tuple[str, int, list[float | None]]]


def retention_grid(rows: list[Row]) -> tuple[list[str], Grid]:
    """Header and rows of the cohort x week-offset table: cohort week, size, the share per week."""
    offsets = sorted({row["week_offset"] for row in rows})
    cohorts: dict[datetime, tuple[str, int, list[float | None]]] = {}
    for row in rows:
        cells = cohorts.setdefault(row["cohort_week"], (_day(row["cohort_week"]), row["cohort_size"], []))
        cells[2].append(row["retention"])
    return ["cohort_week", "cohort_size", *(f"week_{k}" for k in offsets)], list(cohorts.values())


def aligned(header: Sequence[str], rows: Sequence[Sequence[str]], *, left: int = 1) -> list[str]:
    """Columns padded to their widest cell; the first `left` columns left-aligned, numbers right."""
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=False)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(c).ljust(w) if i < left else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=False))
        ).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def retention_lines(rows: list[Row]) -> list[str]:
    """The retention table for a terminal: percentages with a % sign, NULL as '-'."""
    header, grid = retention_grid(rows)
    shown_header = ["cohort (week of)", "users", *(h.replace("week_", "week ") for h in header[2:])]
    shown = [
        [week, str(size), *(NULL_CELL if c is None else f"{percent(c)}%" for c in shares)]
        for week, size, shares in grid
    ]
    return aligned(shown_header, shown)


def weekly_active_lines(rows: list[Row]) -> list[str]:
    shown = [[_day(r["week_start"]), f"{r['week_end']:%Y-%m-%d %H:%M}", str(r["active_users"])] for r in rows]
    return aligned(["week of", "observed until (UTC)", "active users"], shown, left=2)


def nudge_lines(rows: list[Row]) -> list[str]:
    def share(value: float | None) -> str:
        return NULL_CELL if value is None else f"{percent(value)}%"

    shown = [
        [
            _day(r["week_start"]),
            r["rule"],
            r["group"],
            str(r["members"]),
            share(r["share_24h"]),
            str(r["observed_24h"]),
            share(r["share_72h"]),
            str(r["observed_72h"]),
        ]
        for r in rows
    ]
    header = ["week of", "rule", "group", "members", "back 24h", "of", "back 72h", "of"]
    return aligned(header, shown, left=3)


def lift_lines(rows: list[Row]) -> list[str]:
    """The holdout lift table: each arm's share back (back/observed), the lift in percentage
    points with its 95 % interval, or why there is none; "all" is the whole range."""

    def arm(back: int, n: int, share: float | None) -> str:
        return NULL_CELL if share is None else f"{percent(share)}% ({back}/{n})"

    def points(value: float) -> str:
        return f"{100 * value:+.1f}"

    shown = [
        [
            "all" if r["week_start"] is None else _day(r["week_start"]),
            r["rule"],
            f"{r['holdout_percent']:g}% {r['holdout_salt'] or '(no salt)'}",
            f"{r['window_hours']} h",
            arm(r["nudged_back"], r["nudged_n"], r["nudged_share"]),
            arm(r["withheld_back"], r["withheld_n"], r["withheld_share"]),
            r["note"]
            if r["lift"] is None
            else f"{points(r['lift'])} [{points(r['lift_low'])}, {points(r['lift_high'])}]",
        ]
        for r in rows
    ]
    header = ["week of", "rule", "holdout", "window", "nudged back", "withheld back", "lift, pp [95% CI]"]
    return aligned(header, shown, left=4)


def shadow_lines(rows: list[Row]) -> list[str]:
    """Shadow against live: per week (and "all": the whole range, each user once) and pair of
    rules, each side's nudges and users, then the users both reach and those only one does."""
    shown = [
        [
            "all" if r["week_start"] is None else _day(r["week_start"]),
            r["shadow_rule"],
            r["live_rule"] or "(no live rule)",
            f"{r['shadow_nudges']} / {r['shadow_users']}",
            f"{r['live_nudges']} / {r['live_users']}",
            str(r["both_users"]),
            str(r["shadow_only_users"]),
            str(r["live_only_users"]),
        ]
        for r in rows
    ]
    header = [
        "week of",
        "shadow rule",
        "live rule",
        "shadow nudges/users",
        "live nudges/users",
        "both",
        "shadow only",
        "live only",
    ]
    return aligned(header, shown, left=3)


def render(results: dict[str, Result], period: Range) -> str:
    """The terminal report: retention first (the question), then weekly actives and nudges."""
    partial = (
        "" if period.end.weekday() == 0 and period.end.time() == datetime.min.time() else ("; the last week is partial")
    )
    out = [
        f"Weekly retention by sign-up cohort, {period.start:%Y-%m-%d} to {period.end:%Y-%m-%d %H:%M} UTC"
        f" (ISO weeks{partial}; '-' = week not reached yet)",
        "",
    ]
    retention, nudges = results["retention"].rows, results["nudge_effect"].rows
    out += retention_lines(retention) if retention else ["(no sign-ups in the range)"]
    out += ["", "Weekly active users", "", *weekly_active_lines(results["weekly_active"].rows)]
    out += ["", "Nudges: share back within 24 h / 72 h, nudged vs. due but held ('of' = windows ended)", ""]
    out += nudge_lines(nudges) if nudges else ["(no nudges or held users)"]
    out += [
        "",
        "Holdout lift: nudged vs. withheld (randomised control arm), back within the window;"
        " lift = difference in percentage points, Newcombe 95% interval",
        "",
    ]
    lift = results["holdout_lift"].rows
    out += lift_lines(lift) if lift else ["(no rule with a holdout decided anyone in the range)"]
    out += [
        "",
        "Shadow against live: a shadow rule's would-be nudges (never sent) beside a live rule's decisions"
        " (sent and withheld); users reached by both, by the shadow rule only, by the live rule only",
        "",
    ]
    shadow = results["shadow_vs_live"].rows
    out += shadow_lines(shadow) if shadow else ["(no shadow rule recorded anyone in the range)"]
    return "\n".join(out)


def _csv_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    return "" if value is None else value


def write_csvs(results: dict[str, Result], folder: Path) -> list[Path]:
    """One CSV per result: the retention table as printed (wide, shares as fractions), the others as
    the query returns them."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, _ in QUERIES:
        path = folder / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            result = results[name]
            if name == "retention":
                header, grid = retention_grid(result.rows)
                writer.writerow(header)
                writer.writerows([week, size, *(_csv_value(c) for c in shares)] for week, size, shares in grid)
            else:
                writer.writerow(result.columns)
                writer.writerows([_csv_value(row[c]) for c in result.columns] for row in result.rows)
        written.append(path)
    return written

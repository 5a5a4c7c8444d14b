"""`python -m events_schema report`: weekly engagement cohorts as a table, CSVs and a chart."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from events_schema.analytics.report import collect, report_range
from events_schema.cli_args import day, instant, whole_number
from events_schema.errors import CommandError, UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    span = parser.add_mutually_exclusive_group()
    span.add_argument(
        "--weeks",
        type=whole_number(1),
        metavar="N",
        help="the last N ISO weeks, this one included (default: 8, from the first week with activity if later)",
    )
    span.add_argument(
        "--from", dest="start", type=day, metavar="DATE", help="first day of the range (its ISO week is the first)"
    )
    parser.add_argument(
        "--to",
        dest="end",
        type=day,
        metavar="DATE",
        help="last day of the range, included (with --from; default: up to now)",
    )
    parser.add_argument(
        "--as-of",
        type=instant,
        default=None,
        metavar="ISO",
        help="the instant the report is made at (default: now); later data is ignored",
    )
    parser.add_argument("--csv", type=Path, metavar="DIR", help="write each result as DIR/<name>.csv")
    parser.add_argument(
        "--png", type=Path, metavar="FILE.png", help="draw the charts into this PNG (its folder must exist)"
    )


def png_problem(path: Path) -> str | None:
    """Why the chart cannot go to `path`, checked before any query runs; None when it can.

    The file is written exactly where asked: a name without `.png` is refused rather than
    silently given the suffix (matplotlib would), and a missing folder is not created.
    """
    if path.suffix.lower() != ".png":
        return f"--png {path}: the chart is a PNG; name the file with .png (e.g. {path.with_suffix('.png')})"
    if not path.parent.is_dir():
        return f"--png {path}: no folder {path.parent} (create it first)"
    return None


def run(args: argparse.Namespace) -> int:
    if args.end is not None and args.start is None:
        raise UsageError("--to needs --from (see python -m events_schema report --help)")
    if args.png is not None and (problem := png_problem(args.png)):
        raise UsageError(problem)
    as_of = args.as_of or datetime.now(UTC)
    period = report_range(as_of, args.weeks, args.start, args.end)
    try:
        period, results = collect(args.database_url, period, fit=args.weeks is None and args.start is None)
    except psycopg.Error as exc:
        detail = (exc.diag.message_primary or str(exc)).strip().splitlines()[0]
        hint = " (is the database migrated?)" if isinstance(exc, psycopg.errors.UndefinedTable) else ""
        raise CommandError(f"the report query failed: {detail}{hint}") from exc
    from events_schema.analytics.tables import render, write_csvs

    print(render(results, period))
    try:
        if args.csv:
            for path in write_csvs(results, args.csv):
                print(f"wrote {path}", file=sys.stderr)
        if args.png:
            from events_schema.analytics.chart import draw

            print(f"wrote {draw(results, period, args.png)}", file=sys.stderr)
    except OSError as exc:
        raise CommandError(f"cannot write {exc.filename}: {exc.strerror}") from exc
    return 0

"""`python -m worker simulate`: replay the nudge engine's definitions over a past window, at every
beat, for proposed rules beside the configured ones, and print what each would have done. Read
only (one READ ONLY transaction: a replica or a restored copy will do); nothing is written.
docs/simulate.md says what it can and cannot know."""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg

from events_schema.analytics.report import MIN_ARM
from events_schema.analytics.report import query as analytics_query
from events_schema.cli_args import instant
from events_schema.cli_errors import keeping_status
from events_schema.errors import INTERRUPTED, CommandError, UsageError
from events_schema.progress import Progress
from events_schema.settings import get_settings
from worker.database import connection
from worker.simulate import policy as policies
from worker.simulate.policy import Policy
from worker.simulate.replay import Replay as ReplayRun
from worker.simulate.replay import UserCase, Window, begin_read_only, check_data, local_times, read_cases
from worker.simulate.report import Comparison, Lift, Tally

PROGRESS_STEPS = 1000
EVERY = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|min|h)?$")


def every(text: str) -> timedelta:
    """A beat interval: 15m, 900s, 1h (a bare number is minutes)."""
    match = EVERY.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not an interval (e.g. 15m, 900s, 1h): {text!r}")
    value, unit = float(match[1]), match[2] or "m"
    step = timedelta(seconds=value * {"s": 1, "m": 60, "min": 60, "h": 3600}[unit])
    if step < timedelta(seconds=1):
        raise argparse.ArgumentTypeError(f"must be at least 1 s, got {text!r}")
    return step


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from", dest="start", type=instant, required=True, metavar="ISO", help="first beat (ISO 8601 with offset)"
    )
    parser.add_argument(
        "--to", dest="end", type=instant, required=True, metavar="ISO", help="end of the window (exclusive)"
    )
    rules = parser.add_mutually_exclusive_group()
    rules.add_argument(
        "--rules",
        metavar="JSON",
        help='proposed rules: NUDGE_RULES\' list, or {"rules": [...], "cooldown_hours": H, '
        '"quiet_hours": "21:00-09:00" or null, "max_per_scan": N} (keys left out: as configured)',
    )
    rules.add_argument("--rules-file", type=Path, metavar="FILE", help="the same JSON, from a file")
    parser.add_argument("--every", type=every, default=timedelta(minutes=15), help="beat interval (default 15m)")
    parser.add_argument("--tz", default="UTC", metavar="ZONE", help="IANA zone the report's days are in (default UTC)")
    parser.add_argument(
        "--lift-from",
        metavar="RULE",
        help="for rules without a holdout of their own, estimate returns with this rule's measured lift",
    )
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    parser.add_argument(
        "--csv", type=Path, metavar="DIR", help="also write simulate_days.csv and simulate_hours.csv here"
    )
    parser.add_argument("--png", type=Path, metavar="PATH", help="also draw the comparison here")


def run(args: argparse.Namespace) -> int:
    window = _window(args)
    zone = _zone(args.tz)
    current = Policy.configured(get_settings())
    sides = [current]
    text = args.rules
    if args.rules_file is not None:
        try:
            text = args.rules_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--rules-file: {exc.strerror}: {args.rules_file}") from None
    if text is not None:
        sides.append(policies.proposed(text, current))
    progress = Progress(PROGRESS_STEPS, "replaying")
    try:
        comparison = simulate(window, sides, zone, args.tz, lift_from=args.lift_from, progress=progress)
    except KeyboardInterrupt:
        progress.close()
        raise CommandError("interrupted: the replay stopped; it had written nothing", status=INTERRUPTED) from None
    progress.close()
    with keeping_status(0):
        if args.csv is not None:
            comparison.write_csv(args.csv)
        if args.png is not None:
            comparison.write_png(args.png)
        print(json.dumps(comparison.as_dict(), indent=2) if args.json else comparison.text())
    return 0


def _window(args: argparse.Namespace) -> Window:
    start, end = args.start.astimezone(UTC), args.end.astimezone(UTC)
    if end <= start:
        raise UsageError(f"--to ({end.isoformat()}) must be after --from ({start.isoformat()})")
    return Window(start, end, args.every)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"--tz: unknown time zone {name!r}") from None


def simulate(
    window: Window,
    sides: list[Policy],
    zone: ZoneInfo,
    zone_name: str = "UTC",
    *,
    lift_from: str | None = None,
    progress: Progress | None = None,
    url: str | None = None,
) -> Comparison:
    """Replay every side in one read-only transaction; their users in step (user order), so the
    users one side reaches and the other does not are counted without keeping either set."""
    with connection(url) as conn:
        conn.rollback()
        try:
            begin_read_only(conn)
            check_data(conn, window)
            local = local_times(conn, window)
            tallies = [Tally(p, window, zone, local) for p in sides]
            comparison = Comparison(window, zone_name, tallies, lifts=_lifts(conn, window, sides, lift_from))
            replays = [ReplayRun(p, window, local) for p in sides]
            held: list[list[UserCase]] = [[] for _ in sides]  # a capped side's users, settled at the end
            reached: list[set[int]] = [set() for _ in sides]  # kept only beside a capped side
            keep = any(p.max_per_scan for p in sides) and len(sides) == 2
            for user_id, cases in read_cases(conn, sides, window):
                hit = [False] * len(sides)
                for i, case in enumerate(cases):
                    if case is None:
                        continue
                    if sides[i].max_per_scan:
                        held[i].append(case)
                    else:
                        hit[i] = tallies[i].add(replays[i].decide(case))
                        if keep and hit[i]:
                            reached[i].add(user_id.int)
                if len(sides) == 2 and not keep and hit[0] != hit[1]:
                    comparison.only["current" if hit[0] else "proposed"] += 1
                if progress is not None:
                    # User ids are uniform (random UUIDs): how far through them is how far along.
                    progress.update(int(user_id.int / 2**128 * PROGRESS_STEPS), "users, by id")
            for i, cases_held in enumerate(held):
                if sides[i].max_per_scan:
                    for outcome in replays[i].settle(cases_held):
                        if tallies[i].add(outcome) and keep:
                            reached[i].add(outcome.case.user_id.int)
                    cases_held.clear()
            if keep:
                comparison.only = {"current": len(reached[0] - reached[1]), "proposed": len(reached[1] - reached[0])}
            return comparison
        finally:
            conn.rollback()


def _lifts(conn: psycopg.Connection, window: Window, sides: list[Policy], lift_from: str | None) -> dict[str, Lift]:
    """Each rule's measured 72 h lift (the holdout's whole-range row with enough data), by name."""
    rules = {r.name: r for p in sides for r in p.rules}
    cursor = conn.execute(
        analytics_query("analytics_holdout_lift"),
        {
            "range_start": datetime(2000, 1, 1, tzinfo=UTC),
            "range_end": window.end,
            "as_of": window.end,
            "rules": json.dumps([{"name": r.name, "event_types": r.event_types} for r in rules.values()]),
            "min_arm": MIN_ARM,
        },
    )
    names = [c.name for c in cursor.description or ()]
    measured: dict[str, Lift] = {}
    for values in cursor.fetchall():
        row = dict(zip(names, values, strict=True))
        name = row["rule"]
        if row["week_start"] is None and row["window_hours"] == 72 and row["lift"] is not None and name not in measured:
            measured[name] = Lift(
                name,
                72,
                row["lift"],
                row["lift_low"],
                row["lift_high"],
                row["holdout_salt"] or "",
                row["holdout_percent"],
            )
    if lift_from is not None:
        if lift_from not in measured:
            raise CommandError(
                f"--lift-from: no holdout lift measured for rule {lift_from!r} by {window.end.isoformat()}"
            )
        for name in rules:
            measured.setdefault(name, measured[lift_from])
    return measured

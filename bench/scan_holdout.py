"""Benchmark: the scan's cost with a holdout against the same scan without, in the same run.

Run by hand (never in tests):  .venv/bin/python bench/scan_holdout.py --users 100000 --events 30
Two rules with the same threshold, one plain and one with a holdout (--percent of its users), are
each scanned in full on the same data (set-based fill, bench/data.py), the cool-down off and quiet
hours off so that both decide the same due users. Each round scans both, in alternating order,
and between scans forgets every decision (bench/data.py's reset) so each is a first, writing scan;
the dry runs (decide only) alternate the same way. Prints the medians and the ratio. The goal
(issue 24): a holdout costs within 5 % of no holdout. The bucket hash is computed only for a user
about to be nudged (scan_decide.sql), so the extra work is one sha256 per decision.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.data import NOW, dataset, fill, reset_engine
from events_schema.settings import get_settings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=30, help="events per user")
    parser.add_argument("--percent", type=float, default=10, help="the holdout's share of users (default 10)")
    parser.add_argument("--rounds", type=int, default=5, help="scans of each rule (default 5)")
    parser.add_argument("--reuse", metavar="NAME", help="use (or build and keep) the database of this name")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    os.environ["NUDGE_RULES"] = json.dumps(
        [
            {"name": "plain", "threshold_hours": 48},
            {"name": "held", "threshold_hours": 48, "holdout_percent": args.percent, "holdout_salt": "bench"},
        ]
    )
    os.environ["NUDGE_COOLDOWN_HOURS"] = "0"
    os.environ["QUIET_HOURS_ENABLED"] = "false"
    os.environ["NUDGE_MAX_PER_SCAN"] = "0"
    with dataset(args.users, args.events, args.reuse, args.keep) as (url, reused):
        os.environ["DATABASE_URL"] = url
        get_settings.cache_clear()
        from worker.database import dispose_engines
        from worker.scan.scanner import ScanSummary, run_scan

        if not reused:
            fill(url, args.users, args.events)

        def scan(rule: str, dry_run: bool) -> tuple[float, ScanSummary]:
            reset_engine(url)
            start = time.perf_counter()
            summary = run_scan(NOW, rule_names=[rule], dry_run=dry_run, full=True)
            return time.perf_counter() - start, summary

        def rounds(dry_run: bool) -> dict[str, list[float]]:
            times: dict[str, list[float]] = {"plain": [], "held": []}
            scan("plain", dry_run)  # warm the cache
            for i in range(args.rounds):
                for rule in ("plain", "held") if i % 2 == 0 else ("held", "plain"):
                    seconds, summary = scan(rule, dry_run)
                    times[rule].append(seconds)
                    if i == 0:
                        print(f"  {rule:5}: {summary.log_line()}", file=sys.stderr)
            return times

        def line(label: str, times: dict[str, list[float]], median: Callable[[list[float]], float]) -> str:
            plain, held = median(times["plain"]), median(times["held"])
            return (
                f"{label:34} no holdout {plain * 1000:7.0f} ms   holdout {args.percent:g}% {held * 1000:7.0f} ms"
                f"   ratio {held / plain:.3f}"
            )

        writing = rounds(dry_run=False)
        deciding = rounds(dry_run=True)
        print(f"{args.users:,} users x {args.events} events; medians of {args.rounds} full scans each")
        print(line("full scan writing its decisions:", writing, statistics.median))
        print(line("full scan, dry run (decide only):", deciding, statistics.median))
        dispose_engines()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

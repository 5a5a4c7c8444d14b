"""Benchmark: the analytics queries' plans and times, against one pass over the event table.

Run by hand (never in tests):  .venv/bin/python bench/analytics_plans.py --users 100000 --days 30
It creates a scratch database on the server of DATABASE_URL (default: loopback), migrates it,
seeds it (`python -m events_schema seed`'s generator), lets the engine nudge as it would have
(full scans every --scan-hours through the period, each deciding against the log up to its own
instant), then prints each report query's EXPLAIN (ANALYZE, BUFFERS) and its time as a ratio to
the baseline, a plain `count(*)` over engagement_events measured in the same run. The database
is dropped afterwards (--keep to keep it, e.g. for `python -m events_schema report`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scratch import scratch_database

from events_schema.analytics.report import (
    QUERIES,
    analyst_transaction,
    parameters,
    query,
    report_range,
)
from events_schema.db import connect
from events_schema.seed.seed import seed
from events_schema.settings import get_settings

BASELINE = "select count(*) from public.engagement_events"


def simulate_engine(url: str, start: datetime, end: datetime, every: timedelta) -> int:
    """Full scans at start, start + every, ... < end, in order: the nudges the engine would write."""
    os.environ["DATABASE_URL"] = url
    get_settings.cache_clear()
    from worker.database import dispose_engines
    from worker.scan.scanner import run_scan

    nudged, at = 0, start
    while at < end:
        nudged += run_scan(at, full=True).totals()["nudged"]
        at += every
    dispose_engines()
    return nudged


def best_of(url: str, sql: str, params: dict, repeat: int, jit: bool = False) -> float:
    """Fastest of `repeat` runs in the analyst transaction, in seconds (warm cache)."""
    best = float("inf")
    with connect(url) as conn:
        for _ in range(repeat):
            with conn.transaction():
                analyst_transaction(conn)
                if jit:
                    conn.execute("set local jit = on")
                started = time.perf_counter()
                conn.execute(sql, params).fetchall()
                best = min(best, time.perf_counter() - started)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--weeks", type=int, default=5, help="the report's range: the last N ISO weeks")
    parser.add_argument("--scan-hours", type=float, default=24, help="hours between simulated scans (0: none)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with scratch_database("bench_analytics", keep=args.keep) as url:
        started = time.perf_counter()
        report = seed(url, args.users, args.days, now=now)
        print(f"{report.summary()}  [{time.perf_counter() - started:.0f} s]")
        if args.scan_hours > 0:
            started = time.perf_counter()
            nudges = simulate_engine(url, now - timedelta(days=args.days - 2), now, timedelta(hours=args.scan_hours))
            print(f"simulated engine: {nudges} nudges  [{time.perf_counter() - started:.0f} s]")
        with connect(url, autocommit=True) as conn:
            conn.execute("vacuum analyze public.engagement_events")
        settings = get_settings()
        params = parameters(
            report_range(now, weeks=args.weeks),
            settings.nudge_rules,
            timedelta(seconds=2 * settings.scan_interval_seconds),
        )
        baseline = best_of(url, BASELINE, {}, args.repeat)
        print(f"\nbaseline (count(*) of engagement_events): {baseline * 1000:.0f} ms")
        times, with_jit = {}, {}
        for name, file in QUERIES:
            times[name] = best_of(url, query(file), params, args.repeat)
            with_jit[name] = best_of(url, query(file), params, 1, jit=True)
            with connect(url) as conn, conn.transaction():
                analyst_transaction(conn)
                plan = conn.execute("explain (analyze, buffers) " + query(file), params).fetchall()
            print(f"\n=== {name} ({file}.sql): {times[name] * 1000:.0f} ms, {times[name] / baseline:.2f}x baseline")
            print("\n".join(row[0] for row in plan))
        print(f"\nsummary (best of {args.repeat}, warm; JIT off as the report runs, and with JIT on once):")
        for name, seconds in times.items():
            print(
                f"  {name:14} {seconds * 1000:8.0f} ms  {seconds / baseline:6.2f}x baseline"
                f"   JIT on: {with_jit[name] * 1000:8.0f} ms ({with_jit[name] / seconds:.2f}x)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

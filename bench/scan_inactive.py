"""Benchmark (a part of `python -m bench`): the inactivity scan against the `GROUP BY user_id` baseline, on the same data.

Run by hand (never in tests):  .venv/bin/python bench/scan_inactive.py --users 1000000 --events 30
It creates its own database on the server of DATABASE_URL (default: loopback), fills it with
set-based SQL, prints timings and ratios against the baseline measured in the same run, and the
query plans, then drops the database (--keep to keep it).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.data import BASELINE, FILL_EVENTS, FILL_USERS, REBUILD_SUMMARIES
from bench.scratch import scratch_database
from events_schema.db import connect
from events_schema.settings import get_settings


def timed(fn, repeat: int = 3) -> float:
    """Median wall time in seconds over `repeat` runs (the first warms the cache)."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=30, help="events per user")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    with scratch_database("bench_scan", keep=args.keep) as url:
        os.environ["DATABASE_URL"] = url
        get_settings.cache_clear()
        from worker.database import dispose_engines
        from worker.scan.scanner import run_scan  # settings are read from here on

        now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
        with connect(url, autocommit=True) as conn:
            start = time.perf_counter()
            conn.execute(FILL_USERS, {"now": now, "n": args.users})
            # A bulk load: FK and summary triggers off, the summary built once afterwards.
            conn.execute("set session_replication_role = replica")
            step = 50_000
            for offset in range(0, args.users, step):
                conn.execute(FILL_EVENTS, {"now": now, "k": args.events, "offset": offset, "limit": step})
                print(f"\rfilling: {min(offset + step, args.users):,}/{args.users:,} users", end="", file=sys.stderr)
            conn.execute("reset session_replication_role")
            conn.execute(REBUILD_SUMMARIES)
            conn.execute("vacuum analyze")
            events = conn.execute("select count(*) from engagement_events").fetchone()[0]
            print(f"\n{args.users:,} users, {events:,} events, filled in {time.perf_counter() - start:.0f} s")

            cutoff = now - timedelta(hours=48)
            baseline = timed(lambda: conn.execute(BASELINE, {"as_of": now, "cutoff": cutoff}).fetchone())
            due = conn.execute(BASELINE, {"as_of": now, "cutoff": cutoff}).fetchone()[0]
            print(
                f"baseline GROUP BY user_id over the table: {baseline * 1000:8.0f} ms  ({due:,} due users with activity)"
            )

        full_dry = timed(lambda: run_scan(now, dry_run=True, full=True))
        first = time.perf_counter()
        summary = run_scan(now, full=True)
        first = time.perf_counter() - first
        print(
            f"full scan, dry run (decide only):         {full_dry * 1000:8.0f} ms  x{baseline / full_dry:.1f} vs baseline"
        )
        print(f"full scan writing nudges:                 {first * 1000:8.0f} ms  {summary.log_line()}")
        increments = []
        for i in range(1, 5):
            at = now + timedelta(minutes=15 * i)
            start = time.perf_counter()
            s = run_scan(at)
            increments.append(time.perf_counter() - start)
            print(f"incremental scan +{15 * i} min:                 {increments[-1] * 1000:8.0f} ms  {s.log_line()}")
        inc = statistics.median(increments)
        print(f"incremental (median of 4):                {inc * 1000:8.1f} ms  x{baseline / inc:.0f} vs baseline")

        with connect(url, autocommit=True) as conn:
            conn.execute("set role service_role")
            conn.execute("set jit = off")  # as the scan runs it
            from psycopg import sql

            from worker.scan.scanner import batch_params, batch_query

            settings = get_settings()
            [rule] = [r for r in settings.nudge_rules if r.name == "inactive_48h"]
            plan = conn.execute(
                sql.SQL("explain (analyze, buffers, timing off) ") + batch_query("scan_candidates_full"),
                {**batch_params(settings, rule, now, str(uuid.uuid4()), full=True), "budget_open": True},
            ).fetchall()
            print("\nEXPLAIN ANALYZE of a full scan's first batch (scan_decide.sql around scan_candidates_full.sql):")
            print("\n".join(r[0] for r in plan))
        dispose_engines()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Benchmark: where a scan keeps its candidates, behind a transaction pooler (issue 15).

Run by hand (never in tests):  .venv/bin/python bench/scan_candidates.py --users 200000
On a scratch database (users only: a full scan's candidates are every user who may be due),
times one full scan's candidate handling, read back in keyset batches of --batch, four ways:
  temp      a temporary table (the baseline: what the scan did before; not pooler-safe)
  unlogged  an unlogged table keyed by scan id (no WAL), rows deleted at the end
  logged    the same as an ordinary table
  recompute no table: the candidate query re-run per batch, from the last user id on
and prints each against the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.data import FILL_USERS
from bench.scratch import scratch_database
from events_schema.db import connect

CANDIDATES = """
select u.user_id from public.engagement_users u
where u.signed_up_at <= %(cutoff)s
  and not exists (select 1 from public.engagement_last_activity a
                  where a.user_id = u.user_id and a.last_at > %(cutoff)s)
"""
TABLES = {
    "temp": "create temp table c (scan_id uuid, user_id uuid, primary key (scan_id, user_id)) on commit drop",
    "unlogged": "create unlogged table if not exists c (scan_id uuid, user_id uuid, primary key (scan_id, user_id))",
    "logged": "create table if not exists c (scan_id uuid, user_id uuid, primary key (scan_id, user_id))",
}


def kept(conn, kind: str, params: dict, batch: int) -> int:
    """Fill the table in one transaction, read it back in batches, then drop the rows."""
    scan_id = uuid.uuid4()
    seen = 0
    with conn.transaction():
        if kind != "temp":
            conn.execute("drop table if exists c")
        conn.execute(TABLES[kind])
        conn.execute(f"insert into c select %(scan_id)s, user_id from ({CANDIDATES}) x", {**params, "scan_id": scan_id})
        after = None
        while True:
            rows = conn.execute(
                "select user_id from c where scan_id = %(s)s and (%(a)s::uuid is null or user_id > %(a)s)"
                " order by user_id limit %(n)s",
                {"s": scan_id, "a": after, "n": batch},
            ).fetchall()
            if not rows:
                break
            seen += len(rows)
            after = rows[-1][0]
        if kind != "temp":
            conn.execute("delete from c where scan_id = %s", (scan_id,))
    return seen


def recompute(conn, params: dict, batch: int) -> int:
    seen, after = 0, None
    while True:
        rows = conn.execute(
            f"select user_id from ({CANDIDATES}) x where (%(a)s::uuid is null or user_id > %(a)s)"
            " order by user_id limit %(n)s",
            {**params, "a": after, "n": batch},
        ).fetchall()
        if not rows:
            return seen
        seen += len(rows)
        after = rows[-1][0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    params = {"cutoff": now - timedelta(hours=48)}
    with scratch_database("bench_candidates") as url, connect(url, autocommit=True) as conn:
        conn.execute(FILL_USERS, {"now": now, "n": args.users})
        conn.execute("vacuum analyze")
        results: dict[str, float] = {}
        for kind in ("temp", "unlogged", "logged", "recompute"):
            runs, seen = [], 0
            for _ in range(args.repeat):
                start = time.perf_counter()
                seen = (
                    recompute(conn, params, args.batch) if kind == "recompute" else kept(conn, kind, params, args.batch)
                )
                runs.append(time.perf_counter() - start)
            results[kind] = statistics.median(runs)
            print(
                f"{kind:10} {results[kind] * 1000:8.0f} ms  x{results[kind] / results['temp']:.2f} vs temp"
                f"  ({seen:,} candidates, median of {args.repeat})"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

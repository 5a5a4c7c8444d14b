"""By hand: N concurrent `python -m worker scan --full` through PgBouncer in transaction mode.

Run:  .venv/bin/python bench/pooler_scans.py --scans 8 --users 2000
(the issue 15 repro: before, concurrent scans crashed on the temporary table and left it on
pooled server connections). Starts its own PgBouncer (pool of 3) in front of a scratch
database on the server of DATABASE_URL, runs the scans at once, and prints each scan's outcome
and the nudges written: exactly one per due user is the expected result.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scratch import scratch_database  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from events_schema.db import connect  # noqa: E402
from tests.integration.pooler.pgbouncer import running_pgbouncer  # noqa: E402

AS_OF = "2026-03-05T12:00:00+00:00"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scans", type=int, default=8)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()
    with scratch_database("bench_pooler") as direct:
        with connect(direct, autocommit=True) as conn:
            conn.execute(
                "insert into auth.users (id, created_at) select gen_random_uuid(), '2026-03-01T00:00:00Z' from generate_series(1, %s)",
                (args.users,),
            )
        url = make_url(direct)
        with running_pgbouncer(url.set(database="postgres"), pool_size=3) as pooler:
            env = {
                **os.environ,
                "DATABASE_URL": pooler.set(database=url.database).render_as_string(hide_password=False),
                "SCAN_BATCH_SIZE": str(args.batch),
            }
            start = time.monotonic()
            scans = [
                subprocess.Popen(
                    [sys.executable, "-m", "worker", "scan", "--full", "--json", "--as-of", AS_OF],
                    env=env,
                    cwd=ROOT,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for _ in range(args.scans)
            ]
            results = [(scan.wait(), *scan.communicate()) for scan in scans]
            took = time.monotonic() - start
        summaries = [json.loads(out) for _, out, _ in results if out.strip()]
        with connect(direct) as conn:
            total, users = conn.execute(
                "select count(*), count(distinct user_id) from engagement_events where event_type = 'nudge_sent'"
            ).fetchone()
            leases = conn.execute("select count(*) from nudge_scan_leases").fetchone()[0]
    print(f"{args.scans} concurrent scans, {args.users} due users, batch {args.batch}, PgBouncer pool 3: {took:.1f} s")
    print(f"  exit codes {[rc for rc, _, _ in results]}; ran {[s['ran'] for s in summaries]}")
    print(
        f"  nudged per scan {[s['nudged'] for s in summaries]}; "
        f"already nudged per scan {[s['skipped']['already_nudged'] for s in summaries]}"
    )
    print(f"  nudge events {total} for {users} users (expected {args.users}); leases left {leases}")
    for rc, _, err in results:
        if rc and err.strip():
            print(f"  error: {err.strip().splitlines()[-1]}")
    return 0 if total == users == args.users else 1


if __name__ == "__main__":
    raise SystemExit(main())

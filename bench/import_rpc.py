"""Benchmark: one `POST /rpc/import_events` call of 5,000 rows against the Python path on the same rows.

Run by hand (never in tests):  .venv/bin/python bench/import_rpc.py [--events 5000] [--repeat 5]
It creates its own database on the server of DATABASE_URL (default: loopback) with --users users
and one batch of --events rows without ids (as an Edge Function sends them), then times, each
into empty tables, the median of --repeat runs of:
  1. the Python path: the `import_events` task's body (import_batch) in this process, which
     validates in Python and writes with COPY + INSERT ... ON CONFLICT (the baseline);
  2. the RPC as PostgREST runs it (role and claims set locally, the body as one json value,
     `select public.import_events(...)`), over a connection as `authenticator`, with a batch_id;
  3. the same without a batch_id (the function hashes the batch's content);
  4. the same batch sent again (every row a duplicate).
PostgREST's own work (HTTP, JWT, reading the body) is not included: measured from its
connection's side. Prints seconds, rows/s and ratios to the baseline, then drops the database.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from import_throughput import KINDS
from scratch import scratch_database
from sqlalchemy.engine import make_url

from events_schema.db import connect
from events_schema.postgrest import claims_for, request, rpc
from events_schema.settings import get_settings

PARAMETERS = {"batch": "jsonb", "batch_id": "text"}
EMPTY = "truncate public.engagement_events, public.engagement_import_quarantine, public.engagement_last_activity"


def make_batch(users: list[str], count: int) -> list[dict]:
    """Rows as a backend job sends them: no ids, RFC 3339 timestamps, small payloads."""
    rng = random.Random(42)
    batch = []
    for _ in range(count):
        event_type, payload = rng.choice(KINDS)
        stamp = f"2026-11-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00Z"
        batch.append(
            {"user_id": rng.choice(users), "event_type": event_type, "timestamp": stamp, "value": payload(rng)}
        )
    return batch


def timed(run: Callable[[], dict], prepare: Callable[[], None], repeat: int) -> tuple[float, dict]:
    """Median seconds of `run` over `repeat` runs, `prepare` before each; and the last summary."""
    seconds, summary = [], {}
    for _ in range(repeat):
        prepare()
        start = time.perf_counter()
        summary = run()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    with scratch_database("bench_import_rpc", keep=args.keep) as url:
        os.environ["DATABASE_URL"] = url
        get_settings.cache_clear()
        from worker.ingest.importer import import_batch

        admin = connect(url, autocommit=True)
        users = [
            str(r[0])
            for r in admin.execute(
                "insert into auth.users (id) select gen_random_uuid() from generate_series(1, %s) returning id",
                (args.users,),
            ).fetchall()
        ]
        batch = make_batch(users, args.events)
        with_id = json.dumps({"batch": batch, "batch_id": "bench"})
        without_id = json.dumps({"batch": batch})
        api = connect(make_url(url).set(username="authenticator", password=None).render_as_string(hide_password=False))

        def call(body: str) -> Callable[[], dict]:
            def run() -> dict:
                with request(api, "service_role", claims_for("service_role")) as conn:
                    return rpc(conn, "public.import_events", body, PARAMETERS)

            return run

        def empty() -> None:
            admin.execute(EMPTY)

        def python_path() -> dict:
            return import_batch(batch, batch_id="bench").as_dict()

        python_path()  # warm-up: the reserved types' cache, pooled connections
        empty()
        call(with_id)()
        results = [("Python path (import_events task body)", *timed(python_path, empty, args.repeat))]
        results.append(("RPC, with batch_id", *timed(call(with_id), empty, args.repeat)))
        results.append(("RPC, without batch_id (content hash)", *timed(call(without_id), empty, args.repeat)))
        results.append(("RPC, sent again (all duplicates)", *timed(call(with_id), lambda: None, args.repeat)))
        api.close()
        admin.close()

    baseline = results[0][1]
    print(
        f"{args.events:,} rows, {args.users:,} users, median of {args.repeat} runs "
        f"(PostgreSQL at {make_url(url).host}, {os.cpu_count()} cores)"
    )
    print(f"{'path':42} {'seconds':>8} {'rows/s':>10} {'vs Python':>10}  inserted/duplicates/rejected")
    for name, seconds, summary in results:
        counts = f"{summary['inserted']}/{summary['duplicates']}/{summary['rejected']}"
        print(f"{name:42} {seconds:8.3f} {args.events / seconds:10,.0f} {baseline / seconds:9.2f}x  {counts}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except psycopg.OperationalError as exc:
        print(f"error: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        sys.exit(1)

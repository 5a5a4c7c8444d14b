"""What Realtime's Broadcast from the database costs writers: inserts into engagement_events with
the broadcast on and off, in one run, on the same table (every trigger and index in place): single
rows (one transaction each, commit included) and 1,000-row batches, for 1 user (one message per
statement) and for 1,000 users (1,000 messages per statement).

Off is the documented switch, engagement.realtime_mode = 'postgres_changes' (set for the session:
the trigger still fires and returns at once), not ALTER TABLE ... DISABLE TRIGGER: that DDL
invalidates the cached plans of the table's triggers, and the first statement after each switch
paid their re-planning (about 25 ms, measured with EXPLAIN ANALYZE), which showed as a 10 % cost
on one user's batches that the trigger itself (about 1.5 ms a batch) does not have. The sides
alternate in blocks (on, off, off, on, ...) so that load swings on a shared machine hit both alike,
and each side's rate is its median block's.
The rows are dated a year back, so nobody's last activity moves; the rows and the messages are
removed afterwards.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from datetime import timedelta
from typing import Any

from bench.data import NOW
from events_schema.db import connect

BATCH = 1000
SINGLE_BLOCK = 50
INSERT = """
insert into public.engagement_events (user_id, "timestamp", event_type, value)
select u, %(at)s::timestamptz, 'app_open', '{"bench": "broadcast"}'::jsonb
from unnest(%(users)s::uuid[]) as u
"""
MODE = "select set_config('engagement.realtime_mode', %s, false)"


def measure_broadcast(url: str, single_rows: int, batches: int) -> dict[str, Any]:
    """Rows per second with and without the broadcast trigger, per case; `single_rows` and
    `batches` per side and case (at least two blocks each)."""
    rng = random.Random(22)
    at = NOW - timedelta(days=365)
    result: dict[str, Any] = {}
    with connect(url) as conn:
        users = [r[0] for r in conn.execute("select user_id from engagement_users limit 100000")]
        started = conn.execute("select now() at time zone 'UTC'").fetchone()[0]
        conn.commit()
        one, many = [rng.choice(users)], rng.sample(users, min(BATCH, len(users)))
        singles = max(2 * SINGLE_BLOCK, single_rows)
        cases: dict[str, list[list[uuid.UUID]]] = {
            "single_1user": [one for _ in range(2 * singles)],
            "single_1000users": [[rng.choice(many)] for _ in range(2 * singles)],
            "batch_1user": [one * BATCH for _ in range(2 * max(2, batches))],
            "batch_1000users": [many for _ in range(2 * max(2, batches))],
        }
        try:
            for case, statements in cases.items():
                block = SINGLE_BLOCK if case.startswith("single") else 1
                on, off = _rates(conn, statements, block, at)
                result[f"broadcast_{case}_on_per_s"] = on
                result[f"broadcast_{case}_off_per_s"] = off
        finally:
            conn.rollback()
            conn.execute(MODE, ("broadcast",))
            conn.execute("set session_replication_role = replica")
            conn.execute('delete from public.engagement_events where value @> \'{"bench": "broadcast"}\'')
            conn.execute("reset session_replication_role")
            conn.execute("delete from realtime.messages where inserted_at >= %s", (started,))
            conn.commit()
    return result


CASES = ("single_1user", "single_1000users", "batch_1user", "batch_1000users")


def summary(run: dict[str, Any]) -> str:
    """The trigger's cost per size of a run, one line per case (`python -m bench` prints it after
    its table; runs made before the trigger have none of these figures and print nothing)."""
    lines = []
    for size in run.get("sizes", [run]):
        for case in CASES:
            on, off = size.get(f"broadcast_{case}_on_per_s"), size.get(f"broadcast_{case}_off_per_s")
            if on and off:
                users = size.get("users", size.get("users_requested", "?"))
                lines.append(
                    f"broadcast trigger, {users} users, {case}: with {on:,.0f} rows/s, without {off:,.0f} rows/s,"
                    f" with / without {on / off:.2f}x"
                )
    return "\n".join(lines)


def _rates(conn: Any, statements: list[list[uuid.UUID]], block: int, at: Any) -> tuple[float, float]:
    """(rows/s with the broadcast, rows/s without): blocks of `block` statements, one transaction
    each, the sides alternating on, off, off, on, ...; each side's rate is its median block's, so
    that a burst of load from elsewhere on a shared machine does not decide the ratio."""
    times: tuple[list[float], list[float]] = ([], [])
    blocks = [statements[i : i + block] for i in range(0, len(statements), block)]
    for i, chunk in enumerate(blocks):
        off = (i % 4) in (1, 2)
        conn.execute(MODE, ("postgres_changes" if off else "broadcast",))
        conn.commit()
        start = time.perf_counter()
        for ids in chunk:
            conn.execute(INSERT, {"at": at, "users": ids})
            conn.commit()
        times[off].append((time.perf_counter() - start) / sum(map(len, chunk)))
    on, off = (statistics.median(side) for side in times)
    return 1 / on, 1 / off


if __name__ == "__main__":
    import argparse
    import json

    from bench import data

    p = argparse.ArgumentParser(prog="python -m bench.broadcast", description=__doc__)
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--events-per-user", type=int, default=30)
    p.add_argument("--reuse", metavar="NAME", help="database to reuse, built and kept under this name if missing")
    p.add_argument("--single-rows", type=int, default=2000)
    p.add_argument("--batches", type=int, default=20)
    args = p.parse_args()
    with data.dataset(args.users, args.events_per_user, args.reuse, False) as (db, reused):
        if not reused:
            data.fill(db, args.users, args.events_per_user)
        figures = {"users": args.users, **measure_broadcast(db, args.single_rows, args.batches)}
    print(summary(figures))
    print(json.dumps(figures))

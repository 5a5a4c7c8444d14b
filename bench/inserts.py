"""What the schema costs writers: inserts into engagement_events (every trigger and index of the
schema) against a bare table of the same columns (no index, constraint or trigger), in one run.

A third table, the twin (the PRD's indexes, checks and foreign key, no triggers), starts empty
like the bare one. The engine's own cost (all its triggers, the Realtime broadcast's
included) is measured on engagement_events itself, with its triggers enabled and disabled in
alternating blocks (ALTER TABLE ... DISABLE TRIGGER USER; the foreign key's check stays), so that
both sides pay an index of the same size: single rows (blocks of 50, one transaction each) and
1,000-row batches (a block each). After each switch one untimed row is inserted first: the DDL
invalidates the cached plans, and the first statement after it would pay the re-planning on one
side only. Each side's rate is its median block's, so a burst of load from elsewhere on a shared
machine does not decide the ratio. Cases: single-row inserts (one transaction each), 1,000-row batches for users who already have
activity, and the worst case, 1,000-row batches where every row is a new user's first event (the
activity summary gains a row per event). The events are dated a year back, so the users'
last activity and every scan decision stay as they were; they are removed afterwards.
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
insert into {table} (user_id, "timestamp", event_type, value)
select u, %(at)s::timestamptz, 'app_open', '{{"bench": true}}'::jsonb
from unnest(%(users)s::uuid[]) as u
"""
NEW_USERS = """
insert into auth.users (id, created_at) select gen_random_uuid(), %(at)s from generate_series(1, %(n)s)
returning id
"""


def _rates(conn: Any, sides: dict[str, list[list[uuid.UUID]]]) -> dict[str, float]:
    """Rows per second into each table, one transaction per batch, the tables interleaved batch
    by batch so that a shared machine's load swings hit them alike."""
    at = NOW - timedelta(days=365)
    spent = dict.fromkeys(sides, 0.0)
    for batch in zip(*sides.values(), strict=False):
        for table, ids in zip(sides, batch, strict=False):
            start = time.perf_counter()
            conn.execute(INSERT.format(table=table), {"at": at, "users": ids})
            conn.commit()
            spent[table] += time.perf_counter() - start
    return {table: sum(map(len, batches)) / spent[table] for table, batches in sides.items()}


def measure_inserts(url: str, single_rows: int, batches: int) -> dict[str, Any]:
    rng = random.Random(7)
    with connect(url) as conn:
        conn.execute("drop table if exists bench_bare")
        conn.execute(
            "create table bench_bare (like public.engagement_events including defaults including identity including generated)"
        )
        # The PRD's table without the engine: the same indexes, checks and FK, no triggers.
        conn.execute("create table bench_twin (like public.engagement_events including all)")
        conn.execute("alter table bench_twin add foreign key (user_id) references auth.users (id) on delete cascade")
        existing = [r[0] for r in conn.execute("select user_id from engagement_users limit 100000")]
        fresh = [
            r[0]
            for r in conn.execute(
                NEW_USERS, {"at": NOW - timedelta(days=400), "n": (3 * batches + 2 * max(2, batches)) * BATCH}
            )
        ]
        conn.commit()
        conn.execute("checkpoint")
        singles = [[rng.choice(existing)] for _ in range(single_rows)]
        known = [[rng.choice(existing) for _ in range(BATCH)] for _ in range(batches)]
        result: dict[str, Any] = {}
        n = batches * BATCH
        for case, rows, twin_rows, bare_rows in (
            ("single", singles, singles, singles),
            ("batch", known, known, known),
            # Each side gets users of its own, so each inserts every user's first row.
            ("new_users", _chunks(fresh[:n]), _chunks(fresh[n : 2 * n]), _chunks(fresh[2 * n : 3 * n])),
        ):
            rates = _rates(conn, {"public.engagement_events": rows, "bench_twin": twin_rows, "bench_bare": bare_rows})
            result[f"insert_{case}_per_s"] = rates["public.engagement_events"]
            result[f"insert_{case}_twin_per_s"] = rates["bench_twin"]
            result[f"insert_{case}_bare_per_s"] = rates["bench_bare"]
        for case, rows, block in (
            ("single", [[rng.choice(existing)] for _ in range(2 * max(2 * SINGLE_BLOCK, single_rows))], SINGLE_BLOCK),
            ("batch", [[rng.choice(existing) for _ in range(BATCH)] for _ in range(2 * max(2, batches))], 1),
            ("new_users", _chunks(fresh[3 * n :]), 1),
        ):
            with_triggers, without = _engine_cost(conn, rows, block, existing[0])
            result[f"insert_{case}_same_table_per_s"] = with_triggers
            result[f"insert_{case}_no_triggers_per_s"] = without
        conn.execute("drop table bench_bare, bench_twin")
        # Remove what was added, triggers off (the summary rows of the fresh users go with them).
        conn.execute("set session_replication_role = replica")
        conn.execute("delete from engagement_events where value @> '{\"bench\": true}' and event_type = 'app_open'")
        conn.execute("delete from engagement_last_activity where user_id = any(%s)", (fresh,))
        conn.execute("delete from engagement_users where user_id = any(%s)", (fresh,))
        conn.execute("delete from auth.users where id = any(%s)", (fresh,))
        conn.execute("reset session_replication_role")
        conn.commit()
    return result


def _engine_cost(conn: Any, statements: list[list[uuid.UUID]], block: int, warm: uuid.UUID) -> tuple[float, float]:
    """(rows/s with the triggers, rows/s without) on engagement_events: blocks of `block`
    statements, one transaction each, alternating on, off, off, on, ...; after each switch an
    untimed row for `warm` re-plans what the DDL invalidated; each side's median block."""
    at = NOW - timedelta(days=365)
    times: tuple[list[float], list[float]] = ([], [])
    blocks = [statements[i : i + block] for i in range(0, len(statements), block)]
    for i, chunk in enumerate(blocks):
        off = (i % 4) in (1, 2)
        conn.execute(f"alter table public.engagement_events {'disable' if off else 'enable'} trigger user")
        conn.execute(INSERT.format(table="public.engagement_events"), {"at": at, "users": [warm]})
        conn.commit()
        start = time.perf_counter()
        for ids in chunk:
            conn.execute(INSERT.format(table="public.engagement_events"), {"at": at, "users": ids})
            conn.commit()
        times[off].append((time.perf_counter() - start) / sum(map(len, chunk)))
    conn.execute("alter table public.engagement_events enable trigger user")
    conn.commit()
    on, off = (statistics.median(side) for side in times)
    return 1 / on, 1 / off


def _chunks(ids: list[uuid.UUID]) -> list[list[uuid.UUID]]:
    return [ids[i : i + BATCH] for i in range(0, len(ids), BATCH)]

"""What a beat's worth of writes costs the engine in all, wherever the work is done: on the
writer's path (summaries kept by the insert trigger) or in the next scan (folded off it, issue 21).

A month of the dataset's events spread over its 2,880 beats of 15 minutes gives the events one
beat follows (users x events per user / 2,880: 10,417 at 1M users and 30 events each). They are
inserted into engagement_events in 1,000-row batches (one transaction each) for users picked at
random, dated after the benchmark's simulated day so that each raises its user's summaries like
a new event does; then, where the schema folds, the fold the next scan would run is timed. The
writes plus the fold are what the beat's writes cost in all, before and after moving the work.
Afterwards the rows are deleted with the triggers on, which recomputes the touched summaries from
the log (and the fold runs again), so later runs decide as before.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta
from typing import Any

from bench.data import FOLD_SUMMARIES, NOW
from events_schema.db import connect

BATCH = 1000
BEATS_IN_A_MONTH = 30 * 96
INSERT = """
insert into public.engagement_events (user_id, "timestamp", event_type, value)
select u, %(at)s::timestamptz, 'app_open', '{"bench": "fold"}'::jsonb
from unnest(%(users)s::uuid[]) as u
"""
# With the triggers on: the delete trigger recomputes the touched summaries from the log.
DELETE = """delete from public.engagement_events where value @> '{"bench": "fold"}'"""
HAS_FOLD = "select to_regprocedure('public.fold_engagement_summaries()') is not null"


def measure_fold(url: str, users: int, events_per_user: int) -> dict[str, Any]:
    rng = random.Random(21)
    events = max(1, round(users * events_per_user / BEATS_IN_A_MONTH))
    at = NOW + timedelta(days=2)
    with connect(url) as conn:
        pool = [r[0] for r in conn.execute("select user_id from engagement_users limit 200000")]
        has_fold = conn.execute(HAS_FOLD).fetchone()[0]
        conn.commit()
        conn.execute("checkpoint")
        picked = [rng.choice(pool) for _ in range(events)]
        try:
            start = time.perf_counter()
            for i in range(0, events, BATCH):
                conn.execute(INSERT, {"at": at, "users": picked[i : i + BATCH]})
                conn.commit()
            writes = time.perf_counter() - start
            fold, folded = None, None
            if has_fold:
                start = time.perf_counter()
                folded = conn.execute("select public.fold_engagement_summaries()").fetchone()[0]
                conn.commit()
                fold = time.perf_counter() - start
                if folded is None:
                    raise RuntimeError("the fold was locked out (another fold or a recompute held its lock)")
        finally:
            conn.rollback()
            conn.execute(DELETE)
            conn.commit()
            conn.execute(FOLD_SUMMARIES)
            conn.commit()
    result: dict[str, Any] = {"fold_events": events, "fold_writes_s": writes, "fold_total_s": writes + (fold or 0.0)}
    if fold is not None:
        result |= {"fold_s": fold, "fold_rows": folded}
    return result

"""Sharded scans through real worker processes: the shards together write exactly the nudges one
scan writes on the same data (a full scan, then an incremental one that releases a time zone's
quiet-hours holds and picks up newly due users), also when a shard's worker is SIGKILLed halfway;
and a beat does not start while a shard of the previous scan holds its lease."""

from __future__ import annotations

import ast
import json
import os
import signal
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.integration.scan.scan_helpers import at
from tests.integration.worker_process import celery_cli, celery_env, pool_children, running_worker
from worker.scan.scanner import query, run_scan
from worker.scan.shards import shard_of

pytestmark = pytest.mark.worker

T1, T2 = "2026-03-05T12:00:00+00:00", "2026-03-05T13:15:00+00:00"
# Four zones (New York is in quiet hours at T1, released at 13:00Z), a tenth opted out; lapsed
# users, users who become due between T1 and T2, and active ones.
ARRANGE = """
with u as (
  insert into auth.users (id, created_at, raw_user_meta_data)
  select gen_random_uuid(), '2026-03-01T00:00:00Z',
         jsonb_build_object('timezone', (array['UTC','Europe/Berlin','America/New_York','Asia/Tokyo'])[1 + g %% 4],
                            'nudges_opt_out', (g %% 10 = 0)::text)
  from generate_series(1, %(n)s) g
  returning id
)
insert into engagement_events (user_id, "timestamp", event_type)
select id, (array['2026-03-02T10:00:00Z', '2026-03-03T12:30:00Z', '2026-03-05T09:00:00Z'])[1 + (row_number() over ()) %% 3]::timestamptz,
       'app_open'
from u
"""
TOTAL = 3000
NUDGES = """
select user_id, "timestamp", value ->> 'rule', value ->> 'last_active_at'
from engagement_events where event_type = 'nudge_sent'
"""


def nudge_count(admin: psycopg.Connection) -> int:
    return admin.execute("select count(*) from engagement_events where event_type = 'nudge_sent'").fetchone()[0]


def reset_engine(admin: psycopg.Connection) -> None:
    admin.execute("set session_replication_role = replica")
    admin.execute("delete from engagement_events where event_type = 'nudge_sent'")
    admin.execute("truncate nudge_pending, nudge_scan_state, nudge_scan_leases")
    admin.execute("reset session_replication_role")


def result(task_id: str, env: dict[str, str]) -> dict:
    done = celery_cli(["result", task_id], env, timeout=180)
    assert done.returncode == 0, done.stderr
    return ast.literal_eval(done.stdout.strip())


def sharded_scan(env: dict[str, str], as_of: str, shards: int, **kwargs: object) -> dict:
    """Send the scan as the beat does; the parent's summary, then the chord's merged one."""
    sent = celery_cli(
        ["call", "scan_inactive", "--kwargs", json.dumps({"as_of": as_of, "shards": shards, **kwargs})], env
    )
    assert sent.returncode == 0, sent.stderr
    parent = result(sent.stdout.strip(), env)
    return result(parent["summary_id"], env) if parent["ran"] else parent


def test_each_shards_candidates_are_the_users_python_puts_in_it(admin: psycopg.Connection) -> None:
    admin.execute(
        "insert into auth.users (id, created_at) select gen_random_uuid(), %s from generate_series(1, 700)",
        (at("2026-03-01T00:00:00"),),
    )
    # Users whose latest activity is after as_of: the full scan's second branch finds them.
    admin.execute(
        'insert into engagement_events (user_id, "timestamp", event_type)'
        " select user_id, %s, 'app_open' from engagement_users order by user_id limit 300",
        (at(T1) + timedelta(hours=1),),
    )
    users = {r[0] for r in admin.execute("select user_id from engagement_users")}
    params = {
        "budget_open": True,
        "cutoff": at("2026-03-03T12:00:00"),
        "as_of": at(T1),
        "window_start": at("2026-02-01T00:00:00"),
        "rule": "inactive_48h",
        "shards": 7,
    }
    for candidates in ("scan_candidates_full", "scan_candidates_full_typed", "scan_candidates_incremental"):
        for limit in (10_000, 23):  # one batch, and many batches following the keyset as the scan does
            found: list[uuid.UUID] = []
            for index in range(7):
                shard: list[uuid.UUID] = []
                after = after_at = None
                while rows := admin.execute(
                    query(candidates),
                    {
                        **params,
                        "event_types": None,
                        "limit": limit,
                        "shard": index,
                        "after": after,
                        "after_at": after_at,
                    },
                ).fetchall():
                    batch = [r[0] for r in rows if r[1]]
                    assert len(batch) <= limit
                    shard += batch
                    after, _, after_at = rows[-1][:3]
                assert shard and all(shard_of(u, 7) == index for u in shard), (candidates, limit, index)
                found += shard
            assert sorted(found) == sorted(users), (candidates, limit)  # disjoint, and together everyone


def test_the_sql_shard_function_is_pythons_and_is_inlined(admin: psycopg.Connection) -> None:
    """engagement_shard gives shard_of's answer, and the planner inlines it: a call per user of a
    function with its own settings would cost 20x the bare expression."""
    ids = [uuid.uuid4() for _ in range(500)] + [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)]
    for count in (1, 2, 7, 64):
        got = admin.execute(
            "select u, public.engagement_shard(u, %s) from unnest(%s::uuid[]) u", (count, ids)
        ).fetchall()
        assert got == [(u, shard_of(u, count)) for u in ids]
    plan = "\n".join(
        r[0]
        for r in admin.execute(
            "explain (verbose) select user_id from engagement_users where public.engagement_shard(user_id, 7) = 3"
        )
    )
    assert "get_byte" in plan and "engagement_shard" not in plan


def test_a_sharded_scan_writes_exactly_the_nudges_of_one_scan(
    admin: psycopg.Connection, db_url: str, redis_url: str, settings_env: str
) -> None:
    admin.execute(ARRANGE, {"n": 400})
    run_scan(at(T1), full=True)
    single_t1 = set(admin.execute(NUDGES).fetchall())
    run_scan(at(T2))
    single = set(admin.execute(NUDGES).fetchall())
    assert len(single) > len(single_t1) > 0  # the second scan released holds and found newly due users
    reset_engine(admin)

    queue = f"test-{uuid.uuid4().hex}"
    env = celery_env(queue, database_url=db_url, redis_url=redis_url, scan_batch_size="37")
    with running_worker(env, queue):
        first = sharded_scan(env, T1, 3, full=True)
        assert set(admin.execute(NUDGES).fetchall()) == single_t1
        second = sharded_scan(env, T2, 3)
    assert first["ran"] and second["ran"] and first["shards"] == second["shards"] == 3
    assert set(admin.execute(NUDGES).fetchall()) == single
    assert first["nudged"] + second["nudged"] == len(single)
    states = admin.execute("select rule, scanned_through from nudge_scan_state order by rule").fetchall()
    assert states == [(f"inactive_48h#{i}/3", at(T2)) for i in range(3)]
    assert admin.execute("select count(*) from nudge_scan_leases").fetchone()[0] == 0


def test_a_shard_killed_halfway_re_runs_and_the_nudges_are_still_one_scans(
    admin: psycopg.Connection, db_url: str, redis_url: str, settings_env: str
) -> None:
    admin.execute(
        "insert into auth.users (id, created_at) select gen_random_uuid(), %s from generate_series(1, %s)",
        (at("2026-03-01T00:00:00"), TOTAL),
    )
    due: list[uuid.UUID] = []
    run_scan(at(T1), dry_run=True, on_decision=lambda d: due.append(d.user_id) if d.decision == "nudge" else None)
    assert len(due) == TOTAL
    queue = f"test-{uuid.uuid4().hex}"
    env = celery_env(queue, database_url=db_url, redis_url=redis_url, scan_batch_size="10")
    with running_worker(env, queue, pool="prefork") as worker:
        sent = celery_cli(
            ["call", "scan_inactive", "--kwargs", json.dumps({"as_of": T1, "full": True, "shards": 3})], env
        )
        assert sent.returncode == 0, sent.stderr
        deadline = time.monotonic() + 120
        while (written := nudge_count(admin)) == 0:
            assert time.monotonic() < deadline, "the shards wrote nothing in 120 s"
            time.sleep(0.01)
        [child] = pool_children(worker)
        os.kill(child, signal.SIGKILL)
        assert written < TOTAL // 3  # killed inside the first shard
        merged = result(result(sent.stdout.strip(), env)["summary_id"], env)
    assert merged["ran"], merged["note"]
    assert merged["skipped"]["already_nudged"] > 0  # the killed shard's batches stayed written
    assert merged["nudged"] + merged["skipped"]["already_nudged"] == TOTAL
    rows = admin.execute("select user_id from engagement_events where event_type = 'nudge_sent'").fetchall()
    assert sorted(r[0] for r in rows) == sorted(due)  # each due user once, as one scan decides
    assert admin.execute("select count(*) from nudge_scan_leases").fetchone()[0] == 0


def test_a_beat_does_not_start_while_a_shard_of_the_previous_scan_holds_its_lease(
    admin: psycopg.Connection, db_url: str, redis_url: str
) -> None:
    admin.execute(ARRANGE, {"n": 40})
    now = datetime.now(UTC)
    lease = "insert into nudge_scan_leases values ('inactive_48h#1/3', gen_random_uuid(), 'task previous', %s, %s)"
    admin.execute(lease, (now, now + timedelta(minutes=5)))
    queue = f"test-{uuid.uuid4().hex}"
    env = celery_env(queue, database_url=db_url, redis_url=redis_url)
    with running_worker(env, queue):
        refused = sharded_scan(env, T1, 3, full=True)
        assert not refused["ran"] and "inactive_48h#1/3" in refused["note"]
        assert admin.execute("select rule from nudge_scan_leases").fetchall() == [("inactive_48h#1/3",)]
        assert (
            admin.execute("select count(*) from engagement_events where event_type = 'nudge_sent'").fetchone()[0] == 0
        )
        # The other side: the previous shard's lease has expired (it died): the scan starts.
        admin.execute("update nudge_scan_leases set expires_at = %s", (now - timedelta(seconds=1),))
        ran = sharded_scan(env, T1, 3, full=True)
    assert ran["ran"] and ran["nudged"] > 0

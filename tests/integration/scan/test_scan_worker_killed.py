"""A Celery pool child killed by SIGKILL mid-scan: the task is re-delivered (task_acks_late and
task_reject_on_worker_lost are on), takes its own lease back at once (same task id) and
completes. No pooler here: this is the crash the session advisory lock used to turn into a
silent `ran: false`."""

from __future__ import annotations

import ast
import json
import os
import signal
import time
import uuid

import psycopg
import pytest

from tests.integration.scan.scan_helpers import at
from tests.integration.worker_process import celery_cli, celery_env, pool_children, running_worker

pytestmark = pytest.mark.worker

TOTAL = 3000


def nudged(admin: psycopg.Connection) -> int:
    return admin.execute("select count(*) from engagement_events where event_type = 'nudge_sent'").fetchone()[0]


def test_a_worker_killed_mid_scan_is_re_delivered_and_the_scan_completes(
    admin: psycopg.Connection, db_url: str, redis_url: str
) -> None:
    admin.execute(
        "insert into auth.users (id, created_at) select gen_random_uuid(), %s from generate_series(1, %s)",
        (at("2026-03-01T00:00:00"), TOTAL),
    )
    queue = f"test-{uuid.uuid4().hex}"
    # A lease far longer than the test: the re-delivered task completes only by taking its own
    # lease back (same task id), never by waiting it out (which would report ran: false).
    env = celery_env(queue, database_url=db_url, redis_url=redis_url, scan_batch_size="25", scan_lease_seconds="3600")
    with running_worker(env, queue, pool="prefork") as worker:
        sent = celery_cli(
            ["call", "scan_inactive", "--kwargs", json.dumps({"as_of": "2026-03-05T12:00:00+00:00", "full": True})], env
        )
        assert sent.returncode == 0, sent.stderr
        task_id = sent.stdout.strip()
        deadline = time.monotonic() + 120
        while nudged(admin) == 0:
            assert time.monotonic() < deadline, "the scan wrote nothing in 120 s"
            time.sleep(0.01)
        [child] = pool_children(worker)
        os.kill(child, signal.SIGKILL)
        killed_at = time.monotonic()
        assert nudged(admin) < TOTAL
        while nudged(admin) < TOTAL and time.monotonic() - killed_at < 120:
            time.sleep(0.2)
        result = celery_cli(["result", task_id], env)
    assert result.returncode == 0, result.stderr
    summary = ast.literal_eval(result.stdout.strip())
    assert summary["ran"], summary["note"]
    assert summary["nudged"] + summary["skipped"]["already_nudged"] == TOTAL
    assert summary["skipped"]["already_nudged"] > 0  # the killed run's batches stayed written
    per_user = admin.execute(
        "select count(distinct user_id), count(*) from engagement_events where event_type = 'nudge_sent'"
    ).fetchone()
    assert per_user == (TOTAL, TOTAL)
    assert admin.execute("select count(*) from nudge_scan_leases").fetchone()[0] == 0
    print(
        f"\nkilled worker: re-delivered scan nudged {summary['nudged']}, "
        f"{summary['skipped']['already_nudged']} already nudged by the killed run; total {TOTAL}"
    )

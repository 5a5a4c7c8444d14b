"""The engine as ops run it: a real worker process on the real Redis, `celery call`, and beat.

No frozen time here: kombu waits on the monotonic clock. Instants are passed as `as_of`, or the
data is arranged relative to the real clock.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.integration.scan.scan_helpers import add_event, add_user
from tests.integration.worker_process import PROJECT_ROOT, celery_cli, celery_env, running_worker, task_result

pytestmark = pytest.mark.worker


def wait_for_rows(conn: psycopg.Connection, statement: str, count: int, timeout: float = 60) -> list[tuple]:
    """The rows of `statement` once there are `count` of them (or whatever there is at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = conn.execute(statement).fetchall()
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def wait_for_nudges(conn: psycopg.Connection, count: int, timeout: float = 60) -> list[tuple]:
    return wait_for_rows(
        conn, "select user_id, value from engagement_events where event_type = 'nudge_sent'", count, timeout
    )


def test_celery_call_scan_inactive_nudges_through_a_real_worker(
    admin: psycopg.Connection, db_url: str, redis_url: str
) -> None:
    lapsed = add_user(admin, "2026-03-01T00:00:00")
    add_event(admin, lapsed, "2026-03-02T10:00:00")
    active = add_user(admin, "2026-03-01T00:00:00")
    add_event(admin, active, "2026-03-05T09:00:00")
    queue = f"test-{uuid.uuid4().hex}"
    env = celery_env(queue, database_url=db_url, redis_url=redis_url)

    kwargs = json.dumps({"as_of": "2026-03-05T12:00:00+00:00"})
    with running_worker(env, queue):
        sent = celery_cli(["call", "scan_inactive", "--kwargs", kwargs], env)
        assert sent.returncode == 0, sent.stderr
        first = task_result(redis_url, sent.stdout.strip())
        # The same call again (a duplicate beat, an impatient operator) runs and changes nothing.
        resent = celery_cli(["call", "scan_inactive", "--kwargs", kwargs], env)
        assert resent.returncode == 0, resent.stderr
        second = task_result(redis_url, resent.stdout.strip())
    rows = wait_for_nudges(admin, 1)
    assert [(user, value["rule"]) for user, value in rows] == [(lapsed, "inactive_48h")]
    assert (first["ran"], first["nudged"]) == (True, 1)
    assert (second["ran"], second["nudged"], second["skipped"]["already_nudged"]) == (True, 0, 1)


def test_beat_triggers_scans_by_itself(admin: psycopg.Connection, db_url: str, redis_url: str, tmp_path) -> None:
    signed_up = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    users = [add_user(admin, signed_up) for _ in range(3)]
    queue = f"test-{uuid.uuid4().hex}"
    # Quiet hours off: the real clock may be in anyone's night.
    env = celery_env(
        queue, database_url=db_url, redis_url=redis_url, scan_interval_seconds="1", quiet_hours_enabled="false"
    )

    with running_worker(env, queue):
        beat = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "worker",
                "beat",
                "--loglevel=info",
                f"--schedule={tmp_path / 'beat-schedule'}",
                f"--pidfile={tmp_path / 'beat.pid'}",
            ],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            rows = wait_for_nudges(admin, 3)
            # The scan's state is written in its own transaction, after its last batch's nudges.
            scans = wait_for_rows(admin, "select scanned_through from nudge_scan_state", 1)
        finally:
            beat.terminate()
            beat.wait(timeout=20)
    assert sorted(user for user, _ in rows) == sorted(users)
    assert len(scans) == 1

"""`python -m worker health` against real servers: a real worker process on this test's queue,
the worker's own login, scan state written by real scans, and servers that are down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from sqlalchemy.engine import make_url

from events_schema.db import connect
from events_schema.settings import Settings
from tests.integration.worker_process import PROJECT_ROOT, celery_env, running_worker
from worker.database import dispose_engines
from worker.health.checks import OVERDUE_FACTOR, scans
from worker.scan.scanner import run_scan

INTERVAL = 600


def health_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m worker health`; a check that hangs instead of giving up fails the 60 s timeout."""
    return subprocess.run(
        [sys.executable, "-m", "worker", "health", *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def by_name(result: subprocess.CompletedProcess[str]) -> dict[str, dict]:
    return {check["name"]: check for check in json.loads(result.stdout)["checks"]}


@pytest.fixture
def queue() -> str:
    return f"test-health-{uuid.uuid4().hex}"


@pytest.fixture
def scanned_now(db_url: str) -> None:
    run_scan(datetime.now(UTC), url=db_url)
    dispose_engines()


@pytest.mark.worker
def test_healthy_with_a_real_worker_on_the_queue_and_the_worker_login(
    db_url: str, redis_url: str, queue: str, scanned_now: None
) -> None:
    worker_url = make_url(db_url).set(username="engagement_worker").render_as_string(hide_password=False)
    env = celery_env(
        queue,
        database_url="postgresql://postgres@127.0.0.1:1/unused",
        worker_database_url=worker_url,
        redis_url=redis_url,
    )
    with running_worker(env, queue):
        result = health_cli(env, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    checks = by_name(result)
    assert checks["database"]["user"] == "engagement_worker" and checks["database"]["pending"] == []
    assert checks["workers"]["workers"] == [f"{queue}@{os.uname().nodename}"]
    assert checks["scan inactive_48h"]["overdue"] is False
    assert json.loads(result.stdout)["healthy"] is True


@pytest.mark.worker
def test_workers_of_other_queues_do_not_count(db_url: str, redis_url: str, queue: str, scanned_now: None) -> None:
    env = celery_env(queue, database_url=db_url, redis_url=redis_url)
    with running_worker(celery_env(f"{queue}-other", database_url=db_url, redis_url=redis_url), f"{queue}-other"):
        result = health_cli(env, "--json", "--timeout", "2")
    assert result.returncode == 1
    checks = by_name(result)
    assert checks["workers"]["ok"] is False and checks["workers"]["workers"] == []
    assert checks["database"]["ok"] and checks["broker"]["ok"]


def test_a_pending_migration_and_a_rule_never_scanned_are_unhealthy(
    admin: psycopg.Connection, db_url: str, redis_url: str, queue: str
) -> None:
    admin.execute("delete from supabase_migrations.schema_migrations where version = '20261201100300'")
    result = health_cli(celery_env(queue, database_url=db_url, redis_url=redis_url), "--timeout", "1")
    assert result.returncode == 1
    lines = {line.split()[1]: line for line in result.stdout.splitlines() if line.startswith(("ok", "FAIL"))}
    assert lines["database"].startswith("FAIL") and "1 migration(s) pending: 20261201100300" in lines["database"]
    assert result.stdout.count("FAIL  scan inactive_48h") == 1 and "never scanned" in result.stdout


def test_overdue_exactly_after_the_allowed_intervals(db_url: str) -> None:
    """Both sides of the boundary, with the instants passed in (the scan's as_of is its time)."""
    scanned_at = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    run_scan(scanned_at, url=db_url)
    dispose_engines()
    settings = Settings(_env_file=None, scan_interval_seconds=INTERVAL)
    limit = scanned_at + OVERDUE_FACTOR * timedelta(seconds=INTERVAL)
    with connect(db_url, autocommit=True) as conn:
        [on_time] = scans(conn, settings, limit)
        [late] = scans(conn, settings, limit + timedelta(seconds=1))
    assert on_time.ok and not on_time.data["overdue"]
    assert not late.ok and "overdue: expected every 10 min" in late.detail


def test_reconciliation_overdue_exactly_after_the_allowed_intervals(admin: psycopg.Connection, db_url: str) -> None:
    """Incremental scans on time do not hide a full scan that stopped: the last full one may be
    OVERDUE_FACTOR reconcile intervals old, not a microsecond more."""
    scanned_at = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    run_scan(scanned_at, url=db_url)
    dispose_engines()
    settings = Settings(_env_file=None, scan_interval_seconds=INTERVAL, reconcile_interval_hours=6)
    limit = scanned_at - OVERDUE_FACTOR * timedelta(hours=6)
    checks = []
    for full_scan_at in (limit, limit - timedelta(microseconds=1)):
        admin.execute("update nudge_scan_state set full_scan_at = %s", (full_scan_at,))
        with connect(db_url, autocommit=True) as conn:
            checks += scans(conn, settings, scanned_at)
    on_time, late = checks
    assert on_time.ok and not on_time.data["overdue"], on_time.detail
    assert not late.ok and late.data["overdue"]
    assert late.detail.endswith("; reconciliation overdue: expected every 6.0 h"), late.detail


def test_a_sharded_rule_is_scanned_only_when_every_shard_is_and_as_late_as_its_latest(db_url: str) -> None:
    from worker.scan.shards import Shard

    early, late = (datetime(2026, 12, 1, h, 0, tzinfo=UTC) for h in (11, 12))
    settings = Settings(_env_file=None, scan_interval_seconds=INTERVAL, scan_shards=2)
    run_scan(early, url=db_url, shard=Shard(0, 2))
    dispose_engines()
    with connect(db_url, autocommit=True) as conn:
        [one_shard] = scans(conn, settings, late)
    run_scan(late, url=db_url, shard=Shard(1, 2))
    dispose_engines()
    with connect(db_url, autocommit=True) as conn:
        [both] = scans(conn, settings, late)
    assert not one_shard.ok and one_shard.detail == "never scanned"
    assert both.data["last_scan"] == early.isoformat()  # the shard scanned longest ago


@pytest.mark.parametrize("down", ["database", "broker"])
def test_a_server_down_is_one_line_and_unhealthy(db_url: str, redis_url: str, queue: str, down: str) -> None:
    env = celery_env(queue, database_url=db_url, redis_url=redis_url)
    env["DATABASE_URL" if down == "database" else "REDIS_URL"] = (
        "postgresql://postgres@127.0.0.1:1/nowhere" if down == "database" else "redis://127.0.0.1:1/0"
    )
    result = health_cli(env, "--timeout", "2")
    assert result.returncode == 1 and result.stderr == "" and "Traceback" not in result.stdout
    [line] = [line for line in result.stdout.splitlines() if line.split()[1:2] == [down]]
    assert line.startswith("FAIL") and ("127.0.0.1:1" in line or "port 1" in line)

"""`python -m worker scan --via-queue [--wait] [--json]`: ops' one scan now, through the broker,
against a real worker process on this test's queue; and with the broker down, one line at once
(where `celery -A worker call scan_inactive` retries for about 20 s and prints a traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import redis

from tests.integration.faults.servers import free_port
from tests.integration.scan.scan_helpers import add_event, add_user, nudges
from tests.integration.worker_process import PROJECT_ROOT, celery_env, running_worker

AS_OF = "2026-03-05T12:00:00+00:00"


def scan_cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker", "scan", "--via-queue", *args],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def queue(redis_url: str) -> Iterator[str]:
    name = f"test-via-queue-{uuid.uuid4().hex}"
    yield name
    redis.Redis.from_url(redis_url).delete(name)  # a task no worker took


@pytest.fixture
def lapsed(admin: psycopg.Connection) -> uuid.UUID:
    user = add_user(admin, "2026-03-01T00:00:00")
    add_event(admin, user, "2026-03-02T10:00:00")
    return user


@pytest.mark.worker
def test_via_queue_wait_prints_the_workers_outcome_in_one_line(
    admin: psycopg.Connection, db_url: str, redis_url: str, queue: str, lapsed: uuid.UUID
) -> None:
    env = celery_env(queue, database_url=db_url, redis_url=redis_url)
    with running_worker(env, queue):
        dry = scan_cli(env, "--wait", "--dry-run", "--as-of", AS_OF)
        done = scan_cli(env, "--wait", "--json", "--as-of", AS_OF)
    assert dry.returncode == 0 and dry.stderr == "", dry.stderr
    [line] = dry.stdout.splitlines()
    assert f"as_of={AS_OF} (dry run): examined=1 due=1 nudged=1" in line, line
    assert done.returncode == 0 and done.stderr == "", done.stderr
    outcome = json.loads(done.stdout)
    assert (outcome["ran"], outcome["nudged"], outcome["dry_run"]) == (True, 1, False)
    assert len(nudges(admin, lapsed)) == 1  # the worker wrote it, once


@pytest.mark.worker
def test_via_queue_without_wait_queues_and_returns(
    admin: psycopg.Connection, db_url: str, redis_url: str, queue: str, lapsed: uuid.UUID
) -> None:
    env = celery_env(queue, database_url=db_url, redis_url=redis_url)
    sent = scan_cli(env, "--json", "--as-of", AS_OF)
    assert sent.returncode == 0 and sent.stderr == "", sent.stderr
    assert json.loads(sent.stdout)["queue"] == queue
    with running_worker(env, queue):  # the queued task waited for a worker
        deadline = time.monotonic() + 60
        while not nudges(admin, lapsed) and time.monotonic() < deadline:
            time.sleep(0.2)
    assert len(nudges(admin, lapsed)) == 1


def test_via_queue_wait_with_no_worker_says_so_in_one_line(db_url: str, redis_url: str, queue: str) -> None:
    env = celery_env(queue, database_url=db_url, redis_url=redis_url)
    result = scan_cli(env, "--wait", "--timeout", "1")
    assert result.returncode == 1 and result.stdout == "", result.stdout
    [line] = result.stderr.splitlines()
    assert line.startswith("error: no outcome within 1 s: the scan is still queued or running (task ")
    assert "python -m worker health" in line


@pytest.mark.parametrize("args", [(), ("--wait",), ("--wait", "--json")], ids=["send", "wait", "wait json"])
def test_via_queue_with_the_broker_down_is_one_line_at_once(db_url: str, queue: str, args: tuple[str, ...]) -> None:
    env = celery_env(queue, database_url=db_url, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    # No publish retries, no result-backend retries: this wait's timeout is well under the 20 s
    # Celery's own command takes (and wide enough for any load).
    result = scan_cli(env, *args, timeout=15)
    assert result.returncode == 1 and result.stdout == "", result.stdout
    [line] = result.stderr.splitlines()
    assert line.startswith("error: cannot reach the broker at redis://127.0.0.1:") and "Traceback" not in line


def test_wait_without_via_queue_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "worker", "scan", "--wait"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1 and "--via-queue" in result.stderr

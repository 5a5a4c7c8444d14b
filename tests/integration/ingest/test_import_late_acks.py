"""Late acks for real: the process running `import_events` is killed with SIGKILL halfway (as the
OOM killer would), the task is delivered again, and its events end up in the table exactly once.

The task is held halfway on purpose: an uncommitted row with the id of one of the batch's rows
makes the second chunk's insert wait for that transaction, after the first chunk committed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from tests.integration.ingest.import_helpers import add_users, event, stored_ids
from tests.integration.worker_process import celery_cli, celery_env, running_worker, task_result

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_a_task_whose_worker_dies_is_run_again_and_writes_once(
    admin: psycopg.Connection, db_url: str, redis_url: str
) -> None:
    users = add_users(admin, 3)
    batch = [event(users[n % 2], value={"n": n}) for n in range(10)]
    queue = f"test-{uuid.uuid4().hex}"
    env = celery_env(queue, database_url=db_url, redis_url=redis_url, import_chunk_size="5")
    logs: list[str] = []

    with psycopg.connect(admin.info.dsn) as blocker:  # a transaction of its own, left open
        # A user of its own: the summary rows it locks (engagement_users, engagement_last_activity)
        # are not the batch's, so only the second chunk (with the same id) waits for it.
        blocker.execute(
            "insert into engagement_events (id, user_id, event_type) values (%s, %s, 'held_row')",
            (batch[7]["id"], users[2]),
        )
        with running_worker(env, queue, pool="prefork", name="first-", log_to=logs) as first:
            sent = celery_cli(["call", "import_events", "--kwargs", json.dumps({"batch": batch, "batch_id": "b"})], env)
            assert sent.returncode == 0, sent.stderr
            # The first chunk is in; the second waits on the open transaction.
            wait_for(
                lambda: (
                    len(stored_ids(admin)) == 5
                    and admin.execute(
                        "select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'"
                    ).fetchone()[0]
                    == 1
                )
            )
            [child] = children(first.pid)
            # The first worker stops taking tasks from the queue, so the redelivery goes to the second.
            stop = celery_cli(["control", "cancel_consumer", queue, "-d", f"first-{queue}@{socket.gethostname()}"], env)
            assert stop.returncode == 0 and "no longer consuming" in stop.stdout, stop.stdout + stop.stderr
            with running_worker(env, queue, name="second-", log_to=logs):
                os.kill(child, signal.SIGKILL)
                blocker.rollback()
                outcome = task_result(redis_url, sent.stdout.strip())

    assert (outcome["inserted"], outcome["duplicates"], outcome["rejected"]) == (5, 5, 0)
    assert stored_ids(admin) == {row["id"] for row in batch}
    assert admin.execute("select count(*) from engagement_events").fetchone()[0] == 10
    second_log, first_log = logs  # the inner block ended first
    task = f"[{sent.stdout.strip()}]"
    assert f"{task} received" in first_log and "WorkerLostError" in first_log and "succeeded" not in first_log, (
        first_log
    )
    assert f"{task} received" in second_log and f"{task} succeeded" in second_log, second_log

"""The broker restarts: with tasks queued (no worker), and under an idle worker.

The test's own redis-server keeps an append-only file, as a deployment's broker should: the
queued tasks are messages in Redis, and only what Redis persists survives its restart.
"""

from __future__ import annotations

import psycopg
import pytest

from tests.integration.faults.data import client
from tests.integration.faults.processes import start_worker, wait_until
from tests.integration.faults.servers import RedisServer
from tests.integration.ingest.import_helpers import add_users, event, stored_ids

pytestmark = [pytest.mark.slow, pytest.mark.worker]


def send_batches(redis_url: str, queue: str, users: list, count: int) -> set[str]:
    """`count` one-event import tasks; returns the ids they must insert."""
    sender = client(redis_url)
    ids = set()
    for n in range(count):
        row = event(users[n % len(users)], value={"n": n})
        sender.send_task("import_events", kwargs={"batch": [row], "batch_id": f"b{n}"}, queue=queue)
        ids.add(row["id"])
    sender.close()
    return ids


def test_tasks_queued_before_a_broker_restart_are_all_done_afterwards(
    admin: psycopg.Connection, fault_env: dict[str, str], queue: str, own_redis: RedisServer
) -> None:
    users = add_users(admin, 5)
    expected = send_batches(own_redis.url, queue, users, 20)
    own_redis.stop()
    own_redis.start()
    worker = start_worker(fault_env, queue)
    try:
        wait_until(lambda: stored_ids(admin) >= expected, 60, lambda: f"{len(stored_ids(admin))} of 20 events")
    finally:
        worker.stop()
    assert stored_ids(admin) == expected


def test_an_idle_worker_resumes_consuming_after_the_broker_restarts(
    admin: psycopg.Connection, fault_env: dict[str, str], queue: str, own_redis: RedisServer
) -> None:
    users = add_users(admin, 5)
    worker = start_worker(fault_env, queue)
    try:
        first = send_batches(own_redis.url, queue, users, 3)
        wait_until(lambda: stored_ids(admin) >= first, 30, "the worker did not consume before the restart")
        own_redis.stop()
        # Down long enough for the worker to notice and start reconnecting.
        wait_until(
            lambda: "Connection to broker lost" in worker.output(),
            30,
            lambda: f"the worker did not notice:\n{worker.output()}",
        )
        own_redis.start()
        after = send_batches(own_redis.url, queue, users, 10)
        wait_until(
            lambda: stored_ids(admin) >= first | after,
            60,
            lambda: f"{len(stored_ids(admin))} of 13 events:\n{worker.output()}",
        )
        # And it goes on consuming: another round, well after the reconnect.
        more = send_batches(own_redis.url, queue, users, 5)
        wait_until(lambda: stored_ids(admin) >= first | after | more, 30, "the worker stopped consuming")
    finally:
        worker.stop()
    assert stored_ids(admin) == first | after | more

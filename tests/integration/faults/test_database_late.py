"""A worker started while its database is down starts anyway, and its tasks wait it out."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from events_schema.db import connect
from events_schema.migrate import migrate
from tests.integration.faults.data import AS_OF, assert_nudged_once, client, due_users
from tests.integration.faults.processes import start_worker, wait_until
from tests.integration.faults.servers import PostgresServer, RedisServer
from tests.integration.worker_process import celery_env

pytestmark = [pytest.mark.slow, pytest.mark.worker]


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.init()
    server.start()
    yield server
    server.close()


def test_a_worker_started_before_the_database_recovers_when_it_comes(
    private_postgres: PostgresServer, own_redis: RedisServer
) -> None:
    private_postgres.create_database()
    migrate(private_postgres.url)
    with connect(private_postgres.url, autocommit=True) as conn:
        users = due_users(conn, 30)
    private_postgres.stop()

    queue = f"fault-{uuid.uuid4().hex[:12]}"
    env = celery_env(
        queue,
        DATABASE_URL=private_postgres.url,
        REDIS_URL=own_redis.url,
        TASK_RETRY_BACKOFF_SECONDS="1",
        TASK_RETRY_BACKOFF_MAX_SECONDS="2",
        QUIET_HOURS_ENABLED="false",
    )
    worker = start_worker(env, queue)  # ready although the database is down
    try:
        result = client(own_redis.url).send_task("scan_inactive", kwargs={"as_of": AS_OF.isoformat()}, queue=queue)
        wait_until(
            lambda: worker.output().count("Retry in") >= 2, 60, lambda: f"the task did not retry:\n{worker.output()}"
        )
        private_postgres.start()
        summary = result.get(timeout=60)
        log = worker.output()
    finally:
        worker.stop()
    assert "Connection refused" in log
    assert summary["ran"] and summary["nudged"] == len(users)
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{private_postgres.port}/engagement") as conn:
        assert_nudged_once(conn, users)

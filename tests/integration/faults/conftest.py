"""Fixtures of the fault tests: a private Redis per test, and the test's environment."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.integration.faults.servers import RedisServer
from tests.integration.worker_process import celery_env


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def queue() -> str:
    return f"fault-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def fault_env(db_url: str, own_redis: RedisServer, queue: str) -> dict[str, str]:
    """The test's database and private Redis, quick retries, a short visibility timeout."""
    return celery_env(
        queue,
        DATABASE_URL=db_url,
        REDIS_URL=own_redis.url,
        TASK_RETRY_BACKOFF_SECONDS="1",
        TASK_RETRY_BACKOFF_MAX_SECONDS="2",
        BROKER_VISIBILITY_TIMEOUT_SECONDS="5",
        QUIET_HOURS_ENABLED="false",
    )

"""`apply_retention` and `forget_user` as ops send them: `celery -A worker call` to a real worker
process, which reads RETENTION_DAYS from its own environment."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from tests.integration.ingest.import_helpers import NOW, add_users
from tests.integration.retention.test_retention import add_events, days_ago, seen_by_user
from tests.integration.worker_process import celery_cli, celery_env, running_worker, task_result

pytestmark = pytest.mark.worker


def test_retention_and_forget_user_through_a_real_worker(
    admin: psycopg.Connection, api: psycopg.Connection, db_url: str, redis_url: str
) -> None:
    alice, bob = add_users(admin, 2)
    add_events(admin, alice, [days_ago(31), days_ago(29)])
    add_events(admin, bob, [days_ago(40), days_ago(1)])
    queue = f"test-{uuid.uuid4().hex}"
    env = celery_env(queue, database_url=db_url, redis_url=redis_url, retention_days="30")

    with running_worker(env, queue):
        sent = celery_cli(["call", "apply_retention", "--kwargs", json.dumps({"as_of": NOW.isoformat()})], env)
        assert sent.returncode == 0, sent.stderr
        retention = task_result(redis_url, sent.stdout.strip())
        forget = celery_cli(["call", "forget_user", "--kwargs", json.dumps({"user_id": str(bob)})], env)
        forgotten = task_result(redis_url, forget.stdout.strip())
        again = task_result(
            redis_url, celery_cli(["call", "forget_user", "--args", json.dumps([str(bob)])], env).stdout.strip()
        )

    assert (retention["soft_deleted"], retention["cutoff"]) == (2, days_ago(30).isoformat())
    assert seen_by_user(api, alice) == [days_ago(29)]
    assert (forgotten["soft_deleted"], again["soft_deleted"]) == (1, 0)  # bob's old one was retention's
    assert seen_by_user(api, bob) == []

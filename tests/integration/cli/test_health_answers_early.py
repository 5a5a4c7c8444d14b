"""`python -m worker health` returns once every check has its answer, not after its --timeout:
a real worker on this test's queue answers at once, so a 60 s timeout is far from reached. The
test waits for the command half that timeout (wide enough for any load): a health that waited its
timeout out, as Celery's inspect does, cannot finish within the wait."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import pytest

from tests.integration.worker_process import PROJECT_ROOT, celery_env, running_worker
from worker.database import dispose_engines
from worker.scan.scanner import run_scan

TIMEOUT = 60


@pytest.mark.worker
def test_health_returns_long_before_its_timeout_when_everything_answers(db_url: str, redis_url: str) -> None:
    run_scan(datetime.now(UTC), url=db_url)
    dispose_engines()
    queue = f"test-health-early-{uuid.uuid4().hex}"
    env = celery_env(queue, database_url=db_url, redis_url=redis_url)
    with running_worker(env, queue), running_worker(env, queue, name="second"):
        result = subprocess.run(
            [sys.executable, "-m", "worker", "health", "--json", "--timeout", str(TIMEOUT)],
            env=env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=TIMEOUT / 2,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    # Returning early names the workers of the queue that answered (both, unless one was slower than the grace).
    workers = json.loads(result.stdout)["checks"][-1]
    assert workers["name"] == "workers" and 1 <= len(workers["workers"]) <= 2, workers
    assert all(queue in name for name in workers["workers"]), workers

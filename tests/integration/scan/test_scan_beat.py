"""A real beat process sends the reconcile entry (`scan_inactive` with full=True) on its own
interval; read from the queue in Redis, with no worker taking it first."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis

from tests.integration.worker_process import PROJECT_ROOT, celery_env

pytestmark = pytest.mark.worker


def sent_tasks(client: redis.Redis, queue: str) -> list[tuple[str, dict]]:
    """(task name, kwargs) of every message waiting on `queue`, as kombu stores them."""
    found = []
    for raw in client.lrange(queue, 0, -1):
        message = json.loads(raw)
        _, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        found.append((message["headers"]["task"], kwargs))
    return found


def test_beat_sends_the_reconcile_entry_as_a_full_scan(redis_url: str, tmp_path: Path) -> None:
    queue = f"test-{uuid.uuid4().hex}"
    client = redis.Redis.from_url(redis_url)
    # Reconcile every 1.8 s, the incremental scan only hourly: what arrives is the reconcile.
    env = celery_env(queue, redis_url=redis_url, scan_interval_seconds="3600", reconcile_interval_hours="0.0005")
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
        deadline = time.monotonic() + 60
        while len(sent := sent_tasks(client, queue)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        beat.terminate()
        beat.wait(timeout=20)
        client.delete(queue)
    assert len(sent) >= 2, sent
    assert set(map(json.dumps, sent)) == {json.dumps(("scan_inactive", {"full": True}))}

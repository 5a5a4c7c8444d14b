"""A worker SIGKILLed mid-import, and database connections terminated mid-import and mid-scan.

Each ends with the database holding exactly what one clean run would have written.
"""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from tests.integration.faults.data import (
    AS_OF,
    assert_imported_exactly,
    assert_nudged_once,
    big_batch,
    client,
    due_users,
    imported,
    nudge_counts,
    terminate_busy_backend,
)
from tests.integration.faults.processes import Process, start_worker, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.worker]
ROWS = 40_000


def cut_until_the_task_retries(admin: psycopg.Connection, worker: Process) -> None:
    """Terminate the worker's busy backend until the task fails over it: a backend seen busy may
    have gone back to the pool before the signal lands, and the pool's ping replaces it quietly."""
    for _ in range(30):
        terminate_busy_backend(admin)
        time.sleep(0.3)
        if "Retry in" in worker.output():
            return
    raise AssertionError(f"the task never retried:\n{worker.output()}")


def test_a_worker_killed_mid_import_is_finished_by_the_restarted_worker(
    admin: psycopg.Connection, fault_env: dict[str, str], queue: str
) -> None:
    batch, valid = big_batch(admin, ROWS)
    env = {**fault_env, "IMPORT_CHUNK_SIZE": "500"}
    worker = start_worker(env, queue)
    try:
        client(env["REDIS_URL"]).send_task("import_events", kwargs={"batch": batch, "batch_id": "killed"}, queue=queue)
        wait_until(lambda: imported(admin) > 0, 60, "the import never started")
        worker.kill()
        sent_at = time.monotonic()
    finally:
        worker.stop()
    partial = imported(admin)
    print(f"killed with {partial} of {valid} rows written")
    assert 0 < partial < valid, "the kill did not land mid-import"
    # Redis hands the unacknowledged task out again once the visibility timeout (5 s) has passed.
    time.sleep(max(0.0, 5.5 - (time.monotonic() - sent_at)))
    restarted = start_worker(env, queue, "again")
    try:
        wait_until(lambda: imported(admin) >= valid, 90, lambda: f"{imported(admin)} of {valid} rows")
        restarted.wait_for("succeeded", 30)
    finally:
        restarted.stop()
    assert_imported_exactly(admin, "killed", valid, ROWS - valid)


def test_a_connection_terminated_mid_import_is_retried_with_backoff(
    admin: psycopg.Connection, fault_env: dict[str, str], queue: str, tmp_path: Path
) -> None:
    batch, valid = big_batch(admin, ROWS)
    env = {**fault_env, "IMPORT_CHUNK_SIZE": "500", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    worker = start_worker(env, queue)
    try:
        result = client(env["REDIS_URL"]).send_task(
            "import_events", kwargs={"batch": batch, "batch_id": "cut"}, queue=queue
        )
        wait_until(lambda: imported(admin) > 0, 60, "the import never started")
        cut_until_the_task_retries(admin, worker)
        summary = result.get(timeout=120)
    finally:
        worker.stop()
    print("retried import:", {k: summary[k] for k in ("inserted", "duplicates", "rejected")})
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))
    retries = [
        s
        for metric in registry.collect()
        for s in metric.samples
        if s.name == "engagement_task_retries_total" and s.labels["task"] == "import_events"
    ]
    # AdminShutdown, or OperationalError when the cut reaches an idle-in-transaction connection.
    assert sum(s.value for s in retries) >= 1
    # The retry inserted what the cut attempt had not committed, and counted the rest as duplicates.
    assert summary["inserted"] < valid and summary["inserted"] + summary["duplicates"] == valid
    assert_imported_exactly(admin, "cut", valid, ROWS - valid)


def test_a_connection_terminated_mid_scan_is_retried_and_nudges_each_due_user_once(
    admin: psycopg.Connection, fault_env: dict[str, str], queue: str
) -> None:
    users = due_users(admin, 6000)
    env = {**fault_env, "SCAN_BATCH_SIZE": "25"}
    worker = start_worker(env, queue)
    try:
        result = client(env["REDIS_URL"]).send_task("scan_inactive", kwargs={"as_of": AS_OF.isoformat()}, queue=queue)
        wait_until(lambda: len(nudge_counts(admin)) > 0, 60, "the scan never nudged")
        cut_until_the_task_retries(admin, worker)
        summary = result.get(timeout=120)
    finally:
        worker.stop()
    print("retried scan:", {k: summary[k] for k in ("examined", "due", "nudged", "skipped")})
    # The cut attempt had nudged some (committed per batch); the retry nudged the rest.
    assert summary["ran"] and 0 < summary["skipped"]["already_nudged"] < len(users)
    assert summary["ran"] and summary["nudged"] + summary["skipped"]["already_nudged"] == len(users)
    assert_nudged_once(admin, users)


def test_a_worker_killed_mid_scan_is_finished_by_the_restarted_worker(
    admin: psycopg.Connection, fault_env: dict[str, str], queue: str
) -> None:
    users = due_users(admin, 6000)
    env = {**fault_env, "SCAN_BATCH_SIZE": "25"}
    worker = start_worker(env, queue)
    try:
        client(env["REDIS_URL"]).send_task("scan_inactive", kwargs={"as_of": AS_OF.isoformat()}, queue=queue)
        wait_until(lambda: len(nudge_counts(admin)) > 0, 60, "the scan never nudged")
        worker.kill()
        killed_at = time.monotonic()
    finally:
        worker.stop()
    print(f"killed with {len(nudge_counts(admin))} of {len(users)} nudged")
    assert 0 < len(nudge_counts(admin)) < len(users), "the kill did not land mid-scan"
    time.sleep(max(0.0, 5.5 - (time.monotonic() - killed_at)))
    restarted = start_worker(env, queue, "again")
    try:
        wait_until(
            lambda: len(nudge_counts(admin)) >= len(users),
            90,
            lambda: f"{len(nudge_counts(admin))} of {len(users)} nudged:\n{restarted.output()}",
        )
        restarted.wait_for("succeeded", 30)
    finally:
        restarted.stop()
    assert_nudged_once(admin, users)

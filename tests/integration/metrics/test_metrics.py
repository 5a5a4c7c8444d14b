"""Metrics and JSON logs read from a real prefork worker, as Prometheus and a log shipper would."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.faults.data import client
from tests.integration.faults.processes import start_worker, wait_until
from tests.integration.faults.servers import free_port
from tests.integration.ingest.import_helpers import add_users, event
from tests.integration.scan.scan_helpers import add_event, add_user
from tests.integration.worker_process import PROJECT_ROOT, celery_env

pytestmark = [pytest.mark.worker, pytest.mark.slow]
AS_OF = "2026-03-05T12:00:00+00:00"
LATER = "2026-03-05T13:00:00+00:00"


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample at /metrics, by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def listening(port: int) -> bool:
    try:
        scrape(port)
    except OSError:
        return False
    return True


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def arrange_scan(admin: psycopg.Connection) -> None:
    """Three users due at AS_OF, one of them opted out; one active user, not due."""
    for opt_out in (False, False, True):
        user = add_user(admin, "2026-03-01T00:00:00", opt_out=opt_out)
        add_event(admin, user, "2026-03-02T10:00:00")
    active = add_user(admin, "2026-03-01T00:00:00")
    add_event(admin, active, "2026-03-05T09:00:00")


def test_a_scrape_after_scans_and_imports_in_prefork_children_has_their_exact_numbers(
    admin: psycopg.Connection, db_url: str, redis_url: str, tmp_path: Path
) -> None:
    arrange_scan(admin)
    users = add_users(admin, 2)
    queue, port = f"test-{uuid.uuid4().hex}", free_port()
    folder = tmp_path / "metrics"
    folder.mkdir()
    env = celery_env(
        queue,
        DATABASE_URL=db_url,
        REDIS_URL=redis_url,
        QUIET_HOURS_ENABLED="false",
        PROMETHEUS_MULTIPROC_DIR=str(folder),
        METRICS_PORT=str(port),
    )
    sender = client(redis_url)
    # A fresh pool child per task: the numbers of children that are gone must still count.
    worker = start_worker(env, queue, concurrency=2, extra=["--max-tasks-per-child=1"])
    try:
        before_scans = time.monotonic()
        for as_of in (AS_OF, LATER):
            sender.send_task("scan_inactive", kwargs={"as_of": as_of}, queue=queue).get(timeout=60)
        scans_window = time.monotonic() - before_scans
        batches = [
            [event(users[0]), event(users[1]), {"user_id": str(users[0]), "event_type": "nudge_sent"}],
            [event(users[1])],
        ]
        results = [
            sender.send_task("import_events", kwargs={"batch": b, "batch_id": f"m{n}"}, queue=queue)
            for n, b in enumerate(batches)
        ]
        results.append(sender.send_task("import_events", kwargs={"batch": batches[1], "batch_id": "m1"}, queue=queue))
        for result in results:
            result.get(timeout=60)
        failed = sender.send_task("scan_inactive", kwargs={"rules": ["no_such_rule"]}, queue=queue)
        with pytest.raises(Exception, match="unknown rule"):
            failed.get(timeout=60, propagate=True)
        # Celery stores a task's result before it sends task_success / task_failure, whose
        # handlers count it: the caller can see a result before its count is written.
        counted = {
            ("engagement_task_successes_total", frozenset({("task", "import_events")})): 3,
            ("engagement_task_failures_total", frozenset({("task", "scan_inactive"), ("exception", "ValueError")})): 1,
        }
        wait_until(
            lambda: all(scrape(port).get(key) == n for key, n in counted.items()),
            timeout=30,
            message=lambda: f"task counts never reached {counted}",
        )
        samples = scrape(port)
        pids = {p.name.rsplit("_", 1)[-1] for p in folder.glob("*.db")}
    finally:
        worker.stop()
    assert len(pids) >= 4, "the tasks ran in one process; max-tasks-per-child did not apply"
    rule = {"rule": "inactive_48h"}
    assert value(samples, "engagement_scans_total", mode="full", dry_run="false", **rule) == 1
    assert value(samples, "engagement_scans_total", mode="incremental", dry_run="false", **rule) == 1
    assert value(samples, "engagement_scan_runs_total", outcome="ran") == 2
    assert value(samples, "engagement_scan_candidates_examined_total", **rule) == 3
    assert value(samples, "engagement_scan_users_due_total", **rule) == 3
    assert value(samples, "engagement_scan_nudges_written_total", **rule) == 2
    assert value(samples, "engagement_scan_skips_total", reason="opted_out", **rule) == 1
    assert value(samples, "engagement_scan_skips_total", reason="already_nudged", **rule) == 0
    assert value(samples, "engagement_scan_last_users_due", **rule) == 0
    assert value(samples, "engagement_scan_duration_seconds_count") == 2
    # In seconds, and spent inside the window the two scans ran in (however loaded the machine).
    assert 0 < value(samples, "engagement_scan_duration_seconds_sum") <= scans_window
    assert value(samples, "engagement_import_rows_total", outcome="inserted") == 3
    assert value(samples, "engagement_import_rows_total", outcome="duplicate") == 1
    assert value(samples, "engagement_import_rows_total", outcome="rejected") == 1
    assert value(samples, "engagement_task_successes_total", task="import_events") == 3
    assert value(samples, "engagement_task_failures_total", task="scan_inactive", exception="ValueError") == 1


def test_the_metrics_command_serves_the_folder_and_counts_feed_lag_from_tail(
    admin: psycopg.Connection, db_url: str, tmp_path: Path
) -> None:
    [user] = add_users(admin)
    folder, port = tmp_path / "metrics", free_port()
    folder.mkdir()
    env = celery_env("unused", DATABASE_URL=db_url, PROMETHEUS_MULTIPROC_DIR=str(folder))
    before_insert = time.monotonic()
    admin.execute("insert into engagement_events (user_id, event_type) values (%s, 'app_open')", (user,))
    out = tmp_path / "tail.out"
    with out.open("w") as stdout:
        tail = subprocess.Popen(
            [sys.executable, "-m", "worker", "tail", "--json", "--since", "beginning"],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=stdout,
            stderr=subprocess.DEVNULL,
        )
    exporter = subprocess.Popen(
        [sys.executable, "-m", "worker", "metrics", "--port", str(port)],
        env=env,
        cwd=PROJECT_ROOT,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: out.read_text().count("\n") == 1, 30, "the tail printed nothing", process=tail)
        assert json.loads(out.read_text())["user_id"] == str(user)
        wait_until(lambda: listening(port), 30, "the exporter does not listen", process=exporter)
        wait_until(lambda: value(scrape(port), "engagement_feed_lag_seconds_count") == 1, 60, "no feed lag counted")
        samples = scrape(port)
        since_insert = time.monotonic() - before_insert
    finally:
        for process in (tail, exporter):
            process.terminate()
            process.wait(timeout=20)
    # The lag runs from the event's stamp (taken when it was written) to its delivery: in seconds,
    # and inside the span from just before the insert to the scrape, however loaded the machine.
    assert 0 <= value(samples, "engagement_feed_lag_seconds_sum") <= since_insert


def test_log_format_json_makes_every_worker_line_one_object_with_the_task_id(
    admin: psycopg.Connection, db_url: str, redis_url: str
) -> None:
    arrange_scan(admin)
    queue = f"test-{uuid.uuid4().hex}"
    env = celery_env(queue, DATABASE_URL=db_url, REDIS_URL=redis_url, LOG_FORMAT="json", QUIET_HOURS_ENABLED="false")
    worker = start_worker(env, queue, concurrency=1, quiet=True)
    try:
        result = client(redis_url).send_task("scan_inactive", kwargs={"as_of": AS_OF}, queue=queue)
        result.get(timeout=60)
        # The trace's "succeeded" line may be read half-written: wait for it whole, keep whole lines only.
        wait_until(
            lambda: any("succeeded" in line for line in complete_lines(worker.output())),
            60,
            lambda: f"no complete 'succeeded' line in:\n{worker.output()}",
            process=worker.popen,
        )
        lines = without_root_warning("\n".join(complete_lines(worker.output())))
    finally:
        worker.stop()
    entries = [json.loads(line) for line in lines]  # fails on any line that is not one object
    assert all({"time", "level", "logger", "message", "task_id", "process"} <= e.keys() for e in entries)
    about_the_task = [e for e in entries if e["task_id"] == result.id]
    assert {e["logger"] for e in about_the_task} == {"celery.worker.strategy", "worker.tasks", "celery.app.trace"}
    [scan_line] = [e for e in entries if e["logger"] == "worker.tasks"]
    assert "nudged=2" in scan_line["message"] and scan_line["task_name"] == "scan_inactive"
    assert {e["task_id"] for e in entries} == {None, result.id}


def complete_lines(output: str) -> list[str]:
    """The lines that end with a newline: the last may still be being written."""
    return output.splitlines()[: output.count("\n")]


def without_root_warning(output: str) -> list[str]:
    """The output's non-empty lines, less Python's SecurityWarning block that Celery emits, before
    logging is set up, when it runs as root (as the tests do)."""
    lines = [line for line in output.splitlines() if line.strip()]
    if lines and "SecurityWarning" in lines[0]:
        end = next(n for n, line in enumerate(lines) if "_warn_or_raise_security_error" in line)
        lines = lines[end + 1 :]
    return lines

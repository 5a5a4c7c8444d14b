"""`import_events` through a real worker process: sent with `celery -A worker call`, and by
`python -m worker import --enqueue`, which waits for the workers' summaries and adds them up."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from tests.integration.ingest.import_helpers import add_users, event, import_cli, quarantined, stored_ids
from tests.integration.worker_process import celery_cli, celery_env, running_worker, task_result
from worker.ingest.rows import derive_event_id

pytestmark = pytest.mark.worker


@pytest.fixture
def queue(redis_url: str) -> Iterator[str]:
    """A queue of this test's own; whatever is left on it is removed afterwards."""
    name = f"test-{uuid.uuid4().hex}"
    yield name
    redis.Redis.from_url(redis_url).delete(name)


@pytest.fixture
def env(db_url: str, redis_url: str, queue: str) -> dict[str, str]:
    return celery_env(queue, DATABASE_URL=db_url, REDIS_URL=redis_url)


def test_import_events_sent_with_celery_call_runs_in_the_worker_and_dedupes_a_resend(
    admin: psycopg.Connection, env: dict[str, str], queue: str, redis_url: str
) -> None:
    users = add_users(admin, 2)
    batch = [
        event(users[0]),
        {"user_id": str(users[1]), "event_type": "goal_complete"},
        {"user_id": str(users[1]), "event_type": "nudge_sent"},
    ]
    kwargs = json.dumps({"batch": batch, "batch_id": "via-call"})

    with running_worker(env, queue):
        sent = celery_cli(["call", "import_events", "--kwargs", kwargs], env)
        assert sent.returncode == 0, sent.stderr
        first = task_result(redis_url, sent.stdout.strip())
        resent = celery_cli(["call", "import_events", "--kwargs", kwargs], env)
        second = task_result(redis_url, resent.stdout.strip())

    assert (first["inserted"], first["duplicates"], first["rejected"]) == (2, 0, 1)
    assert first["errors"] == [
        {
            "index": 2,
            "error": 'event_type "nudge_sent" is reserved for the nudge engine '
            "(reserved: nudge_delivered, nudge_failed, nudge_sent, nudge_shadow, nudge_withheld)",
        }
    ]
    assert (second["inserted"], second["duplicates"], second["rejected"]) == (0, 2, 1)
    assert stored_ids(admin) == {batch[0]["id"], str(derive_event_id("via-call", 1))}
    assert [(b, p) for b, p, _, _ in quarantined(admin)] == [("via-call", 2)]


def test_cli_enqueue_sends_the_file_to_the_workers_and_sums_their_summaries(
    admin: psycopg.Connection, env: dict[str, str], queue: str, db_url: str, tmp_path: Path
) -> None:
    users = add_users(admin, 3)
    lines = [json.dumps({"user_id": str(users[n % 3]), "event_type": "app_open", "value": {"n": n}}) for n in range(10)]
    lines[3] = json.dumps({"user_id": str(users[0]), "event_type": "app_open", "timestamp": "2025-06-01T10:00:00"})
    lines[6] = '{"user_id": '
    path = tmp_path / "events.ndjson"
    path.write_text("\n".join(lines) + "\n")

    with running_worker(env, queue):
        result = import_cli(
            [str(path), "--enqueue", "--batch-size", "4", "--batch-id", "enq", "--json"],
            db_url,
            REDIS_URL=env["REDIS_URL"],
            CELERY_QUEUE=queue,
        )

    assert result.returncode == 1, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["batch_id"], summary["inserted"], summary["duplicates"], summary["rejected"]) == ("enq", 8, 0, 2)
    assert summary["errors"] == [
        {
            "line": 4,
            "error": 'timestamp "2025-06-01T10:00:00" has no UTC offset, so the instant is ambiguous; '
            "add one, e.g. Z or +02:00",
        },
        {"line": 7, "error": "bad JSON: Expecting value at column 13"},
    ]
    # The same ids as an in-process import of the file: importing it here now inserts nothing.
    assert stored_ids(admin) == {str(derive_event_id("enq", line)) for line in range(1, 11) if line not in (4, 7)}
    assert [(p, raw) for _, p, raw, _ in quarantined(admin)][1] == (7, '{"user_id": ')
    again = json.loads(import_cli([str(path), "--batch-id", "enq", "--json"], db_url).stdout)
    assert (again["inserted"], again["duplicates"], again["rejected"]) == (0, 8, 2)


def test_cli_enqueue_without_a_worker_times_out_with_advice(
    admin: psycopg.Connection, env: dict[str, str], queue: str, db_url: str, tmp_path: Path
) -> None:
    [user] = add_users(admin)
    path = tmp_path / "events.ndjson"
    path.write_text(json.dumps({"user_id": str(user), "event_type": "app_open"}) + "\n")
    # The TimeoutError in the message is --timeout at work; import_cli's own timeout bounds a hang.
    result = import_cli(
        [str(path), "--enqueue", "--timeout", "2", "--batch-id", "lonely"],
        db_url,
        REDIS_URL=env["REDIS_URL"],
        CELERY_QUEUE=queue,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "error: the batch from line 1 did not complete: TimeoutError: The operation timed out; "
        "chunks already written stay written; re-running with --batch-id lonely inserts each row once"
    ]

"""`... | head -1`: a reader that goes away ends a command quietly (nothing on stderr), and the
exit status still says what happened to the data. Real pipes, closed by a reader that read once
(or never), against real servers."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.integration.cli.commands import cli, piped_to_a_reader_that_leaves
from tests.integration.faults.servers import free_port
from tests.integration.ingest.import_helpers import add_users, event, write_ndjson

# Every test runs the engine against its own database (settings_env closes its connections).
pytestmark = pytest.mark.usefixtures("settings_env")


def refused_file(tmp_path: Path, good: uuid.UUID, refused: int) -> Path:
    """One good row, then `refused` rows of users that do not exist (each a reason ~90 characters long)."""
    rows = [event(good)] + [event(uuid.uuid4()) for _ in range(refused)]
    return write_ndjson(tmp_path / f"refused-{refused}.ndjson", rows)


@pytest.mark.parametrize("read", [0, 1], ids=["reader gone before", "reader read once"])
def test_import_with_refused_rows_exits_1_through_a_closed_pipe(
    admin: psycopg.Connection, db_url: str, tmp_path: Path, read: int
) -> None:
    [user] = add_users(admin)
    path = refused_file(tmp_path, user, 3)
    status, stderr, _ = piped_to_a_reader_that_leaves(
        "worker", "import", str(path), env={"DATABASE_URL": db_url}, read=read
    )
    assert (status, stderr) == (1, "")
    # The data was imported all the same.
    assert admin.execute("select count(*) from engagement_events").fetchone()[0] == 1
    assert admin.execute("select count(*) from engagement_import_quarantine").fetchone()[0] == 3


def test_import_json_larger_than_the_pipe_exits_1_when_the_reader_leaves_mid_output(
    admin: psycopg.Connection, db_url: str, tmp_path: Path
) -> None:
    """1,000 errors in the JSON summary (over 100 kB): the print itself meets the closed pipe."""
    [user] = add_users(admin)
    path = refused_file(tmp_path, user, 1000)
    status, stderr, got = piped_to_a_reader_that_leaves(
        "worker", "import", str(path), "--json", env={"DATABASE_URL": db_url}, read=100
    )
    assert got.startswith(b"{") and (status, stderr) == (1, "")


def test_import_with_every_row_passing_exits_0_through_a_closed_pipe(
    admin: psycopg.Connection, db_url: str, tmp_path: Path
) -> None:
    [user] = add_users(admin)
    path = write_ndjson(tmp_path / "good.ndjson", [event(user), event(user)])
    assert piped_to_a_reader_that_leaves("worker", "import", str(path), env={"DATABASE_URL": db_url}, read=0)[:2] == (
        0,
        "",
    )


@pytest.mark.parametrize("read", [0, 1], ids=["reader gone before", "reader read once"])
def test_services_status_through_a_closed_pipe_is_quiet_and_says_whether_the_servers_answer(
    db_url: str, redis_url: str, tmp_path: Path, read: int
) -> None:
    env = {"DATABASE_URL": db_url, "REDIS_URL": redis_url, "EVENTS_STATE_DIR": str(tmp_path)}
    assert piped_to_a_reader_that_leaves("worker", "services", "status", env=env, read=read)[:2] == (0, "")
    down = {**env, "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    assert piped_to_a_reader_that_leaves("worker", "services", "status", env=down, read=read)[:2] == (1, "")


def test_replay_and_list_of_the_quarantine_through_a_closed_pipe(
    admin: psycopg.Connection, db_url: str, tmp_path: Path
) -> None:
    [user] = add_users(admin)
    path = refused_file(tmp_path, user, 2000)
    env = {"DATABASE_URL": db_url}
    assert cli("worker", "import", str(path), "--batch-id", "b", env=env).returncode == 1
    listed = piped_to_a_reader_that_leaves("worker", "import", "--list-rejected", "--json", env=env, read=10)
    assert listed[:2] == (0, "") and listed[2].startswith(b'{"batch_id')
    replayed = piped_to_a_reader_that_leaves("worker", "import", "--replay-rejected", "--json", env=env, read=10)
    assert replayed[:2] == (1, "")  # the rows still fail


def test_health_through_a_closed_pipe_exits_with_the_health(db_url: str, redis_url: str) -> None:
    env = {"DATABASE_URL": db_url, "REDIS_URL": redis_url, "CELERY_QUEUE": f"test-{uuid.uuid4().hex}"}
    status, stderr, _ = piped_to_a_reader_that_leaves("worker", "health", "--timeout", "1", env=env, read=0)
    assert (status, stderr) == (1, "")  # no worker on this queue, never scanned
    status, stderr, got = piped_to_a_reader_that_leaves("worker", "health", "--json", "--timeout", "1", env=env, read=1)
    assert (status, stderr, got) == (1, "", b"{")
    assert json.loads(cli("worker", "health", "--json", "--timeout", "1", env=env).stdout)["healthy"] is False

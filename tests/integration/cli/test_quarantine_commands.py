"""`python -m worker import --list-rejected` and `--replay-rejected --batch-id`: the quarantine
listed, and a batch with nothing there refused in one line (exit 1) instead of "0 of 0"."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.integration.cli.commands import cli
from tests.integration.ingest.import_helpers import add_users, event, write_ndjson

pytestmark = pytest.mark.usefixtures("settings_env")


def import_refused(db_url: str, tmp_path: Path, batch_id: str, user: uuid.UUID) -> None:
    rows = [event(user), {"user_id": str(user)}, event(user, "Bad Type")]
    path = write_ndjson(tmp_path / f"{batch_id}.ndjson", rows)
    assert cli("worker", "import", str(path), "--batch-id", batch_id, env={"DATABASE_URL": db_url}).returncode == 1


def test_list_rejected_shows_each_row_with_its_reason(admin: psycopg.Connection, db_url: str, tmp_path: Path) -> None:
    [user] = add_users(admin)
    import_refused(db_url, tmp_path, "monday", user)
    import_refused(db_url, tmp_path, "tuesday", user)
    env = {"DATABASE_URL": db_url}

    everything = cli("worker", "import", "--list-rejected", env=env)
    assert everything.returncode == 0 and everything.stderr == ""
    lines = everything.stdout.splitlines()
    assert [line.split(" (")[0] for line in lines[:-1]] == [
        "monday row 2",
        "monday row 3",
        "tuesday row 2",
        "tuesday row 3",
    ]
    assert "event_type is required" in lines[0] and lines[-1] == "4 rows in the quarantine"

    one = cli("worker", "import", "--list-rejected", "--batch-id", "tuesday", "--json", env=env)
    rows = [json.loads(line) for line in one.stdout.splitlines()]
    assert one.returncode == 0 and [(r["batch_id"], r["position"]) for r in rows] == [("tuesday", 2), ("tuesday", 3)]
    assert rows[0]["user_id"] == str(user) and json.loads(rows[0]["raw"]) == {"user_id": str(user)}


def test_an_empty_quarantine_lists_nothing_and_exits_0(db_url: str) -> None:
    result = cli("worker", "import", "--list-rejected", env={"DATABASE_URL": db_url})
    assert (result.returncode, result.stdout, result.stderr) == (0, "0 rows in the quarantine\n", "")


@pytest.mark.parametrize("command", ["--replay-rejected", "--list-rejected"])
def test_a_batch_with_nothing_in_the_quarantine_is_one_line_and_exit_1(
    admin: psycopg.Connection, db_url: str, tmp_path: Path, command: str
) -> None:
    [user] = add_users(admin)
    import_refused(db_url, tmp_path, "monday", user)
    result = cli("worker", "import", command, "--batch-id", "nosuch", env={"DATABASE_URL": db_url})
    assert (result.returncode, result.stdout, result.stderr) == (1, "", "error: no rejected rows for batch nosuch\n")
    # The other side: a batch that is there is replayed (its rows still fail: exit 1, with a summary).
    there = cli("worker", "import", command, "--batch-id", "monday", env={"DATABASE_URL": db_url})
    assert there.stderr == "" and "monday" in there.stdout

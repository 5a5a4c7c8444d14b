"""What a new user tripped over (issue 12), each as they would meet it on a fresh clone."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from events_schema.__main__ import build_parser as events_schema_parser
from events_schema.db import conninfo
from tests.integration.ingest.import_helpers import add_users
from tests.integration.scan.scan_helpers import add_event, add_user
from tests.integration.worker_process import PROJECT_ROOT
from worker.feed.cli import unknown_types

DOWN = "postgresql://postgres@127.0.0.1:1/nowhere"


def cli(
    module: str, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        env={**os.environ, **(env or {})},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ("worker", "scan"),
        ("worker", "scan", "--dry-run"),
        ("worker", "tail"),
        ("worker", "import", "--replay-rejected"),
        ("events_schema", "status"),
        ("events_schema", "migrate"),
        ("events_schema", "seed"),
        ("events_schema", "audit"),
        ("events_schema", "logins"),
    ],
    ids=" ".join,
)
def test_every_command_with_the_database_down_is_one_line(argv: tuple[str, ...]) -> None:
    # A command that retries instead of failing runs into cli()'s timeout (about hanging, not speed).
    result = cli(*argv, env={"DATABASE_URL": DOWN, "WORKER_DATABASE_URL": DOWN})
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2, result.stderr  # import adds what to do next
    assert result.stderr.startswith("error:") and "port 1" in result.stderr


def test_scan_piped_into_head_ends_quietly(admin: psycopg.Connection, db_url: str) -> None:
    """More output than a pipe holds, and a reader that stops after one line."""
    add_users(admin, 1500)
    process = subprocess.Popen(
        [sys.executable, "-m", "worker", "scan", "--dry-run", "--as-of", "2030-01-01T00:00:00Z", "--limit", "1500"],
        env={**os.environ, "DATABASE_URL": db_url},
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().startswith("user_id")
    process.stdout.close()
    assert process.wait(timeout=60) == 0
    assert process.stderr.read() == ""


def test_a_dry_run_right_after_a_scan_still_answers_who_is_due(admin: psycopg.Connection, db_url: str) -> None:
    lapsed = add_user(admin, "2026-03-01T00:00:00")
    add_event(admin, lapsed, "2026-03-02T10:00:00")
    env = {"DATABASE_URL": db_url}
    assert cli("worker", "scan", "--as-of", "2026-03-05T12:00:00Z", env=env).returncode == 0
    dry = cli("worker", "scan", "--dry-run", "--as-of", "2026-03-05T12:15:00Z", env=env)
    assert dry.returncode == 0, dry.stderr
    assert f"{lapsed}" in dry.stdout and "already_nudged" in dry.stdout
    assert "(full, 48 h): examined=1 due=1 nudged=0" in dry.stdout
    # The other side: what the beat's next (incremental) scan would do: nothing new.
    incremental = cli("worker", "scan", "--dry-run", "--incremental", "--as-of", "2026-03-05T12:15:00Z", env=env)
    assert "(incremental, 48 h): examined=0 due=0" in incremental.stdout, incremental.stdout


def test_help_is_for_users_not_developers() -> None:
    result = cli("worker", "--help")
    assert result.returncode == 0
    assert "add_arguments" not in result.stdout and "run(args)" not in result.stdout
    for command in ("scan", "import", "tail", "health", "services"):
        assert f"    {command}" in result.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("events_schema", "seed", "--users", "abc"), "not a whole number: 'abc'"),
        (("events_schema", "seed", "--now", "2026-11-26T10:00:00"), "has no UTC offset; ambiguous"),
        (("worker", "scan", "--limit", "-3"), "must be 0 or more, got -3"),
        (("worker", "scan", "--full", "--incremental"), "not allowed with argument"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else None,
)
def test_bad_arguments_are_refused_in_one_line(argv: tuple[str, ...], message: str) -> None:
    result = cli(*argv)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_seed_now_with_an_offset_is_accepted() -> None:
    for text in ("2026-11-26T10:00:00Z", "2026-11-26T12:00:00+02:00"):
        assert events_schema_parser().parse_args(["seed", "--now", text]).now.utcoffset() is not None


def test_tail_refuses_a_type_no_event_has(admin: psycopg.Connection, db_url: str) -> None:
    [user] = add_users(admin)
    admin.execute("insert into engagement_events (user_id, event_type) values (%s, 'app_open')", (user,))
    result = cli("worker", "tail", "--type", "app_opne", env={"DATABASE_URL": db_url})
    assert result.returncode == 2 and "no event has had type 'app_opne' yet" in result.stderr
    # Stored and reserved types are known; the refusal names only the unknown one.
    assert unknown_types(db_url, ["app_open", "nudge_sent", "app_opne"]) == ["app_opne"]


def _read_until(fd: int, text: bytes, timeout: float) -> bytes:
    seen, deadline = b"", time.monotonic() + timeout
    while text not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            try:
                seen += os.read(fd, 1024)
            except OSError:
                break
    return seen


def _wait_until_the_tail_waits(db_url: str, timeout: float) -> None:
    """Until the tail holds the feed's handshake lock: subscribed, and waiting for events."""
    deadline = time.monotonic() + timeout
    query = (
        "select count(*) from pg_locks l join pg_database d on d.oid = l.database "
        "where l.locktype = 'advisory' and d.datname = current_database() and l.granted"
    )
    with psycopg.connect(conninfo(db_url), autocommit=True) as conn:
        while conn.execute(query).fetchone()[0] == 0:
            assert time.monotonic() < deadline, "the tail never began waiting for events"
            time.sleep(0.1)


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "pipe"])
def test_tail_says_it_is_waiting_on_a_terminal_only(db_url: str, terminal: bool, tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    stderr_file = (tmp_path / "stderr").open("w+b")
    process = subprocess.Popen(
        [sys.executable, "-m", "worker", "tail"],
        env={**os.environ, "DATABASE_URL": db_url},
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=follower if terminal else stderr_file,
    )
    os.close(follower)
    try:
        if terminal:
            assert b"waiting for events" in _read_until(leader, b"waiting for events", 20)
        else:
            # Subscribed, so a Ctrl-C ends it with its cursor (a fixed sleep was too short under load).
            _wait_until_the_tail_waits(db_url, timeout=60)
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
        os.close(leader)
    stderr_file.seek(0)
    if not terminal:
        written = stderr_file.read()
        assert b"waiting" not in written and written.startswith(b"cursor: ")


def test_the_test_run_says_which_servers_it_uses_once() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "tests/unit/deploy/test_keys.py", "-k", "years"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout
    assert result.stdout.count("servers used by this run:") == 1
    assert "  postgres: postgresql" in result.stdout and "  redis: redis://" in result.stdout

"""Bad arguments, from the outside: one line on stderr naming the argument and where help is,
exit status 2, nothing on stdout; argparse validates, so nothing reaches a server."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest

from tests.integration.cli.commands import cli
from tests.integration.ingest.import_helpers import add_users, event, write_ndjson
from worker.__main__ import COMMANDS

WORKER_COMMANDS = list(COMMANDS)

# A server that is never reached: argparse refuses first.
NOWHERE = {"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere", "REDIS_URL": "redis://127.0.0.1:1/0"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("events_schema", "seed", "--users", "abc"), "argument --users: not a whole number: 'abc'"),
        (("worker", "scan", "--limit", "-3"), "argument --limit: must be 0 or more, got -3"),
        (("worker", "scan", "--as-of", "yesterday"), "argument --as-of: not an ISO 8601 time: 'yesterday'"),
        (("events_schema", "report", "--weeks", "0"), "argument --weeks: must be at least 1, got 0"),
        (("events_schema", "report", "--from", "yesterday"), "argument --from: not a date (YYYY-MM-DD): 'yesterday'"),
        (
            ("worker", "import", "events.ndjson", "--batch-size", "0"),
            "argument --batch-size: must be at least 1, got 0",
        ),
        (("worker", "import", "events.ndjson", "--batch-id", " "), "argument --batch-id: must not be empty"),
        (("events_schema", "audit", "--users", "1"), "argument --users: must be at least 2, got 1"),
        (("worker", "health", "--timeout", "0"), "argument --timeout: must be more than 0"),
        (("worker", "nosuch"), "argument command: invalid choice: 'nosuch'"),
        (("events_schema",), "the following arguments are required: command"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else None,
)
def test_a_bad_argument_is_one_line_and_exit_2(argv: tuple[str, ...], message: str) -> None:
    result = cli(*argv, env=NOWHERE)
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith(f"error: {message}"), result.stderr
    assert re.search(r"\(see python -m (worker|events_schema)( \w+)? --help\)$", lines[0]), lines[0]
    assert result.stdout == ""


@pytest.mark.parametrize(
    "argv",
    [
        ("worker", "import", "--replay-rejected", "events.ndjson"),
        ("worker", "import"),
        ("events_schema", "report", "--to", "2026-01-01"),
    ],
    ids=" ".join,
)
def test_a_combination_that_makes_no_sense_is_one_line_and_exit_2(argv: tuple[str, ...]) -> None:
    result = cli(*argv, env=NOWHERE)
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: ") and "--help" in result.stderr


def test_the_smallest_good_value_is_accepted(admin: psycopg.Connection, db_url: str, tmp_path: Path) -> None:
    """The other side of --batch-size 0 and --users 1: 1 and 2 run."""
    [user] = add_users(admin)
    path = write_ndjson(tmp_path / "two.ndjson", [event(user), event(user)])
    imported = cli("worker", "import", str(path), "--batch-size", "1", env={"DATABASE_URL": db_url})
    assert imported.returncode == 0 and "2 inserted" in imported.stdout, imported.stderr
    audited = cli("events_schema", "audit", "--users", "2", env={"DATABASE_URL": db_url})
    assert audited.returncode == 0 and "2 users" in audited.stdout, audited.stdout + audited.stderr


def subcommands(module: str) -> list[str]:
    listed = cli(module, "--help").stdout
    block = re.search(r"\{([\w,]+)\}", listed)
    assert block, listed
    return block.group(1).split(",")


@pytest.mark.parametrize(
    "argv",
    [("worker", name) for name in WORKER_COMMANDS]
    + [
        ("events_schema", name)
        for name in ("migrate", "status", "seed", "audit", "report", "logins", "keys", "summaries")
    ]
    + [("worker", "services", name) for name in ("up", "down", "status", "purge")],
    ids=" ".join,
)
def test_every_command_help_says_what_it_does(argv: tuple[str, ...]) -> None:
    result = cli(*argv, "--help")
    assert result.returncode == 0 and result.stderr == ""
    # usage, a blank line, then the description before the arguments.
    description = result.stdout.split("\n\n")[1]
    assert not description.startswith(("options:", "positional arguments:")) and len(description) > 30, result.stdout


def test_the_lists_of_commands_above_are_every_command() -> None:
    assert set(subcommands("events_schema")) == {
        "migrate",
        "status",
        "seed",
        "audit",
        "report",
        "logins",
        "keys",
        "summaries",
    }
    assert set(subcommands("worker")) == {"services", *WORKER_COMMANDS}


def test_tail_says_its_default_is_text() -> None:
    wide = cli("worker", "--help", env={"COLUMNS": "200"}).stdout
    [line] = [line for line in wide.splitlines() if line.strip().startswith("tail")]
    assert "text" in line and "JSON with --json" in line
    assert "default: text lines" in cli("worker", "tail", "--help", env={"COLUMNS": "200"}).stdout

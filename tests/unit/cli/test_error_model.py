"""The commands' one error model, without servers: every expected failure is one line on stderr
with the status its class carries, decided by run_command; argparse's errors are one line too."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest

from events_schema.cli_args import CommandParser, instant, whole_number
from events_schema.cli_errors import describe, run_command
from events_schema.db import DatabaseUnavailable
from events_schema.errors import CommandError, UsageError
from events_schema.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def failing(exc: BaseException) -> int:
    raise exc


@pytest.mark.parametrize(
    ("exc", "status", "line"),
    [
        (CommandError("rows refused"), 1, "error: rows refused"),
        (CommandError("several\n  lines\tof it"), 1, "error: several lines of it"),
        (CommandError("a status of its own", status=3), 3, "error: a status of its own"),
        (UsageError("--to needs --from"), 2, "error: --to needs --from"),
        (DatabaseUnavailable("cannot connect to the database: refused"), 1, "error: cannot connect to the database"),
        (psycopg.OperationalError("server closed the connection\nDETAIL: more"), 1, "error: database: server closed"),
    ],
)
def test_an_expected_failure_is_one_line_and_its_status(
    exc: BaseException, status: int, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_command(lambda: failing(exc)) == status
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(line) and err.count("\n") == 1, err


def test_advice_added_on_the_way_stays_on_the_same_line(capsys: pytest.CaptureFixture[str]) -> None:
    exc = CommandError("the batch from line 1 did not complete")
    exc.add_note("chunks already written stay written")
    assert run_command(lambda: failing(exc)) == 1
    assert (
        capsys.readouterr().err
        == "error: the batch from line 1 did not complete; chunks already written stay written\n"
    )


def test_a_setting_that_does_not_validate_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCAN_BATCH_SIZE", "0")
    with pytest.raises(Exception) as raised:
        Settings()
    assert describe(raised.value) == ("invalid setting SCAN_BATCH_SIZE: Input should be greater than 0", 2)


def test_a_bug_keeps_its_traceback() -> None:
    with pytest.raises(ZeroDivisionError):
        run_command(lambda: 1 // 0)


def test_the_commands_status_and_ctrl_c(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_command(lambda: 0) == 0 and run_command(lambda: 1) == 1
    assert run_command(lambda: failing(KeyboardInterrupt())) == 130
    assert capsys.readouterr().err == ""


def parser() -> CommandParser:
    top = CommandParser(prog="tool")
    sub = top.add_subparsers(dest="command", required=True).add_parser("count")
    sub.add_argument("--n", type=whole_number(1))
    return top


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["count", "--n", "0"], "error: argument --n: must be at least 1, got 0 (see tool count --help)"),
        (["count", "--n", "x"], "error: argument --n: not a whole number: 'x' (see tool count --help)"),
        (["count", "--m"], "error: unrecognized arguments: --m (see tool --help)"),
        ([], "error: the following arguments are required: command (see tool --help)"),
    ],
)
def test_a_bad_argument_is_one_line_with_a_hint_and_status_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_command(lambda: parser().parse_args(argv).n) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == message + "\n"


def test_parse_args_still_exits_on_a_bad_argument_as_argparse_promises() -> None:
    with pytest.raises(SystemExit) as exited:
        parser().parse_args(["count", "--n", "-1"])
    assert exited.value.code == 2


# A command that prints more than a pipe holds, then returns the status of its work.
PRINTS_THEN_RETURNS = """
import sys
from events_schema.cli_errors import keeping_status, run_command

def command():
    {body}

sys.exit(run_command(command))
"""


def through_a_closed_pipe(body: str, read_first: bool) -> tuple[int, str]:
    """Run `body` as a command with stdout a pipe whose reader reads once (or never) and leaves."""
    process = subprocess.Popen(
        [sys.executable, "-c", PRINTS_THEN_RETURNS.format(body=textwrap.indent(body, "    ").strip())],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": ""},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    if read_first:
        process.stdout.readline()
    process.stdout.close()
    status = process.wait(timeout=60)
    return status, process.stderr.read()


@pytest.mark.parametrize("status", [0, 1])
def test_a_reader_that_leaves_mid_output_keeps_the_status_of_the_work(status: int) -> None:
    body = f"with keeping_status({status}):\n    for i in range(100_000):\n        print(i)\nreturn {status}"
    assert through_a_closed_pipe(body, read_first=True) == (status, "")


@pytest.mark.parametrize("status", [0, 1])
def test_a_reader_gone_before_the_output_keeps_the_status_of_the_work(status: int) -> None:
    body = f"import time\ntime.sleep(0.5)\nprint('done')\nreturn {status}"
    assert through_a_closed_pipe(body, read_first=False) == (status, "")


@pytest.mark.parametrize(
    ("text", "example"),
    [("2026-11-01T10:00:00", "2026-11-01T10:00:00Z"), ("2026-11-01", "2026-11-01T00:00Z")],
)
def test_an_instant_without_an_offset_is_refused_with_an_example_that_parses(text: str, example: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="no UTC offset") as refused:
        instant(text)
    assert f"e.g. {example} or" in str(refused.value)
    assert instant(example).utcoffset() is not None


def test_a_date_with_an_offset_is_its_midnight_there() -> None:
    # Python's fromisoformat drops the offset of a date alone; ours keeps it.
    assert instant("2026-11-01Z") == instant("2026-11-01T00:00:00+00:00")
    assert instant("2026-11-01+02:00") == instant("2026-10-31T22:00Z")
    assert instant("2026-11-01T00:00Z") == instant("2026-11-01T01:00+01:00")
